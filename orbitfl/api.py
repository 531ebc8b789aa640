"""The Python API: what the ``orbitfl`` command does, from a notebook or a script.

    import orbitfl
    scenario = orbitfl.load_scenario("scenarios/quickstart.yaml")
    runs = {s: orbitfl.run(scenario.with_overrides({"fl.strategy": s}), out=f"runs/{s}")
            for s in ("fedavg", "safe")}
    runs["safe"].rounds[["round", "sim_time_s", "accuracy", "bytes_down"]]
    study = orbitfl.sweep(scenario, {"fl.strategy": ["fedavg", "safe"]}, replicates=5,
                          workers=2)
    study.summary        # per group and metric: mean, 95 % interval, time to target
    study.report("report/")

Scenarios built from a mapping need no file (give absolute element-file paths, or
``base_dir`` for relative ones). Bad input raises ``orbitfl.core.errors.InputError`` with the
same one-line messages as the command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from orbitfl.analysis.run_model import ALWAYS
from orbitfl.analysis.run_model import Run as _Run
from orbitfl.core.errors import InputError
from orbitfl.rundir.reader import RunDirectoryError, read_table
from orbitfl.scenario import Scenario, scenario_from_mapping
from orbitfl.scenario import load_scenario as _load_file


def load_scenario(source: str | Path | Mapping[str, Any],
                  overrides: Mapping[str, Any] | None = None,
                  base_dir: str | Path | None = None) -> Scenario:
    """A validated scenario from a YAML file or a mapping, with ``{"fl.rounds": 3}``-style
    overrides applied before validation."""
    changes = list((overrides or {}).items())
    if isinstance(source, Mapping):
        return scenario_from_mapping(dict(source), overrides=changes,
                                     base_dir=None if base_dir is None else Path(base_dir))
    return _load_file(source, changes)


def contacts(scenario: Scenario | str | Path) -> pd.DataFrame:
    """The scenario's contact plan (one row per window), as ``orbitfl contacts`` writes it
    (a scenario without ``fl`` will do: a contact plan needs no learning or imagery)."""
    from orbitfl.engine.prepare import prepare
    from orbitfl.engine.world import build_world

    return build_world(prepare(scenario, purpose="contacts")).contacts_table()


def contact_report(scenario: Scenario | str | Path, out: str | Path) -> Path:
    """Write the contact-plan report (``orbitfl contacts --report``) into the folder
    ``out``: pass durations, revisit gaps, passes against antennas, data volume per station
    and day, rate and MODCOD over a pass; tables, figures and ``contact-report.md``."""
    from orbitfl.engine.plan_report import check_contact_report_dir, write_report
    from orbitfl.engine.prepare import prepare
    from orbitfl.engine.world import build_world

    check_contact_report_dir(Path(out))
    write_report(build_world(prepare(scenario, purpose="contacts")), Path(out))
    return Path(out)


def run(scenario: Scenario | str | Path, out: str | Path | None = None,
        progress: bool = True) -> "Run":
    """Simulate and write the run directory (``runs/<name>-<UTC>`` unless ``out``). With
    ``progress``, progress bars (on a terminal or in a notebook) and, unless the caller has
    configured ``logging``, the status lines on stderr; the lines are always logged to the
    ``orbitfl`` logger."""
    from orbitfl.core.progress import Bars, status_lines
    from orbitfl.engine.runner import run as run_scenario

    with status_lines(progress):
        summary = run_scenario(scenario, Path(out) if out is not None else None,
                               progress=Bars(progress))
    return open_run(summary.run_dir)


class Run(_Run):
    """A complete run directory: ``orbitfl.analysis``'s one run model (``run_model.Run``:
    its manifest, and its tables as DataFrames, each read and checked against its declared
    columns when first used, as ``orbitfl report`` checks its own), with the API's
    conveniences: a damaged table is an ``InputError`` naming it, ``summary``, ``repr``."""

    def table(self, name: str) -> pd.DataFrame:
        try:
            return super().table(name)
        except RunDirectoryError as err:
            raise InputError(str(err)) from None

    @property
    def summary(self) -> dict:
        return self.manifest["summary"]

    def __repr__(self) -> str:
        s = self.summary
        return (f"Run({str(self.path)!r}: {s['rounds_completed']} rounds, final accuracy "
                f"{s['final_accuracy']:.3f}, {s['sim_time_s'] / 3600:.1f} h simulated)")


def open_run(path: str | Path) -> Run:
    """An existing run directory, checked as ``orbitfl report`` checks it: the manifest and
    the tables every report reads now (each read once), the others when first used."""
    try:
        return Run.open(path).read(ALWAYS)
    except RunDirectoryError as err:
        raise InputError(str(err)) from None


def sweep(base: Scenario | str | Path | Mapping[str, Any], parameters: Mapping[str, Any],
          replicates: int | None = None, seeds: list[int] | None = None, mode: str = "grid",
          backend: str = "local", workers: int | None = None, out: str | Path | None = None,
          name: str | None = None, progress: bool = True) -> "Sweep":
    """``orbitfl sweep`` without a sweep file: ``base`` (a scenario, its file or a mapping)
    over the ``parameters`` (YAML path -> list of values, ``mode`` grid or zip), each group
    of values run ``replicates`` times (seeds derived from the point's seed) or once per
    seed of ``seeds``; into ``out`` (``runs/sweeps/<name>`` unless given; ``name``: the
    base's). Points already complete there are reused, interrupted ones resume. Relative
    paths in swept values are relative to the current folder."""
    from orbitfl.core.progress import Bars, status_lines
    from orbitfl.sweeps.runner import default_out, run_spec, sweep_spec

    scenario = base if isinstance(base, Scenario) else load_scenario(base)
    document: dict[str, Any] = {"mode": mode, "parameters": {
        key: list(values) if isinstance(values, (list, tuple)) else values
        for key, values in dict(parameters).items()}}
    for key, value in (("replicates", replicates), ("seeds", seeds)):
        if value is not None:
            document[key] = list(value) if isinstance(value, tuple) else value
    if name is not None:
        document["name"] = name
    spec = sweep_spec(scenario, document, "<sweep>", Path.cwd(), scenario.name)
    folder = Path(out) if out is not None else default_out(spec.name)
    with status_lines(progress):
        run_spec(spec, folder, backend, workers, progress=Bars(progress))
    return open_sweep(folder)


@dataclass
class Sweep:
    """A sweep directory: ``table`` (``sweep.parquet``, one row per run) and ``summary``
    (``sweep_summary.parquet``, per group and metric), read when first used and checked
    against their declared columns by the run-directory reader (a damaged table is an
    ``InputError`` naming it)."""

    path: Path
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def _read(self, file: str) -> pd.DataFrame:
        if file not in self._tables:
            try:
                self._tables[file] = read_table(self.path, file)
            except RunDirectoryError as err:
                raise InputError(str(err)) from None
        return self._tables[file]

    @property
    def table(self) -> pd.DataFrame:
        return self._read("sweep.parquet")

    @property
    def summary(self) -> pd.DataFrame:
        return self._read("sweep_summary.parquet")

    def report(self, out: str | Path, formats: tuple[str, ...] = ("png",),
               force: bool = False) -> list[Path]:
        """``orbitfl report SWEEP_DIR --out OUT``: the sweep's figures and dashboard, by the
        function the command uses; the files written. A folder that is not empty and holds
        no earlier report is refused unless ``force``."""
        from orbitfl.analysis.report_folder import is_report
        from orbitfl.analysis.sweep_report import write_sweep_report
        from orbitfl.rundir.writer import check_report_dir

        out = Path(out)
        check_report_dir(out, "report folder", is_report, force, "force=True")
        try:
            return write_sweep_report(self.path, out, tuple(formats))
        except RunDirectoryError as err:
            raise InputError(str(err)) from None

    def __repr__(self) -> str:
        table = self.table
        groups = table["group"].nunique() if "group" in table else len(table)
        complete = int((table["status"] == "complete").sum())
        return (f"Sweep({str(self.path)!r}: {len(table)} runs in {groups} groups, "
                f"{complete} complete)")


def open_sweep(path: str | Path) -> Sweep:
    """An existing sweep directory (its ``sweep.parquet`` and ``sweep_summary.parquet``)."""
    path = Path(path)
    missing = [f for f in ("sweep.parquet", "sweep_summary.parquet")
               if not (path / f).is_file()]
    if missing:
        raise InputError(f"{path}: not a sweep directory (no {missing[0]}; written by "
                         "orbitfl sweep)")
    return Sweep(path)
