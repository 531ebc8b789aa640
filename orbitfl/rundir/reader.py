"""The run directory read back, checked against its one declaration (``columns.py``): every
declared column a table holds has its declared type, and the manifest is an object whose
declared keys have theirs. A directory damaged by a disk, a tool or a hand edit is then one
line naming the file and what is wrong, before any figure is drawn, instead of a traceback
deep in the plotting (or a wrong figure). ``RunDirectory`` is the one reader the API,
``analysis`` and sweeps share: the manifest checked on opening, each table read and checked
when first used, then kept. Pandas only: a report can be made without torch or simpy."""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api import types

from orbitfl.core.errors import InputError, read_user_file, short
from orbitfl.core.user_json import load_json
from orbitfl.rundir.columns import TABLES, declared_column


class RunDirectoryError(ValueError):
    """A folder that is not a complete run directory."""


def _all_null(column: pd.Series) -> bool:
    return bool(column.isna().all())


def _values_are(column: pd.Series, kinds: tuple[type, ...]) -> bool:
    return all(isinstance(v, kinds) for v in column.dropna())


def _python_numbers(column: pd.Series, whole: bool = False) -> bool:
    """Python numbers with ``None`` for nulls: how a frame in memory holds a nullable number
    column before it is written (parquet gives it back as a numeric dtype), so that the
    writer's check of a frame agrees with the reader's check of the file."""
    return types.is_object_dtype(column) and all(
        isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) and
        (not whole or isinstance(v, Integral) or float(v).is_integer()) for v in column.dropna())


def _number(column: pd.Series) -> bool:
    return (types.is_numeric_dtype(column) and not types.is_bool_dtype(column)) or \
        _all_null(column) or _python_numbers(column)


def _integer(column: pd.Series) -> bool:
    """Integers, or floats holding whole numbers (a nullable integer column written with
    NaN for its nulls)."""
    if types.is_integer_dtype(column) or _all_null(column):
        return True
    if types.is_float_dtype(column):
        return bool(np.all(np.isnan(column) | (np.floor(column) == column)))
    return _python_numbers(column, whole=True)


def _boolean(column: pd.Series) -> bool:
    return types.is_bool_dtype(column) or (
        types.is_object_dtype(column) and _values_are(column, (bool, np.bool_)))


def _text(column: pd.Series) -> bool:
    return types.is_string_dtype(column) and _values_are(column, (str,))


def _datetime(column: pd.Series) -> bool:
    return types.is_datetime64_any_dtype(column) or _all_null(column)


def _list(column: pd.Series) -> bool:
    return types.is_object_dtype(column) and _values_are(column, (list, np.ndarray))


# A declared column type (``orbitfl/rundir/columns.py``), without its " or null", as a check of
# the column pandas read; "as swept" (a sweep's parameters) and "object" are anything.
_COLUMN_CHECKS: dict[str, Callable[[pd.Series], bool]] = {
    "float": _number, "int": _integer, "bool": _boolean, "str": _text,
    "datetime (UTC)": _datetime, "list of float": _list, "list of int": _list,
    "list of str": _list, "list of object": _list}


def read_table(path: Path, file: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """The parquet table ``file`` of the run directory ``path``, read and checked
    (``check_table``); missing, empty, truncated or foreign files are one line."""
    try:
        table = pd.read_parquet(path / file)
    except (OSError, ValueError, pa.ArrowException) as err:
        problem = (str(err).splitlines() or [type(err).__name__])[0][:100]
        raise RunDirectoryError(f"{path}: {file} is not a readable parquet table ({problem})"
                                ) from None
    check_table(path, file, table, required)
    return table


def check_table(path: Path, file: str, table: pd.DataFrame,
                required: tuple[str, ...]) -> None:
    """``table`` (read from ``path/file``) has the ``required`` columns when it has rows,
    and each declared column it holds has the declared type (a column without a value, as
    parquet gives back a text column that is null in every row, holds no wrong one)."""
    absent = [c for c in required if c not in table.columns]
    if len(table) and absent:
        raise RunDirectoryError(f"{path}: {file} is not an orbitfl table (no "
                                f"{', '.join(absent)} column)")
    for name in table.columns:
        try:
            declared = declared_column(file, str(name)).dtype.removesuffix(" or null")
        except KeyError:
            continue  # a column of a newer or older orbitfl: the report does not read it
        check = _COLUMN_CHECKS.get(declared)
        if check is not None and not _all_null(table[name]) and not check(table[name]):
            raise RunDirectoryError(f"{path}: {file}: column {short(str(name))} holds "
                                    f"{table[name].dtype} values, declared {declared}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


_JSON_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str), "int": _is_int, "float": _is_number,
    "object": lambda v: isinstance(v, dict),
    "list of str": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "list of int": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
    "list of object": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v)}
# The summary keys a report shows, and their types (the rest of the summary is not read).
SUMMARY = {"rounds_completed": "int", "final_accuracy": "float or null"}


def _json_type_ok(value: Any, declared: str) -> bool:
    if value is None and declared.endswith(" or null"):
        return True
    check = _JSON_CHECKS.get(declared.removesuffix(" or null"))
    return check is None or check(value)


def check_manifest(path: Path, manifest: Any) -> dict:
    """``manifest`` (parsed from ``path/manifest.json``) is an object with a summary, and
    every declared key it holds has its declared type."""
    if not isinstance(manifest, dict):
        raise RunDirectoryError(f"{path}: manifest.json is not an orbitfl run manifest (a "
                                f"JSON {type(manifest).__name__}, not an object)")
    summary = manifest.get("summary")
    if not isinstance(summary, dict) or any(key not in summary for key in SUMMARY):
        raise RunDirectoryError(f"{path}: manifest.json is not an orbitfl run manifest (no "
                                f"summary with {', '.join(SUMMARY)})")
    fields = {f"summary.{key}": (summary[key], declared) for key, declared in SUMMARY.items()}
    fields.update({key: (manifest[key], column.dtype)
                   for key, column in ((c.name, c) for c in TABLES["manifest.json"].columns)
                   if key in manifest})
    for key, (value, declared) in fields.items():
        if not _json_type_ok(value, declared):
            raise RunDirectoryError(f"{path}: manifest.json: {key} is {short(value)}, "
                                    f"declared {declared}")
    return manifest


# The files without which a folder is not a run directory.
REQUIRED_FILES = ("manifest.json", "rounds.parquet", "transfers.parquet", "contacts.parquet")


def read_manifest(path: Path) -> dict:
    """``path/manifest.json``, read with a bounded depth and size and checked
    (``check_manifest``): any reader error is one ``RunDirectoryError`` line."""
    try:
        text = read_user_file(path / "manifest.json", "run manifest")
    except InputError as err:
        raise _manifest_error(path, err) from None
    return parse_manifest(path, text)


def parse_manifest(path: Path, text: str) -> dict:
    """The manifest ``text`` of the run directory ``path``, parsed with a bounded depth and
    checked, as ``read_manifest`` reads the file (the writer checks its text with this
    before writing it)."""
    try:
        manifest = load_json(text, str(path / "manifest.json"))
    except InputError as err:
        raise _manifest_error(path, err) from None
    return check_manifest(path, manifest)


def _manifest_error(path: Path, err: InputError) -> RunDirectoryError:
    problem = str(err).removeprefix(str(path / "manifest.json"))
    return RunDirectoryError(f"{path}: manifest.json{problem[:120]}")


class RunDirectory:
    """A complete run directory: its manifest, checked on opening, and its tables, each read
    and checked when first asked for and then kept (never read twice). ``required`` names
    the columns a table must have when it has rows (the reader's own use of it)."""

    def __init__(self, path: Path, required: Mapping[str, tuple[str, ...]] | None = None):
        if not path.is_dir():
            raise RunDirectoryError(f"{path}: not a run directory (" +
                                    ("not a folder)" if path.exists() else "no such folder)"))
        missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
        if missing:
            raise RunDirectoryError(f"{path}: not a complete run directory (missing "
                                    f"{', '.join(missing)})")
        self.path = path
        self.manifest = read_manifest(path)
        self._required = dict(required or {})
        self._tables: dict[str, pd.DataFrame] = {}

    def has(self, name: str) -> bool:
        """Whether the table ``name`` (``rounds``, ``power``...) was written."""
        return (self.path / f"{name}.parquet").is_file()

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name``, read and checked on first use."""
        if name not in self._tables:
            self._tables[name] = read_table(self.path, f"{name}.parquet",
                                            self._required.get(name, ()))
        return self._tables[name]
