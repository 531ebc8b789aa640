"""The one run model: a run directory as the report, the dashboard, sweeps and the Python
API (``orbitfl.api.Run``, a thin subclass) all see it. ``Run`` is a lazy view over the
reader's ``RunDirectory`` (``orbitfl/rundir/reader.py``): the manifest checked on opening,
each table read and checked against its declared columns when first asked for, then kept.
It holds data only: how a figure draws a run (its label, colour and second cue) is
``styled.StyledRun``'s, and what is computed from the tables is ``run_data``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, TypeVar

import numpy as np
import pandas as pd

from orbitfl.rundir.reader import REQUIRED_FILES, RunDirectory, RunDirectoryError

__all__ = ["Run", "RunDirectoryError", "load_run"]  # the error a bad run directory raises

MB = 1e6

# The tables of a run directory (orbitfl/rundir/columns.py); a run always has ``ALWAYS``,
# the others may be absent (None).
TABLES = ("rounds", "contacts", "transfers", "clients", "partition", "power", "events",
          "tracks", "stations", "safe_diagnostics")
ALWAYS = tuple(f.removesuffix(".parquet") for f in REQUIRED_FILES if f.endswith(".parquet"))

# The columns the report reads; a table with rows but without them is not orbitfl's.
COLUMNS = {
    "rounds": ("sim_time_s", "accuracy", "few_shot_accuracy", "per_class_accuracy",
               "bytes_up", "bytes_down"),
    "transfers": ("kind", "bytes", "src", "dst", "status"),
    "contacts": ("satellite", "station", "start_s", "duration_s"),
    "power": ("satellite", "t_s", "soc"),
    "tracks": ("satellite", "lat_deg", "lon_deg"),
    "stations": ("id", "lat_deg", "lon_deg"),
    "clients": ("job", "selected_s", "payload_received_s", "training_s",
                "update_delivered_s", "aggregated"),
}


class _Slot:
    """A table as an attribute (``run.rounds``), read on first use; assigning replaces it
    (``run_data.derived`` then works its numbers out again)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, run: Run, frame: pd.DataFrame | None) -> None:
        run._tables[self.name] = frame


class _Table(_Slot):
    """A table every run has."""

    def __get__(self, run: Run, owner: type | None = None) -> pd.DataFrame:
        return run.table(self.name)


class _OptionalTable(_Slot):
    """A table a run may not have written: None then."""

    def __get__(self, run: Run, owner: type | None = None) -> pd.DataFrame | None:
        return run.table(self.name) if run.has(self.name) else None


_R = TypeVar("_R", bound="Run")


class Run:
    """A run: its folder, manifest and name (the scenario's, else the folder's), and its
    tables as DataFrames (``TABLES``, as attributes or ``table(name)``). Over a
    ``RunDirectory`` (``Run.open``) each table is read and checked when first used; a run
    made of ``tables`` in memory (a study's shipped curves, a test's hand-made frames) reads
    nothing. A damaged table is a one-line ``RunDirectoryError`` naming it."""

    rounds, transfers, contacts = _Table(), _Table(), _Table()
    clients, partition, power = _OptionalTable(), _OptionalTable(), _OptionalTable()
    events, tracks, stations = _OptionalTable(), _OptionalTable(), _OptionalTable()
    safe_diagnostics = _OptionalTable()

    def __init__(self, path: Path, manifest: dict, *, name: str | None = None,
                 directory: RunDirectory | None = None,
                 tables: Mapping[str, pd.DataFrame | None] | None = None) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.name = name or _scenario_name(manifest) or self.path.name
        self._directory = directory
        self._tables: dict[str, pd.DataFrame | None] = dict(tables or {})
        self._derived: dict = {}  # run_data.derived's numbers, worked out once

    @classmethod
    def open(cls: type[_R], path: str | Path) -> _R:
        """The run directory at ``path``, its manifest checked now, its tables (checked
        for the columns the report reads, ``COLUMNS``) when first used."""
        directory = RunDirectory(Path(path), COLUMNS)
        return cls(directory.path, directory.manifest, directory=directory)

    def has(self, name: str) -> bool:
        """Whether the run has the table ``name`` (``rounds``, ``power``...)."""
        if name in self._tables:
            return self._tables[name] is not None
        return self._directory is not None and self._directory.has(name)

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name``, read and checked on first use (``TABLES``)."""
        if name not in TABLES:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        if name not in self._tables and self._directory is not None:
            self._tables[name] = self._directory.table(name)
        frame = self._tables.get(name)
        if frame is None:
            raise RunDirectoryError(f"{self.path}: no {name}.parquet in the run")
        return frame

    def read(self: _R, names: tuple[str, ...]) -> _R:
        """The tables ``names`` that the run has, read and checked now (a report checks
        everything it draws before drawing any of it); the run back."""
        for name in names:
            if name in ALWAYS or self.has(name):
                self.table(name)
        return self

    @property
    def evaluated(self) -> pd.DataFrame:
        return self.rounds[self.rounds["accuracy"].notna()]

    @property
    def total_bytes(self) -> pd.Series:
        return (self.rounds["bytes_up"] + self.rounds["bytes_down"]) / MB

    @property
    def energy_kj(self) -> pd.Series:
        """Cumulative training and radio energy (older runs without it: NaN)."""
        energy = self.rounds["energy_j"] if "energy_j" in self.rounds else np.nan
        return pd.Series(energy, index=self.rounds.index, dtype=float) / 1e3

    def __repr__(self) -> str:
        return f"Run({self.name!r}, {str(self.path)!r})"


def _scenario_name(manifest: dict) -> str | None:
    scenario = manifest.get("scenario")
    name = scenario.get("name") if isinstance(scenario, dict) else None
    return name if isinstance(name, str) and name else None


def load_run(path: Path) -> Run:
    """A run directory as the report reads it: the manifest and every table a report
    draws (``COLUMNS``) checked now, so that missing, damaged or foreign files are one
    ``RunDirectoryError`` line before any figure is drawn."""
    return Run.open(path).read(tuple(COLUMNS))
