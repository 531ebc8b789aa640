"""The learning side of a mission, as the simulation sees it: *what* is computed, never
*when* (orbitfl/engine/mission.py decides that).

``Learning`` holds the strategy's server half, the clients' states (``ClientStates``) and
an executor that runs the clients' fits as futures. A job's fit is submitted when the job
starts (in a synchronous round every selected client starts from the same global model,
so they all train at once); its upload is simulated from sizes known in advance
(``Strategy.upload_sizes``); its result is waited for only when the contents are needed:
aggregation, evaluation of personal models, a checkpoint, or the client's next job (which
starts from the state the previous one returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.executors import Executor, FitJob, Pending, SerialExecutor
from orbitfl.fl.payloads import Payload
from orbitfl.fl.strategy import ClientState, ClientUpdate, PayloadSize, Strategy


class _Done(Pending):
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class ClientStates:
    """Each client's memories, beside the client: a state, or the pending fit whose result
    carries the next one. A fit's state counts from the simulated moment its training
    finished (``commit``), not from when a worker happened to compute it."""

    def __init__(self, saved: dict | None = None):
        self._states: dict[int, ClientState | Pending] = \
            {int(c): dict(s) for c, s in (saved or {}).items()}

    def get(self, client: int) -> ClientState:
        value = self._states.get(client, {})
        if isinstance(value, Pending):
            value = self._states[client] = value.result()[1]
        return value

    def commit(self, client: int, fit: Pending) -> None:
        self._states[client] = fit

    def snapshot(self) -> dict[int, ClientState]:
        """Every client's state (waits for pending fits), in client order."""
        return {c: self.get(c) for c in sorted(self._states)}


@dataclass
class FitRecord:
    """A submitted fit and the upload sizes the simulation used for it."""

    client: int
    pending: Pending
    sizes: list[PayloadSize] | None = None


class LearningSide(Protocol):
    """What the mission asks of the learning side, live (:class:`Learning`) or replaying a
    resumed run's past (``orbitfl/engine/replay.py``): the mission never asks which it talks to."""

    @property
    def version(self) -> int:
        """The global model's version (aggregations so far)."""

    def job_flops(self, client: int) -> float:
        """Training FLOPs of one job of ``client`` (what its onboard computer works off)."""

    def broadcast(self, job: int, round_index: int, client: int) -> list[Payload]:
        """What the server sends the client now; its fit is submitted at once."""

    def trained(self, job: int) -> list[PayloadSize]:
        """The job trained in simulated time: the sizes of its upload."""

    def dropped(self, job: int) -> None:
        """The job's update arrived too late to be used."""

    def aggregate(self, round_index: int, jobs: Sequence[int]) -> list[ClientUpdate]:
        """Fold the jobs' updates in, in the simulation's order."""

    def saved_record(self, index: int) -> dict | None:
        """A replayed round's saved record (None: measure it)."""

    def personal_models(self) -> dict[int, dict]:
        """Clients' personal models, for evaluation."""

    def round_done(self, round_index: int, rounds: list[dict],
                   jobs: dict[int, tuple[int, int]]) -> LearningSide:
        """After a round: the learning side to go on with."""

    def close(self) -> None:
        """Release the executor."""


class Learning:
    """Strategy (server half) + client states + an executor (client halves)."""

    def __init__(self, strategy: Strategy, client_data: Sequence[ImageSet],
                 executor: Executor | None = None,
                 checkpointer: Callable[[dict], None] | None = None,
                 flops: Sequence[float] = ()):
        """``flops``: training FLOPs of one job of each client (``assemble``)."""
        self.strategy, self.client_data = strategy, client_data
        self.flops = list(flops)
        self.executor = executor or SerialExecutor(strategy, client_data)
        self.states = ClientStates()
        self.checkpointer = checkpointer
        self._running: dict[int, FitRecord] = {}   # job -> fit, training not finished
        self._received: dict[int, list[Payload]] = {}
        self._trained: dict[int, FitRecord] = {}   # job -> fit, trained, not taken in

    @property
    def version(self) -> int:
        return self.strategy.version

    @property
    def global_model(self):
        return self.strategy.global_model

    def job_flops(self, client: int) -> float:
        return self.flops[client]

    # -- a client job ---------------------------------------------------------------------
    def broadcast(self, job: int, round_index: int, client: int) -> list[Payload]:
        """What the server sends the client now; the fit is submitted at once."""
        received = self.strategy.to_client(round_index, client)
        self._submit(job, round_index, client, received)
        return received

    def _submit(self, job: int, round_index: int, client: int,
                received: list[Payload]) -> None:
        self._received[job] = received
        fit = FitJob(job, round_index, client, received, self.states.get(client))
        self._running[job] = FitRecord(client, self.executor.submit(fit))

    def trained(self, job: int) -> list[PayloadSize]:
        """The job's training finished in simulated time: its client's state moves on,
        and its upload's sizes (known before the fit has finished) are returned."""
        record = self._running.pop(job)
        self._received.pop(job, None)
        self.states.commit(record.client, record.pending)
        record.sizes = self.strategy.upload_sizes(record.client)
        self._trained[job] = record
        return record.sizes

    def dropped(self, job: int) -> None:
        """The update arrived too late to be used (its client's state still moved on)."""
        self._trained.pop(job, None)

    def take(self, job: int) -> ClientUpdate:
        """The update's contents, needed now (aggregation): waits for the fit and checks
        that it uploaded exactly what the simulation sent."""
        record = self._trained.pop(job)
        update = record.pending.result()[0]
        real = [PayloadSize.of(p) for p in update.payloads]
        if record.sizes is not None and real != record.sizes:
            raise RuntimeError(f"job {job}: the fit uploaded {real} but the simulation sent "
                               f"{record.sizes} (Strategy.upload_sizes is wrong)")
        return update

    def aggregate(self, round_index: int, jobs: Sequence[int]) -> list[ClientUpdate]:
        """Fold the updates of ``jobs`` in, in the simulation's order (never the order the
        workers finished in)."""
        updates = [self.take(job) for job in jobs]
        if updates:
            self.strategy.aggregate(round_index, updates)
        return updates

    def personal_models(self) -> dict[int, dict]:
        """Clients' personal models (waits for the fits that made them; none to wait for
        when the strategy keeps no personal model)."""
        if not self.strategy.keeps_personal_models:
            return {}
        out = {}
        for client, state in self.states.snapshot().items():
            personal = self.strategy.personal_model(state)
            if personal is not None:
                out[client] = personal
        return out

    # -- checkpoints ----------------------------------------------------------------------
    def saved_record(self, index: int) -> dict | None:
        """A replay's saved round record; a live run measures its own."""
        return None

    def round_done(self, round_index: int, rounds: list[dict],
                   jobs: dict[int, tuple[int, int]]) -> LearningSide:
        """Checkpoint after a round; the learning to go on with (this one)."""
        if self.checkpointer is not None:
            self.checkpointer(self.checkpoint(round_index, rounds))
        return self

    def checkpoint(self, round_index: int, rounds: list[dict]) -> dict:
        return {
            "round": round_index, "strategy": self.strategy.state_dict(), "rounds": rounds,
            "clients": self.states.snapshot(),
            "received": {job: [encode_payload(p) for p in payloads]
                         for job, payloads in self._received.items()},
            "undelivered": {job: encode_update(record.pending.result()[0])
                            for job, record in self._trained.items()},
        }

    def restore(self, saved: dict, jobs: dict[int, tuple[int, int]]) -> None:
        """Continue from a checkpoint: server state, clients' states, the fits of jobs that
        had trained but not been taken in, and fits for the jobs that were still running
        (``jobs``: job -> (round, client)), submitted again with what they had received."""
        self.strategy.load_state_dict(saved["strategy"])
        self.states = ClientStates(saved.get("clients", {}))
        for job, update in saved["undelivered"].items():
            update = decode_update(update)
            self._trained[int(job)] = FitRecord(update.client_id, _Done((update, None)),
                                                self.strategy.upload_sizes(update.client_id))
        for job, payloads in saved["received"].items():
            round_index, client = jobs[int(job)]
            self._submit(int(job), round_index, client, [decode_payload(p) for p in payloads])

    def close(self) -> None:
        self.executor.close()


def encode_payload(payload: Payload) -> dict:
    return {"kind": payload.kind, "tensors": dict(payload.tensors), "nbytes": payload.nbytes,
            "raw_nbytes": payload.raw_nbytes}


def decode_payload(saved: dict) -> Payload:
    return Payload(saved["kind"], saved["tensors"], int(saved["nbytes"]),
                   int(saved["raw_nbytes"]))


def encode_update(update: ClientUpdate) -> dict:
    return {"client_id": update.client_id, "round_index": update.round_index,
            "num_samples": update.num_samples, "train_loss": update.train_loss,
            "base_version": update.base_version,
            "payloads": [encode_payload(p) for p in update.payloads],
            "diagnostics": dict(update.diagnostics)}


def decode_update(saved: dict) -> ClientUpdate:
    return ClientUpdate(int(saved["client_id"]), int(saved["round_index"]),
                        int(saved["num_samples"]), [decode_payload(p) for p in saved["payloads"]],
                        float(saved["train_loss"]), int(saved["base_version"]),
                        dict(saved.get("diagnostics", {})))
