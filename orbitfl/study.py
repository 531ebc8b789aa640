"""The SAFE study (docs/safe-study.md) as a thin driver of ``orbitfl sweep``: for every
method of a methods file, its tuning sweep, the choice of its setting on the validation
split, then its measured sweep with that setting. Every run is an ordinary scenario run on
the mission engine; this module only decides which sweeps to run with which ``--set``.

    .venv/bin/python -m orbitfl.study --out runs/safe-study --backend ray --workers 1
    .venv/bin/python -m orbitfl.study_report runs/safe-study --out docs/safe-study.md

The study folder holds ``tune/<method>/`` and ``final/<method>/`` (sweep folders) and
``study.json`` (the methods, the chosen settings and the commands that ran). Running the
same command again reuses every point that is already complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from orbitfl.errors import InputError, read_user_file
from orbitfl.limits import MAX_SCENARIO_BYTES
from orbitfl.overrides import parse_override
from orbitfl.scenario_yaml import load_yaml
from orbitfl.user_json import read_json_file

SWEEPS = Path(__file__).resolve().parent.parent / "scenarios" / "sweeps"
FINAL = "safe-study-final.yaml"            # IF 10, 50, 100 x seeds 1, 2, 3
FINAL_IF100 = "safe-study-final-if100.yaml"  # IF 100 x seeds 1, 2, 3 (the ablations)
MORE = "safe-study-final-if10-50.yaml"       # then IF 10 and 50 (the ablations' rest)
# name -> label, --set overrides of scenarios/study/base.yaml, tuning sweep and (optional)
# measured sweep(s); in the order they run (the comparison that matters first). The
# ablations are measured at IF 100 first, where the question is asked, and at IF 10 and 50
# after every method has its IF 100 runs ("more", into more/<method>). A --methods YAML
# file of the same shape (sweep files relative to that file) replaces them.
METHODS: dict[str, dict] = {
    "fedavg": {"label": "FedAvg", "set": {"fl.strategy": "fedavg"},
               "tune": "safe-study-tune.yaml"},
    "safe": {"label": "SAFE", "set": {"fl.strategy": "safe", "fl.safe": {"ace_dim": 32}},
             "tune": "safe-study-tune.yaml"},
    "fedla": {"label": "FedLA (logit adjustment)", "set": {"fl.strategy": "fedla"},
              "tune": "safe-study-tune.yaml"},
    "fedprox": {"label": "FedProx", "set": {"fl.strategy": "fedprox"},
                "tune": "safe-study-tune-fedprox.yaml"},
    "central": {"label": "Centralised (1 client, all data)",
                "set": {"constellation.select.limit": 1, "data.partition": "iid",
                        "fl.schedule.min_clients": 1},
                "tune": "safe-study-tune.yaml"},
    "cro-only": {"label": "CRO only, constant weights",
                 "set": {"fl.strategy": "safe", "fl.safe": {
                     "cro": True, "fau": False, "dmr": False, "ace": False}},
                 "tune": "safe-study-tune.yaml", "final": FINAL_IF100, "more": MORE},
    "fau-only": {"label": "FAU only, CKA mu, no schedule",
                 "set": {"fl.strategy": "safe", "fl.safe": {
                     "cro": False, "fau": True, "dmr": False, "ace": False}},
                 "tune": "safe-study-tune.yaml", "final": FINAL_IF100, "more": MORE},
    "ace-only": {"label": "ACE only",
                 "set": {"fl.strategy": "safe", "fl.safe": {
                     "cro": False, "fau": False, "dmr": False, "ace": True, "ace_dim": 32}},
                 "tune": "safe-study-tune.yaml", "final": FINAL_IF100, "more": MORE},
}
SELECTION = "val_balanced_accuracy"  # the test set is balanced; so is the selection metric
TUNED = ("fl.lr", "fl.fedprox.mu")   # the swept keys a tuning sweep may choose


def load_methods(path: Path | None = None) -> dict[str, dict]:
    """name -> {label, set (dotted path -> value), tune and final (sweep files,
    absolute)}: the built-in ``METHODS``, or those of a methods file."""
    if path is None:
        return {name: {**spec, "tune": str(SWEEPS / spec["tune"]),
                       "final": str(SWEEPS / spec.get("final", FINAL)),
                       **({"more": str(SWEEPS / spec["more"])} if "more" in spec else {})}
                for name, spec in METHODS.items()}
    document = load_yaml(read_user_file(path, "methods file", MAX_SCENARIO_BYTES), path)
    if not isinstance(document, dict) or not document:
        raise InputError(f"{path}: expected a mapping of method names to label, set and tune")
    methods = {}
    for name, spec in document.items():
        if not isinstance(spec, dict) or not {"label", "set", "tune"} <= set(spec) \
                or set(spec) - {"label", "set", "tune", "final"} \
                or not isinstance(spec["set"], dict):
            raise InputError(f"{path}: {name}: expected label, set (a mapping of YAML paths "
                             "to values), tune and optionally final (sweep files)")
        final = (path.parent / str(spec["final"])).resolve() if "final" in spec \
            else SWEEPS / FINAL
        methods[str(name)] = {"label": str(spec["label"]), "set": dict(spec["set"]),
                              "tune": str((path.parent / str(spec["tune"])).resolve()),
                              "final": str(final)}
    return methods


def choose(tune: pd.DataFrame) -> dict[str, Any]:
    """The tuned setting: the complete point with the best final balanced validation
    accuracy (the first listed wins a tie); only the keys of ``TUNED`` that were swept."""
    done = tune[(tune["status"] == "complete") & tune[SELECTION].notna()]
    if done.empty:
        raise InputError("no tuning point completed with a validation accuracy (is "
                         "data.validation_fraction above 0?)")
    best = done.loc[done[SELECTION].idxmax()]  # idxmax returns the first maximum
    return {key: _plain(best[key]) for key in TUNED if key in tune.columns}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def run_study(out: Path, methods_file: Path | None = None, only: Sequence[str] = (),
              backend: str = "local", workers: int | None = 1,
              overrides: Sequence[tuple[str, Any]] = ()) -> dict:
    """Tune and measure every method (``only``: a subset); returns what ``study.json``
    holds."""
    from orbitfl.sweep_runner import run_sweep

    methods = load_methods(methods_file)
    unknown = [m for m in only if m not in methods]
    if unknown:
        raise InputError(f"--only: unknown method {unknown[0]!r}; known: {', '.join(methods)}")
    chosen = [m for m in methods if not only or m in only]
    out.mkdir(parents=True, exist_ok=True)
    record = _load_record(out)
    record["methods"].update({m: methods[m] for m in chosen})
    record["overrides"] = [[k, v] for k, v in overrides]
    ray_started = _start_ray(backend, workers)
    try:
        for name in chosen:
            method = methods[name]
            base = list(overrides) + list(method["set"].items())
            started = time.perf_counter()
            tune = run_sweep(Path(method["tune"]), out / "tune" / name, backend, workers,
                             overrides=base)
            setting = choose(tune)
            record["choices"][name] = setting
            run_sweep(Path(method["final"]), out / "final" / name, backend, workers,
                      overrides=base + list(setting.items()))
            record["wall_s"][name] = time.perf_counter() - started
            _write_record(out, record)
            print(f"study: {name}: {setting} ({record['wall_s'][name]:.0f} s)",
                  file=sys.stderr, flush=True)
        for name in [m for m in chosen if "more" in methods[m]]:
            base = list(overrides) + list(methods[name]["set"].items())
            run_sweep(Path(methods[name]["more"]), out / "more" / name, backend, workers,
                      overrides=base + list(record["choices"][name].items()))
    finally:
        if ray_started:
            import ray
            ray.shutdown()
    return record


def _start_ray(backend: str, workers: int | None) -> bool:
    """One Ray instance for every sweep of the study, so its workers (and their imports of
    torch) are reused from point to point."""
    if backend != "ray":
        return False
    import os

    import ray
    if ray.is_initialized():
        return False
    # Ray lowers its workers' priority by 15 by default; keep them at the driver's own, so
    # that `nice -n 5 python -m orbitfl.study` means what it says
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=workers or 1, include_dashboard=False, log_to_driver=False)
    return True


def _load_record(out: Path) -> dict:
    path = out / "study.json"
    if path.is_file():
        record = read_json_file(path, "study record")
        if not isinstance(record, dict) or not all(
                isinstance(record.get(key), dict) for key in ("methods", "choices", "wall_s")):
            raise InputError(f"{path}: not a study record; delete it to start the study "
                             "afresh")
        return record
    return {"methods": {}, "choices": {}, "wall_s": {}, "selection": SELECTION}


def _write_record(out: Path, record: dict) -> None:
    from orbitfl.atomic import atomic_write_text

    atomic_write_text(out / "study.json", json.dumps(record, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="study folder")
    parser.add_argument("--methods", type=Path, default=None,
                        help="methods file (YAML: name -> label, set, tune); default: the "
                             "study's own")
    parser.add_argument("--only", default="", help="comma-separated method names")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="PATH=VALUE", help="change the base scenario of every sweep")
    args = parser.parse_args(argv)
    try:
        run_study(args.out, args.methods, [m for m in args.only.split(",") if m],
                  args.backend, args.workers, [parse_override(s) for s in args.overrides])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
