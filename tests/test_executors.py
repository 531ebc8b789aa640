"""Where clients train never changes what a mission computes: the serial executor, a local
process pool of one and of two workers, and Ray actors give identical rounds, clients and
transfers tables (bit-identical numbers), final global weights and clients' states for
FedAvg, top-k FedAvg (error-feedback residuals in the clients' states), SAFE (personal
models, SES, CKA history) and FedBuff; geo-synthetic clients' lazily rendered tiles
(rendered serially into an empty tile cache, read back by a pool's workers) change no bit;
a run stopped after a round and resumed on a process pool equals an uninterrupted
serial run; and batched training (in this process or on a pool) changes no time or byte
and keeps the models within its float32 tolerance of one-by-one training.

Why a completion-order bug cannot pass: each run is tiny (synthetic data, 6 satellites,
2 rounds, 1 epoch, no figures) but every aggregation folds in at least 3 updates (a sum of
two is commutative in floating point, so 2 would hide any order) and round 1 takes them in
a simulated order (client 3 first) other than the order the fits were submitted, which is
the order a FIFO pool tends to finish them in; the tests assert both, so summing in
completion order changes bits of the weights and the compared accuracies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import orbitfl.engine.learning as learning
import orbitfl.engine.runner as runner
from orbitfl.api import load_scenario
from orbitfl.fl.executors import FitJob, _BatchingExecutor

from conftest import SCENARIOS

TABLES = ("rounds", "clients", "transfers")
SMALL = {  # the quickstart, two rounds on tiny synthetic data, >= 3 updates per aggregation
    "duration": "1d", "fl.rounds": 2, "fl.local_epochs": 1, "constellation.select.limit": 6,
    "data.dataset": "synthetic", "data.partition": "dirichlet", "data.classes": 4,
    "data.image_size": 16, "data.samples_per_class_max": 40, "data.imbalance_ratio": 4,
    "data.test_per_class": 10, "data.ses_per_class": 2, "fl.safe.ace_dim": 8,
    "fl.schedule.min_clients": 3, "fl.schedule.deadline": "6h",
}
STRATEGIES = {
    "fedavg": {"fl.strategy": "fedavg"},
    "fedavg-topk": {"fl.strategy": "fedavg", "fl.compression.to_ground": "topk",
                    "fl.compression.topk_ratio": 0.1},
    "safe-topk": {"fl.compression.to_ground": "topk", "fl.compression.topk_ratio": 0.1},
    "fedbuff": {"fl.strategy": "fedbuff", "fl.schedule.mode": "async",
                "fl.fedbuff.buffer_size": 3},
}
EXECUTORS = {
    "serial": {"execution.backend": "serial"},
    "local-1": {"execution.backend": "local", "execution.workers": 1},
    "local-2": {"execution.backend": "local", "execution.workers": 2},
    "ray-2": {"execution.backend": "ray", "execution.workers": 2},
    "serial-batched": {"execution.backend": "serial", "execution.batched": True},
    "local-2-batched": {"execution.backend": "local", "execution.workers": 2,
                        "execution.batched": True},
}


GEO = {  # the quickstart on its own data (geo-synthetic, lazy tiles), tiny: 6 satellites,
    # 16 px, one image every 4 min over 12 h, two rounds, >= 3 updates per aggregation
    "duration": "12h", "fl.rounds": 2, "fl.local_epochs": 1, "constellation.select.limit": 6,
    "data.image_size": 16, "data.acquisition.interval_s": 240, "data.test_per_class": 10,
    "data.ses_per_class": 2, "fl.safe.ace_dim": 8, "fl.schedule.min_clients": 3,
    "fl.schedule.deadline": "3h",
}


def scenario(strategy: str, executor: str):
    base = GEO if strategy == "geo-synthetic" else {**SMALL, **STRATEGIES[strategy]}
    return load_scenario(SCENARIOS / "quickstart.yaml", {**base, **EXECUTORS[executor]})


@pytest.fixture(scope="module")
def ray_started():
    """Ray started once for the module (about 10 s), shut down at its end."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


CLOSED: list[tuple[dict, dict]] = []  # (global weights, clients' states) per closed run


def _recording_close(close):
    """Learning.close that first records the final global model and every client's state
    (waiting for the fits still pending), so runs can be compared beyond their tables."""
    def recorded(self) -> None:
        weights = {k: v.detach().clone() for k, v in self.global_model.state_dict().items()}
        CLOSED.append((weights, self.states.snapshot()))
        close(self)
    return recorded


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(run directory, final weights and states) by (strategy, executor), each run made
    once; no figures (the tables are what is compared)."""
    base = tmp_path_factory.mktemp("executors")
    done: dict[tuple[str, str], tuple[Path, tuple[dict, dict]]] = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(runner, "write_report", lambda *args, **kwargs: None)
    patch.setattr(learning.Learning, "close", _recording_close(learning.Learning.close))

    def get(strategy: str, executor: str) -> tuple[Path, tuple[dict, dict]]:
        if (strategy, executor) not in done:
            out = base / f"{strategy}-{executor}"
            runner.run(scenario(strategy, executor), out)
            done[strategy, executor] = out, CLOSED[-1]
        return done[strategy, executor]

    yield get
    patch.undo()


def same_values(a, b, where: str) -> None:
    """Exact equality of nested states: tensors bit for bit, everything else with ==."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            same_values(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_values(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def same_runs(a: tuple[Path, tuple[dict, dict]], b: tuple[Path, tuple[dict, dict]]) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a[0] / f"{name}.parquet"),
                                      pd.read_parquet(b[0] / f"{name}.parquet"), obj=name,
                                      check_exact=True)
    same_values(a[1][0], b[1][0], "global model")
    same_values(a[1][1], b[1][1], "client states")


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_executor_gives_identical_tables(runs, ray_started, strategy):
    serial = runs(strategy, "serial")
    rounds = pd.read_parquet(serial[0] / "rounds.parquet")
    assert (rounds["received"].iloc[1:] >= 3).all()     # the order of a sum can matter
    assert rounds.accuracy.notna().all()
    if strategy != "fedbuff":  # fedbuff's buffers here hold one client's successive jobs
        # taken in in an order other than the fits' submission (client = job index here)
        assert any(list(c) != sorted(c) for c in rounds["clients"].iloc[1:])
    assert serial[1][0] and serial[1][1]                # weights and states were recorded
    if strategy.endswith("topk"):
        assert all("residual" in s for s in serial[1][1].values())
    for executor in ("local-1", "local-2", "ray-2"):
        same_runs(serial, runs(strategy, executor))


def test_lazy_geo_synthetic_clients_give_identical_tables_serially_and_on_a_pool(
        runs, tmp_path, monkeypatch):
    """Geo-synthetic clients are lazy (labels and a recipe; tiles rendered on first use, in
    whichever process trains the client, and kept in the on-disk tile cache): the serial run
    renders every tile into an empty cache, the pool's workers then read them back, and
    both give the same bits as the recipe (not the order of use, nor the cache) decides."""
    monkeypatch.setenv("ORBITFL_CACHE_DIR", str(tmp_path / "cache"))
    serial = runs("geo-synthetic", "serial")
    assert any((tmp_path / "cache" / "tiles").rglob("*"))   # the serial run wrote tiles
    rounds = pd.read_parquet(serial[0] / "rounds.parquet")
    assert (rounds["received"].iloc[1:] >= 3).all() and rounds.accuracy.notna().all()
    assert serial[1][1] and all("personal" in s for s in serial[1][1].values())   # SAFE
    same_runs(serial, runs("geo-synthetic", "local-2"))


def test_resumed_run_on_a_pool_equals_an_uninterrupted_serial_run(runs, tmp_path,
                                                                  monkeypatch):
    """Stopped after round 1 under local(2) and resumed under local(2): the checkpoint
    carries the clients' states (residuals, personal models) and the updates in flight."""
    full = runs("safe-topk", "serial")
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        assert checkpoint["clients"] and all("residual" in s and "personal" in s
                                             for s in checkpoint["clients"].values())
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "write_report", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    pooled = scenario("safe-topk", "local-2")
    with pytest.raises(KeyboardInterrupt):
        runner.run(pooled, tmp_path / "cut")
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    closed = len(CLOSED)
    runner.run(pooled, tmp_path / "cut", resume=True)
    assert len(CLOSED) == closed + 1                    # the resumed run's own learning
    same_runs(full, (tmp_path / "cut", CLOSED[-1]))


def test_where_clients_train_is_not_part_of_the_scenario_hash():
    """A run started serially may be resumed on a pool: the checkpoint's scenario hash
    leaves the execution section out, and nothing else."""
    base = load_scenario(SCENARIOS / "quickstart.yaml")
    pooled = load_scenario(SCENARIOS / "quickstart.yaml",
                           {"execution.backend": "ray", "execution.workers": 3})
    assert pooled.execution.backend == "ray" and pooled.execution.workers == 3
    assert pooled.content_hash() == base.content_hash()
    assert load_scenario(SCENARIOS / "quickstart.yaml", {"seed": 8}).content_hash() != \
        base.content_hash()


class _Echo(_BatchingExecutor):
    """A batching executor whose 'workers' answer in this process: each result names the
    job it came from and the worker (batch) that ran it."""

    def __init__(self, workers: int, sizes: list[int]):
        super().__init__(workers, torch.device("cpu"), sizes)
        self.messages: list[tuple[int, list[int]]] = []

    def _send(self, worker, jobs):
        self.messages.append((worker, [j.job for j in jobs]))
        return lambda: [(j.job, {"worker": worker}) for j in jobs]


def test_batches_deal_jobs_evenly_and_every_result_reaches_its_own_job():
    """37 equal jobs on 3 workers with 8 jobs a worker per batch: 24 go out as soon as they
    are queued (8 to each worker, dealt in turn), the other 13 when a result is first asked
    for (5/4/4), and each job gets its own result whichever batch carried it."""
    executor = _Echo(3, [40] * 37)
    pending = [executor.submit(FitJob(j, 0, j, [], {})) for j in range(37)]
    assert [len(jobs) for _, jobs in executor.messages] == [8, 8, 8]
    assert executor.messages[0] == (0, list(range(0, 24, 3)))
    assert [p.result()[0] for p in pending] == list(range(37))
    assert [len(jobs) for _, jobs in executor.messages] == [8, 8, 8, 5, 4, 4]
    assert sorted(j for _, jobs in executor.messages for j in jobs) == list(range(37))
    assert {p.result()[1]["worker"] for p in pending[24:]} == {0, 1, 2}


@pytest.mark.parametrize("strategy", ["fedavg", "fedbuff"])
def test_batched_training_is_one_by_one_training_within_its_tolerance(runs, strategy):
    """Batched fits (torch.func.vmap, in this process or on a pool) change no simulated
    time or byte, and the models stay within fl/batched.py's float32 tolerance of training
    the clients one by one."""
    serial = runs(strategy, "serial")
    for executor in ("serial-batched", "local-2-batched"):
        batched = runs(strategy, executor)
        for name in ("clients", "transfers"):
            pd.testing.assert_frame_equal(pd.read_parquet(serial[0] / f"{name}.parquet"),
                                          pd.read_parquet(batched[0] / f"{name}.parquet"),
                                          obj=name, check_exact=True)
        one, many = (pd.read_parquet(r[0] / "rounds.parquet") for r in (serial, batched))
        metrics = [c for c in one.columns if "accuracy" in c or "loss" in c]
        pd.testing.assert_frame_equal(one.drop(columns=metrics), many.drop(columns=metrics),
                                      check_exact=True)
        for key, weights in serial[1][0].items():
            if weights.is_floating_point():
                gap = (weights - batched[1][0][key]).abs().max().item()
                assert gap <= 1e-4, f"{executor}: {key} differs by {gap}"


def test_unequal_clients_are_dealt_largest_first_to_the_least_loaded_worker():
    """The benchmark's ten Dirichlet clients (images per client below) on 2 workers: dealt
    in turn the workers would get 852 and 1188 images (the round waits for 58 % of the
    work); largest first to the least loaded (worked by hand: 334 to 0, 323 and 266 to 1,
    264 to 0, 207 to 1, 165 and 159 to 0, 124 and 106 to 1, 92 to 0) gives 1014 and 1026."""
    sizes = [124, 334, 264, 207, 266, 165, 92, 323, 106, 159]
    executor = _Echo(2, sizes)
    pending = [executor.submit(FitJob(10 + c, 0, c, [], {})) for c in range(10)]
    assert [p.result()[0] for p in pending] == [10 + c for c in range(10)]
    assert executor.messages == [(0, [11, 12, 15, 16, 19]), (1, [10, 13, 14, 17, 18])]
    assert [sum(sizes[j - 10] for j in jobs) for _, jobs in executor.messages] == [1014, 1026]


def test_a_worker_killed_between_batches_is_worker_lost_not_a_broken_pool():
    """A pool worker that dies after one batch and before the next breaks the pool, and the
    next batch's send (not its result) is what finds out: that too must be WorkerLost,
    naming the worker, never concurrent.futures' BrokenProcessPool (a traceback)."""
    import os
    import signal
    import time

    from orbitfl.core.errors import WorkerLost
    from orbitfl.fl.config import Execution
    from orbitfl.fl.datasets import ImageSet
    from orbitfl.fl.executors import make_executor
    from orbitfl.fl.extensions import strategy_named
    from orbitfl.fl.models import build_model
    from orbitfl.fl.strategy import FLConfig

    strategy = strategy_named("fedavg", build_model("small-cnn", 2), FLConfig(rounds=2))
    data = [ImageSet(torch.randn(6, 3, 8, 8), torch.tensor([0, 1] * 3))]
    with make_executor(Execution("local", 1), strategy, data) as executor:
        executor.submit(FitJob(0, 1, 0, strategy.to_client(1, 0), {})).result()
        (pid,) = executor.pool._processes  # the one worker
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not executor.pool._broken and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(WorkerLost, match=rf"local pool worker \(pid {pid}\) was killed "
                                             r"by SIGKILL"):
            executor.submit(FitJob(1, 2, 0, strategy.to_client(2, 0), {})).result()
