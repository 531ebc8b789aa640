"""Time to target per group of a sweep, from ``sweep.parquet``'s ``to_<acc>_*`` columns, for
the report's figures and time split: which threshold to report (``--target``), and a
group's Kaplan-Meier median in hours or rounds (a replicate that never reached the
threshold censored at its last time, never dropped).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from orbitfl.core.errors import InputError

from .stats import KaplanMeier, kaplan_meier
from .sweep_data import Sweep
from .sweep_summary import time_to_target_columns

# quantity -> (the to_<acc>_<suffix> column, scale of its values to the report's unit)
QUANTITIES = {"sim_time": ("sim_time_s", 1 / 3600), "round": ("round", 1.0)}
_THRESHOLD = re.compile(r"to_([0-9.]+)_sim_time_s")


def thresholds(table: pd.DataFrame) -> list[float]:
    """The accuracy thresholds the sweep table records, ascending."""
    return sorted(float(m.group(1)) for c in table.columns if (m := _THRESHOLD.fullmatch(c)))


def column(threshold: float, suffix: str) -> str:
    return f"to_{threshold:g}_{suffix}"


def choose_target(sweep: Sweep, target: float | None) -> float | None:
    """``--target`` checked against the thresholds the sweep table records, or by default
    the highest one that at least one group reaches (its Kaplan-Meier median is finite:
    half of its replicates or more reached it); None when no group reaches any."""
    known = thresholds(sweep.table)
    if target is not None:
        if not any(np.isclose(target, t) for t in known):
            raise InputError(f"--target {target:g}: the sweep table records time to target "
                             f"for {', '.join(f'{t:g}' for t in known) or 'no threshold'}")
        return next(t for t in known if np.isclose(target, t))
    return next((t for t in reversed(known) if any(
        np.isfinite(group_time_to_target(sweep.rows(g), t).median) for g in sweep.groups)),
        None)


def group_time_to_target(rows: pd.DataFrame, threshold: float,
                         quantity: str = "sim_time") -> KaplanMeier:
    """Kaplan-Meier median and interval of one group's time to ``threshold`` over its
    complete replicates, in hours (``sim_time``) or rounds (``round``); a replicate that
    never reached is censored at its last time (``sweep_summary.time_to_target_columns``,
    as ``sweep_summary.parquet`` counts it)."""
    suffix, scale = QUANTITIES[quantity]
    name = column(threshold, suffix)
    times, reached = time_to_target_columns(rows[rows["status"] == "complete"])[name]
    return kaplan_meier(np.asarray(times, dtype=float) * scale, reached)
