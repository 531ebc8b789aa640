"""``orbitfl sweep``: one base scenario expanded over a grid (or zip) of values at YAML paths,
every point an independent seeded run, results in ``sweep.parquet`` and a Pareto figure.

Sweep file::

    base: imbalance-base.yaml          # relative to the sweep file
    mode: grid                         # or zip (all lists the same length)
    parameters:
      fl.strategy: [fedavg, safe]
      data.imbalance_ratio: [10, 100]
      seed: [1, 2, 3]

or, instead of sweeping ``seed``, ``replicates: 5`` (replicate 0 keeps the point's seed, the
others derive theirs from it) or ``seeds: [1, 2, 3]``: each group of swept values then runs
once per seed, as points ``<name>-<ii>-r<k>`` (``orbitfl/sweeps/replicates.py`` has the rule).
``sweep.parquet`` holds one row per run with its ``group``, ``replicate`` and ``seed``;
``sweep_summary.parquet`` the mean, interval and Kaplan-Meier time to target per group.

Each point is the base scenario with its values applied (``Scenario.with_overrides``),
validated once here; a point's validated scenario is handed to its worker as JSON
(``<out>/points/<name>.json``, beside its log). Points run one process per point,
``--workers`` at a time (default), or by Ray (``--backend ray``, a local instance or
``--address``). A point whose run directory is complete for the same scenario
hash is not run again; a point stopped early (Ctrl-C, a crash) resumes from its checkpoint;
an invalid point, a failing point or a point whose worker dies is reported and the others
go on. Ctrl-C stops the whole sweep and writes ``sweep.parquet`` (and the summary) for
what finished.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd

from orbitfl.core.atomic import atomic_write_text
from orbitfl.core.code_identity import code_sha256
from orbitfl.core.errors import InputError, read_user_file, short
from orbitfl.core.limits import MAX_SCENARIO_BYTES, workers_problem
from orbitfl.core.progress import LOGGER, NO_BARS, Bars, plain_handler
from orbitfl.core.user_json import read_json_file
from orbitfl.engine.ray_address import check_address
from orbitfl.engine.targets import THRESHOLDS, flat_columns
from orbitfl.fl.lifeline import die_with_parent, exit_status, kept_signal_handlers
from orbitfl.rundir.columns import expand as expand_columns
from orbitfl.rundir.reader import read_manifest, read_table
from orbitfl.rundir.writer import (
    StagedRunDirectory,
    check_output_dir,
    safe_path_component,
    write_table,
)
from orbitfl.scenario import Scenario, load_scenario, scenario_from_mapping
from orbitfl.scenario.strict_yaml import load_yaml
from orbitfl.sweeps.replicates import (
    Replicates,
    check_point_count,
    group_key,
    read_replicates,
    yaml_line,
)

SWEEP_KEYS = {"base", "mode", "parameters", "name", "replicates", "seeds"}
STOP_GRACE_S = 30.0  # how long stopped workers get to save their state before SIGKILL
POLL_S = 0.1
BLIND, SCORED = "blind", "scored"  # a local worker's last argument: withhold scores or not
# named, not ``__name__``: a local worker runs this module as ``__main__``, whose logger is
# outside the package's, so its lines (a failed point's traceback) would miss the point's log
logger = logging.getLogger("orbitfl.sweeps.runner")


@dataclasses.dataclass(frozen=True)
class Point:
    index: int
    name: str
    values: dict[str, Any]
    scenario_file: Path  # the point's validated scenario as JSON, for its worker
    run_dir: Path
    error: str | None = None  # why the point's scenario is invalid (it is not run)
    scenario: Scenario | None = None  # None when invalid
    replicate: int = 0  # its index among the runs of its group
    seed: int | None = None  # the seed it runs with (None: an invalid swept seed)

    @property
    def group(self) -> str:
        """The group of runs this point replicates: its swept values but the seed."""
        return group_key(self.values)

    @property
    def log_file(self) -> Path:
        """The point's run log, kept beside its scenario file across re-runs."""
        return self.scenario_file.with_suffix(".log")


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A sweep, read and checked: from a sweep file or from ``orbitfl.api.sweep``."""

    base: Scenario  # with the ``--set`` overrides
    parameters: dict[str, list]
    mode: str
    name: str  # a safe path component
    replicates: Replicates
    runs: int  # groups x replicates
    where: str  # what error lines name: the sweep file
    folder: Path  # what relative paths in swept values are relative to


def load_sweep(path: Path, overrides: Sequence[tuple[str, Any]] = ()) -> SweepSpec:
    """The sweep file at ``path``, its base scenario with the ``--set`` ``overrides``;
    one-line errors, and its runs counted before any is built."""
    path = Path(path)
    # the scenario's strict reader: size cap, duplicate keys, alias bombs, one-line errors
    document = load_yaml(read_user_file(path, "sweep file", MAX_SCENARIO_BYTES), path)
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a mapping with base, mode and parameters")
    unknown = set(document) - SWEEP_KEYS
    if unknown:
        raise InputError(f"{path}: unknown key {sorted(unknown)[0]!r}; allowed: "
                         f"{', '.join(sorted(SWEEP_KEYS))}")
    if "base" not in document or "parameters" not in document:
        raise InputError(f"{path}: a sweep needs 'base' and 'parameters'")
    base_path = (path.parent / str(document["base"])).resolve()
    base = load_scenario(base_path, overrides)  # the base must be valid on its own
    return sweep_spec(base, document, str(path), path.parent, path.stem)


def sweep_spec(base: Scenario, document: dict, where: str, folder: Path,
               default_name: str) -> SweepSpec:
    """A sweep's ``parameters``, ``mode``, ``name``, ``replicates`` and ``seeds`` (keys of
    ``document``) over ``base``, checked, with one-line errors prefixed by ``where``; its
    runs are counted before any is built."""
    if not base.learns:
        raise InputError(f"{where}: base: the scenario has no fl: section; every point of a "
                         "sweep is a run, which needs one")
    parameters = document["parameters"]
    if not isinstance(parameters, dict) or not parameters:
        raise InputError(f"{where}: parameters: expected a mapping of YAML paths to lists")
    for key, values in parameters.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: parameters.{key}: expected a non-empty list")
    mode = document.get("mode", "grid")
    if mode not in ("grid", "zip"):
        raise InputError(f"{where}: mode: expected grid or zip, got {short(mode)}")
    if mode == "zip" and len({len(v) for v in parameters.values()}) > 1:
        raise InputError(f"{where}: parameters: zip mode needs lists of equal length")
    replicates = read_replicates(document, where, parameters)
    runs = check_point_count(parameters, mode, replicates, where)
    # the name becomes file names: one safe path component, whatever the user wrote
    name = safe_path_component(str(document.get("name", default_name)))
    return SweepSpec(base, parameters, mode, name, replicates, runs, where, folder)


def _absolute_paths(values: dict[str, Any], sweep_dir: Path) -> dict[str, Any]:
    """A swept file path (``constellation.tle: x.tle``, or inside a swept section) is
    relative to the sweep file: made absolute here (paths already absolute stay)."""
    out = copy.deepcopy(values)
    for section, key in (("constellation", "tle"), ("data", "path")):
        if isinstance(out.get(f"{section}.{key}"), str):
            out[f"{section}.{key}"] = str((sweep_dir / out[f"{section}.{key}"]).resolve())
        node = out.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = str((sweep_dir / node[key]).resolve())
    return out


def expand(base: dict, parameters: dict[str, list], mode: str) -> list[dict[str, Any]]:
    keys = list(parameters)
    combos = itertools.product(*parameters.values()) if mode == "grid" \
        else zip(*parameters.values())
    return [dict(zip(keys, combo)) for combo in combos]


def plan_points(sweep_file: Path, out: Path,
                overrides: Sequence[tuple[str, Any]] = ()) -> tuple[list[Point], str]:
    """Every point of a sweep file (see ``plan``) and the sweep's name."""
    spec = load_sweep(Path(sweep_file), overrides)
    return plan(spec, out), spec.name


def plan(spec: SweepSpec, out: Path) -> list[Point]:
    """Every point: the base with its values (and its replicate's seed) applied and
    validated (each point's scenario written as JSON under ``out/points`` for its worker).
    A point that is not a valid scenario carries its one-line error instead of stopping
    the sweep; paths in the swept values are relative to ``spec.folder``."""
    points: list[Point] = []
    runs_of: dict[str, int] = {}  # group -> runs planned so far (the next replicate index)
    for i, values in enumerate(expand({}, spec.parameters, spec.mode)):
        absolute = _absolute_paths(values, spec.folder)
        seeds = spec.replicates.seeds_for(_point_seed(values, spec.base))
        for k, seed in enumerate(seeds):
            point_name = f"{spec.name}-{i:03d}" + (f"-r{k}" if len(seeds) > 1 else "")
            changes = {**absolute, "name": point_name}
            if spec.replicates.given:
                changes["seed"] = seed
            scenario_file = out / "points" / f"{point_name}.json"
            try:
                scenario, error = spec.base.with_overrides(changes), None
            except InputError as err:
                which = f" replicate {k} (seed {seed})" if len(seeds) > 1 else ""
                scenario, error = None, f"{spec.where}: point {i}{which} {values}: {err}"
            if scenario is not None:
                scenario_file.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(scenario_file,
                                  json.dumps(scenario.model_dump(mode="json"), indent=1))
            group = group_key(values)
            replicate = runs_of[group] = runs_of.get(group, -1) + 1
            points.append(Point(len(points), point_name, values, scenario_file,
                                out / "runs" / point_name, error, scenario, replicate,
                                seed if _is_seed(seed) else None))
    return points


def _point_seed(values: dict[str, Any], base: Scenario) -> Any:
    """The seed a point's values give it (a swept seed, else the base's)."""
    return values.get("seed", base.seed)


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def point_scenario(scenario_file: Path) -> Scenario:
    """A point's scenario from the JSON its sweep wrote (validated there; checked again)."""
    return scenario_from_mapping(read_json_file(Path(scenario_file), "point scenario"),
                                 Path(scenario_file))


def is_complete(point: Point) -> bool:
    """A run directory counts when its manifest is complete and matches the scenario and
    the code (``code_identity``): a result of other code is never reused as this one's."""
    if not (point.run_dir / "manifest.json").is_file():
        return False
    try:  # a damaged run directory is not complete: it is reported, never read as a result
        recorded = _manifest(point.run_dir)
        read_table(point.run_dir, "rounds.parquet", ("round",))
    except ValueError:  # InputError, RunDirectoryError
        return False
    return recorded.get("status") == "complete" and point.scenario is not None and \
        recorded.get("scenario_sha256") == point.scenario.content_hash() and \
        recorded.get("code_sha256") == code_sha256()


def _manifest(run_dir: Path) -> dict:
    """A run directory's manifest, by the reader: checked against its declaration
    (one-line errors)."""
    return read_manifest(run_dir)


def _not_runnable(point: Point) -> dict | None:
    """Why the point is reported instead of run: its scenario is invalid, or its run
    directory holds a run of another scenario (the sweep file was edited since), which is
    kept, never overwritten."""
    if point.error is not None:
        return {"status": "invalid", "error": point.error, "wall_s": 0.0}
    if point.run_dir.is_dir() and any(point.run_dir.iterdir()) and not is_complete(point):
        return {"status": "failed", "wall_s": 0.0, "error": (
            f"{point.run_dir} holds {_foreign(point.run_dir)}; delete it to compute it "
            "again, or sweep into another --out")}
    return None


def _foreign(run_dir: Path) -> str:
    """What an unusable run directory holds, for the point's one-line error."""
    try:
        recorded = _manifest(run_dir)
    except ValueError:
        recorded = {}
    if recorded.get("status") == "complete" and recorded.get("code_sha256") != code_sha256():
        code = str(recorded.get("code_sha256") or "unrecorded")[:12]
        return (f"a run computed by other orbitfl code (code {code}, this is "
                f"{code_sha256()[:12]}: a result of other code is not reused)")
    return "a run of another scenario or a damaged one (was the sweep file changed?)"


def run_point(scenario_file: str, run_dir: str, threads: int, log_file: str,
              blind: bool = False) -> dict:
    """One point, in a worker process of either backend; returns the headline results, or
    the error. A point stopped early resumes from its checkpoint; an interrupt (Ctrl-C,
    SIGTERM, a Ray cancel) keeps the checkpoint and returns status ``interrupted``.
    ``blind``: its log withholds the run's test scores (its run directory keeps them).

    ``threads`` caps torch's intra-op threads at this point's share of the cores: two
    points each using every core run slower together than one after the other."""
    import torch

    from orbitfl.engine.runner import run

    torch.set_num_threads(threads)
    start = time.perf_counter()
    folder = Path(run_dir)
    with point_log(Path(log_file), blind):
        try:
            scenario = point_scenario(Path(scenario_file))
            resume = _resumable(scenario, folder)
            run(scenario, folder, resume=resume)
        except KeyboardInterrupt:
            return _outcome("interrupted", "interrupted; run the sweep again to resume", start)
        except InputError as err:
            return _outcome("failed", str(err), start)
        except Exception as err:  # noqa: BLE001 - a failing point must not stop the sweep
            logger.exception("the point failed")  # the traceback, into the point's log
            return _outcome("failed", f"{type(err).__name__}: {err} (see {log_file})", start)
    return headline(folder)


@contextmanager
def point_log(path: Path, blind: bool = False) -> Iterator[None]:
    """The status lines of one point's run appended to its own log file (the sweep's
    terminal shows one line per point), whatever the level of the sweep's own lines;
    ``blind``: its test scores withheld."""
    package = logging.getLogger(LOGGER)
    handler = plain_handler(logging.FileHandler(path, mode="a", encoding="utf-8"), blind)
    handler.setLevel(logging.INFO)
    level = package.level
    package.addHandler(handler)
    package.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


def _resumable(scenario: Scenario, run_dir: Path) -> bool:
    """Whether a checkpoint of this very scenario is kept. One of an earlier version of the
    point (the sweep file was edited since) is useless to it: it is discarded, and the
    point starts afresh."""
    import torch

    checkpoint = _checkpoint(run_dir)
    if not checkpoint.is_file():
        return False
    try:
        saved = torch.load(checkpoint, weights_only=True)
    except Exception as err:  # torch raises many kinds for truncated or foreign bytes
        saved, why = {}, f"it is damaged ({type(err).__name__})"
    else:
        why = "it belongs to an earlier version of this point or of orbitfl's code"
    if isinstance(saved, dict) and saved.get("scenario_sha256") == scenario.content_hash() \
            and saved.get("code_sha256") == code_sha256():
        return True  # its contents are checked when the run resumes from it
    logger.info(f"discarded {checkpoint}: {why}")
    shutil.rmtree(checkpoint.parent)
    return False


def _checkpoint(run_dir: Path) -> Path:
    """Where a run into ``run_dir`` that stopped early keeps its checkpoint (the staging
    folder of ``StagedRunDirectory``)."""
    return run_dir.parent / f".{run_dir.name}.partial" / StagedRunDirectory.CHECKPOINT


def _outcome(status: str, error: str, start: float) -> dict:
    return {"status": status, "error": error, "wall_s": time.perf_counter() - start}


def headline(run_dir: Path) -> dict:
    """A complete run's headline results, from its manifest and the last round's metrics
    (the same row whether the point ran now or in an earlier sweep)."""
    manifest = _manifest(run_dir)
    summary = manifest["summary"]
    last = read_table(run_dir, "rounds.parquet", ("round",)).iloc[-1]
    return {"status": "complete", "wall_s": summary["wall_time_s"],
            "final_accuracy": summary["final_accuracy"],
            "balanced_accuracy": float(last["balanced_accuracy"]),
            "few_shot_accuracy": float(last["few_shot_accuracy"]),
            "personalised_own_mix_accuracy": _last(last, "personalised_own_mix_accuracy"),
            "personalised_accuracy": _last(last, "personalised_accuracy"),
            "global_own_mix_accuracy": _last(last, "global_own_mix_accuracy"),
            "val_accuracy": _last(last, "val_accuracy"),
            "val_balanced_accuracy": _last(last, "val_balanced_accuracy"),
            "miou": _last(last, "miou"), "val_miou": _last(last, "val_miou"),
            "rounds": summary["rounds_completed"], "sim_time_h": summary["sim_time_s"] / 3600,
            "bytes_up": summary["bytes_up"], "bytes_down": summary["bytes_down"],
            "energy_j": float(last["energy_j"]),
            "train_imbalance_factor": manifest.get("train_imbalance_factor"),
            **flat_columns(manifest.get("time_to_target", {}))}


def _last(row: pd.Series, column: str) -> float:
    """A metric of the last round (NaN in runs written before the column existed)."""
    return float(row[column]) if column in row.index else float("nan")


def run_sweep(sweep_file: Path, out: Path | None = None, backend: str = "local",
              workers: int | None = None, address: str | None = None,
              overrides: Sequence[tuple[str, Any]] = (),
              progress: Bars | None = None) -> pd.DataFrame:
    """Run every point not yet complete and write ``sweep.parquet`` and the Pareto figure
    (``overrides``: ``--set`` changes to the base scenario).
    On Ctrl-C the running points are stopped (keeping their checkpoints), the table is
    written for what finished, and ``KeyboardInterrupt`` is raised again. Status lines go
    to this module's logger (each point's own into its log file); ``progress`` draws a bar
    of the points."""
    _check_options(backend, workers, address)
    sweep_file = Path(sweep_file)
    out = Path(out) if out is not None else default_out(sweep_file.stem)
    check_output_dir(out, "sweep directory")
    return run_spec(load_sweep(sweep_file, overrides), out, backend, workers, address,
                    progress)


def default_out(name: str) -> Path:
    """Where a sweep is written unless told: ``runs/sweeps/<name>``."""
    return Path("runs") / "sweeps" / safe_path_component(name)


def run_spec(spec: SweepSpec, out: Path, backend: str = "local", workers: int | None = None,
             address: str | None = None, progress: Bars | None = None,
             carried: Mapping[str, dict] | None = None, blind: bool = False) -> pd.DataFrame:
    """``run_sweep`` for a sweep already read (``load_sweep`` or ``sweep_spec``).

    ``carried``: sweep rows of points finished on another machine, by the content hash of
    the point's scenario (a study's shipped tables, whose run folders that machine kept). A
    point without a complete run folder whose scenario has a carried row computed by this
    code (the row's ``code_sha256``) is not run again: its row is the carried one.

    ``blind``: neither status lines nor point logs name a test score (a study reads none
    before its runs are complete); the table and the run folders keep every score."""
    return run_specs([(spec, out)], backend, workers, address, progress, carried, blind)[0]


@dataclasses.dataclass
class _Planned:
    """One sweep of a pooled run: its points, those it skips or already has, and the
    results so far (by point index)."""

    spec: SweepSpec
    out: Path
    points: list[Point]
    skipped: dict[int, dict]
    results: dict[int, dict]
    todo: list[Point]

    @classmethod
    def of(cls, spec: SweepSpec, out: Path, carried: Mapping[str, dict]) -> "_Planned":
        points = plan(spec, out)
        skipped = {p.index: why for p in points if (why := _not_runnable(p)) is not None}
        results: dict[int, dict] = {}
        todo: list[Point] = []
        for point in (p for p in points if p.index not in skipped):
            row = _carried_row(point, carried)
            if is_complete(point):
                results[point.index] = {**headline(point.run_dir), "reused": True}
            elif row is not None:
                results[point.index] = {**row, "status": "complete", "reused": True}
            else:
                todo.append(point)
        return cls(spec, out, points, skipped, results, todo)

    def summary(self, backend: str) -> str:
        brought = sum(1 for p in self.points
                      if p.index in self.results and not p.run_dir.is_dir())
        return (f"sweep {self.spec.name}: {len(self.points)} points, {len(self.results)} "
                f"already done{f' ({brought} carried)' if brought else ''}, "
                f"{len(self.todo)} to run on {backend}"
                f"{f', {len(self.skipped)} skipped' if self.skipped else ''}")

    def interrupted(self, wall_s: float) -> None:
        """Its unfinished points marked interrupted and its table written."""
        for point in (p for p in self.points if p.index not in self.results):
            self.results[point.index] = {"status": "interrupted", "wall_s": 0.0,
                                         "reused": False,
                                         "error": "not run: the sweep was interrupted"}
        _write_results(self.points, self.results, self.out, wall_s)
        logger.info(f"sweep interrupted: {self.out / 'sweep.parquet'} holds the finished "
                    "points; run the same command again to resume the others")


def run_specs(sweeps: Sequence[tuple[SweepSpec, Path]], backend: str = "local",
              workers: int | None = None, address: str | None = None,
              progress: Bars | None = None, carried: Mapping[str, dict] | None = None,
              blind: bool = False) -> list[pd.DataFrame]:
    """Several sweeps (``run_spec`` each, into its own folder) on one pool of workers, in
    order: the pool never idles while any sweep has a point to run, so a sweep with fewer
    points left than workers shares them with the next (a study's methods at one setting).
    Each folder's ``wall_time_total_s`` is the pooled run's."""
    bars = progress or NO_BARS
    _check_options(backend, workers, address)
    outs = [Path(out).resolve() for _, out in sweeps]
    if len(set(outs)) < len(outs):
        raise InputError("pooled sweeps: two sweeps share one folder")
    for _, out in sweeps:
        check_output_dir(out, "sweep directory")
    planned = [_Planned.of(spec, out, carried or {}) for spec, out in sweeps]
    owner = {id(p): sweep for sweep in planned for p in sweep.points}
    total = sum(len(sweep.points) for sweep in planned)
    for sweep in planned:
        logger.info(sweep.summary(backend))
    started = time.perf_counter()

    def done(point: Point, result: dict) -> None:
        sweep = owner[id(point)]
        sweep.results[point.index] = {**result, "reused": False}
        where = f"{sweep.out.name}/" if len(planned) > 1 else ""
        logger.info(f"[{len(sweep.results)}/{len(sweep.points)}] {where}{point.name}: "
                    f"{_status(result, blind)} ({result['wall_s']:.0f} s)")
        advance(sum(len(s.results) for s in planned), total)

    try:
        with bars:
            advance = bars.task("points")
            advance(sum(len(s.results) for s in planned), total)
            for sweep in planned:
                for point in sweep.points:
                    if point.index in sweep.skipped:
                        done(point, sweep.skipped[point.index])
            todo = [point for sweep in planned for point in sweep.todo]
            if todo:
                runner = _ray if backend == "ray" else _local
                runner(todo, done, workers, address, blind)
    except KeyboardInterrupt:
        for sweep in planned:
            sweep.interrupted(time.perf_counter() - started)
        raise
    return [_write_results(sweep.points, sweep.results, sweep.out,
                           time.perf_counter() - started) for sweep in planned]


def _status(result: dict, blind: bool) -> str:
    """A finished point's status line: its error, or its accuracy unless ``blind``."""
    accuracy = result.get("final_accuracy")
    if accuracy is None:
        return str(result["error"])
    return "complete" if blind else f"acc {accuracy:.3f}"


def _carried_row(point: Point, carried: Mapping[str, dict]) -> dict | None:
    """The carried sweep row of the point's own scenario computed by this code (without
    its ``code_sha256``), else None: a result of another scenario or other code is never
    taken for this one's."""
    if point.scenario is None:
        return None
    row = carried.get(point.scenario.content_hash())
    if row is None or row.get("code_sha256") != code_sha256():
        return None
    return {k: v for k, v in row.items() if k != "code_sha256"}


def _check_options(backend: str, workers: int | None, address: str | None) -> None:
    if workers is not None and workers < 1:
        raise InputError(f"--workers: expected at least 1 parallel point, got {workers}")
    if address is not None and backend != "ray":
        raise InputError("--address applies to --backend ray (an existing Ray cluster)")
    check_address(address, "--address")
    problem = None if workers is None or address not in (None, "local") \
        else workers_problem(workers)
    if problem is not None:
        raise InputError(f"--workers: {problem}")


def _write_results(points: list[Point], results: dict[int, dict], out: Path,
                   wall_s: float) -> pd.DataFrame:
    """``sweep.parquet`` (one row per run), ``sweep_summary.parquet`` (per group) and the
    Pareto figure."""
    from orbitfl.analysis.pareto import pareto_figure
    from orbitfl.analysis.sweep_summary import summarise

    table = pd.concat([parameter_table(points),
                       pd.DataFrame([results[p.index] for p in points])], axis=1)
    table["wall_time_total_s"] = wall_s
    parameters = swept_parameters(points)
    # the declared columns, in order, whatever the points' outcomes (a sweep of failed
    # points still has final_accuracy, one without failures still has error); anything
    # undeclared is kept, for write_table to refuse
    declared = sweep_columns(parameters)
    table = table.reindex(columns=declared + [c for c in table if c not in declared])
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "sweep.parquet", table)
    write_table(out / "sweep_summary.parquet", summarise(table, parameters))
    pareto_figure(table, out / "pareto.png", parameters)
    return table


def swept_parameters(points: list[Point]) -> list[str]:
    """The swept YAML paths that define groups (a swept ``seed`` is the ``seed`` column)."""
    return [k for k in points[0].values if k != "seed"] if points else []


def sweep_columns(parameters: list[str]) -> list[str]:
    """The columns of ``sweep.parquet`` as ``orbitfl.rundir.columns`` declares them."""
    thresholds = [f"{t:g}" for t in THRESHOLDS]
    return expand_columns("sweep.parquet", {"parameter": parameters, "acc": thresholds})


def _local(points: list[Point], done: Callable, workers: int | None,
           address: str | None, blind: bool = False) -> None:
    """One worker process per point, at most ``workers`` at once: a worker that dies (the
    out-of-memory killer) fails only its point. Workers run in their own session, so a
    terminal's Ctrl-C reaches only this process, which stops them in order."""
    workers = workers or 1
    threads = max(1, (os.cpu_count() or 1) // workers)
    waiting = list(points)
    running: dict[subprocess.Popen, tuple[Point, float]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                point = waiting.pop(0)
                running[_start_worker(point, threads, blind)] = (point, time.perf_counter())
            for worker in [w for w in running if w.poll() is not None]:
                point, start = running.pop(worker)
                done(point, _worker_result(point, worker.returncode, start))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        _stop_workers(list(running))
        for worker, (point, start) in running.items():
            done(point, _worker_result(point, worker.returncode, start, stopped=True))
        raise


def _result_file(point: Point) -> Path:
    return point.scenario_file.with_suffix(".result.json")


def _start_worker(point: Point, threads: int, blind: bool) -> subprocess.Popen:
    _result_file(point).unlink(missing_ok=True)
    with open(point.log_file, "a", encoding="utf-8") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orbitfl.sweeps.runner", str(point.scenario_file),
             str(point.run_dir), str(threads), str(point.log_file), str(_result_file(point)),
             BLIND if blind else SCORED],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _stop_workers(workers: list[subprocess.Popen]) -> None:
    """SIGTERM (the worker saves its checkpoint and reports), then SIGKILL after
    ``STOP_GRACE_S``."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        try:
            worker.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _worker_result(point: Point, returncode: int, start: float, stopped: bool = False) -> dict:
    """The worker's own report, or why it has none (killed by a signal, or crashed)."""
    try:
        return read_json_file(_result_file(point), "point result")
    except ValueError:  # InputError: missing, unreadable or damaged
        pass
    if stopped:
        return _stopped_result(point, start)
    return _outcome("failed", f"worker {exit_status(returncode)} without a result; see "
                    f"{point.log_file}", start)


def _stopped_result(point: Point, start: float) -> dict:
    """A point stopped by Ctrl-C: complete if it finished in time, else interrupted."""
    if is_complete(point):
        return headline(point.run_dir)
    return _outcome("interrupted", "interrupted; run the sweep again to resume", start)


def _worker_main(argv: list[str]) -> int:
    """``python -m orbitfl.sweeps.runner SCENARIO RUN_DIR THREADS LOG RESULT BLIND|SCORED``:
    one local point. SIGTERM interrupts the run as Ctrl-C does; a worker whose sweep died
    stops itself."""
    scenario_file, run_dir, threads, log_file, result_file, scores = argv
    signal.signal(signal.SIGTERM, _interrupt)
    die_with_parent(os.getppid(), signal.SIGTERM)  # saves its checkpoint, then ends
    try:
        result = run_point(scenario_file, run_dir, int(threads), log_file, scores == BLIND)
    except KeyboardInterrupt:  # stopped before the run began
        result = _outcome("interrupted", "interrupted; run the sweep again to resume",
                          time.perf_counter())
    partial = Path(result_file).with_suffix(".partial")
    partial.write_text(json.dumps(result), encoding="utf-8")
    partial.replace(result_file)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _ray(points: list[Point], done: Callable, workers: int | None,
         address: str | None, blind: bool = False) -> None:
    """Ray tasks, one core each and never retried: a task whose worker dies fails its point
    (a retry would race the dead run's staging folder). Ctrl-C cancels the tasks, which
    keep their checkpoints."""
    try:
        import ray
    except ImportError:
        raise InputError("the ray backend needs Ray: pip install 'orbitfl[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        with kept_signal_handlers():  # Ray's SIGTERM handler aborts with a C++ dump
            ray.init(address=address, num_cpus=workers if address is None else None,
                     include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_point)
        pending = {remote.remote(str(p.scenario_file), str(p.run_dir), 1, str(p.log_file),
                                 blind):
                   (p, time.perf_counter()) for p in points}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    point, start = pending.pop(ref)
                    done(point, _ray_result(ray, ref, start))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # raises KeyboardInterrupt inside a running task
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE_S)
            for point, start in pending.values():
                done(point, _stopped_result(point, start))
            raise
    finally:
        if started_here:
            ray.shutdown()


def _ray_result(ray, ref, start: float) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # the worker died, or the task was cancelled
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return _outcome("failed", f"{type(err).__name__}: {first_line}", start)


def parameter_table(points: list[Point]) -> pd.DataFrame:
    """One row per point: its group, replicate, seed, name and swept values. Mappings and
    lists become one line of YAML, and a column mixing kinds of value (say 5 and "auto")
    becomes text, so that every column has one parquet type."""
    table = pd.DataFrame([{"point": p.name, **{k: v for k, v in p.values.items() if k != "seed"}}
                          for p in points], columns=["point", *swept_parameters(points)])
    for name in table.columns[1:]:
        table[name] = [yaml_line(v) if isinstance(v, (dict, list)) else v
                       for v in table[name]]
        if len({type(v) for v in table[name] if v is not None}) > 1:
            table[name] = [v if v is None else str(v) for v in table[name]]
    seeds = [p.seed if p.seed is not None else p.values.get("seed") for p in points]
    table.insert(0, "seed", pd.array([s if _is_seed(s) else None for s in seeds],
                                     dtype="Int64"))
    table.insert(0, "replicate", [p.replicate for p in points])
    table.insert(0, "group", [p.group for p in points])
    return table


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
