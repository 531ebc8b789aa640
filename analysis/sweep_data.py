"""A sweep folder as the study report reads it: ``sweep.parquet`` with one row per replicate,
each row in a group (a point of the sweep and its replicates), and the baseline group each
group is compared with.

Sweep tables of every age read the same: a table without a ``group`` column is one row per
point (group = point, replicate 0), except that a swept ``seed`` is the replicate axis (the
groups are the other parameters' values, the replicates their seeds), which is how sweeps
were replicated before ``replicates:`` existed (the seed is then the replicate number, so
groups pair by seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from orbitfl.core.errors import InputError, short
from orbitfl.rundir.reader import read_table

from .run_model import Run, RunDirectoryError, load_run

# Columns of sweep.parquet that describe a replicate, not a swept YAML path.
REPLICATE_COLUMNS = ("group", "replicate", "seed")


class SweepTableError(RunDirectoryError):
    """A sweep folder whose table cannot be read (a ``RunDirectoryError``, so that callers
    of ``orbitfl report`` catch both alike)."""


@dataclass
class Sweep:
    """The sweep table (normalised: ``group``, ``replicate`` and ``seed`` always present),
    its swept parameters (seed excluded when it is the replicate axis) and the groups in
    the sweep's order, each with its parameter values."""

    path: Path
    table: pd.DataFrame
    parameters: list[str]
    groups: list[str]
    values: dict[str, dict[str, object]]
    unreadable: dict[str, str] = field(default_factory=dict)  # point -> why
    _runs: dict[str, Run | None] = field(default_factory=dict, repr=False)
    derived: dict = field(default_factory=dict, repr=False)  # worked out once per report

    def label(self, group: str) -> str:
        """``a=1, b=x``: a group named by its swept values (the group key without any)."""
        values = self.values[group]
        return ", ".join(f"{k}={v}" for k, v in values.items()) if values else group

    def rows(self, group: str) -> pd.DataFrame:
        """The group's replicates, complete or not, in replicate order."""
        return self.table[self.table["group"] == group].sort_values("replicate", kind="stable")

    def complete(self, group: str) -> pd.DataFrame:
        rows = self.rows(group)
        return rows[rows["status"] == "complete"]

    def run_dir(self, point: str) -> Path:
        """Where the sweep keeps the run directory of one replicate."""
        return self.path / "runs" / str(point)

    def run(self, point: str) -> Run | None:
        """One replicate's run directory, read once; None (and the reason kept in
        ``unreadable``, for the report to say) when it is missing or damaged."""
        if point not in self._runs:
            try:
                self._runs[point] = load_run(self.run_dir(point))
            except RunDirectoryError as err:
                self._runs[point] = None
                self.unreadable[point] = str(err)
        return self._runs[point]


def swept_columns(table: pd.DataFrame) -> list[str]:
    """The columns between ``point`` and ``status`` that are swept YAML paths."""
    columns = list(table.columns)
    if "point" not in columns or "status" not in columns:
        return []
    between = columns[columns.index("point") + 1:columns.index("status")]
    return [c for c in between if c not in ("group", "replicate")]


def load_sweep(sweep_dir: Path) -> Sweep:
    """The sweep folder's table, read and checked by the reader (``read_table``) and
    normalised; a one-line ``SweepTableError`` otherwise."""
    sweep_dir = Path(sweep_dir)
    try:  # by the run-directory reader: its declared columns' types checked
        table = read_table(sweep_dir, "sweep.parquet")
    except RunDirectoryError as err:
        raise SweepTableError(str(err)) from None
    missing = [c for c in ("point", "status", "final_accuracy") if c not in table.columns]
    if missing:
        raise SweepTableError(f"{sweep_dir}: sweep.parquet is not an orbitfl sweep table "
                              f"(no {', '.join(missing)} column)")
    return sweep_from_table(sweep_dir, table)


def sweep_from_table(sweep_dir: Path, table: pd.DataFrame) -> Sweep:
    """``table`` with ``group``, ``replicate`` and ``seed`` filled in for tables written
    before replicates, the parameters and each group's values."""
    table = table.reset_index(drop=True).copy()
    swept = swept_columns(table)
    if "group" in table.columns:
        parameters = [c for c in swept if c != "seed"]
    elif "seed" in swept:  # an old replicated sweep: seed is the replicate axis
        parameters = [c for c in swept if c != "seed"]
        keys = table[parameters].astype(str).agg(", ".join, axis=1) if parameters \
            else pd.Series("all", index=table.index)
        table["group"] = keys
        table["replicate"] = _seeds_as_replicates(table)
    else:
        parameters = swept
        table["group"] = table["point"].astype(str)
        table["replicate"] = 0
    if "replicate" not in table.columns:
        table["replicate"] = table.groupby("group", sort=False).cumcount()
    if "seed" not in table.columns:
        table["seed"] = pd.NA
    table["group"] = table["group"].astype(str)
    groups = list(dict.fromkeys(table["group"]))
    values = {g: {p: table.loc[table["group"] == g, p].iloc[0] for p in parameters}
              for g in groups}
    return Sweep(Path(sweep_dir), table, parameters, groups, values)


def _seeds_as_replicates(table: pd.DataFrame) -> pd.Series:
    """The seed as each row's replicate number, so that groups pair by seed (the same seed
    drives the same data and client draws in every group); their order within the group
    where seeds are not distinct whole numbers."""
    seeds = pd.to_numeric(table["seed"], errors="coerce")
    whole = seeds.notna().all() and (seeds == seeds.round()).all()
    if whole and not table.assign(_s=seeds).duplicated(["group", "_s"]).any():
        return seeds.astype("int64")
    return table.groupby("group", sort=False).cumcount()


def parse_baseline(texts: list[str] | None, sweep: Sweep) -> dict[str, object]:
    """``--baseline KEY=VALUE`` (repeatable) as {swept parameter: value}; default: the
    first group's values. The value is read as YAML and must be one the sweep used."""
    if not texts:
        return dict(sweep.values[sweep.groups[0]]) if sweep.groups else {}
    spec: dict[str, object] = {}
    for text in texts:
        key, sep, raw = str(text).partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--baseline {short(text)}: expected KEY=VALUE, a swept "
                             f"parameter and one of its values, e.g. "
                             f"{(sweep.parameters or ['seed'])[0]}=...")
        if key not in sweep.parameters:
            raise InputError(f"--baseline {short(text)}: {short(key)} is not a swept parameter "
                             f"(swept: {', '.join(sweep.parameters) or 'none'})")
        used = list(dict.fromkeys(sweep.values[g][key] for g in sweep.groups))
        match = [v for v in used if _same(v, raw.strip())]
        if not match:
            raise InputError(f"--baseline {short(text)}: no group has {key} = "
                             f"{short(raw.strip())} (values: "
                             f"{', '.join(str(v) for v in used)})")
        spec[key] = match[0]
    return spec


def _same(value: object, raw: str) -> bool:
    """Whether a table value is the one a user typed (``2`` matches 2 and 2.0)."""
    if str(value) == raw:
        return True
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError:
        return False
    if isinstance(parsed, bool) or isinstance(value, bool):
        return parsed is value  # (True == 1 in Python; not a user's meaning)
    try:
        return bool(parsed == value)
    except (TypeError, ValueError):
        return False


def baseline_of(sweep: Sweep, spec: dict[str, object]) -> dict[str, str | None]:
    """Each group's baseline group: the one with the ``spec`` values on its keys and the
    group's own values elsewhere (None where the sweep has no such group). The baseline
    groups themselves map to themselves."""
    by_values = {tuple(str(v) for v in sweep.values[g].values()): g for g in sweep.groups}
    out: dict[str, str | None] = {}
    for group in sweep.groups:
        wanted = {**sweep.values[group], **spec}
        out[group] = by_values.get(tuple(str(wanted[p]) for p in sweep.parameters))
    return out
