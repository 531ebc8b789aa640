"""A sweep's per-group summary (``sweep_summary.parquet``): for every group of replicate
runs and every headline metric, n, mean, sd and a t-interval; for every time to target,
the Kaplan-Meier median with its interval and the fraction of runs that reached it.

A run that never reaches a target has no ``to_<acc>_*`` value in ``sweep.parquet``;
averaging the others would report the fast runs only. Here such a run is right-censored at
its last value of that quantity (``CENSORED_AT``), and failed or interrupted runs, which
say nothing about the scenario, are left out. Reads the sweep table only.
"""

from __future__ import annotations

import math

import pandas as pd

from .stats import kaplan_meier, mean_interval

METRICS = ("final_accuracy", "balanced_accuracy", "few_shot_accuracy",
           "personalised_own_mix_accuracy", "personalised_accuracy",
           "global_own_mix_accuracy", "val_accuracy", "val_balanced_accuracy",
           "rounds", "sim_time_h", "bytes_up", "bytes_down", "energy_j", "wall_s")
# summarised only where a table has a value in them: a study's own columns (the SAFE
# study's mean accuracy over its last rounds, docs/safe-study.md), and a segmentation
# sweep's mIoU (its final_accuracy counts pixels, mostly background)
OPTIONAL_METRICS = ("late_accuracy", "late_miou", "miou", "val_miou")
# time-to-target quantity -> (the sweep column holding a run's last value, its scale to the
# quantity's unit). ``rounds`` counts completed rounds, never more than the last round's
# number: a run censored there is censored no later than it was observed.
CENSORED_AT = {"round": ("rounds", 1.0), "sim_time_s": ("sim_time_h", 3600.0),
               "wall_time_s": ("wall_s", 1.0), "bytes_up": ("bytes_up", 1.0),
               "bytes_down": ("bytes_down", 1.0)}
STATISTICS = ("n", "mean", "sd", "lo", "hi", "reached", "fraction_reached", "median",
              "median_lo", "median_hi")
LEVEL = 0.95


def summarise(table: pd.DataFrame, parameters: list[str], level: float = LEVEL
              ) -> pd.DataFrame:
    """One row per group (in order of first appearance) and metric: ``group``, the swept
    ``parameters``, ``metric`` and ``STATISTICS``. Every group appears, with n = 0 when
    none of its runs completed."""
    columns = ["group", *parameters, "metric", *STATISTICS]
    rows = []
    for group, runs in table.groupby("group", sort=False, dropna=False):
        values = {"group": group, **{p: runs[p].iloc[0] for p in parameters}}
        complete = runs[runs["status"] == "complete"]
        for metric in METRICS + tuple(m for m in OPTIONAL_METRICS if _has_values(table, m)):
            interval = mean_interval(_numbers(complete, metric), level)
            rows.append({**values, "metric": metric, "n": interval.n, "mean": interval.mean,
                         "sd": interval.sd, "lo": interval.lo, "hi": interval.hi})
        for metric, (times, reached) in time_to_target_columns(complete).items():
            km = kaplan_meier(times, reached, level)
            rows.append({**values, "metric": metric, "n": km.n, "reached": km.reached,
                         "fraction_reached": km.fraction_reached, "median": km.median,
                         "median_lo": km.lo, "median_hi": km.hi})
    summary = pd.DataFrame(rows, columns=columns)
    for name in ("mean", "sd", "lo", "hi", "reached", "fraction_reached", "median",
                 "median_lo", "median_hi"):
        summary[name] = summary[name].astype(float)
    summary["n"] = summary["n"].astype(int)
    return summary


def time_to_target_columns(runs: pd.DataFrame) -> dict[str, tuple[list[float], list[bool]]]:
    """For every ``to_<acc>_<quantity>`` column: each run's time (when it reached the
    target, else its last value of the quantity) and whether it reached it."""
    found = {}
    for column in runs.columns:
        quantity = _quantity(column)
        if quantity is None:
            continue
        last, scale = CENSORED_AT[quantity]
        hit = _numbers(runs, column)
        end = [v * scale for v in _numbers(runs, last)]
        reached = [not math.isnan(v) for v in hit]
        found[column] = ([h if r else e for h, e, r in zip(hit, end, reached)], reached)
    return found


def _quantity(column: str) -> str | None:
    """``sim_time_s`` for ``to_0.7_sim_time_s``; None for any other column."""
    if not column.startswith("to_"):
        return None
    return next((q for q in CENSORED_AT if column.endswith(f"_{q}")), None)


def _numbers(runs: pd.DataFrame, column: str) -> list[float]:
    """A column as floats (NaN where missing or absent)."""
    if column not in runs.columns:
        return [math.nan] * len(runs)
    return pd.to_numeric(runs[column], errors="coerce").astype(float).tolist()


def _has_values(table: pd.DataFrame, column: str) -> bool:
    return column in table.columns and \
        bool(pd.to_numeric(table[column], errors="coerce").notna().any())
