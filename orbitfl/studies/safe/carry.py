"""A study's finished runs, carried from one machine to the next in its shipped tables.

A study of hundreds of 400-round runs spans sittings, and a sitting's machine may not keep
the run folders of the last. The export ships every finished run's results (``docs/
safe-study-*-data``, with each run's scenario hash); ``--carry DATA`` (driver and export)
takes them back: a point whose scenario (its content hash) and code (``code_sha256``) match a
shipped run is not run again (``run_spec``'s carried rows); the driver reads its tuning
score or its curve from DATA, and the export ships it again beside the new runs.

Nothing is taken unverified: DATA must be a study record of this very code, each table must
read with the columns a carried run needs, its scenario hashes must be well formed and
unique, and a run stands only for the point of its own scenario hash."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd

from orbitfl.core.code_identity import code_sha256
from orbitfl.core.errors import InputError
from orbitfl.rundir.reader import RunDirectoryError, read_table
from orbitfl.studies.safe.record import load_record

HASH = "scenario_sha256"   # the content hash of a run's scenario, in runs and tuning
KEYS = ["network", "factor", "method", "seed"]   # a measured run, in every table
# what a sweep row of a carried run may not hold: the runner gives a point its own
NOT_RESULTS = {*KEYS, "status", HASH}
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class Carry:
    """The runs a study folder does not hold but its shipped tables do, by scenario hash:
    sweep rows for the runner, tuning scores, and measured runs' rows, curves and
    diagnostics for the driver and the export."""

    path: Path | None = None
    code: str = ""
    scored_by: tuple[int, str] = (0, "")   # the tuning scores' (selection_rounds, task)
    rows: dict[str, dict] = dataclasses.field(default_factory=dict)
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    curves: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    diagnostics: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls, path: Path, this_code: bool = True) -> Carry:
        """The shipped tables in ``path``, checked (one-line ``InputError`` otherwise).
        ``this_code``: the runs must be this code's, as the driver needs to reuse them; the
        export, which may run from any checkout, checks instead that the carry's runs and
        the study folder's share one code (``export.one_code``)."""
        path = Path(path)
        record = load_record(path)
        if not record:
            raise InputError(f"--carry {path}: no study.json there (the export of a study)")
        code, this = str(record.get("code_sha256", "")), code_sha256()
        if this_code and code != this:
            raise InputError(
                f"--carry {path}: its runs were computed by orbitfl code "
                f"{code[:12] or '(none recorded)'}, this is {this[:12]}; run the driver from "
                "a checkout of the commit that computed them (the study's notes name it)")
        try:   # an empty table (a sitting that measured nothing) has only its keys
            runs, tuning, curves, diagnostics = (
                _with(read_table(path, f"{name}.parquet", required), required)
                for name, required in (("runs", (*KEYS, "status", HASH, "wall_s")),
                                       ("tuning", ("seed", HASH, "score", "wall_s")),
                                       ("curves", (*KEYS, "round")),
                                       ("diagnostics", tuple(KEYS))))
        except RunDirectoryError as err:
            raise InputError(f"--carry {path}: {err}") from None
        runs = runs[runs["status"] == "complete"]   # a sitting's interrupted runs carry nothing
        for name, table in (("runs", runs), ("tuning", tuning)):
            _check_hashes(path / f"{name}.parquet", table)
        rows = {h: {"wall_s": float(w), "code_sha256": code}
                for h, w in zip(tuning[HASH], tuning["wall_s"])}
        scores = {h: float(s) for h, s in zip(tuning[HASH], tuning["score"])}
        results = [c for c in runs.columns if c not in NOT_RESULTS]
        of_key = {tuple(r[k] for k in KEYS): r[HASH] for r in runs.to_dict("records")}
        for record_row in runs.to_dict("records"):
            rows[record_row[HASH]] = {**{c: record_row[c] for c in results},
                                      "code_sha256": code}
        protocol = record.get("protocol", {})
        scored_by = (int(protocol.get("selection_rounds", 0)),
                     str(protocol.get("task", "classification")))
        return cls(path, code, scored_by, rows, scores, _by_run(curves, of_key),
                   _by_run(diagnostics, of_key))

    def check_scores(self, selection_rounds: int, task: str) -> None:
        """Refuse tuning scores that mean another thing than this study's would: a mean over
        another number of rounds, or of another task's score."""
        if self.scores and self.scored_by != (selection_rounds, task):
            raise InputError(
                f"--carry {self.path}: its tuning scores are {self.scored_by[1]} scores over "
                f"the last {self.scored_by[0]} rounds, this study's {task} scores over the "
                f"last {selection_rounds}; carry them into a study of the same protocol")

    def summary(self) -> dict:
        """What a study record keeps of it: where from, and how many runs of each kind."""
        return {"data": str(self.path), "code_sha256": self.code,
                "tuning_runs": len(self.scores), "measured_runs": len(self.curves)}


NO_CARRY = Carry()


def _with(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``table`` with ``columns`` (the reader requires them of a table with rows, so only
    an empty one gains them)."""
    return table.reindex(columns=[*table.columns, *(c for c in columns if c not in table)])


def _check_hashes(file: Path, table: pd.DataFrame) -> None:
    """Each run's scenario hash is a SHA-256 in hex, and no run is shipped twice."""
    bad = [h for h in table[HASH] if not isinstance(h, str) or not _HEX.fullmatch(h)]
    if bad:
        raise InputError(f"--carry {file}: {HASH} {str(bad[0])[:20]!r} is not a SHA-256")
    twice = table[HASH][table[HASH].duplicated()]
    if len(twice):
        raise InputError(f"--carry {file}: the run of scenario {twice.iloc[0][:12]} is "
                         "shipped twice")


def _by_run(table: pd.DataFrame, of_key: dict[tuple, str]) -> dict[str, pd.DataFrame]:
    """A per-round table split by run, each part under its run's scenario hash (a row of no
    shipped run is refused: it would be read as nobody's)."""
    parts: dict[str, pd.DataFrame] = {}
    if table.empty:
        return parts
    for key, rows in table.groupby(KEYS, sort=False):
        scenario = of_key.get(tuple(key))
        if scenario is None:
            raise InputError(f"--carry: rows of {dict(zip(KEYS, key))} belong to no run of "
                             "runs.parquet")
        parts[scenario] = rows.drop(columns=KEYS).reset_index(drop=True)
    return parts
