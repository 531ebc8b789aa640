"""JSON from files a user hands orbitfl (element sets, run directories, sweep and study
records), bounded: the standard parser recurses once per nesting level, so a few kilobytes
of brackets exhaust the stack (``RecursionError``), and even a document it can parse may be
too deep for the code that walks it. Depth is counted before parsing; every error of the
parser's family is an ``InputError`` naming the file. Imports only the kernel: every layer
may use it."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from orbitfl.core.errors import InputError, read_user_file
from orbitfl.core.limits import MAX_ELEMENT_FILE_BYTES, MAX_JSON_DEPTH

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)  # brackets inside strings do not nest
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (valid JSON or not)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def load_json(text: str, where: str) -> Any:
    """The JSON document in ``text`` (read from ``where``), or a one-line ``InputError``:
    not JSON (with line and column), nested deeper than ``MAX_JSON_DEPTH``, or a number
    Python refuses to build (an integer of thousands of digits)."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InputError(f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}:{err.lineno}:{err.colno}: invalid JSON ({err.msg})") \
            from None
    except (ValueError, RecursionError) as err:
        raise InputError(f"{where}: cannot read the JSON ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:100] if str(err) else 'no detail'})") \
            from None


def read_json_file(path: Path, what: str, max_bytes: int = MAX_ELEMENT_FILE_BYTES) -> Any:
    """``load_json`` of a file, with ``read_user_file``'s checks (missing, unreadable, not
    UTF-8, too large) first."""
    return load_json(read_user_file(path, what, max_bytes), str(path))
