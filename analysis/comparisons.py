"""The sweep report's numbers, one row per group and metric (``summary.csv``): n, mean, sd
and 95 % interval of each headline metric over a group's complete replicates, the
Kaplan-Meier time to target with the fraction that reached it, and the difference to the
group's baseline paired by replicate, with Holm-adjusted p-values and simultaneous
(Bonferroni) intervals over every comparison of that metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import mean_interval, paired_differences
from .sweep_data import Sweep, baseline_of
from .time_to_target import group_time_to_target

# metric column (of the table ``metric_table`` returns) -> its name in the report
METRICS = {"final_accuracy": "accuracy", "balanced_accuracy": "balanced",
           "few_shot_accuracy": "few-shot",
           "personalised_own_mix_accuracy": "personalised own-mix",
           "rounds": "rounds", "sim_time_h": "simulated time (h)",
           "bytes_mb": "bytes up + down (MB)", "energy_kj": "energy (kJ)"}
ACCURACY_METRICS = tuple(list(METRICS)[:4])
COST_METRICS = tuple(list(METRICS)[4:])
COLUMNS = ["group", "label", "metric", "n", "mean", "sd", "lo", "hi", "reached", "baseline",
           "pairs", "difference", "difference_lo", "difference_hi", "p_holm", "comparisons"]
_PAIRED = "__baseline__"  # the pseudo-group of zero differences (see ``_differences``)


def metric_table(sweep: Sweep) -> pd.DataFrame:
    """The complete replicates with the derived metrics (bytes in MB, energy in kJ)."""
    t = sweep.table[sweep.table["status"] == "complete"].copy()
    numeric = {c: pd.to_numeric(t[c], errors="coerce") if c in t else np.nan
               for c in ("bytes_up", "bytes_down", "energy_j")}
    t["bytes_mb"] = (numeric["bytes_up"] + numeric["bytes_down"]) / 1e6
    t["energy_kj"] = numeric["energy_j"] / 1e3
    for name in METRICS:
        t[name] = pd.to_numeric(t[name], errors="coerce") if name in t else np.nan
    return t


def present_metrics(table: pd.DataFrame) -> list[str]:
    """The metrics some replicate measured (own-mix only where a strategy keeps
    personalised models)."""
    return [m for m in METRICS if table[m].notna().any()]


def summary(sweep: Sweep, baseline: dict[str, object], threshold: float | None,
            level: float = 0.95) -> pd.DataFrame:
    """Every group's row per metric, then its time-to-target row (``time_to_<acc>_h``:
    ``mean`` holds the Kaplan-Meier median, ``lo``/``hi`` its interval)."""
    table = metric_table(sweep)
    metrics = present_metrics(table)
    bases = baseline_of(sweep, baseline)
    rows = []
    for metric in metrics:
        diffs = _differences(table, bases, metric, level)
        for group in sweep.groups:
            s = mean_interval(table.loc[table["group"] == group, metric], level)
            row = {"group": group, "label": sweep.label(group), "metric": metric, "n": s.n,
                   "mean": s.mean, "sd": s.sd, "lo": s.lo, "hi": s.hi,
                   "baseline": bases[group], "comparisons": len(diffs)}
            if group in diffs.index:
                d = diffs.loc[group]
                row |= {"pairs": d["n"], "difference": d["mean"],
                        "difference_lo": d["lo_holm"], "difference_hi": d["hi_holm"],
                        "p_holm": d["p_holm"]}
            rows.append(row)
    if threshold is not None:
        for group in sweep.groups:
            km = group_time_to_target(sweep.rows(group), threshold, "sim_time")
            rows.append({"group": group, "label": sweep.label(group),
                         "metric": f"time_to_{threshold:g}_h", "n": km.n, "mean": km.median,
                         # n = 1: no interval, whatever the estimator's bounds say
                         "lo": km.lo if km.n > 1 else np.nan,
                         "hi": km.hi if km.n > 1 else np.nan, "reached": km.reached,
                         "baseline": bases[group]})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def _differences(table: pd.DataFrame, bases: dict[str, str | None], metric: str,
                 level: float) -> pd.DataFrame:
    """Each group minus its baseline, paired by replicate, as one family of comparisons:
    the differences of every pair are handed to ``paired_differences`` against a
    pseudo-group of zeros, so that Holm's adjustment and the simultaneous intervals count
    every comparison of the metric, whichever baseline each has."""
    parts = []
    for group, base in bases.items():
        if base is None or base == group:
            continue
        mine = table.loc[table["group"] == group, ["replicate", metric]]
        theirs = table.loc[table["group"] == base, ["replicate", metric]]
        joined = mine.merge(theirs, on="replicate", suffixes=("", "_base"))
        parts.append(pd.DataFrame({"group": group, "replicate": joined["replicate"],
                                   "d": joined[metric] - joined[f"{metric}_base"]}))
    if not parts:
        return pd.DataFrame(columns=["n", "mean", "lo_holm", "hi_holm", "p_holm"])
    replicates = pd.concat(parts)["replicate"].unique()
    zeros = pd.DataFrame({"group": _PAIRED, "replicate": replicates, "d": 0.0})
    result = paired_differences(pd.concat(parts + [zeros], ignore_index=True), "d", _PAIRED,
                                level=level)
    return result.set_index("group")
