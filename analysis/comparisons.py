"""The sweep report's numbers, one row per group and metric (``summary.csv``): the group's
statistics as ``sweep_summary.parquet`` holds them (``sweep_summary.summarise``: n, mean,
sd and 95 % interval of each headline metric over the complete replicates; the
Kaplan-Meier time to the report's target with the fraction that reached it), and the
difference to the group's baseline paired by replicate, with Holm-adjusted p-values and
simultaneous (Bonferroni) intervals over every comparison of that metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import paired_differences
from .sweep_data import Sweep, baseline_of
from .sweep_summary import summarise

# metric column of sweep.parquet -> its name in the report
METRICS = {"final_accuracy": "accuracy",
           "late_accuracy": "accuracy, late mean",   # a study's mean over its last rounds
           "balanced_accuracy": "balanced",
           "miou": "mIoU",   # segmentation only: its "accuracy" counts pixels
           "late_miou": "mIoU, late mean",
           "few_shot_accuracy": "few-shot",
           "personalised_own_mix_accuracy": "personalised own-mix",
           "personalised_accuracy": "personalised balanced",
           "global_own_mix_accuracy": "global own-mix",
           "rounds": "rounds", "sim_time_h": "simulated time (h)",
           "bytes_up": "bytes up (MB)", "bytes_down": "bytes down (MB)",
           "energy_j": "energy (kJ)"}
# a metric's values in the report's tables are in its name's unit: the table's times this
SCALE = {"bytes_up": 1e-6, "bytes_down": 1e-6, "energy_j": 1e-3}
COST_METRICS = ("rounds", "sim_time_h", "bytes_up", "bytes_down", "energy_j")
ACCURACY_METRICS = tuple(m for m in METRICS if m not in COST_METRICS)
# paired_differences' columns -> the summary's
PAIRED_NAMES = {"n": "pairs", "mean": "difference", "lo_holm": "difference_lo",
                "hi_holm": "difference_hi", "p_holm": "p_holm"}
_PAIRED = "__baseline__"  # the pseudo-group of zero differences (see ``_differences``)


def ttt_metric(threshold: float) -> str:
    """The summary's metric for the time to ``threshold`` (simulated seconds)."""
    return f"to_{threshold:g}_sim_time_s"


def summary(sweep: Sweep, baseline: dict[str, object], threshold: float | None,
            level: float = 0.95) -> pd.DataFrame:
    """``summarise``'s rows of the metrics some replicate measured (own-mix only where a
    strategy keeps personalised models) and of the time to ``threshold``, each with the
    group's label, baseline and paired difference. A group of one replicate has no
    interval, whatever an estimator's bounds would say."""
    table = sweep.table
    rows = summarise(table, sweep.parameters, level)
    measured = [m for m in METRICS if (rows.loc[rows["metric"] == m, "n"] > 0).any()]
    wanted = measured + ([ttt_metric(threshold)] if threshold is not None else [])
    rows = rows[rows["metric"].isin(wanted)].copy()
    rows["metric"] = pd.Categorical(rows["metric"], wanted, ordered=True)
    rows = rows.sort_values(["metric"], kind="stable").reset_index(drop=True)
    rows["metric"] = rows["metric"].astype(str)
    rows.loc[rows["n"] < 2, ["median_lo", "median_hi"]] = np.nan
    bases = baseline_of(sweep, baseline)
    rows["label"] = [sweep.label(g) for g in rows["group"]]
    rows["baseline"] = [bases[g] for g in rows["group"]]
    complete = table[table["status"] == "complete"]
    compared = pd.concat([_differences(complete, bases, m, level).assign(metric=m)
                          for m in measured] or
                         [pd.DataFrame(columns=["group", "metric", *PAIRED_NAMES])],
                         ignore_index=True)
    compared["comparisons"] = compared.groupby("metric")["group"].transform("size")
    rows = rows.merge(compared.rename(columns=PAIRED_NAMES)[
        ["group", "metric", *PAIRED_NAMES.values(), "comparisons"]],
        on=["group", "metric"], how="left")
    first = ["group", *sweep.parameters, "metric"]
    return rows[first + [c for c in rows.columns if c not in first]]


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
                                   "d": pd.to_numeric(joined[metric], errors="coerce") -
                                   pd.to_numeric(joined[f"{metric}_base"], errors="coerce")}))
    if not parts:
        return pd.DataFrame(columns=["group", *PAIRED_NAMES])
    replicates = pd.concat(parts)["replicate"].unique()
    zeros = pd.DataFrame({"group": _PAIRED, "replicate": replicates, "d": 0.0})
    result = paired_differences(pd.concat(parts + [zeros], ignore_index=True), "d", _PAIRED,
                                level=level)
    return result
