"""Files appear whole or not at all: each is written beside its target, then renamed over it.

A leaf module (standard library only), so every layer can write its outputs this way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(temporary)`` into a hidden sibling of ``path``, then rename it over ``path``.

    An interrupted or failed write leaves ``path`` as it was (absent, or its old content),
    never half written; the temporary file is removed either way.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """``text`` (UTF-8) into ``path``, atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
