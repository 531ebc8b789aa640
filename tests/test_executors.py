"""Where clients train never changes what a mission computes: the serial executor, a local
process pool of one and of two workers, and Ray actors give identical rounds, clients and
transfers tables (bit-identical numbers) for FedAvg, top-k FedAvg (error-feedback
residuals in the clients' states), SAFE (personal models, SES, CKA history) and FedBuff;
and a run stopped after a round and resumed on a process pool equals an uninterrupted
serial run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import orbitfl.runner as runner
from orbitfl.api import load_scenario

from conftest import SCENARIOS

TABLES = ("rounds", "clients", "transfers")
SMALL = {  # the quickstart, two rounds on tiny synthetic data
    "duration": "1d", "fl.rounds": 2, "fl.local_epochs": 1, "constellation.select.limit": 4,
    "data.dataset": "synthetic", "data.partition": "dirichlet", "data.classes": 4,
    "data.image_size": 16, "data.samples_per_class_max": 40, "data.imbalance_ratio": 4,
    "data.test_per_class": 10, "data.ses_per_class": 2, "fl.safe.ace_dim": 8,
    "fl.schedule.min_clients": 2, "fl.schedule.deadline": "4h",
}
STRATEGIES = {
    "fedavg": {"fl.strategy": "fedavg"},
    "fedavg-topk": {"fl.strategy": "fedavg", "fl.compression.to_ground": "topk",
                    "fl.compression.topk_ratio": 0.1},
    "safe-topk": {"fl.compression.to_ground": "topk", "fl.compression.topk_ratio": 0.1},
    "fedbuff": {"fl.strategy": "fedbuff", "fl.schedule.mode": "async",
                "fl.fedbuff.buffer_size": 2},
}
EXECUTORS = {
    "serial": {"execution.backend": "serial"},
    "local-1": {"execution.backend": "local", "execution.workers": 1},
    "local-2": {"execution.backend": "local", "execution.workers": 2},
    "ray-2": {"execution.backend": "ray", "execution.workers": 2},
}


def scenario(strategy: str, executor: str):
    return load_scenario(SCENARIOS / "quickstart.yaml",
                         {**SMALL, **STRATEGIES[strategy], **EXECUTORS[executor]})


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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run directories by (strategy, executor), each made once; no figures (the tables
    are what is compared)."""
    base = tmp_path_factory.mktemp("executors")
    done: dict[tuple[str, str], Path] = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(runner, "write_report", lambda *args, **kwargs: None)

    def get(strategy: str, executor: str) -> Path:
        if (strategy, executor) not in done:
            out = base / f"{strategy}-{executor}"
            runner.run(scenario(strategy, executor), out)
            done[strategy, executor] = out
        return done[strategy, executor]

    yield get
    patch.undo()


def same_tables(a: Path, b: Path) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"),
                                      pd.read_parquet(b / f"{name}.parquet"), obj=name,
                                      check_exact=True)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_executor_gives_identical_tables(runs, ray_started, strategy):
    serial = runs(strategy, "serial")
    rounds = pd.read_parquet(serial / "rounds.parquet")
    assert (rounds["received"].iloc[1:] > 0).all()      # both rounds took updates in
    assert rounds.accuracy.notna().all()
    for executor in ("local-1", "local-2", "ray-2"):
        same_tables(serial, runs(strategy, executor))


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
    runner.run(pooled, tmp_path / "cut", resume=True)
    same_tables(full, tmp_path / "cut")


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
