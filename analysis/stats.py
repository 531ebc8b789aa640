"""Statistics over replicate runs: means with t-intervals, paired differences against a
baseline with Holm-adjusted p-values, and Kaplan-Meier time-to-target where runs that never
reach the target are right-censored, never dropped (dropping them would bias every mean
toward the fast runs).

Pure numpy/pandas/scipy: every figure, table and report builds its numbers here, so one
sweep gives the same interval wherever it is shown.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

# S(t) <= 0.5 within rounding: a product such as 0.8 * 5/8 is 0.5000000000000001
_HALF = 0.5 + 1e-12


@dataclasses.dataclass(frozen=True)
class MeanInterval:
    """n finite values, their mean, sample standard deviation (ddof=1) and the two-sided
    Student-t interval ``mean +- t(1 - (1 - level)/2, n - 1) * sd / sqrt(n)``. NaN where
    undefined: everything for n = 0; sd, lo and hi for n = 1."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float


def finite(values: Iterable[float]) -> np.ndarray:
    """The finite values as float (None, NaN and infinities left out; text is an error)."""
    array = pd.to_numeric(pd.Series(list(values), dtype=object), errors="raise")
    array = np.asarray(array, dtype=float)
    return array[np.isfinite(array)]


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t with ``df`` degrees of freedom (NaN for
    df < 1)."""
    return float(stats.t.ppf(probability, df)) if df >= 1 else float("nan")


def mean_interval(values: Iterable[float], level: float = 0.95) -> MeanInterval:
    """Mean and Student-t interval of the finite ``values`` (see ``MeanInterval``)."""
    _check_level(level)
    v = finite(values)
    n = len(v)
    if n == 0:
        return MeanInterval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return MeanInterval(1, mean, math.nan, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = t_quantile(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    return MeanInterval(n, mean, sd, mean - half, mean + half)


def t_test_p(differences: np.ndarray) -> float:
    """Two-sided p-value of the one-sample t-test of mean zero (NaN for n < 2; 1 or 0 when
    every difference is the same, zero or not)."""
    n = len(differences)
    if n < 2:
        return math.nan
    mean, sd = float(differences.mean()), float(differences.std(ddof=1))
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given: with the m finite p-values
    sorted ascending, ``p_adj(k) = max_{j <= k} min(1, (m - j + 1) p(j))`` (monotone in
    the sorted order, capped at 1). NaN stays NaN and does not count in m."""
    p = np.asarray(p_values, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[(p < 0) | (p > 1)][0]}")
    adjusted = np.full(p.shape, math.nan)
    index = np.flatnonzero(np.isfinite(p))
    order = index[np.argsort(p[index], kind="stable")]
    m = len(order)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return adjusted


PAIRED_COLUMNS = ["group", "n", "mean", "sd", "lo", "hi", "p_value", "p_holm", "lo_holm",
                  "hi_holm"]


def paired_differences(table: pd.DataFrame, metric: str, baseline: object, *,
                       group: str = "group", replicate: str = "replicate",
                       level: float = 0.95) -> pd.DataFrame:
    """Per group other than ``baseline``: the differences ``metric(group) -
    metric(baseline)`` paired by ``replicate`` (replicates present, with a finite metric, in
    both), their n, mean, sd, t-interval at ``level`` (``lo``, ``hi``), the two-sided
    p-value of the one-sample t-test of mean zero and, over the m comparisons reported:

    - ``p_holm``: Holm-adjusted p-values (``holm``), controlling the family-wise error;
    - ``lo_holm``, ``hi_holm``: Bonferroni intervals, each at level ``1 - (1 - level)/m``.
      They hold simultaneously with probability >= ``level`` and agree with Holm's
      decisions: an interval that excludes 0 means ``p < alpha/m``, and then Holm rejects
      that comparison too (every smaller p-value is below ``alpha/m <= alpha/(m-j+1)``).
      Holm's stepwise levels ``1 - alpha/(m - k + 1)`` give narrower intervals but no
      simultaneous coverage, so they are not used.

    One row per group in order of first appearance; an empty frame with these columns
    when there is nothing to compare."""
    _check_level(level)
    missing = [c for c in (group, replicate, metric) if c not in table.columns]
    if missing:
        raise KeyError(f"paired_differences: no column {missing[0]!r}")
    base = _by_replicate(table[table[group] == baseline], replicate, metric)
    rows = []
    for name in pd.unique(table[group]):
        if name == baseline:
            continue
        other = _by_replicate(table[table[group] == name], replicate, metric)
        joined = pd.concat([other, base], axis=1, join="inner").to_numpy(dtype=float)
        d = joined[:, 0] - joined[:, 1]
        d = d[np.isfinite(d)]
        summary = mean_interval(d, level)
        rows.append({"group": name, "n": summary.n, "mean": summary.mean, "sd": summary.sd,
                     "lo": summary.lo, "hi": summary.hi, "p_value": t_test_p(d), "d": d})
    if not rows:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    result = pd.DataFrame(rows)
    result["p_holm"] = holm(result["p_value"].to_numpy())
    m = len(result)
    simultaneous = [mean_interval(d, 1 - (1 - level) / m) for d in result["d"]]
    result["lo_holm"] = [s.lo for s in simultaneous]
    result["hi_holm"] = [s.hi for s in simultaneous]
    return result[PAIRED_COLUMNS]


def _by_replicate(rows: pd.DataFrame, replicate: str, metric: str) -> pd.Series:
    """A group's metric indexed by replicate (a replicate given twice is an error)."""
    if rows[replicate].duplicated().any():
        raise ValueError(f"paired_differences: replicate given twice in one group "
                         f"({rows[replicate][rows[replicate].duplicated()].iloc[0]})")
    return pd.to_numeric(rows.set_index(replicate)[metric], errors="coerce")


@dataclasses.dataclass(frozen=True)
class KaplanMeier:
    """Time-to-target over n runs, ``reached`` of which reached the target (the others are
    right-censored at their last time). ``median`` is the smallest time at which the
    Kaplan-Meier survival S(t) (the fraction still short of the target) is <= 0.5; NaN
    ("not reached") when S never falls to 0.5. ``lo``, ``hi``: its confidence interval
    (Brookmeyer-Crowley style: where the pointwise log-log band of S crosses 0.5, i.e.
    the smallest times at which the lower and the upper band are <= 0.5); ``lo`` is NaN
    when the lower band never falls to 0.5 and ``hi`` is +inf when the upper band never
    does (the data bound the median only from below)."""

    n: int
    reached: int
    fraction_reached: float
    median: float
    lo: float
    hi: float


def kaplan_meier(times: Sequence[float] | np.ndarray, reached: Sequence[bool] | np.ndarray,
                 level: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate of the time to a target (see ``KaplanMeier``). ``times[i]`` is
    when run i reached the target, or its last time (simulated time, bytes...) if it never
    did (``reached[i]`` False): censored there, never dropped. With no censoring the median
    is the lower sample median (the middle value for odd n, the n/2-th smallest for even
    n). Runs with a missing (non-finite) time are left out."""
    _check_level(level)
    t = np.asarray(times, dtype=float)
    hit = np.asarray(reached, dtype=bool)
    if t.shape != hit.shape or t.ndim != 1:
        raise ValueError(f"kaplan_meier: {t.shape} times but {hit.shape} reached flags")
    keep = np.isfinite(t)
    t, hit = t[keep], hit[keep]
    n, k = len(t), int(hit.sum())
    if k == 0:
        return KaplanMeier(n, 0, 0.0 if n else math.nan, math.nan, math.nan, math.inf)
    curve = stats.ecdf(stats.CensoredData(uncensored=t[hit], right=t[~hit])).sf
    with warnings.catch_warnings():  # the log-log band is undefined where S = 0
        warnings.simplefilter("ignore", RuntimeWarning)
        band = curve.confidence_interval(level, method="log-log")
    s = curve.probabilities
    low = np.where(s == 0.0, 0.0, np.nan_to_num(band.low.probabilities, nan=0.0))
    high = np.where(s == 0.0, 0.0, np.nan_to_num(band.high.probabilities, nan=1.0))
    at = curve.quantiles
    return KaplanMeier(n, k, k / n, _first_below_half(at, s, math.nan),
                       _first_below_half(at, low, math.nan),
                       _first_below_half(at, high, math.inf))


def _first_below_half(at: np.ndarray, curve: np.ndarray, never: float) -> float:
    """The smallest time at which a step curve is <= 0.5, else ``never``."""
    below = np.flatnonzero(curve <= _HALF)
    return float(at[below[0]]) if len(below) else never


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie strictly between 0 and 1, got {level}")


def column_intervals(values: np.ndarray, level: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``mean_interval`` of every column of a 2-D array at once (NaN entries left out),
    for curves with many grid points: (n, mean, lo, hi) arrays, NaN where undefined as
    there (mean for n = 0; lo and hi for n < 2)."""
    _check_level(level)
    v = np.asarray(values, dtype=float)
    v = v.reshape(len(v), -1) if v.ndim != 2 else v
    n = np.isfinite(v).sum(axis=0)
    with warnings.catch_warnings():  # columns with n < 2 give NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(v, axis=0)
        sd = np.nanstd(v, axis=0, ddof=1)
    quantiles = {k: t_quantile(1 - (1 - level) / 2, int(k) - 1) for k in np.unique(n)}
    t = np.array([quantiles[k] for k in n])
    half = np.where(n >= 2, t * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return n, mean, mean - half, mean + half
