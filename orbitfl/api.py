"""The Python API: what the ``orbitfl`` command does, from a notebook or a script.

    import orbitfl
    scenario = orbitfl.load_scenario("scenarios/quickstart.yaml")
    runs = {s: orbitfl.run(scenario.with_overrides({"fl.strategy": s}), out=f"runs/{s}")
            for s in ("fedavg", "safe")}
    runs["safe"].rounds[["round", "sim_time_s", "accuracy", "bytes_down"]]

Scenarios built from a mapping need no file (give absolute element-file paths, or
``base_dir`` for relative ones). Bad input raises ``orbitfl.errors.InputError`` with the
same one-line messages as the command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from orbitfl.scenario import Scenario, scenario_from_mapping
from orbitfl.scenario import load_scenario as _load_file

TABLES = ("rounds", "contacts", "transfers", "clients", "partition", "power", "events",
          "tracks", "stations")


def load_scenario(source: str | Path | Mapping[str, Any],
                  overrides: Mapping[str, Any] | None = None,
                  base_dir: str | Path | None = None) -> Scenario:
    """A validated scenario from a YAML file or a mapping, with ``{"fl.rounds": 3}``-style
    overrides applied before validation."""
    changes = list((overrides or {}).items())
    if isinstance(source, Mapping):
        return scenario_from_mapping(dict(source), base_dir=base_dir, overrides=changes)
    return _load_file(source, changes)


def contacts(scenario: Scenario | str | Path) -> pd.DataFrame:
    """The scenario's contact plan (one row per window), as ``orbitfl contacts`` writes it."""
    from orbitfl.prepare import prepare
    from orbitfl.world import build_world

    return build_world(prepare(scenario)).contacts_table()


def run(scenario: Scenario | str | Path, out: str | Path | None = None,
        progress: bool = True) -> "Run":
    """Simulate and write the run directory (``runs/<name>-<UTC>`` unless ``out``). With
    ``progress``, progress bars (on a terminal or in a notebook) and, unless the caller has
    configured ``logging``, the status lines on stderr; the lines are always logged to the
    ``orbitfl`` logger."""
    from orbitfl.progress import Bars, status_lines
    from orbitfl.runner import run as run_scenario

    with status_lines(progress):
        summary = run_scenario(scenario, Path(out) if out is not None else None,
                               progress=Bars(progress))
    return open_run(summary.run_dir)


@dataclass
class Run:
    """A complete run directory: its manifest, and its tables as DataFrames (read once,
    when first used)."""

    path: Path
    manifest: dict
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        if name not in self._tables:
            self._tables[name] = _read_table(self.path, name)
        return self._tables[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self.table(name)
        raise AttributeError(name)

    @property
    def summary(self) -> dict:
        return self.manifest["summary"]


def open_run(path: str | Path) -> Run:
    """An existing run directory, checked as ``orbitfl report`` checks it."""
    from orbitfl.analysis.report import RunDirectoryError, load_run
    from orbitfl.errors import InputError

    try:
        checked = load_run(Path(path))
    except RunDirectoryError as err:
        raise InputError(str(err)) from None
    tables = {"rounds": checked.rounds, "contacts": checked.contacts,
              "transfers": checked.transfers}
    return Run(Path(path), checked.manifest, tables)


def _read_table(path: Path, name: str) -> pd.DataFrame:
    """A table of the run directory at ``path``, read and checked against its declared
    columns as ``orbitfl report`` checks its own (an ``InputError`` naming the file)."""
    from orbitfl.analysis.rundir_check import RunDirectoryError, read_table
    from orbitfl.errors import InputError

    try:
        return read_table(path, f"{name}.parquet")
    except RunDirectoryError as err:
        raise InputError(str(err)) from None
