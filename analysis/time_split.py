"""Where the time to target goes, per group: time to target = rounds needed (the learning
part: a better algorithm needs fewer) x simulated hours per round (the network part: more
stations or faster links make rounds shorter), the round's hours split by what the rounds
waited for (``report.round_breakdown``: a contact, the transfer, the battery, training).
A planner reads off whether to buy stations or a better algorithm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .run_data import FACTORS, round_breakdown
from .stats import mean_interval
from .sweep_data import Sweep
from .time_to_target import group_time_to_target

COLUMNS = ["group", "label", "n", "reached", "rounds_needed", "rounds_lo", "rounds_hi",
           "hours_per_round", "hours_per_round_lo", "hours_per_round_hi",
           "time_to_target_h", "time_to_target_lo", "time_to_target_hi",
           *[f"share_{f.replace(' ', '_')}" for f in FACTORS]]


def share_column(factor: str) -> str:
    return f"share_{factor.replace(' ', '_')}"


def round_shares(sweep: Sweep, points: list[str]) -> dict[str, float]:
    """The share of the replicates' round time spent on each factor (their rounds pooled);
    NaN where no run directory records its clients."""
    tables = [round_breakdown(run) for p in points if (run := sweep.run(p)) is not None]
    pooled = pd.concat([t for t in tables if len(t)]) if any(len(t) for t in tables) else None
    if pooled is None or pooled.to_numpy().sum() <= 0:
        return {f: float("nan") for f in FACTORS}
    totals = pooled.sum()
    return {f: float(totals[f] / totals.sum()) for f in FACTORS}


def time_split(sweep: Sweep, threshold: float | None) -> pd.DataFrame:
    """One row per group: rounds needed to ``threshold`` (Kaplan-Meier median and interval,
    censored replicates kept), simulated hours per round (mean and interval over the
    replicates: their simulated time over their rounds), the time to target in hours, and
    the shares of round time by factor."""
    rows = []
    for group in sweep.groups:
        done = sweep.complete(group)
        rounds = pd.to_numeric(done["rounds"], errors="coerce")
        per_round = mean_interval(
            (pd.to_numeric(done["sim_time_h"], errors="coerce") / rounds.where(rounds > 0)))
        row = {"group": group, "label": sweep.label(group), "n": len(done),
               "hours_per_round": per_round.mean, "hours_per_round_lo": per_round.lo,
               "hours_per_round_hi": per_round.hi}
        if threshold is not None:
            needed = group_time_to_target(done, threshold, "round")
            hours = group_time_to_target(done, threshold, "sim_time")
            one = needed.n < 2  # a single run: no interval
            row |= {"reached": needed.reached, "rounds_needed": needed.median,
                    "rounds_lo": np.nan if one else needed.lo,
                    "rounds_hi": np.nan if one else needed.hi,
                    "time_to_target_h": hours.median,
                    "time_to_target_lo": np.nan if one else hours.lo,
                    "time_to_target_hi": np.nan if one else hours.hi}
        shares = round_shares(sweep, list(done["point"]))
        row |= {share_column(f): v for f, v in shares.items()}
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def network_hours(split: pd.DataFrame) -> pd.DataFrame:
    """Each group's mean hours per round split by factor (the bars of the figure); rows
    without a recorded breakdown are one unsplit ``round`` bar."""
    shares = split[[share_column(f) for f in FACTORS]].to_numpy(dtype=float)
    hours = split["hours_per_round"].to_numpy(dtype=float)[:, None] * shares
    out = pd.DataFrame(hours, columns=list(FACTORS), index=split["group"])
    out["round"] = np.where(np.isnan(shares).all(axis=1), split["hours_per_round"], 0.0)
    return out.fillna(0.0)
