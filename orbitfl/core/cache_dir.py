"""Where orbitfl keeps what it can recompute (contact plans, rendered tiles), and how an
entry is written and read back: with a SHA-256 of its payload in a header, so that flipped
bytes, a truncated or empty file, or a file of another format are rebuilt (with one warning
line) instead of being used silently. Standard library only: every layer may use it."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, TypeVar

from orbitfl.core.atomic import atomic_write

CACHE_FORMAT = 2  # 2: a header with the payload's SHA-256 (1: the bare payload)
_MAGIC = b"orbitfl-cache\n"
_HEADER = len(_MAGIC) + 64 + 1  # magic, the hex digest, a newline
logger = logging.getLogger(__name__)
T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$ORBITFL_CACHE_DIR``, else ``$XDG_CACHE_HOME/orbitfl``, else ``~/.cache/orbitfl``."""
    if os.environ.get("ORBITFL_CACHE_DIR"):
        return Path(os.environ["ORBITFL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "orbitfl"


def entry_path(cache_dir: Path, kind: str, key: str) -> Path:
    """The file of the entry ``key`` among ``kind`` (``contacts``, ``tiles``); the format
    version is part of the name, so entries of an older format are never read."""
    return Path(cache_dir) / kind / f"{key}.v{CACHE_FORMAT}.cache"


def write_entry(path: Path, payload: bytes) -> None:
    """``payload`` with its checksum, whole or not at all; a read-only or full cache only
    costs speed, so a failed write is not an error."""
    digest = hashlib.sha256(payload).hexdigest().encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda partial: partial.write_bytes(_MAGIC + digest + b"\n" +
                                                                payload))
    except OSError:
        pass


def read_entry(path: Path, decode: Callable[[bytes], T]) -> T | None:
    """The entry at ``path`` decoded, or None when there is none or it cannot be trusted:
    a header or checksum that does not match (flipped bytes, truncation, an empty file),
    or a payload ``decode`` refuses (any exception: the wrong shape or kind of content).
    A refused entry is removed, with one warning line, and its caller rebuilds it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        _refuse(path, f"unreadable ({err.strerror or type(err).__name__})")
        return None
    payload = data[_HEADER:]
    if not data.startswith(_MAGIC) or len(data) < _HEADER or data[_HEADER - 1] != ord("\n"):
        _refuse(path, "empty, truncated or not an orbitfl cache entry")
        return None
    if hashlib.sha256(payload).hexdigest().encode() != data[len(_MAGIC):_HEADER - 1]:
        _refuse(path, "its contents do not match their checksum")
        return None
    try:
        return decode(payload)
    except Exception as err:  # whatever the decoder raises: the entry is rebuilt
        _refuse(path, f"its contents are not what this entry holds ({err})"[:200])
        return None


def _refuse(path: Path, why: str) -> None:
    logger.warning(f"cache entry {path} is damaged ({why}); rebuilding it")
    path.unlink(missing_ok=True)
