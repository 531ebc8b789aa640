"""orbitfl.analysis.stats against hand-computed cases: t-intervals, Holm's adjustment,
paired differences with Bonferroni simultaneous intervals, and Kaplan-Meier with censoring
(Greenwood's variance and the log-log band written out here, independently of scipy)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orbitfl.analysis.stats import (
    PAIRED_COLUMNS,
    holm,
    kaplan_meier,
    mean_interval,
    paired_differences,
)

# Student t quantiles from printed tables
T975_2, T975_3 = 4.302653, 3.182446
T_BONF3_3 = 4.856657  # t(1 - 0.05/6, 3): three comparisons, two-sided, df 3
Z975 = 1.959964


def test_mean_interval_hand_case():
    r = mean_interval([2.0, 4.0, 6.0, float("nan"), None])  # non-finite values left out
    half = T975_2 * 2.0 / math.sqrt(3)  # sd of 2, 4, 6 is 2
    assert (r.n, r.mean, r.sd) == (3, 4.0, 2.0)
    assert r.lo == pytest.approx(4.0 - half, rel=1e-6)
    assert r.hi == pytest.approx(4.0 + half, rel=1e-6)


def test_mean_interval_other_level_and_constant_values():
    r = mean_interval([1.0, 3.0], level=0.5)  # t(0.75, 1) = 1: half = sd / sqrt(2) = 1
    assert (r.lo, r.hi) == pytest.approx((1.0, 3.0))
    same = mean_interval([5.0, 5.0, 5.0])
    assert (same.sd, same.lo, same.hi) == (0.0, 5.0, 5.0)


def test_mean_interval_small_n():
    empty = mean_interval([])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.mean, empty.sd, empty.lo))
    one = mean_interval([float("inf"), 7.0])
    assert (one.n, one.mean) == (1, 7.0)
    assert math.isnan(one.sd) and math.isnan(one.lo) and math.isnan(one.hi)
    with pytest.raises(ValueError):
        mean_interval([1.0, 2.0], level=1.0)


def test_holm_hand_case():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 capped at 1, monotone
    adjusted = holm([0.02, float("nan"), 0.04])  # NaN is not a comparison: m = 2
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


def _three_comparisons() -> pd.DataFrame:
    """Baseline b and groups x, y, z over replicates 0-3, with differences to b of
    x: 1, 2, 3, 4; y: 0, 1, -1, 0; z: 2, 2, 2, 3. x has a replicate 4 that b lacks
    (unpaired: left out) and rows come in no particular order."""
    base = [10.0, 20.0, 30.0, 40.0]
    rows = [("b", r, v) for r, v in enumerate(base)]
    for name, diffs in (("x", [1, 2, 3, 4]), ("y", [0, 1, -1, 0]), ("z", [2, 2, 2, 3])):
        rows += [(name, r, base[r] + d) for r, d in enumerate(diffs)]
    rows.append(("x", 4, 99.0))
    table = pd.DataFrame(rows, columns=["group", "replicate", "acc"])
    return table.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_paired_differences_three_comparisons():
    result = paired_differences(_three_comparisons(), "acc", "b").set_index("group")
    assert list(result.reset_index().columns) == PAIRED_COLUMNS
    assert sorted(result.index) == ["x", "y", "z"]
    sd = {"x": math.sqrt(5 / 3), "y": math.sqrt(2 / 3), "z": 0.5}
    mean = {"x": 2.5, "y": 0.0, "z": 2.25}
    for g in "xyz":
        row = result.loc[g]
        assert row["n"] == 4
        assert row["mean"] == pytest.approx(mean[g]) and row["sd"] == pytest.approx(sd[g])
        half = T975_3 * sd[g] / 2  # sqrt(4) = 2
        assert (row["lo"], row["hi"]) == pytest.approx((mean[g] - half, mean[g] + half),
                                                       rel=1e-6, abs=1e-9)
        bonferroni = T_BONF3_3 * sd[g] / 2
        assert (row["lo_holm"], row["hi_holm"]) == pytest.approx(
            (mean[g] - bonferroni, mean[g] + bonferroni), rel=1e-6, abs=1e-9)
    # p-values: t = 2.5 / (sqrt(5/3)/2) = 3.873 and 2.25 / 0.25 = 9 on 3 df; y has t = 0
    p_x = 2 * stats.t.sf(2.5 / (math.sqrt(5 / 3) / 2), 3)
    p_z = 2 * stats.t.sf(9.0, 3)
    assert result.loc["x", "p_value"] == pytest.approx(0.0304663, rel=1e-5)  # a t table
    assert result.loc["x", "p_value"] == pytest.approx(p_x)
    assert result.loc["z", "p_value"] == pytest.approx(p_z)
    assert result.loc["y", "p_value"] == pytest.approx(1.0)
    # Holm: z smallest (x3), then x (x2, at least z's), then y (1)
    assert result.loc["z", "p_holm"] == pytest.approx(3 * p_z)
    assert result.loc["x", "p_holm"] == pytest.approx(max(3 * p_z, 2 * p_x))
    assert result.loc["y", "p_holm"] == pytest.approx(1.0)


def test_paired_differences_edge_cases():
    one = pd.DataFrame({"group": ["b", "x"], "replicate": [0, 0], "acc": [1.0, 2.0]})
    row = paired_differences(one, "acc", "b").iloc[0]
    assert row["n"] == 1 and row["mean"] == 1.0 and math.isnan(row["p_value"])
    only_base = pd.DataFrame({"group": ["b"], "replicate": [0], "acc": [1.0]})
    assert list(paired_differences(only_base, "acc", "b").columns) == PAIRED_COLUMNS
    twice = pd.DataFrame({"group": ["b", "b"], "replicate": [0, 0], "acc": [1.0, 2.0]})
    with pytest.raises(ValueError, match="twice"):
        paired_differences(twice, "acc", "b")


def _loglog(s: float, greenwood: float) -> tuple[float, float]:
    """The log-log pointwise 95 % band of S at one time: log(-log S) +- z * se, with
    se = sqrt(Greenwood's sum d / (n (n - d))) / |log S|."""
    se = math.sqrt(greenwood) / abs(math.log(s))
    return s ** math.exp(Z975 * se), s ** math.exp(-Z975 * se)


def test_kaplan_meier_without_censoring():
    km = kaplan_meier([3.0, 1.0, 4.0, 2.0], [True] * 4)
    # S: 0.75, 0.5, 0.25, 0 at 1, 2, 3, 4; the median is the first time S <= 0.5
    assert (km.n, km.reached, km.fraction_reached, km.median) == (4, 4, 1.0, 2.0)
    low_1, _ = _loglog(0.75, 1 / 12)  # 0.128 at t = 1: the lower band is below 0.5 already
    assert low_1 < 0.5 and km.lo == 1.0
    _, high_3 = _loglog(0.25, 1 / 12 + 1 / 6 + 1 / 2)  # 0.665 at t = 3, 0 at t = 4 (S = 0)
    assert high_3 > 0.5 and km.hi == 4.0
    odd = kaplan_meier([5.0, 1.0, 3.0], [True] * 3)
    assert odd.median == 3.0 == float(np.median([5.0, 1.0, 3.0]))


def test_kaplan_meier_censored_hand_case():
    # runs reach the target at 1, 3, 4; runs 2 and 5 never do (censored at their last time)
    km = kaplan_meier([1.0, 2.0, 3.0, 4.0, 5.0], [True, False, True, True, False])
    # S(1) = 4/5 = 0.8; t = 2 censored; S(3) = 0.8 * 2/3 = 0.533; S(4) = 0.533 * 1/2 = 0.267
    assert (km.n, km.reached, km.fraction_reached) == (5, 3, 0.6)
    assert km.median == 4.0  # dropping the censored runs would give 3
    low_1, _ = _loglog(0.8, 1 / 20)
    assert low_1 == pytest.approx(0.2038, abs=1e-4) and km.lo == 1.0
    _, high_4 = _loglog(0.8 * 2 / 3 / 2, 1 / 20 + 1 / 6 + 1 / 2)
    assert high_4 == pytest.approx(0.6861, abs=1e-4)
    assert high_4 > 0.5 and km.hi == math.inf  # the upper band never reaches 0.5


def test_kaplan_meier_never_half_and_all_censored():
    km = kaplan_meier([1.0, 2.0, 3.0, 4.0], [True, False, False, False])
    assert km.fraction_reached == 0.25 and math.isnan(km.median)  # S stays at 0.75
    none = kaplan_meier([5.0, 6.0, 7.0], [False] * 3)
    assert (none.n, none.reached, none.fraction_reached) == (3, 0, 0.0)
    assert math.isnan(none.median) and math.isnan(none.lo) and none.hi == math.inf
    empty = kaplan_meier([], [])
    assert empty.n == 0 and math.isnan(empty.fraction_reached)
    with pytest.raises(ValueError):
        kaplan_meier([1.0, 2.0], [True])
