"""The sweep report's tables as Markdown (``summary.md``), from the numbers of
``comparisons.summary`` and ``time_split.time_split``: the same values the CSV holds,
rounded for reading. n = 1 says so instead of drawing an interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orbitfl.core.docgen import table_cell

from .comparisons import METRICS, SCALE, ttt_metric
from .run_data import FACTORS
from .sweep_data import Sweep
from .time_split import share_column


def number(value: float, signed: bool = False) -> str:
    """Four significant digits (thousands grouped beyond 10,000); ``?`` for NaN."""
    if value is None or np.isnan(value):
        return "?"
    if np.isinf(value):
        return "∞" if value > 0 else "-∞"
    sign = "+" if signed and value >= 0 else ""
    return sign + (f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}")


def spread(sd: float, mean: float) -> str:
    """An sd at the resolution ``number`` gives its mean: one below half the mean's last
    shown digit is summation noise across equal runs (``1.4e-06`` beside ``69.64``), and
    reads as 0, as the mean's own digits would."""
    if np.isfinite(sd) and np.isfinite(mean) and mean != 0:
        digit = 1.0 if abs(mean) >= 1e4 else 10.0 ** (np.floor(np.log10(abs(mean))) - 3)
        if abs(sd) < digit / 2:
            return "0"
    return number(sd)


def estimate(row: pd.Series) -> str:
    """``mean ± sd [lo, hi]`` over the group's replicates (n = 1: the value alone), in the
    unit of the metric's name."""
    if not row["n"]:
        return "-"
    mean, sd, lo, hi = (row[c] * SCALE.get(row["metric"], 1.0)
                        for c in ("mean", "sd", "lo", "hi"))
    if row["n"] == 1:
        return f"{number(mean)} (n=1, no interval)"
    return f"{number(mean)} ± {spread(sd, mean)} [{number(lo)}, {number(hi)}]"


def time_to_target(row: pd.Series) -> str:
    """``median [lo, hi] h (k/n reached)``; bounded only from below when fewer than half
    of the replicates reached."""
    n, reached = int(row["n"]), int(row["reached"]) if pd.notna(row["reached"]) else 0
    if not n:
        return "-"
    share = f"({reached}/{n} reached)"
    median, lo, hi = (row[c] / 3600 for c in ("median", "median_lo", "median_hi"))
    if not np.isfinite(median):
        return f"not reached by half {share}"
    if n == 1:
        return f"{number(median)} h (n=1, no interval) {share}"
    return f"{number(median)} h [{number(lo)}, {number(hi)}] {share}"


def difference(row: pd.Series) -> str:
    if pd.isna(row["baseline"]) or row["group"] == row["baseline"]:
        return "(baseline)" if row["group"] == row["baseline"] else "-"
    if pd.isna(row["pairs"]) or not row["pairs"]:
        return "no pairs"
    d, lo, hi = (row[c] * SCALE.get(row["metric"], 1.0)
                 for c in ("difference", "difference_lo", "difference_hi"))
    if row["pairs"] == 1:
        return f"{number(d, True)} (1 pair, no interval)"
    return f"{number(d, True)} [{number(lo, True)}, {number(hi, True)}]"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(table_cell(h) for h in head) + " |",
            "|" + "---|" * len(head)] + \
        ["| " + " | ".join(table_cell(c) for c in row) + " |" for row in rows]


def target_unit(summary: pd.DataFrame) -> str:
    """What a sweep's targets are shares of, where it is not accuracy: a segmentation
    sweep's runs time their targets in mIoU (its pixel accuracy counts the background)."""
    return " mIoU" if "miou" in set(summary["metric"]) else ""


def groups_table(sweep: Sweep, summary: pd.DataFrame, threshold: float | None,
                 metrics: tuple[str, ...]) -> list[str]:
    """One row per group: n and the estimate of each of ``metrics`` it measured, then the
    time to ``threshold`` (None: no such column)."""
    measured = [m for m in metrics if m in set(summary["metric"])]
    ttt = ttt_metric(threshold) if threshold is not None else None
    head = ["group", "n"] + [METRICS[m] for m in measured] + \
        ([f"time to {100 * threshold:g} %{target_unit(summary)}"]
         if threshold is not None else [])
    rows = []
    for group in sweep.groups:
        mine = summary[summary["group"] == group].set_index("metric", drop=False)
        n = int(mine["n"].max()) if len(mine) else 0
        cells = [sweep.label(group), str(n)] + [estimate(mine.loc[m]) for m in measured]
        if ttt is not None:
            cells.append(time_to_target(mine.loc[ttt]))
        rows.append(cells)
    return _table(head, rows)


def differences_table(sweep: Sweep, summary: pd.DataFrame) -> list[str]:
    """Each group minus its baseline, paired by replicate, for the accuracies and costs."""
    metrics = [m for m in METRICS if m in set(summary["metric"])]
    head = ["group", "baseline", "pairs"] + [f"Δ {METRICS[m]}" for m in metrics]
    rows = []
    for group in sweep.groups:
        mine = summary[summary["group"] == group].set_index("metric", drop=False)
        first = mine.loc[metrics[0]]
        base = first["baseline"]
        pairs = "-" if pd.isna(first["pairs"]) else str(int(first["pairs"]))
        rows.append([sweep.label(group), sweep.label(base) if isinstance(base, str) else "-",
                     pairs] + [difference(mine.loc[m]) for m in metrics])
    return _table(head, rows)


def split_table(sweep: Sweep, split: pd.DataFrame) -> list[str]:
    """Rounds needed (learning) and hours per round with what they waited for (network)."""
    head = ["group", "reached", "rounds needed [CI]", "hours per round [CI]",
            "time to target (h) [CI]"] + [f"{f} (%)" for f in FACTORS]
    rows = []
    for _, r in split.iterrows():
        reached = "-" if pd.isna(r["reached"]) else f"{int(r['reached'])}/{int(r['n'])}"
        rows.append([sweep.label(r["group"]), reached,
                     _median(r["rounds_needed"], r["rounds_lo"], r["rounds_hi"]),
                     _median(r["hours_per_round"], r["hours_per_round_lo"],
                             r["hours_per_round_hi"]),
                     _median(r["time_to_target_h"], r["time_to_target_lo"],
                             r["time_to_target_hi"])] +
                    [f"{100 * r[share_column(f)]:.0f}" if np.isfinite(r[share_column(f)])
                     else "-" for f in FACTORS])
    return _table(head, rows)


def _median(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(value):
        return "not reached by half" if np.isfinite(lo) or np.isinf(hi) else "-"
    if not np.isfinite(lo) and not np.isfinite(hi):
        return number(value)
    return f"{number(value)} [{number(lo)}, {number(hi)}]"
