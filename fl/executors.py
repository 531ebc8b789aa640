"""Where clients' local training runs: in this process, in a pool of local processes, or on
a Ray cluster, as futures the mission resolves only when it needs the contents.

A fit is a pure function of (round, client, what the client received, its data, its state)
with torch's generators seeded from (seed, round, client) (``Strategy.run_fit``), so where
it runs cannot change its result. Two more things make the results bit-identical on CPU
whatever the backend and the number of workers:

- every fit runs with the same number of torch threads (``threads``, default 1): a
  convolution's reductions are split per thread, so 1 and 2 threads give results a few
  ulps apart; workers x threads is what a backend occupies;
- the mission consumes updates in its simulated order, never in completion order.

Each worker receives the strategy (its client half: the model's architecture, the codecs,
the training settings) and every client's data once, when it starts (a pool's initializer
or a Ray actor's constructor, through Ray's object store), never through a shared file
system; a job then carries only the round, the client's index, the received payloads and
the client's state, as ``fl/wire.py`` bytes (tensors as NumPy buffers, not torch's
shared-memory file descriptors, which cost more than a small client's training).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import pickle
import signal
import sys
import time
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from orbitfl.core.errors import WorkerLost

from . import lifeline, wire
from .config import Execution
from .datasets import ImageSet
from .payloads import Payload
from .strategy import ClientState, ClientUpdate, Strategy

FitResult = tuple[ClientUpdate, ClientState]


@dataclass(frozen=True)
class FitJob:
    """One client's local training: everything but the data, which workers already hold."""

    job: int
    round_index: int
    client_id: int
    received: list[Payload]
    state: ClientState


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when this machine has it; ``cuda`` without it is an error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("execution.device is cuda but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def to_device(value: Any, device: torch.device | str) -> Any:
    """Tensors inside a fit's inputs or results moved to ``device`` (payloads, updates,
    states: dataclasses, mappings and sequences)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, Payload):
        return dataclasses.replace(value, tensors=to_device(dict(value.tensors), device))
    if isinstance(value, ClientUpdate):
        return dataclasses.replace(value, payloads=to_device(value.payloads, device))
    if isinstance(value, FitJob):
        return dataclasses.replace(value, received=to_device(value.received, device),
                                   state=to_device(value.state, device))
    return value


class Pending(ABC):
    """A fit's result, perhaps still being computed."""

    @abstractmethod
    def result(self) -> FitResult: ...


class _Deferred(Pending):
    """Computed when first asked for (serial: a job whose result nobody needs, a client
    that failed before finishing its training, costs nothing)."""

    def __init__(self, compute: Callable[[], FitResult]):
        self._compute: Callable[[], FitResult] | None = compute
        self._value: FitResult | None = None

    def result(self) -> FitResult:
        if self._compute is not None:
            self._value, self._compute = self._compute(), None
        assert self._value is not None  # computed now or at an earlier call
        return self._value


class Executor(ABC):
    """Runs fits; ``submit`` returns at once."""

    @abstractmethod
    def submit(self, job: FitJob) -> Pending: ...

    def close(self) -> None:
        """Stop the workers (idempotent)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Today's behaviour: the fit runs in this process, on the strategy's own worker model,
    when its result is first needed."""

    def __init__(self, strategy: Strategy, client_data: Sequence[ImageSet], threads: int = 1):
        self.strategy, self.client_data, self.threads = strategy, client_data, threads

    def submit(self, job: FitJob) -> Pending:
        def compute() -> FitResult:
            with torch_threads(self.threads):
                return self.strategy.run_fit(job.round_index, job.client_id, job.received,
                                             self.client_data[job.client_id], job.state)
        return _Deferred(compute)


# -- a worker's side (a pool process or a Ray actor) ------------------------------------
class _Worker:
    """The strategy's client half and every client's data, unpacked once per worker;
    ``batched``: a batch's fits train together (``fl/batched.py``)."""

    def __init__(self, blob: bytes, device: str, threads: int, batched: bool = False):
        torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.strategy, self.client_data = pickle.loads(blob)
        self.strategy.trainer.model.to(self.device)
        self.threads = threads
        self.batched = batched_fits(self.strategy, self.client_data) if batched else None

    def fit(self, job: FitJob) -> FitResult:
        job = to_device(job, self.device)
        update, state = self.strategy.run_fit(job.round_index, job.client_id, job.received,
                                              self.client_data[job.client_id], job.state)
        return to_device(update, "cpu"), to_device(state, "cpu")

    def fit_batch(self, message: bytes) -> bytes:
        """The fits of a batch of jobs, the jobs and their results as ``fl/wire.py``
        bytes."""
        jobs = wire.loads(message)
        if self.batched is None:
            return wire.dumps([self.fit(job) for job in jobs])
        results = self.batched.run([to_device(job, self.device) for job in jobs])
        return wire.dumps([(to_device(u, "cpu"), to_device(s, "cpu")) for u, s in results])


class BatchingError(ValueError):
    """``execution.batched`` asked of a strategy or model that needs per-client code."""


def batched_fits(strategy: Strategy, client_data: Sequence[ImageSet]):
    """``fl/batched.py``'s trainer for this strategy; a ValueError names what it cannot
    batch."""
    from .batched import BatchedFits

    return BatchedFits(strategy, client_data)


_WORKER: _Worker | None = None


def _init_pool_worker(parent: int, blob: bytes, device: str, threads: int,
                      batched: bool) -> None:
    global _WORKER
    # Ctrl-C reaches the terminal's whole process group, but it is the mission process
    # that stops the pool: a worker must not die on its own with a traceback (nor run the
    # CLI's SIGTERM handler, inherited by a fork); a worker whose mission process is gone
    # (kill -9) has nothing left to do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lifeline.die_with_parent(parent)
    # a forked worker inherits the mission process's objects (the contact plan, the world:
    # millions of them at constellation scale) and never uses them; frozen, the garbage
    # collector stops walking them on every full collection (and copying their pages)
    gc.freeze()
    _WORKER = _Worker(blob, device, threads, batched)


def _message(jobs: list[FitJob]) -> bytes:
    """Jobs as they travel to a worker: tensors on the CPU (a worker puts them on its own
    device), as ``fl/wire.py`` bytes."""
    return wire.dumps([to_device(job, "cpu") for job in jobs])


def _fit_in_pool(message: bytes) -> bytes:
    assert _WORKER is not None, "pool worker not initialised"
    return _WORKER.fit_batch(message)


def worker_blob(strategy: Strategy, client_data: Sequence[ImageSet]) -> bytes:
    """The strategy (with its models on the CPU) and the clients' data, pickled once."""
    device = next(strategy.global_model.parameters()).device
    if device.type != "cpu":
        strategy.global_model.to("cpu")
        strategy.trainer.model.to("cpu")
    try:
        return pickle.dumps((strategy, list(client_data)), protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        if device.type != "cpu":
            strategy.global_model.to(device)
            strategy.trainer.model.to(device)


class _Sent:
    """A batch's results, fetched once, when the first is needed."""

    def __init__(self, reply: Callable[[], list[FitResult]], device: torch.device):
        self._reply: Callable[[], list[FitResult]] | None = reply
        self._device = device
        self._results: list[FitResult] | None = None

    def get(self, index: int) -> FitResult:
        if self._results is None:
            assert self._reply is not None  # dropped only once the results are in
            results = self._reply()
            self._results = results if self._device.type == "cpu" else \
                [to_device(r, self._device) for r in results]
            self._reply = None
        return self._results[index]


class _Queued(Pending):
    """A job waiting to be sent with others, then one place in a sent batch."""

    def __init__(self, executor: "_BatchingExecutor"):
        self._executor, self._index = executor, 0
        self._batch: _Sent | None = None

    def result(self) -> FitResult:
        if self._batch is None:
            self._executor.flush()
        assert self._batch is not None  # flush sends every queued job, this one included
        return self._batch.get(self._index)


class _BatchingExecutor(Executor):
    """Jobs go to the workers in batches: one message per batch, in which the model that
    every client of a round received is written once. Jobs queue until ``batch`` jobs per
    worker are waiting or a result is needed, then are dealt so that the workers get equal
    work: a fit's cost grows with its client's images (``sizes``), and clients differ
    several-fold, so the largest job goes first to the least loaded worker (Graham's LPT
    rule). Batched training (``fl/batched.py``) gains with the batch's size, so it waits
    for many more jobs."""

    def __init__(self, workers: int, device: torch.device, sizes: Sequence[int],
                 batched: bool = False):
        self.workers, self.device, self.sizes = workers, device, list(sizes)
        self.batch = 256 if batched else 8
        self._queue: list[tuple[FitJob, _Queued]] = []

    @abstractmethod
    def _send(self, worker: int, jobs: list[FitJob]) -> Callable[[], list[FitResult]]:
        """Send a batch to a worker; returns the function that waits for its results."""

    def submit(self, job: FitJob) -> Pending:
        pending = _Queued(self)
        self._queue.append((job, pending))
        if len(self._queue) >= self.batch * self.workers:
            self.flush()
        return pending

    def flush(self) -> None:
        queue, self._queue = self._queue, []
        for worker, dealt in enumerate(self._deal(queue)):
            if not dealt:
                continue
            sent = _Sent(self._send(worker, [job for job, _ in dealt]), self.device)
            for index, (_, pending) in enumerate(dealt):
                pending._batch, pending._index = sent, index

    def _deal(self, queue: list[tuple[FitJob, _Queued]]) -> list[list]:
        """Each worker's share of ``queue``: largest job first to the least loaded worker
        (ties: the earlier job, the lower worker), each share in the order of submission.
        Where a job runs never changes its result, only when the round can close."""
        load = [0] * self.workers
        shares: list[list[int]] = [[] for _ in range(self.workers)]
        cost = [max(1, self.sizes[job.client_id]) for job, _ in queue]
        for i in sorted(range(len(queue)), key=lambda i: -cost[i]):
            worker = load.index(min(load))
            load[worker] += cost[i]
            shares[worker].append(i)
        return [[queue[i] for i in sorted(share)] for share in shares]


class BatchedExecutor(_BatchingExecutor):
    """In this process, on its device: the queued fits (a synchronous round's clients)
    train together, when the first result is needed (``fl/batched.py``)."""

    def __init__(self, strategy: Strategy, client_data: Sequence[ImageSet], threads: int = 1,
                 device: torch.device | None = None):
        super().__init__(1, device or torch.device("cpu"), [len(d) for d in client_data],
                         batched=True)
        self.fits, self.threads = batched_fits(strategy, client_data), threads

    def _send(self, worker: int, jobs: list[FitJob]) -> Callable[[], list[FitResult]]:
        def train() -> list[FitResult]:
            with torch_threads(self.threads):
                return self.fits.run([to_device(job, self.device) for job in jobs])
        return train


class LocalExecutor(_BatchingExecutor):
    """A pool of ``workers`` local processes, ``threads`` torch threads each. The workers
    ignore Ctrl-C and die with the mission process (``fl/lifeline.py``); ``close`` stops
    them at once, and a worker that dies fails the run with ``WorkerLost``, naming it."""

    def __init__(self, strategy: Strategy, client_data: Sequence[ImageSet], workers: int,
                 threads: int = 1, device: torch.device | None = None, batched: bool = False):
        import multiprocessing

        super().__init__(workers, device or torch.device("cpu"),
                         [len(d) for d in client_data], batched)
        # fork where the platform has it (fast) and it is safe: CPU only, one thread per
        # worker (OpenMP's thread pool does not survive a fork); spawn otherwise. Either
        # way the data reaches a worker once, through its initializer.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() \
            and self.device.type == "cpu" and threads == 1 else "spawn"
        self.pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context(method),
            initializer=_init_pool_worker,
            initargs=(os.getpid(), worker_blob(strategy, client_data), str(self.device),
                      threads, batched))
        self._processes: dict = {}  # pid -> multiprocessing.Process, every worker started

    def _send(self, worker: int, jobs: list[FitJob]) -> Callable[[], list[FitResult]]:
        try:  # a worker that died since the last batch has broken the pool already
            future = self.pool.submit(_fit_in_pool, _message(jobs))  # whichever is free
        except BrokenProcessPool:
            raise WorkerLost(self._death()) from None
        self._processes.update(getattr(self.pool, "_processes", None) or {})

        def reply() -> list[FitResult]:
            try:
                return wire.loads(future.result())
            except BrokenProcessPool:
                raise WorkerLost(self._death()) from None
        return reply

    def _death(self) -> str:
        """Which worker died and how: the pool only says that one did. The pool stops the
        others with SIGTERM once it is broken, so a worker killed otherwise is named first.
        The pool's own thread is reaping them meanwhile: their statuses may take a moment."""
        deadline = time.monotonic() + lifeline.STOP_GRACE_S
        while any(p.exitcode is None for p in self._processes.values()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        dead = [(pid, p.exitcode) for pid, p in self._processes.items()
                if p.exitcode not in (None, 0)]
        dead.sort(key=lambda d: d[1] == -signal.SIGTERM)
        if not dead:
            return "a local pool worker died"
        pid, code = dead[0]
        return f"local pool worker (pid {pid}) {lifeline.exit_status(code)}"

    def close(self) -> None:
        """Stop the workers now (idempotent): a fit still running is not needed any more,
        and waiting for it would keep Ctrl-C waiting as long as a round of training."""
        processes = list({**self._processes, **(getattr(self.pool, "_processes", None)
                                                 or {})}.values())
        # read before shutdown, which drops the pool's references to both
        writer = getattr(getattr(self.pool, "_result_queue", None), "_writer", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        lifeline.stop_processes(processes)  # all gone now: SIGKILL for the slow ones
        # a worker stopped while writing its result leaves half a message in the result
        # pipe, and the pool's manager thread waits for the rest forever (the interpreter
        # joins that thread at exit: the run would never end). With the workers gone, this
        # process holds the pipe's last writing end: closing it ends the wait.
        with contextlib.suppress(OSError):
            if writer is not None:
                writer.close()


class RayExecutor(_BatchingExecutor):
    """``workers`` Ray actors, on this machine or on the cluster at ``address``. The
    strategy and the data travel by value through Ray's object store (put once, read by
    each actor when it starts); nothing assumes a shared file system. The cluster's nodes
    need orbitfl installed (or ``runtime_env`` with ``py_modules``)."""

    def __init__(self, strategy: Strategy, client_data: Sequence[ImageSet], workers: int,
                 threads: int = 1, device: torch.device | None = None,
                 address: str | None = None, batched: bool = False):
        try:
            import ray
        except ImportError:
            raise ValueError("the ray backend needs Ray: pip install 'orbitfl[ray]'") from None
        super().__init__(workers, device or torch.device("cpu"),
                         [len(d) for d in client_data], batched)
        self.ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            with lifeline.kept_signal_handlers():
                ray.init(address=address,
                         num_cpus=workers * threads if address is None else None,
                         include_dashboard=False, log_to_driver=False,
                         runtime_env=_plugin_path_env(strategy))
        blob = ray.put(worker_blob(strategy, client_data))
        actor = ray.remote(num_cpus=threads,
                           num_gpus=1.0 / workers if self.device.type == "cuda" else 0)(_Worker)
        # Untyped handles: ray's stubs give an actor the plain methods of its class (no
        # ``.remote``) unless each is decorated with @ray.method.
        self.actors: list[Any] = [actor.remote(blob, str(self.device), threads, batched)
                                  for _ in range(workers)]

    def _send(self, worker: int, jobs: list[FitJob]) -> Callable[[], list[FitResult]]:
        ref = self.actors[worker].fit_batch.remote(_message(jobs))  # any actor will do

        def reply() -> list[FitResult]:
            try:
                return wire.loads(self.ray.get(ref))
            except self.ray.exceptions.RayActorError as err:
                raise WorkerLost(f"Ray actor {worker} of {self.workers} "
                                 f"{_actor_death(err)}") from None
        return reply

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
            self._started_here = False


def import_roots(strategy: Strategy) -> list[str]:
    """The folders the strategy's and its model's own code imports from when it is not
    orbitfl's or torch's (a plugin found on this process's ``sys.path``): Ray's workers
    start without this process's ``sys.path`` and need them to unpickle the strategy."""
    roots = []
    for cls in (*type(strategy).__mro__, *type(strategy.global_model).__mro__):
        name = cls.__module__
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in ("orbitfl", "torch", "builtins", "abc") or not path:
            continue
        depth = name.count(".") + (Path(path).name == "__init__.py")
        root = str(Path(path).resolve().parents[depth])
        if root not in roots:
            roots.append(root)
    return roots


def _plugin_path_env(strategy: Strategy) -> dict | None:
    roots = import_roots(strategy)
    if not roots:
        return None
    path = os.pathsep.join([*roots, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {"env_vars": {"PYTHONPATH": path}}


def _actor_death(err: BaseException) -> str:
    """What Ray says of a dead actor, on one line: its pid and the reason it gives."""
    import re

    text = str(err)
    pid = re.search(r"\bpid: (\d+)", text)
    reasons = [line.strip() for line in text.splitlines() if "because" in line]
    reason = (reasons[-1] if reasons else type(err).__name__)[:160]
    return f"{f'(pid {pid.group(1)}) ' if pid else ''}died: {reason} (out of memory?)"


def make_executor(execution: Execution, strategy: Strategy,
                  client_data: Sequence[ImageSet]) -> Executor:
    """The executor the scenario's ``execution`` section asks for."""
    device = resolve_device(execution.device)
    threads = max(1, int(execution.threads))
    batched = execution.batched
    if batched:  # what cannot be batched is said here, before any worker starts
        try:
            batched_fits(strategy, client_data)
        except ValueError as err:
            raise BatchingError(str(err)) from None
    if execution.backend == "serial":
        if batched:
            return BatchedExecutor(strategy, client_data, threads, device)
        return SerialExecutor(strategy, client_data, threads)
    workers = execution.worker_count()
    if execution.backend == "local":
        return LocalExecutor(strategy, client_data, workers, threads, device, batched)
    return RayExecutor(strategy, client_data, workers, threads, device, execution.address,
                       batched)
