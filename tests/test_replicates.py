"""Replicates in sweeps: the seed rule, point names and groups, the per-group summary
against hand-computed numbers (a censored time to target), and nothing run: every test
here only plans points or summarises a table (the sweeps that run are in test_sweep.py and
test_api.py)."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from test_sweep import MICRO

from orbitfl.analysis.sweep_summary import METRICS, STATISTICS, summarise
from orbitfl.sweeps.replicates import derived_seeds, group_key
from orbitfl.sweeps.runner import plan_points

T975_2 = 4.302653  # Student t, 97.5 %, 2 degrees of freedom (a printed table)


def _sweep(tmp_path, **document):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"base": "micro.yaml", **document}))
    return tmp_path / "sweep.yaml"


def test_derived_seeds_keep_the_points_seed_first_and_are_reproducible():
    seeds = derived_seeds(7, 4)
    assert seeds[0] == 7 and len(set(seeds)) == 4 == len(seeds)
    assert seeds == derived_seeds(7, 4) and derived_seeds(7, 2) == seeds[:2]
    state = np.random.SeedSequence(7, spawn_key=(1,)).generate_state(1, np.uint64)
    assert seeds[1] == int(state[0]) >> 1 and 0 <= seeds[1] < 2**63
    assert derived_seeds(8, 2)[1] != seeds[1]


def test_replicates_name_seed_and_group_the_points(tmp_path):
    sweep = _sweep(tmp_path, parameters={"fl.strategy": ["fedavg", "fedprox"]}, replicates=3)
    points, name = plan_points(sweep, tmp_path / "out")
    assert [p.name for p in points] == [f"sweep-{i:03d}-r{k}" for i in range(2)
                                        for k in range(3)]
    assert [p.replicate for p in points] == [0, 1, 2] * 2
    assert [p.group for p in points] == ["fl.strategy=fedavg"] * 3 + ["fl.strategy=fedprox"] * 3
    seeds = derived_seeds(MICRO["seed"], 3)
    assert [p.seed for p in points] == seeds * 2  # replicate k: the same seed in each group
    assert [p.scenario.seed for p in points] == seeds * 2
    assert all(p.error is None and p.run_dir == tmp_path / "out" / "runs" / p.name
               for p in points)


def test_one_replicate_is_the_sweep_without_replicates(tmp_path):
    plain, _ = plan_points(_sweep(tmp_path, parameters={"fl.rounds": [1, 2]}), tmp_path / "a")
    one, _ = plan_points(_sweep(tmp_path, parameters={"fl.rounds": [1, 2]}, replicates=1),
                         tmp_path / "b")
    assert [p.name for p in one] == [p.name for p in plain] == ["sweep-000", "sweep-001"]
    assert [p.scenario.content_hash() for p in one] == \
        [p.scenario.content_hash() for p in plain]  # a finished sweep is reused as it is


def test_explicit_seeds_and_swept_seeds_become_replicates(tmp_path):
    points, _ = plan_points(_sweep(tmp_path, parameters={"fl.rounds": [1, 2]},
                                   seeds=[11, 5]), tmp_path / "a")
    assert [(p.name, p.seed, p.replicate) for p in points] == [
        ("sweep-000-r0", 11, 0), ("sweep-000-r1", 5, 1),
        ("sweep-001-r0", 11, 0), ("sweep-001-r1", 5, 1)]
    swept, _ = plan_points(_sweep(tmp_path, parameters={"seed": [3, 4], "fl.rounds": [1, 2]}),
                           tmp_path / "b")
    assert [p.name for p in swept] == [f"sweep-{i:03d}" for i in range(4)]  # as before
    assert [(p.group, p.replicate, p.seed) for p in swept] == [  # safe_dump sorts keys
        ("fl.rounds=1", 0, 3), ("fl.rounds=1", 1, 4),
        ("fl.rounds=2", 0, 3), ("fl.rounds=2", 1, 4)]


def test_group_key_writes_values_but_the_seed():
    assert group_key({"links.downlink": {"preset": "uhf"}, "seed": 3, "x": 5}) == \
        "links.downlink={preset: uhf}, x=5"
    assert group_key({"seed": 1}) == "base"


def _table() -> pd.DataFrame:
    """Group a (x = 1): three complete runs; group b (x = 2): one complete, one failed."""
    nan = math.nan
    rows = [  # group, x, status, final_accuracy, rounds, sim_time_h, to_0.7_round,
              # to_0.7_sim_time_s
        ("a", 1, "complete", 0.5, 4, 1.0, 2, 3600.0),
        ("a", 1, "complete", 0.6, 5, 2.0, nan, nan),      # never reached 0.7: censored
        ("a", 1, "complete", 0.7, 6, 3.0, 6, 10800.0),
        ("b", 2, "failed", nan, nan, nan, nan, nan),
        ("b", 2, "complete", 0.9, 3, 1.5, 1, 600.0),
    ]
    return pd.DataFrame(rows, columns=["group", "x", "status", "final_accuracy", "rounds",
                                       "sim_time_h", "to_0.7_round", "to_0.7_sim_time_s"])


def test_summary_means_and_censored_time_to_target_by_hand():
    summary = summarise(_table(), ["x"])
    assert list(summary.columns) == ["group", "x", "metric", *STATISTICS]
    assert len(summary) == 2 * (len(METRICS) + 2)
    row = summary.set_index(["group", "metric"])
    acc = row.loc[("a", "final_accuracy")]
    half = T975_2 * 0.1 / math.sqrt(3)  # mean 0.6, sd 0.1
    assert (acc.n, acc.x) == (3, 1)
    assert (acc["mean"], acc.sd) == pytest.approx((0.6, 0.1))
    assert (acc.lo, acc.hi) == pytest.approx((0.6 - half, 0.6 + half), rel=1e-6)
    assert math.isnan(acc["median"]) and math.isnan(acc.reached)
    # to 0.7 in simulated time: reached at 3600 s and 10800 s; the second run is censored at
    # its last time, 2 h = 7200 s. Kaplan-Meier: S = 2/3 after 3600 s; at 10800 s one run
    # is at risk and reaches it: S = 0, so the median is 10800 s (dropping the censored run
    # would give 3600 s), with the run at 10800 s the last one.
    tt = row.loc[("a", "to_0.7_sim_time_s")]
    assert (tt.n, tt.reached, tt.fraction_reached) == (3, 2, pytest.approx(2 / 3))
    assert tt["median"] == 10800.0 and math.isnan(tt["mean"])
    # in rounds: reached at rounds 2 and 6, censored at the 5 rounds it completed
    assert row.loc[("a", "to_0.7_round")]["median"] == 6.0
    b = row.loc[("b", "final_accuracy")]  # the failed run says nothing: n = 1
    assert (b.n, b["mean"]) == (1, 0.9) and math.isnan(b.sd) and math.isnan(b.lo)
    assert row.loc[("b", "to_0.7_round")]["median"] == 1.0
    assert row.loc[("a", "energy_j")].n == 0  # a metric the table lacks: n = 0


def test_a_group_without_a_complete_run_is_listed_with_n_zero():
    table = _table()
    table.loc[table.group == "b", "status"] = "interrupted"
    row = summarise(table, ["x"]).set_index(["group", "metric"]).loc[("b", "to_0.7_round")]
    assert row.n == 0 and math.isnan(row.fraction_reached) and math.isnan(row["median"])
