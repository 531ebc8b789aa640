"""Contact plans cached on disk by a hash of everything that decides them.

Computing a plan is the expensive physical step and a sweep repeats it with identical
inputs; the key covers the element sets (their exact lines and the satellites' names, which
the plan's rows carry), the stations (position and mask), the epoch, the horizon and the
solver settings, plus a version to bump whenever the algorithm changes its answers.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from orbitfl.core.cache_dir import default_cache_dir, entry_path, read_entry, write_entry

from .contacts import WINDOW_COLUMNS, ContactPlan, compute_contacts
from .propagation import Propagator
from .stations import GroundStation

# 2: SI simulation seconds (leap seconds), decay cut-offs; 3: quintic search; 4: rises, sets
# and peaks settled on SGP4 positions (answers move by up to milliseconds), decay closes passes
ALGORITHM_VERSION = 4


def plan_key(propagator: Propagator, stations: Sequence[GroundStation], horizon_s: float,
             grid_step_s: float, tolerance_s: float, refraction: bool = False) -> str:
    """The entry's name: a hash of everything that decides the plan (a station's mask
    table and refraction only where used, so plans without them keep their keys)."""
    document = {
        "version": ALGORITHM_VERSION,
        "elements": [[e.name, e.line1, e.line2, list(e.omm_fields or [])]
                     for e in propagator.elements],
        "stations": [[s.id, s.lat_deg, s.lon_deg, s.alt_m, s.min_elevation_deg]
                     for s in stations],
        "epoch": propagator.clock.epoch.isoformat(),
        "horizon_s": horizon_s, "grid_step_s": grid_step_s, "tolerance_s": tolerance_s,
    }
    tables = [[s.id, s.horizon_mask.azimuth_deg, s.horizon_mask.elevation_deg]
              for s in stations if s.horizon_mask is not None]
    if tables:
        document["horizon_masks"] = tables
    if refraction:
        document["refraction"] = True
    return hashlib.sha256(json.dumps(document, default=str).encode()).hexdigest()


def cached_contacts(propagator: Propagator, stations: Sequence[GroundStation],
                    horizon_s: float, grid_step_s: float = 90.0, tolerance_s: float = 1e-3,
                    cache_dir: Path | None = None, refraction: bool = False,
                    **kwargs) -> tuple[ContactPlan, bool]:
    """The plan, and whether it came from the cache. ``cache_dir=None`` uses the default.
    An entry is used only when its checksum matches and it is a plan of these satellites
    and stations (``orbitfl/core/cache_dir.py``); otherwise it is rebuilt."""
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    path = entry_path(directory, "contacts", plan_key(propagator, stations, horizon_s,
                                                      grid_step_s, tolerance_s, refraction))
    windows = read_entry(path, lambda payload: _checked_windows(
        pd.read_parquet(io.BytesIO(payload)), propagator, stations, horizon_s))
    if windows is not None:
        return ContactPlan(windows, horizon_s), True
    plan = compute_contacts(propagator, stations, horizon_s, grid_step_s, tolerance_s,
                            refraction=refraction, **kwargs)
    buffer = io.BytesIO()
    plan.windows.to_parquet(buffer, index=False)
    write_entry(path, buffer.getvalue())
    return plan, False


def _checked_windows(windows: pd.DataFrame, propagator: Propagator,
                     stations: Sequence[GroundStation], horizon_s: float) -> pd.DataFrame:
    """``windows`` if they are a plan of these satellites and stations within the horizon
    (the columns ``compute_contacts`` writes, names matching indices, finite ordered
    times); a ``ValueError`` saying what is wrong otherwise."""
    if list(windows.columns) != WINDOW_COLUMNS:
        raise ValueError(f"columns {list(windows.columns)}")
    names = [e.name for e in propagator.elements]
    index = windows["sat_index"].to_numpy()
    if len(windows) and (not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or
                         index.max() >= len(names)):
        raise ValueError("satellite indices out of range")
    if [names[i] for i in index] != windows["satellite"].tolist() or \
            not set(windows["station"]) <= {s.id for s in stations}:
        raise ValueError("satellites or stations of another plan")
    times = windows[["start_s", "end_s", "duration_s", "max_elevation_deg",
                     "max_elevation_s"]].to_numpy(dtype=float)
    start, end = times[:, 0], times[:, 1]
    if not np.isfinite(times).all() or (start > end).any() or (start < 0).any() or \
            (end > horizon_s + 1.0).any():
        raise ValueError("times not finite or outside the horizon")
    return windows
