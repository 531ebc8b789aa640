"""Reads a scenario and wires the physical and learned worlds into one run directory."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import simpy
import torch

from orbitfl import __version__
from orbitfl.analysis.figures import accuracy_vs_bytes
from orbitfl.constellation.network import Network
from orbitfl.fl.datasets import synthetic_federation
from orbitfl.fl.fedavg import STRATEGIES
from orbitfl.fl.models import build_model
from orbitfl.fl.training import TrainConfig, default_device
from orbitfl.mission import RoundRecord, SyncMission, SyncSchedule
from orbitfl.prepare import Prepared, prepare
from orbitfl.rundir import StagedRunDirectory, write_json, write_table
from orbitfl.scenario import Scenario, file_sha256
from orbitfl.world import build_world


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    satellites: int
    contacts: int
    rounds_completed: int
    rounds_planned: int
    sim_time_s: float
    final_accuracy: float
    initial_accuracy: float
    bytes_up: int
    bytes_down: int
    wall_time_s: float


def default_run_dir(scenario: Scenario) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{scenario.name}-{stamp}"


def run(path: str | Path, out: Path | None = None, log: TextIO = sys.stderr) -> RunSummary:
    """Validate, simulate and write the run directory (whole, or not at all)."""
    started = time.perf_counter()
    prepared = prepare(path)
    scenario = prepared.scenario
    for warning in prepared.warnings:
        print(f"warning: {warning}", file=log)
    target = Path(out) if out is not None else default_run_dir(scenario)
    with StagedRunDirectory(target) as staging:
        data_seed, model_seed = np.random.SeedSequence(scenario.seed).generate_state(2)
        world = build_world(prepared, log)

        d = scenario.data
        data = synthetic_federation(
            d.classes, d.image_size, d.samples_per_class_max, d.imbalance_ratio,
            d.test_per_class, len(prepared.fleet), d.partition, d.dirichlet_alpha,
            d.min_per_client, np.random.default_rng(data_seed))
        torch.manual_seed(int(model_seed))
        model = build_model(scenario.model.name, d.classes).to(default_device())
        train = TrainConfig(epochs=scenario.fl.local_epochs, batch_size=scenario.fl.batch_size,
                            lr=scenario.fl.lr)
        strategy = STRATEGIES[scenario.fl.strategy](model, train, scenario.seed)

        env = simpy.Environment()
        network = world.network(env)
        names = world.satellite_names
        schedule = SyncSchedule(scenario.fl.rounds, scenario.fl.schedule.deadline,
                                scenario.fl.schedule.min_clients,
                                scenario.onboard.training_duration, scenario.duration)
        mission = SyncMission(env, network, strategy, data.clients, data.test, d.classes,
                              schedule, on_round=lambda r, s: _print_round(r, s, log))
        rounds = mission.run()

        write_table(staging / "contacts.parquet", world.contacts_table())
        write_table(staging / "transfers.parquet", transfers_table(network))
        write_table(staging / "rounds.parquet", rounds_table(rounds))
        write_table(staging / "clients.parquet", pd.DataFrame(
            data.client_histograms(), index=pd.Index(names, name="satellite"),
            columns=[f"class_{c}" for c in range(d.classes)]).reset_index())
        accuracy_vs_bytes(staging, staging / "figures" / "accuracy_vs_bytes.png")
        final, first = rounds[-1], rounds[0]
        summary = RunSummary(target, len(prepared.fleet), len(world.plan.windows), final.round,
                             scenario.fl.rounds, final.closed_s, final.accuracy, first.accuracy,
                             final.bytes_up, final.bytes_down,
                             time.perf_counter() - started)
        write_json(staging / "manifest.json", manifest(prepared, summary))
    return summary


def _print_round(record: RoundRecord, schedule: SyncSchedule, log: TextIO) -> None:
    if record.round == 0:
        log.write(f"round  0/{schedule.rounds}  initial model  acc {record.accuracy:.3f}\n")
        return
    log.write(f"round {record.round:2d}/{schedule.rounds}  t=+{record.closed_s / 3600:6.2f} h  "
              f"updates {record.received}/{record.selected}  acc {record.accuracy:.3f}  "
              f"up {record.bytes_up / 1e6:7.2f} MB  down {record.bytes_down / 1e6:7.2f} MB\n")
    log.flush()


def transfers_table(network: Network) -> pd.DataFrame:
    rows = []
    for t in network.records:
        rows.append({"transfer_id": t.transfer_id, "kind": t.kind, "bytes": t.nbytes,
                     "src": t.src, "dst": t.dst, "requested_s": t.requested_s,
                     "start_s": t.start_s, "end_s": t.end_s, "passes_used": t.passes_used,
                     "bytes_per_pass": t.bytes_per_pass,
                     "stations": [seg.station for seg in t.segments],
                     "retransmitted_bytes": t.retransmitted_bytes, "status": t.status,
                     "round": t.tag.get("round"), "client": t.tag.get("client"),
                     "late": t.tag.get("late")})
    return pd.DataFrame(rows)


def rounds_table(rounds: list[RoundRecord]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(r) for r in rounds])
    return frame.rename(columns={"closed_s": "sim_time_s"})


def manifest(prepared: Prepared, summary: RunSummary) -> dict:
    scenario = prepared.scenario
    packages = {}
    for name in ("numpy", "pandas", "torch", "sgp4", "skyfield", "simpy", "pydantic"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "status": "complete",
        "orbitfl_version": __version__,
        "python": platform.python_version(),
        "packages": packages,
        "scenario_file": str(prepared.path.resolve()),
        "scenario": scenario.model_dump(mode="json"),
        "scenario_sha256": scenario.content_hash(),
        "tle_sha256": file_sha256(scenario.constellation.tle),
        "seed": scenario.seed,
        "satellites": [{"name": e.name, "norad_id": e.catalog_number} for e in prepared.fleet],
        "summary": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(summary).items()},
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
