"""The SAFE study's per-run tables in compact form (``docs/safe-study-data/``), so that every
number of docs/safe-study.md can be checked without rerunning anything:

- ``study.json``: the driver's record (protocol, methods, tuning history and choices, the
  power computation, wall times) and the code every run was computed by, checked here;
- ``runs.parquet``: one row per measured run (network, imbalance factor, method, seed, its
  scenario's content hash and its sweep row's headline results and times to target);
- ``curves.parquet``: one row per evaluated round of every measured run (accuracies,
  simulated time, cumulative bytes);
- ``tuning.parquet``: one row per tuning run (setting, seed, scenario hash, selection
  score);
- ``diagnostics.parquet``: SAFE's ``safe_diagnostics.parquet`` rows of every measured run
  (ACE's mask foreground share, FAU's divergence and mu per client, CRO's class weights),
  as float32, the precision they were computed in.

    .venv/bin/python -m orbitfl.studies.safe.export runs/safe-study --out docs/safe-study-data

A study that spans sittings on machines that do not keep its run folders ships its tables
after each sitting; the next one runs the driver and this export with ``--carry`` those
tables (``carry.py``): each run is then shipped again from them, matched by its scenario
hash, beside the runs the sitting added. A study may be exported before any run is measured
(its tuning alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from orbitfl.core.atomic import atomic_write, atomic_write_text
from orbitfl.core.errors import InputError
from orbitfl.rundir.reader import RunDirectoryError, read_manifest, read_table
from orbitfl.scenario.model import Scenario
from orbitfl.studies.safe.carry import HASH, KEYS, NO_CARRY, Carry
from orbitfl.studies.safe.command import command_status
from orbitfl.studies.safe.driver import (
    SELECTION,
    Protocol,
    carried_value,
    factor_name,
    point_hash,
    selection_score,
)
from orbitfl.studies.safe.record import load_record
from orbitfl.sweeps.runner import point_scenario

CURVE_COLUMNS = ["round", "sim_time_s", "bytes_up", "bytes_down", "accuracy",
                 "balanced_accuracy", "few_shot_accuracy", "global_own_mix_accuracy",
                 "personalised_accuracy", "personalised_own_mix_accuracy", "val_accuracy",
                 SELECTION]
RUN_COLUMNS = ["status", "wall_s", "final_accuracy", "balanced_accuracy",
               "few_shot_accuracy", "global_own_mix_accuracy", "personalised_accuracy",
               "personalised_own_mix_accuracy", "val_balanced_accuracy", "rounds",
               "sim_time_h", "bytes_up", "bytes_down", "train_imbalance_factor"]
# a segmentation study's score (its accuracy counts pixels): shipped where a run has it
SEGMENTATION_COLUMNS = ["miou", "val_miou"]


def _groups(study: Path, kind: str):
    """(relative parts, sweep table, folder) of every sweep folder under ``kind``; every
    table of the study is read by the run-directory reader (declared columns checked)."""
    for table in sorted((study / kind).glob("**/sweep.parquet")):
        yield (table.parent.relative_to(study / kind).parts,
               read_table(table.parent, "sweep.parquet"), table.parent)


def measured(study: Path, codes: dict[str, Path], carry: Carry = NO_CARRY
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, curves and diagnostics from ``measure/<network>/if<F>/<method>/``, each run
    verified (``verified_run``), or carried (``carry``) where the folder lacks its run."""
    runs, curves, diagnostics = [], [], []
    for (network, factor, method), table, folder in _groups(study, "measure"):
        keys = {"network": network, "factor": float(factor[2:]), "method": method}
        ttt = [c for c in table.columns if c.startswith("to_")]
        rows = table[["seed", *[c for c in RUN_COLUMNS if c in table],
                      *_measured(table, SEGMENTATION_COLUMNS), *ttt]].assign(**keys)
        hashes: list[str | None] = []
        for _, row in rows.assign(point=table["point"]).iterrows():
            if row["status"] != "complete":
                hashes.append(None)
                continue
            point, seed = str(row["point"]), int(row["seed"])
            scenario, rounds, diagnosed = _measured_run(folder, point, codes, carry)
            hashes.append(scenario)
            curves.append(rounds.reindex(columns=[
                *CURVE_COLUMNS, *_measured(rounds, SEGMENTATION_COLUMNS)]).assign(
                **keys, seed=seed))
            if diagnosed is not None:
                diagnostics.append(diagnosed.assign(**keys, seed=seed))
        runs.append(rows.assign(**{HASH: hashes}))
    return tuple(_keyed(frames) for frames in (runs, curves, diagnostics))


def _measured_run(folder: Path, point: str, codes: dict[str, Path], carry: Carry
                  ) -> tuple[str, pd.DataFrame, pd.DataFrame | None]:
    """A complete measured point's scenario hash, evaluated rounds and SAFE diagnostics
    (None for another method): from its verified run folder, else carried."""
    run_dir = folder / "runs" / point
    if not run_dir.is_dir():
        codes.setdefault(carry.code, Path(str(carry.path)))
        scenario = point_hash(folder, point)
        return (scenario, carried_value(carry.curves, folder, point),
                carry.diagnostics.get(scenario))
    scenario = verified_run(folder, point, codes).content_hash()
    rounds = read_table(run_dir, "rounds.parquet", ("round",))
    diagnosed = read_table(run_dir, "safe_diagnostics.parquet") if \
        (run_dir / "safe_diagnostics.parquet").is_file() else None
    return scenario, rounds[rounds["accuracy"].notna()], diagnosed


def _measured(table: pd.DataFrame, columns: list[str]) -> list[str]:
    """Those of ``columns`` the table holds a value in."""
    return [c for c in columns if c in table and table[c].notna().any()]


def seed_mismatch(record: dict, runs: pd.DataFrame, in_progress: bool
                  ) -> tuple[tuple[str, float, str], list[int], list[int] | None] | None:
    """The first (network, factor, method) group whose seeds are not the ones the study's
    record says it measured, with its seeds and the recorded ones (None: the record holds no
    count yet, its internal pilot unfinished); None when all agree. ``in_progress`` accepts
    some of the recorded seeds, or no count: a study stopped before its power decision, or
    between it and the sweep that extends a method to the new count, or while two of a
    sweep's runs were in flight and the later seed had finished, is a study in progress,
    which a sitting's carry ships; a seed the record never measured is another protocol's."""
    protocol = record.get("protocol", {})
    first = int(protocol.get("first_seed", 1))
    for (network, factor, method), rows in runs.groupby(["network", "factor", "method"]):
        group = str(network), float(factor), str(method)
        seeds = sorted(int(s) for s in rows["seed"])
        count = protocol.get("fixed_seeds") or \
            record.get("power", {}).get(factor_name(factor), {}).get("seeds_run")
        if count is None:
            if in_progress:
                continue
            return group, seeds, None
        recorded = list(range(first, first + int(count)))
        if seeds != recorded and not (in_progress and set(seeds) <= set(recorded)):
            return group, seeds, recorded
    return None


def check_seeds(study: Path, record: dict, runs: pd.DataFrame) -> None:
    """Refuse a study whose sweep tables list other seeds than its record says it measured
    (or will: some of them are a study in progress). A later driver call on the same
    folder (another ``--only``, ``--networks`` or seed count) rewrites the tables it touches
    and the record, so a page built from the mix would read one method over other seeds
    than the protocol it states; the report refuses a study in progress."""
    mismatch = seed_mismatch(record, runs, in_progress=True)
    if mismatch is not None:
        (network, factor, method), seeds, recorded = mismatch
        raise InputError(
            f"{study / 'measure' / network / factor_name(factor) / method}: its sweep "
            f"lists seeds {span(seeds)}, but the study's record measured "
            f"{span(recorded or [])}; "
            "rerun the driver with the study's own flags before exporting")


def verified_run(folder: Path, point: str, codes: dict[str, Path]) -> Scenario:
    """The scenario of a run a sweep lists as complete, once its run directory is checked
    to be a complete run of that point's own scenario; its code is added to ``codes`` (code
    -> a run of it). A run folder copied in from another study (tuning runs are, to be
    reused) or from other code would otherwise be read as this study's unasked."""
    run_dir, file = folder / "runs" / point, folder / "points" / f"{point}.json"
    manifest, scenario = read_manifest(run_dir), point_scenario(file)
    if manifest.get("status") != "complete" or \
            manifest.get("scenario_sha256") != scenario.content_hash():
        raise InputError(f"{run_dir}: not a complete run of its point's scenario ({file}); "
                         "rerun the driver with the study's own flags before exporting")
    codes.setdefault(str(manifest.get("code_sha256")), run_dir)
    return scenario


def one_code(study: Path, codes: dict[str, Path]) -> str:
    """The one code every run of the study was computed by, or a one-line refusal: a page
    compares like with like."""
    if len(codes) > 1:
        (first, one), (second, other) = list(codes.items())[:2]
        raise InputError(
            f"{study}: its runs were computed by {len(codes)} versions of orbitfl's code "
            f"({first[:12]} in {one}, {second[:12]} in {other}); a page compares like with "
            "like: rerun the driver from one checkout")
    return next(iter(codes), "")


def span(seeds: list[int]) -> str:
    """Seeds as 'a-b' when consecutive, else a list."""
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds)) or "none"


def _keyed(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames as one, the run's keys first."""
    if not frames:
        return pd.DataFrame(columns=KEYS)
    frame = pd.concat(frames, ignore_index=True)
    return frame[KEYS + [c for c in frame.columns if c not in KEYS]]


def tuning(study: Path, last: int, codes: dict[str, Path], column: str = SELECTION,
           carry: Carry = NO_CARRY) -> pd.DataFrame:
    """One row per tuning run, verified (``verified_run``) or carried (``carry``): factor,
    method, the tuned keys, seed, scenario hash and selection score (the mean of ``column``
    over the ``last`` rounds)."""
    rows = []
    for (factor, method, _), table, folder in _groups(study, "tune"):
        for _, row in table[table["status"] == "complete"].iterrows():
            point, run_dir = str(row["point"]), folder / "runs" / str(row["point"])
            if run_dir.is_dir():
                scenario = verified_run(folder, point, codes)
                score = selection_score(read_table(run_dir, "rounds.parquet", ("round",)),
                                        last, column)
            else:
                scenario = point_scenario(folder / "points" / f"{point}.json")
                score = carried_value(carry.scores, folder, point)
                codes.setdefault(carry.code, Path(str(carry.path)))
            fl = scenario.fl
            if fl is None:     # a scenario without learning cannot have been a tuning run
                raise InputError(f"{folder / 'points' / point}.json: a tuning point without "
                                 "an fl section")
            rows.append({"factor": float(factor[2:]), "method": method, "lr": fl.lr,
                         "mu": fl.fedprox.mu if fl.strategy == "fedprox" else float("nan"),
                         "seed": int(row["seed"]), HASH: scenario.content_hash(),
                         "score": score, "wall_s": float(row["wall_s"])})
    # a study whose settings were taken (--settings-from) has no rows, but the same columns
    return pd.DataFrame(rows, columns=["factor", "method", "lr", "mu", "seed", HASH, "score",
                                       "wall_s"])


def export(study: Path, out: Path, carry: Carry = NO_CARRY) -> list[Path]:
    record = load_record(study)
    if not record:
        raise InputError(f"{study}: no study.json "
                         "(run python -m orbitfl.studies.safe.driver first)")
    try:    # everything is read and checked before anything is written
        codes: dict[str, Path] = {}
        runs, curves, diagnostics = measured(study, codes, carry)
        check_seeds(study, record, runs)
        protocol = Protocol(task=record["protocol"].get("task", "classification"))
        selection_rounds = int(record["protocol"]["selection_rounds"])
        carry.check_scores(selection_rounds, protocol.task)
        tunes = tuning(study, selection_rounds, codes, protocol.score.selection, carry)
        if runs.empty and tunes.empty:
            raise InputError(f"{study}: no finished run (tune/ or measure/ sweep.parquet)")
        record = {**record, "code_sha256": one_code(study, codes)}
    except RunDirectoryError as err:     # a damaged run folder: one line, no traceback
        raise InputError(f"{err}; delete that run's folder and rerun the driver with the "
                         "study's own flags, which computes it again") from None
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(out / "study.json", json.dumps(record, indent=1,
                                                                sort_keys=True))]
    # the diagnostics come from float32 tensors: float64 would only pad them (a third of
    # the shipped bytes at 400 rounds)
    if "value" in diagnostics:
        diagnostics = diagnostics.assign(value=diagnostics["value"].astype("float32"))
    for name, frame in (("runs", runs), ("curves", curves), ("tuning", tunes),
                        ("diagnostics", diagnostics)):
        written.append(atomic_write(out / f"{name}.parquet", _parquet_writer(frame)))
    return written


def _parquet_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    """What ``atomic_write`` calls to write ``frame`` into its partial file."""
    def write(partial: Path) -> None:
        frame.to_parquet(partial, index=False, compression="zstd")
    return write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path,
                        help="study folder (python -m orbitfl.studies.safe.driver --out)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the compact tables")
    parser.add_argument("--carry", type=Path, default=None, metavar="DATA",
                        help="the tables of an earlier sitting (the driver's --carry): runs "
                        "the study folder lists without their run folders are read there")
    args = parser.parse_args(argv)
    return command_status(lambda: export(
        args.study, args.out, Carry.read(args.carry, this_code=False) if args.carry else NO_CARRY))


if __name__ == "__main__":
    sys.exit(main())

