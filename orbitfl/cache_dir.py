"""Where orbitfl keeps what it can recompute (contact plans, rendered tiles)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$ORBITFL_CACHE_DIR``, else ``$XDG_CACHE_HOME/orbitfl``, else ``~/.cache/orbitfl``."""
    if os.environ.get("ORBITFL_CACHE_DIR"):
        return Path(os.environ["ORBITFL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "orbitfl"
