"""Time to target: the round, simulated time, wall time, bytes and energy at which a run
first reaches each accuracy threshold (the planner's question: "how many days until 70 %?").

Computed from the run's round records, so a run that never reaches a threshold says so
(``None``) instead of reporting its last round.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def time_to_target(rounds: pd.DataFrame, wall_time_s: Sequence[float],
                   thresholds: Sequence[float] = THRESHOLDS,
                   metric: str = "accuracy") -> dict[str, dict | None]:
    """For each threshold, the first evaluated round whose ``metric`` reaches it.

    ``rounds`` has one row per round (``round``, ``sim_time_s``, ``bytes_up``,
    ``bytes_down``, ``energy_j`` and the metric); ``wall_time_s`` holds the wall-clock
    seconds since the run started at which each of those rounds was recorded."""
    if len(wall_time_s) != len(rounds):
        raise ValueError("one wall time per round record is needed")
    found: dict[str, dict | None] = {}
    values = rounds[metric].to_numpy() if len(rounds) else []
    for threshold in thresholds:
        hit = next((i for i, v in enumerate(values)
                    if not math.isnan(v) and v >= threshold), None)
        if hit is None:
            found[f"{threshold:g}"] = None
            continue
        row = rounds.iloc[hit]
        found[f"{threshold:g}"] = {
            "round": int(row["round"]), "sim_time_s": float(row["sim_time_s"]),
            "wall_time_s": float(wall_time_s[hit]), "bytes_up": int(row["bytes_up"]),
            "bytes_down": int(row["bytes_down"]), "energy_j": float(row["energy_j"])}
    return found


def flat_columns(found: dict[str, dict | None]) -> dict[str, float]:
    """One column per threshold and quantity, for tables of many runs (NaN: not reached)."""
    columns: dict[str, float] = {}
    for threshold, hit in found.items():
        for quantity in ("round", "sim_time_s", "wall_time_s", "bytes_up", "bytes_down"):
            columns[f"to_{threshold}_{quantity}"] = \
                float("nan") if hit is None else float(hit[quantity])
    return columns
