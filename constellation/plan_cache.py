"""Contact plans cached on disk by a hash of everything that decides them.

Computing a plan is the expensive physical step and a sweep repeats it with identical
inputs; the key covers the element sets (their exact lines and the satellites' names, which
the plan's rows carry), the stations (position and mask), the epoch, the horizon and the
solver settings, plus a version to bump whenever the algorithm changes its answers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from orbitfl.atomic import atomic_write
from orbitfl.cache_dir import default_cache_dir

from .contacts import ContactPlan, compute_contacts
from .propagation import Propagator
from .stations import GroundStation

ALGORITHM_VERSION = 3  # 2: SI simulation seconds (leap seconds), decay cut-offs; 3: quintic search


def plan_key(propagator: Propagator, stations: Sequence[GroundStation], horizon_s: float,
             grid_step_s: float, tolerance_s: float) -> str:
    document = {
        "version": ALGORITHM_VERSION,
        "elements": [[e.name, e.line1, e.line2, list(e.omm_fields or [])]
                     for e in propagator.elements],
        "stations": [[s.id, s.lat_deg, s.lon_deg, s.alt_m, s.min_elevation_deg]
                     for s in stations],
        "epoch": propagator.clock.epoch.isoformat(),
        "horizon_s": horizon_s, "grid_step_s": grid_step_s, "tolerance_s": tolerance_s,
    }
    return hashlib.sha256(json.dumps(document, default=str).encode()).hexdigest()


def cached_contacts(propagator: Propagator, stations: Sequence[GroundStation],
                    horizon_s: float, grid_step_s: float = 90.0, tolerance_s: float = 1e-3,
                    cache_dir: Path | None = None, **kwargs) -> tuple[ContactPlan, bool]:
    """The plan, and whether it came from the cache. ``cache_dir=None`` uses the default."""
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    path = directory / "contacts" / (plan_key(propagator, stations, horizon_s, grid_step_s,
                                              tolerance_s) + ".parquet")
    if path.is_file():
        try:
            return ContactPlan(pd.read_parquet(path), horizon_s), True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
    plan = compute_contacts(propagator, stations, horizon_s, grid_step_s, tolerance_s, **kwargs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda partial: plan.windows.to_parquet(partial, index=False))
    except OSError:
        pass  # a read-only or full cache only costs speed
    return plan, False
