"""Time to target per group of a sweep, from ``sweep.parquet``'s ``to_<acc>_*`` columns: a
replicate that never reached the threshold is censored at its last time (its run's
simulated time, or its rounds), never dropped; each group gets the Kaplan-Meier median with
its interval and the fraction of replicates that reached.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from orbitfl.errors import InputError

from .stats import KaplanMeier, kaplan_meier

# quantity -> (column suffix of the time reached, scale to the report's unit, the column
# holding a replicate's last time, its scale, unit)
QUANTITIES = {
    "sim_time": ("sim_time_s", 1 / 3600, "sim_time_h", 1.0, "h"),
    "round": ("round", 1.0, "rounds", 1.0, "rounds"),
}
_THRESHOLD = re.compile(r"to_([0-9.]+)_sim_time_s")


def thresholds(table: pd.DataFrame) -> list[float]:
    """The accuracy thresholds the sweep table records, ascending."""
    return sorted(float(m.group(1)) for c in table.columns if (m := _THRESHOLD.fullmatch(c)))


def column(threshold: float, suffix: str) -> str:
    return f"to_{threshold:g}_{suffix}"


def choose_target(table: pd.DataFrame, target: float | None) -> float | None:
    """``--target`` checked against the recorded thresholds, or by default the highest one
    that at least one complete replicate reached (None: no replicate reached any)."""
    known = thresholds(table)
    complete = table[table["status"] == "complete"]
    if target is not None:
        if not any(np.isclose(target, t) for t in known):
            raise InputError(f"--target {target:g}: the sweep table records time to target "
                             f"for {', '.join(f'{t:g}' for t in known) or 'no threshold'}")
        return next(t for t in known if np.isclose(target, t))
    reached = [t for t in known if complete[column(t, "sim_time_s")].notna().any()]
    return max(reached) if reached else None


def replicate_times(rows: pd.DataFrame, threshold: float, quantity: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(times, reached) of the complete replicates in ``rows``: the time a replicate
    reached ``threshold``, or its last time when it never did (censored)."""
    suffix, scale, last, last_scale, _ = QUANTITIES[quantity]
    rows = rows[rows["status"] == "complete"]
    hit = pd.to_numeric(rows[column(threshold, suffix)], errors="coerce").to_numpy(float)
    end = pd.to_numeric(rows[last], errors="coerce").to_numpy(float) * last_scale
    reached = np.isfinite(hit)
    return np.where(reached, hit * scale, end), reached


def group_time_to_target(rows: pd.DataFrame, threshold: float,
                         quantity: str = "sim_time") -> KaplanMeier:
    """Kaplan-Meier median and interval of one group's time to ``threshold``."""
    return kaplan_meier(*replicate_times(rows, threshold, quantity))
