"""Reads a scenario and wires the physical and learned worlds into one run directory."""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import simpy
import torch

from orbitfl import __version__
from orbitfl.analysis.report import write_report
from orbitfl.core.code_identity import code_sha256
from orbitfl.core.errors import InputError
from orbitfl.core.progress import NO_BARS, Bars, Score
from orbitfl.engine import tables
from orbitfl.engine.assemble import Assembly, assemble
from orbitfl.engine.checkpoint_check import check_checkpoint, retry_advice
from orbitfl.engine.mission import Mission, MissionHooks, RoundRecord, Schedule
from orbitfl.engine.plan_report import antenna_load, warn_over_antennas
from orbitfl.engine.prepare import Prepared, prepare
from orbitfl.engine.ray_address import check_address
from orbitfl.engine.replay import CheckpointMismatch
from orbitfl.engine.targets import time_to_target
from orbitfl.fl.executors import torch_threads
from orbitfl.fl.federation import FederatedData
from orbitfl.fl.metrics import imbalance_factor
from orbitfl.fl.safe import Safe
from orbitfl.rundir.writer import (
    StagedRunDirectory,
    atomic_save,
    safe_path_component,
    write_manifest,
    write_table,
)
from orbitfl.scenario import IN_MEMORY, Scenario


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
    air_bytes: float
    wall_time_s: float  # the whole run, every process of a resumed one: preparation,
    # mission, tables and report
    prepare_s: float = 0.0  # this process: validation, contact plan, data and models
    mission_s: float = 0.0  # this process: the mission's rounds, training, evaluation
    report_s: float = 0.0  # figures and dashboard.html (0 without report.figures)
    resumed_after_round: int | None = None  # the checkpoint's round; None: one process
    initial_miou: float | None = None  # segmentation (its accuracy counts pixels); else None
    final_miou: float | None = None


def default_run_dir(scenario: Scenario) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{safe_path_component(scenario.name)}-{stamp}"


def run(path: str | Path | Scenario, out: Path | None = None, resume: bool = False,
        overrides: Sequence[tuple[str, Any]] = (), progress: Bars | None = None) -> RunSummary:
    """Validate, simulate and write the run directory (whole, or not at all). With
    ``resume``, continue the run that stopped early into ``out`` from its last checkpoint.
    Status lines go to this module's logger; ``progress`` draws the stages' bars."""
    bars = progress or NO_BARS
    started = time.perf_counter()
    prepared = prepare(path, overrides)
    scenario = prepared.scenario
    if scenario.execution.backend == "ray":  # seconds now, not minutes after the world
        check_address(scenario.execution.address, f"{prepared.path}: execution.address")
    prepared.log_warnings()
    if resume and out is None:
        raise InputError("--resume needs the run directory of the run to continue")
    target = Path(out) if out is not None else default_run_dir(scenario)
    stage = StagedRunDirectory(target, resume)
    with stage as staging, bars:
        checkpoint = _load_checkpoint(stage.checkpoint, scenario) if resume else None
        parts = assemble(prepared, progress=bars)
        warn_over_antennas(antenna_load(parts.world)[1],
                           "'orbitfl contacts --report' for the contact plan's antenna load")
        prepared_at = time.perf_counter()
        if checkpoint is not None:  # its contents against the model being resumed
            check_checkpoint(checkpoint, parts.strategy.state_dict(), len(parts.data.clients),
                             stage.checkpoint)
            logger.info(f"resuming after round {checkpoint['round']}: replaying the timeline")
        advance = bars.task("rounds")
        clock = RoundClock(started, checkpoint.get("wall_time_s", []) if checkpoint else [])
        hooks = MissionHooks(on_round=_round_done(clock, advance))
        mission = parts.mission(simpy.Environment(), hooks, resume=checkpoint,
                                checkpointer=lambda c: _save_checkpoint(
                                    {**c, "wall_time_s": clock.times}, stage.checkpoint,
                                    scenario))
        rounds = _fly(mission, scenario, stage.checkpoint)
        mission_s = time.perf_counter() - prepared_at
        transfers, round_table = _write_tables(staging, parts, mission)
        final, first = rounds[-1], rounds[0]
        completed = rounds_completed(rounds)
        if completed == 0:
            logger.info(f"no round completed: {_no_round_reason(len(parts.world.plan.windows))}")
        summary = RunSummary(target, len(prepared.fleet), len(parts.world.plan.windows),
                             completed, mission.schedule.rounds, final.closed_s, final.accuracy,
                             first.accuracy, final.bytes_up, final.bytes_down,
                             mission.network.air_bytes, clock.elapsed(),
                             prepared_at - started, mission_s,
                             resumed_after_round=checkpoint["round"] if checkpoint else None,
                             initial_miou=_finite_or_none(first.miou),
                             final_miou=_finite_or_none(final.miou))
        learned = _learned(parts.data, round_table, clock.times, final,
                           parts.schedule.target_metric)
        write_manifest(staging / "manifest.json", manifest(prepared, summary, learned))
        if scenario.report.figures:
            summary = _report(staging, bars, prepared, summary, learned, clock)
    return summary


def _round_done(clock: RoundClock,
                advance: Callable[[int, int], None]) -> Callable[[RoundRecord, Schedule], None]:
    """After each round: its wall time, its status line, the rounds bar."""
    def done(record: RoundRecord, schedule: Schedule) -> None:
        clock.tick()
        _print_round(record, schedule)
        advance(record.round, schedule.rounds)
    return done


def _fly(mission: Mission, scenario: Scenario, checkpoint: Path) -> list[RoundRecord]:
    """Run the mission; the mission's own torch work (aggregation, evaluation) with the
    fits' thread count in every backend: results do not depend on the backend, and a
    pool's workers are not crowded out by this process's idle OpenMP threads."""
    with torch_threads(scenario.execution.threads):
        try:
            return mission.run()
        except CheckpointMismatch as err:  # what the checks before could not see
            raise InputError(f"{checkpoint}: damaged checkpoint ({err}); "
                             f"{retry_advice(checkpoint)}") from None


def _write_tables(staging: Path, parts: Assembly,
                  mission: Mission) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's tables from the flown mission; the transfers and rounds tables back."""
    world, onboard, now = parts.world, mission.onboard, mission.env.now
    for battery in onboard.batteries:
        battery.advance(now)
    world.events.extend([e for e in world.contact_events() if e["t_s"] <= now])
    write_table(staging / "contacts.parquet", world.contacts_table())
    transfers = tables.transfers(mission.network, set(world.faults.failed_at))
    write_table(staging / "transfers.parquet", transfers)
    round_table = tables.rounds(mission.rounds, transfers)
    write_table(staging / "rounds.parquet", round_table)
    write_table(staging / "clients.parquet", tables.client_rounds(mission.client_rounds))
    write_table(staging / "partition.parquet",
                tables.partition(parts.data, world.satellite_names))
    write_table(staging / "power.parquet", tables.power(onboard))
    write_table(staging / "events.parquet", world.events.frame())
    write_table(staging / "tracks.parquet", world.ground_track_table())
    write_table(staging / "stations.parquet", world.stations_table())
    if isinstance(parts.strategy, Safe):
        write_table(staging / "safe_diagnostics.parquet",
                    tables.safe_diagnostics(parts.strategy.evaluation_log))
    return transfers, round_table


def _learned(data: FederatedData, round_table: pd.DataFrame, times: list[float],
             final: RoundRecord, metric: str) -> dict:
    """The manifest's account of the learning: time to target (in ``metric``), the
    training set's class counts and imbalance, the validation set and its final
    accuracies."""
    counts = data.train_class_counts()
    return {"time_to_target": time_to_target(round_table, times, metric=metric),
            "time_to_target_metric": metric,
            "train_class_counts": counts.tolist(),
            "class_names": list(data.class_names),
            # null when a class has no training sample at all
            "train_imbalance_factor": _finite_or_none(imbalance_factor(counts)),
            "validation_images": 0 if data.validation is None else len(data.validation),
            "final_val_accuracy": _finite_or_none(final.val_accuracy),
            "final_val_balanced_accuracy": _finite_or_none(final.val_balanced_accuracy)}


def _report(staging: Path, bars: Bars, prepared: Prepared, summary: RunSummary,
            learned: dict, clock: RoundClock) -> RunSummary:
    """Figures and the dashboard; the manifest is written again with the drawing's time
    counted (the report read the first one)."""
    drawn = time.perf_counter()
    write_report([staging], staging / "figures", dashboard=staging / "dashboard.html",
                 progress=bars.task("report"))
    summary = replace(summary, report_s=time.perf_counter() - drawn,
                      wall_time_s=clock.elapsed())
    write_manifest(staging / "manifest.json", manifest(prepared, summary, learned))
    return summary


logger = logging.getLogger(__name__)


def rounds_completed(rounds: list[RoundRecord]) -> int:
    """Rounds whose aggregation took in at least one update: a round that closed empty (at
    its deadline or the horizon) left the model as it was and is not a completed round."""
    return sum(1 for r in rounds if r.round > 0 and r.received > 0)


def _no_round_reason(contacts: int) -> str:
    if contacts == 0:
        return ("no contact window in the scenario's horizon (no satellite is ever in view "
                "of a station), so no payload could cross")
    return "no update reached the ground before the round deadlines and the horizon"


def _save_checkpoint(checkpoint: dict, path: Path, scenario: Scenario) -> None:
    document = _plain({"scenario_sha256": scenario.content_hash(),
                       "code_sha256": code_sha256(), **checkpoint})
    atomic_save(document, path, torch.save)


def _plain(value):
    """Tensors and built-in Python values only (numpy scalars and arrays converted), as
    ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


CHECKPOINT_FIELDS = {"scenario_sha256": str, "code_sha256": str, "round": int,
                     "strategy": dict, "rounds": list, "clients": dict, "received": dict,
                     "undelivered": dict}


def _load_checkpoint(path: Path, scenario: Scenario) -> dict:
    """Checkpoints hold tensors and plain values only: loaded with weights_only=True. A
    damaged or foreign file is one line before any simulation, naming what to delete."""
    retry = retry_advice(path)
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as err:  # torch raises many kinds for truncated or foreign bytes
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        raise InputError(f"{path}: damaged checkpoint ({reason}); {retry}") from None
    wrong = [key for key, kind in CHECKPOINT_FIELDS.items()
             if not isinstance(saved, dict) or not isinstance(saved.get(key), kind)]
    if wrong:
        raise InputError(f"{path}: damaged checkpoint (missing or wrong {', '.join(wrong)}); "
                         f"{retry}")
    if saved["scenario_sha256"] != scenario.content_hash():
        raise InputError(f"{path}: the checkpoint belongs to a different scenario (or a "
                         "changed copy of it); resume with the scenario file that started it")
    if saved["code_sha256"] != code_sha256():
        raise InputError(f"{path}: the checkpoint was written by other orbitfl code (code "
                         f"{saved['code_sha256'][:12]}, this is {code_sha256()[:12]}); its "
                         f"rounds would mix two programs' results); {retry}")
    return saved


def _print_round(record: RoundRecord, schedule: Schedule) -> None:
    """The round's status line; its test score a ``Score`` argument, which a blind sweep's
    point log withholds."""
    if record.round == 0:
        logger.info("round  0/%d  initial model  %s", schedule.rounds, _score(record))
        return
    logger.info("round %2d/%d  t=+%6.2f h  updates %d/%d  %s  up %7.2f MB  down %7.2f MB",
                record.round, schedule.rounds, record.closed_s / 3600, record.received,
                record.selected, _score(record), record.bytes_up / 1e6, record.bytes_down / 1e6)


def _score(record: RoundRecord) -> Score:
    """Accuracy, and mIoU beside it for segmentation (whose accuracy counts pixels, most
    of them background)."""
    miou = f"  mIoU {record.miou:.3f}" if np.isfinite(record.miou) else ""
    return Score(f"acc {record.accuracy:.3f}{miou}")


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


class RoundClock:
    """Wall-clock seconds at which each round was recorded. A resumed run takes the saved
    times of the rounds it replays and counts on from the last of them (the time the run
    stood still is not counted)."""

    def __init__(self, started: float, saved: list[float]):
        self.started, self.saved = started, [float(t) for t in saved]
        self.times: list[float] = []

    def tick(self) -> None:
        if len(self.times) < len(self.saved):
            self.times.append(self.saved[len(self.times)])
            return
        self.times.append(self.elapsed())

    def elapsed(self) -> float:
        """The run's wall time so far: the earlier processes' up to the checkpoint, then
        this one's (a resumed run's manifest would otherwise hold its last process only,
        shorter than its own times to target)."""
        return (self.saved[-1] if self.saved else 0.0) + time.perf_counter() - self.started


def manifest(prepared: Prepared, summary: RunSummary, learned: dict) -> dict:
    scenario = prepared.scenario
    packages: dict[str, str | None] = {}
    for name in ("numpy", "pandas", "torch", "sgp4", "skyfield", "simpy", "pydantic"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "status": "complete",
        "orbitfl_version": __version__,
        "code_sha256": code_sha256(),
        "python": platform.python_version(),
        "packages": packages,
        "scenario_file": None if prepared.path == IN_MEMORY else str(prepared.path.resolve()),
        "scenario": scenario.model_dump(mode="json"),
        "scenario_sha256": scenario.content_hash(),
        "plugins": scenario.plugin_versions(),
        "tle_sha256": scenario.tle_sha256(),
        "seed": scenario.seed,
        "satellites": [{"name": e.name, "norad_id": e.catalog_number} for e in prepared.fleet],
        "summary": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(summary).items()},
        **learned,
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
