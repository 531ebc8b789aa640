"""The SAFE study's protocol (choice on validation scores, grids extended until the choice
is interior, seeds from a power target), its analytic byte table and its report, on
hand-made numbers; and one row of the shipped study recomputed from the shipped data."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orbitfl.core.errors import InputError
from orbitfl.fl.metrics import mean_own_mix_accuracy
from orbitfl.studies.safe.bytes import extra_bytes
from orbitfl.studies.safe.driver import (
    METHODS,
    VARIANTS,
    Protocol,
    Source,
    Study,
    best,
    extension,
    late_accuracy,
    main,
    minimal_detectable_effect,
    seeds_needed,
    selection_score,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "docs" / "safe-study-data"


def test_the_best_setting_reads_scores_and_a_tie_keeps_the_smaller_value():
    assert best({0.01: 0.5, 0.03: 0.7, 0.1: 0.6}) == 0.03
    assert best({0.01: 0.5, 0.03: 0.7, 0.1: 0.7}) == 0.03
    assert best({0.01: np.nan, 0.03: 0.2}) == 0.03
    with pytest.raises(InputError):
        best({0.01: np.nan})


def test_an_end_choice_extends_the_grid_by_the_step():
    grid = [0.01, 0.03, 0.1]
    assert extension(grid, 0.1, 3.0) == pytest.approx(0.3)
    assert extension(grid, 0.01, 3.0) == pytest.approx(0.01 / 3)
    assert extension(grid, 0.03, 3.0) is None


def test_the_selection_score_is_the_mean_of_the_last_evaluations():
    rounds = pd.DataFrame({"val_balanced_accuracy": [0.1, np.nan, 0.2, 0.4, 0.6]})
    assert selection_score(rounds, 3) == pytest.approx(0.4)   # (0.2 + 0.4 + 0.6) / 3


def test_tuning_extends_until_the_choice_is_interior(tmp_path, monkeypatch):
    # a validation score peaking at lr 0.3: 0.1 (the old top) is an end choice, so 0.3 is
    # tried, then 0.9, and 0.3 is interior
    peak = {0.01: 0.3, 0.03: 0.4, 0.1: 0.5, 0.3: 0.6, 0.9: 0.55}
    tried = []

    def scores(self, method, key, base, swept, values, fixed, history):
        tried.extend(values)
        found = {v: peak[round(v, 6)] for v in values}
        history.extend({**fixed, swept: v, "score": s} for v, s in found.items())
        return found

    monkeypatch.setattr(Study, "_scores", scores)
    study = Study(tmp_path, Protocol())
    assert study.tune("fedavg", 100.0) == {"fl.lr": pytest.approx(0.3)}
    assert [round(x, 6) for x in tried] == [0.01, 0.03, 0.1, 0.3, 0.9]
    entry = study.record["tuning"]["if100"]["fedavg"]
    assert entry["interior"] == {"fl.lr": True} and entry["extensions"] == 2
    # the personalised baseline trains as FedAvg: FedAvg's choice, no runs of its own
    assert study.tune("fedavg-ft", 100.0) == {"fl.lr": pytest.approx(0.3)}
    assert len(tried) == 5


def test_variants_at_safes_setting_take_its_choice_and_tune_nothing(tmp_path, monkeypatch):
    # SAFE peaks at lr 0.1; a variant, left untuned, runs there; FedAvg is still tuned
    tuned = []

    def scores(self, method, key, base, swept, values, fixed, history):
        tuned.append(method)
        found = {v: -abs(v - 0.1) for v in values}
        history.extend({**fixed, swept: v, "score": s} for v, s in found.items())
        return found

    monkeypatch.setattr(Study, "_scores", scores)
    study = Study(tmp_path, Protocol(variants_at_headline=True))
    for variant in VARIANTS:
        assert study.tune(variant, 100.0) == {"fl.lr": pytest.approx(0.1)}
    assert study.tune("fedavg", 100.0) == {"fl.lr": pytest.approx(0.1)}
    assert set(tuned) == {"safe", "fedavg"}
    record = json.loads((tmp_path / "study.json").read_text())
    assert record["protocol"]["variants_at_headline"] is True
    assert {record["tuning"]["if100"][v]["same_as"] for v in VARIANTS} == {"safe"}
    # the default still tunes every variant on its own grid
    tuned.clear()
    Study(tmp_path / "tuned", Protocol()).tune("safe-cro", 100.0)
    assert set(tuned) == {"safe-cro"}


def test_fedprox_mu_is_extended_until_interior_too(tmp_path, monkeypatch):
    # lr peaks inside its grid (0.03); mu at the bottom of [0.01, 0.1, 1], so 0.01 / 3 and
    # 0.01 / 9 are tried and 0.01 / 3 is interior
    lr = {0.01: 0.3, 0.03: 0.5, 0.1: 0.4}
    mu = {0.01: 0.5, 0.1: 0.4, 1.0: 0.3, 0.00333333: 0.55, 0.00111111: 0.52}
    tried = []

    def scores(self, method, key, base, swept, values, fixed, history):
        tried.append((swept, [round(v, 8) for v in values], dict(fixed)))
        return {v: (lr if swept == "fl.lr" else mu)[round(v, 8)] for v in values}

    monkeypatch.setattr(Study, "_scores", scores)
    study = Study(tmp_path, Protocol())
    assert study.tune("fedprox", 100.0) == {"fl.lr": 0.03,
                                            "fl.fedprox.mu": pytest.approx(0.01 / 3, 1e-5)}
    assert tried == [("fl.lr", [0.01, 0.03, 0.1], {}),
                     ("fl.fedprox.mu", [0.01, 0.1, 1.0], {"fl.lr": 0.03}),
                     ("fl.fedprox.mu", [0.00333333], {"fl.lr": 0.03}),
                     ("fl.fedprox.mu", [0.00111111], {"fl.lr": 0.03})]
    entry = study.record["tuning"]["if100"]["fedprox"]
    assert entry["interior"] == {"fl.lr": True, "fl.fedprox.mu": True}
    assert entry["extensions"] == 2


def test_fedprox_mu_grid_reuses_the_rate_grids_point_at_the_default_mu(tmp_path,
                                                                      monkeypatch):
    """The mu grid at the chosen rate holds the rate grid's point at the default mu (0.01):
    the same runs under other point names, which the 400-round baselines ran twice."""
    from orbitfl.studies.safe.report import tuning_lines

    lr = {0.033: 0.61, 0.1: 0.646, 0.3: 0.59}
    mu = {0.1: 0.691, 1.0: 0.665}
    ran = []

    def scores(self, method, key, base, swept, values, fixed, history):
        ran.append((swept, list(values)))
        found = {v: (lr if swept == "fl.lr" else mu).get(v, 0.0) for v in values}
        history.extend({**fixed, swept: v, "score": s, "runs": 3} for v, s in found.items())
        return found

    monkeypatch.setattr(Study, "_scores", scores)
    study = Study(tmp_path, Protocol(lr_grid=(0.033, 0.1, 0.3)))
    assert study.tune("fedprox", 100.0) == {"fl.lr": 0.1, "fl.fedprox.mu": 0.1}
    assert ran == [("fl.lr", [0.033, 0.1, 0.3]), ("fl.fedprox.mu", [0.1, 1.0])]
    entry = study.record["tuning"]["if100"]["fedprox"]
    assert {"fl.lr": 0.1, "fl.fedprox.mu": 0.01, "score": 0.646, "runs": 3,
            "reused": True} in entry["history"]
    rows = tuning_lines(study.record, pd.DataFrame())[2:]
    assert sum("| mu 0.01, lr 0.1 | 0.646 |" in r for r in rows) == 1 and len(rows) == 5
    # a study that sets mu reuses the rate grid's point at its own mu, not at 0.01
    mu[0.01] = 0.5
    for given, runs in ((0.1, [0.01, 1.0]), (1.0, [0.01, 0.1]), (0.05, [0.01, 0.1, 1.0])):
        ran.clear()
        Study(tmp_path / f"mu-{given}", Protocol(lr_grid=(0.033, 0.1, 0.3)),
              overrides=[("fl.fedprox.mu", given)]).tune("fedprox", 100.0)
        assert ran[1] == ("fl.fedprox.mu", runs)


def test_tuning_seeds_are_never_measured():
    with pytest.raises(InputError):
        Protocol(tuning_seeds=(3,)).measured_seeds(5)
    assert Protocol().measured_seeds(5) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("seeds, says", [("1002,3", "tuning seed 3 is also a measured seed"),
                                         ("1002,x", "--tuning-seeds: expected whole numbers"),
                                         ("7,7", "--tuning-seeds: expected distinct values")])
def test_the_command_line_refuses_tuning_seeds_it_would_measure_or_cannot_read(
        tmp_path, capsys, seeds, says):
    assert main(["--out", str(tmp_path / "s"), "--tuning-seeds", seeds]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()  # refused before any run


def _tuned_study(folder: Path, monkeypatch) -> None:
    """A study folder whose record chose lr 0.3 for FedAvg and SAFE (no runs)."""
    monkeypatch.setattr(Study, "_scores", lambda self, m, k, b, swept, values, fixed, history:
                        {v: -abs(v - 0.3) for v in values})
    study = Study(folder, Protocol(tuning_seeds=(1001, 1002)))
    study.tune("fedavg", 100.0)
    study.tune("safe", 100.0)
    monkeypatch.undo()


def test_settings_taken_from_another_study_are_its_choices_and_tune_nothing(
        tmp_path, monkeypatch):
    _tuned_study(tmp_path / "source", monkeypatch)
    source = Source.read(tmp_path / "source")
    assert source.tuning_seeds == (1001, 1002)

    def no_tuning(*args, **kwargs):
        raise AssertionError("a study with taken settings tuned")

    monkeypatch.setattr(Study, "_scores", no_tuning)
    study = Study(tmp_path / "check", Protocol(tuning_seeds=source.tuning_seeds),
                  overrides=[("fl.rounds", 200)], source=source)
    assert study.tune("safe", 100.0) == {"fl.lr": pytest.approx(0.3)}
    assert study.tune("fedavg-ft", 100.0) == {"fl.lr": pytest.approx(0.3)}   # via FedAvg
    entry = json.loads((tmp_path / "check" / "study.json").read_text())["tuning"]["if100"]
    assert entry["safe"]["taken_from"] == str(tmp_path / "source")
    assert entry["safe"]["interior"] == {"fl.lr": True}
    with pytest.raises(InputError, match="no tuned setting for fedprox at if100"):
        study.tune("fedprox", 100.0)
    with pytest.raises(InputError, match="no tuned setting for safe at if10$"):
        study.tune("safe", 10.0)
    del source.record["tuning"]["if100"]["safe"]["interior"]   # never read as interior
    with pytest.raises(InputError, match="no tuned setting for safe at if100"):
        Study(tmp_path / "again", Protocol(), source=source).tune("safe", 100.0)


@pytest.mark.parametrize("extra, says", [
    ([], "--settings-from {missing}: no tuned settings there"),
    (["--tuning-seeds", "1002"], "--tuning-seeds: the settings come from {source}")])
def test_the_command_line_refuses_settings_it_cannot_take(tmp_path, monkeypatch, capsys,
                                                         extra, says):
    _tuned_study(tmp_path / "source", monkeypatch)
    capsys.readouterr()   # the source's own tuning lines
    where = tmp_path / ("missing" if not extra else "source")
    assert main(["--out", str(tmp_path / "s"), "--settings-from", str(where), *extra]) != 0
    err = capsys.readouterr().err.strip()
    assert says.format(missing=where, source=where) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def _curves(gains: dict[int, float]) -> pd.DataFrame:
    """Rounds 0..8 of one method per seed: flat at 0.5 until round 6, then + its gain (so
    the last quarter, rounds 7-8, minus the third, rounds 5-6, is exactly that gain)."""
    return pd.DataFrame([{"method": "fedavg", "seed": seed, "round": r,
                          "accuracy": 0.5 + (gain if r > 6 else 0.0)}
                         for seed, gain in gains.items() for r in range(9)])


@pytest.mark.parametrize("gains, mean, reading", [
    ({1: 0.2, 2: 0.2, 3: 0.2}, "+0.200 [+0.200, +0.200]", "still rising"),
    ({1: 0.001, 2: -0.001, 3: 0.0}, "+0.000 [-0.002, +0.002]", "flat (within +-0.02)"),
    ({1: 0.1, 2: -0.1, 3: 0.0}, "+0.000 [-0.248, +0.248]", "undecided")])
def test_the_plateau_reading_pairs_each_seeds_quarters(gains, mean, reading):
    from orbitfl.studies.safe.report import plateau

    row = plateau(_curves(gains), {})[2]
    # t(0.975, 2) = 4.303: 4.303 * 0.1 / sqrt(3) = 0.248; 4.303 * 0.001 / sqrt(3) = 0.0025
    assert row.startswith("| fedavg | 8 | 3 | 0.500 |")
    assert f"| {mean} | {reading} |" in row


def test_seeds_from_the_half_width_target_by_hand():
    # sd 0.05, one comparison, half-width <= 0.05: t(0.975, n-1) / sqrt(n) <= 1
    # n = 6: 2.571 / 2.449 = 1.05; n = 7: 2.447 / 2.646 = 0.925
    assert seeds_needed(0.05, Protocol(), 1) == 7
    assert seeds_needed(0.001, Protocol(), 10) == 5          # never fewer than 5
    # MDE at n = 5: (t(0.975, 4) + t(0.8, 4)) sd / sqrt(5) = (2.7764 + 0.9410) 0.05 / 2.2361
    assert minimal_detectable_effect(0.05, 5, Protocol(), 1) == pytest.approx(
        (2.7764 + 0.9410) * 0.05 / math.sqrt(5), abs=1e-4)


def test_the_realised_half_width_is_stated_beside_the_pilots_by_hand():
    from orbitfl.studies.safe.report import realised_half_width

    # sd 0.1 over 3 seeds: t(0.975, 2) 0.1 / sqrt(3) = 4.303 * 0.0577 = 0.248; over two
    # comparisons t(0.9875, 2) = 6.205: 0.358
    d = pd.Series([0.1, 0.2, 0.3])
    assert realised_half_width(d, Protocol(), 1) == (
        " Over all 3 paired seeds the sd is 0.1000, so the interval's realised half-width "
        "is 0.248: above the target.")
    assert "half-width is 0.358" in realised_half_width(d, Protocol(), 2)
    assert ": within the target." in realised_half_width(d / 10, Protocol(), 1)
    assert realised_half_width(pd.Series([0.1, np.nan]), Protocol(), 1) == ""


def test_the_headline_on_late_round_means_by_hand():
    from orbitfl.studies.safe.report import late_mean_lines

    # rounds 0..9; FedAvg flat at 0.5; SAFE 0.5 but 0.8 at the last round, and seed 3 a
    # further 0.1 over its last two: k = 1 gives (0.3, 0.3, 0.4), k = 5 (0.06, 0.06, 0.1)
    rows = [{"method": m, "seed": seed, "round": r,
             "accuracy": 0.5 + (0.3 if m == "safe" and r == 9 else 0.0)
             + (0.1 if m == "safe" and seed == 3 and r >= 8 else 0.0)}
            for m in ("fedavg", "safe") for seed in (1, 2, 3) for r in range(10)]
    lines = late_mean_lines(pd.DataFrame(rows), (1, 5))
    # sd of (0.3, 0.3, 0.4) = 0.0577, t(0.975, 2) 0.0577 / sqrt(3) = 0.143
    assert lines[0].startswith("SAFE - FedAvg on each seed's mean")
    assert lines[4] == "| 1 | 3 | +0.333 [+0.190, +0.477] | 0.058 |"
    assert lines[5].startswith("| 5 | 3 | +0.073 [")
    # without FedAvg neither the table nor the sentence that announces it
    assert late_mean_lines(pd.DataFrame(rows).query("method == 'safe'")) == []


def test_the_late_headline_is_the_mean_of_the_last_evaluated_rounds_by_hand():
    rounds = pd.DataFrame({"accuracy": [0.1, np.nan, 0.2, 0.4, 0.9]})
    assert late_accuracy(rounds, 3) == pytest.approx(0.5)     # (0.2 + 0.4 + 0.9) / 3
    assert late_accuracy(rounds, 1) == pytest.approx(0.9)
    assert math.isnan(late_accuracy(pd.DataFrame({"accuracy": [np.nan]}), 2))
    assert Protocol().headline_metric == "final_accuracy"
    assert Protocol(headline_rounds=10).headline_metric == "late_accuracy"


def test_the_report_reads_the_headline_its_protocol_declares():
    from orbitfl.studies.safe.report import headline_lines, power_lines, with_headline

    # seeds 1..5, rounds 0..3: FedAvg flat at 0.5; SAFE at 0.5 + 0.01 * seed in rounds 2-3
    # and 0.9 in its last round 3 only for seed 1 (one round's swing)
    keys = {"network": "ideal", "factor": 100.0}
    curves = pd.DataFrame([{**keys, "method": m, "seed": seed, "round": r, "accuracy": (
        0.5 if m == "fedavg" else 0.9 if (seed, r) == (1, 3) else
        0.5 + (0.01 * seed if r >= 2 else 0.0))}
        for m in ("fedavg", "safe") for seed in range(1, 6) for r in range(4)])
    last = curves.sort_values("round").groupby(["method", "seed"]).tail(1)
    runs = last.rename(columns={"accuracy": "final_accuracy"}).drop(columns="round")
    record = {"protocol": {"headline_rounds": 2}}
    late = with_headline(record, runs, curves).set_index(["method", "seed"])["late_accuracy"]
    # SAFE seed 1: (0.51 + 0.9) / 2 = 0.705; seed 4: 0.54; FedAvg 0.5
    assert late["safe", 1] == pytest.approx(0.705) and late["safe", 4] == pytest.approx(0.54)
    assert late["fedavg", 3] == pytest.approx(0.5)
    assert with_headline({}, runs, curves) is runs      # the last round: nothing added
    assert "last 2 evaluated rounds" in headline_lines(record)[0] and not headline_lines({})
    # the power line reads the late means: differences 0.205, 0.02, 0.03, 0.04, 0.05
    line = power_lines(record, with_headline(record, runs, curves))[0]
    sd = float(np.std([0.205, 0.02, 0.03, 0.04, 0.05], ddof=1))
    assert f"have sd {sd:.4f}" in line


def test_rounds_and_bytes_to_a_target_every_run_reaches_pair_by_seed_by_hand(tmp_path):
    from scipy import stats

    from orbitfl.studies.safe.report import (
        _variant_target_lines,
        all_reached,
        as_sweep,
        common_target,
        paired_to_target,
        reaches,
        study_target,
        target_verdict,
    )

    # FedAvg's seed s climbs 0.1 a round from round 0 to 0.1 * r, capped at 0.5 + 0.05 s;
    # SAFE's twice as fast, capped at 0.6. Every run reaches 0.55 (FedAvg seed 1 does not
    # reach 0.6): FedAvg at round 6, SAFE at round 3; bytes 1 MB a round for FedAvg and
    # 1.5 MB for SAFE
    keys = {"network": "ideal", "factor": 100.0}
    curves = pd.DataFrame([{**keys, "method": m, "seed": s, "round": r, "accuracy": min(
        (0.1 if m == "fedavg" else 0.2) * r, 0.5 + 0.05 * s if m == "fedavg" else 0.6),
        "bytes_up": r * (0.5e6 if m == "fedavg" else 1e6), "bytes_down": r * 0.5e6,
        "sim_time_s": 60.0 * r} for m in ("fedavg", "safe") for s in (1, 2, 3)
        for r in range(9)])
    runs = curves[curves["round"] == 8].drop(columns="round").assign(status="complete")
    sweep = as_sweep({}, runs, curves, tmp_path)
    assert common_target(sweep, {"fedavg", "safe"}) == pytest.approx(0.55)
    assert common_target(sweep, {"safe"}) == pytest.approx(0.6)
    assert study_target(sweep) == pytest.approx(0.6)   # half of FedAvg's runs reach 0.6
    found = reaches(sweep, 0.6, "round").set_index("point")
    assert not found.loc["fedavg-s1", "reached"] and found.loc["fedavg-s1", "round"] == 8
    # FedAvg has a censored run at 0.6: it has no mean to pair there, SAFE keeps its rows
    assert set(all_reached(reaches(sweep, 0.6, "round"))["group"]) == {"safe"}
    rounds = paired_to_target(sweep, reaches(sweep, 0.55, "round"), "round").iloc[0]
    assert rounds["mean"] == pytest.approx(-3) and rounds["n"] == 3  # 3 - 6, every seed
    mb = paired_to_target(sweep, reaches(sweep, 0.55, "bytes"), "bytes").iloc[0]
    assert mb["mean"] == pytest.approx(3 * 1.5 - 6 * 1.0)           # 4.5 MB - 6 MB
    text = target_verdict("here", {}, {"target": 0.55, "paired": {   # groups by method key
        "round": paired_to_target(sweep, reaches(sweep, 0.55, "round"), "round")}})
    assert len(text) == 1 and "safe - FedAvg, rounds to 55 % (reached by every run): -3 " \
        "[-3, -3]" in text[0] and text[0].endswith("safe needs fewer.")
    # a variant against full SAFE: SAFE - ACE 2, 4, 6 rounds slower on seeds 1, 2, 3
    safe = pd.DataFrame({"point": [f"safe-s{s}" for s in (1, 2, 3)], "group": "safe",
                         "replicate": [1, 2, 3], "round": [3.0, 3.0, 3.0], "reached": True})
    ace = safe.assign(point=[f"safe-ace-s{s}" for s in (1, 2, 3)], group="safe-ace",
                      round=[5.0, 7.0, 9.0])
    lines = _variant_target_lines({}, {"round": pd.concat([safe, ace])}, ("round",), 0.55)
    half = stats.t.ppf(0.975, 2) * 2 / np.sqrt(3)           # differences 2, 4, 6: sd 2
    assert lines[-2] == (f"| safe-ace | 3 | +4 [{4 - half:+.3g}, {4 + half:+.3g}] "
                         f"(Holm p {stats.ttest_1samp([2, 4, 6], 0).pvalue:.2g}) |")


def test_a_declared_target_is_read_for_safes_variants_without_fedavg_by_hand(tmp_path):
    from scipy import stats

    from orbitfl.studies.safe.report import _target_section, as_sweep, verdict

    # SAFE's seed s climbs 0.2 a round (0.6 at round 3); SAFE - ACE's 0.6 / (5 + s) a
    # round, so it reaches 0.6 at rounds 6, 7, 8: +3, +4, +5 rounds, and both go on to 0.7
    # (so that the highest target every run reaches, 0.7, is not the one declared)
    keys = {"network": "ideal", "factor": 100.0}
    pace = {("safe", s): 0.2 for s in (1, 2, 3)} | {
        ("safe-ace", s): 0.6 / (5 + s) for s in (1, 2, 3)}
    curves = pd.DataFrame([{**keys, "method": m, "seed": s, "round": r, "accuracy": min(
        pace[m, s] * r + 1e-9, 0.7), "bytes_up": r * 1e6, "bytes_down": r * 1e6,
        "sim_time_s": 60.0 * r} for (m, s) in pace for r in range(16)])
    runs = curves[curves["round"] == 15].drop(columns="round").assign(status="complete")
    sweep = as_sweep({}, runs, curves, tmp_path)
    found = {"numbers": pd.DataFrame(columns=["group", "metric", "pairs"]), "sweep": sweep}
    lines = _target_section({}, sweep, "ideal", "cap", found, declared=0.6)
    assert "to 60 % (the target the plan declared)" in "\n".join(lines)
    text = verdict({}, {("ideal", 100.0): found})
    half = stats.t.ppf(0.975, 2) / np.sqrt(3)               # differences 3, 4, 5: sd 1
    rounds = next(line for line in text if "rounds to 60 %" in line)
    assert rounds == (f"- IF 100, ideal: (safe-ace) - SAFE, rounds to 60 % (the declared "
                      f"target; reached by every run): +4 [{4 - half:+.3g}, {4 + half:+.3g}] "
                      f"(simultaneous 95 % over 1 variant, 3 seeds, Holm p "
                      f"{stats.ttest_1samp([3, 4, 5], 0).pvalue:.2g}): safe-ace needs more.")
    assert not any("FedAvg" in line for line in text)       # FedAvg did not run
    # a declared target one SAFE run never reaches is not read as if it were reached
    late = curves.assign(accuracy=np.where((curves["method"] == "safe") & (
        curves["seed"] == 1), curves["accuracy"].clip(upper=0.55), curves["accuracy"]))
    sweep = as_sweep({}, runs, late, tmp_path)
    found = {"numbers": found["numbers"], "sweep": sweep}
    lines = _target_section({}, sweep, "ideal", "cap", found, declared=0.6)
    assert "Not every run of safe reaches the declared 60 %" in "\n".join(lines)
    assert "declared_target" not in found


def test_each_variants_detectable_effect_from_its_own_paired_sd_by_hand():
    from scipy import stats

    from orbitfl.studies.safe.report import variant_power_lines

    # SAFE at 0.6 on seeds 1..4; SAFE - CRO 0.01, 0.03, 0.02, 0.06 lower (sd of those
    # differences by hand); SAFE - ACE equal to SAFE on few-shot accuracy
    loss = {1: 0.01, 2: 0.03, 3: 0.02, 4: 0.06}
    runs = pd.DataFrame([{"method": m, "seed": s, "status": "complete",
                          "final_accuracy": 0.6 - (loss[s] if m == "safe-cro" else 0.0),
                          "few_shot_accuracy": 0.2} for m in ("safe", "safe-cro", "safe-ace")
                         for s in loss])
    lines = variant_power_lines({}, runs, ["safe-cro", "safe-ace"])
    d = -np.array(list(loss.values()))
    sd = d.std(ddof=1)
    mde = (stats.t.ppf(1 - 0.05 / 4, 3) + stats.t.ppf(0.8, 3)) * sd / 2   # 2 variants, n 4
    assert lines[2] == f"| safe-cro | 4 | {sd:.3f} | {mde:.3f} | 0.000 | 0.000 |"
    assert lines[3].startswith("| safe-ace | 4 | 0.000 | 0.000 |")   # labels: the record's


@pytest.mark.parametrize("flags, says", [
    (["--lr-grid", "0.1,x"], "--lr-grid: expected numbers, got 0.1,x"),
    (["--lr-grid", "0.1,0.1"], "--lr-grid: expected distinct values"),
    (["--lr-grid", "0.1,nan"], "--lr-grid: expected positive finite numbers"),
    (["--lr-grid", "-1"], "--lr-grid: expected positive finite numbers"),
    (["--headline-rounds", "0"], "--headline-rounds: at least 1, got 0"),
    (["--selection-rounds", "-2"], "--selection-rounds: at least 1, got -2"),
    (["--links-duration", "abc"], "--links-duration: expected a duration like"),
    (["--links-duration", "0s"], "--links-duration: a duration must be positive"),
    (["--links-duration=-3d"], "--links-duration: expected a duration like"),
    (["--seeds", "3"], "--seeds: at least 5, got 3"),
    (["--first-seed", "-1"], "--first-seed: at least 0, got -1"),
    (["--first-seed", "1000", "--seeds", "5", "--tuning-seeds", "1001"],
     "tuning seed 1001 is also a measured seed")])
def test_the_command_line_refuses_a_protocol_it_cannot_use(tmp_path, capsys, flags, says):
    assert main(["--out", str(tmp_path / "s"), *flags]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("target", ["0", "1", "nan", "-0.5", "60"])
def test_the_report_refuses_a_declared_target_that_is_no_accuracy(tmp_path, capsys, target):
    from orbitfl.studies.safe.report import main as report

    out = tmp_path / "page.md"
    assert report([str(ROOT / "docs" / "safe-study-400-links-data"), "--out", str(out),
                   "--target", target]) != 0
    err = capsys.readouterr().err.strip()
    assert "--target: expected an accuracy between 0 and 1" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def _truncated(table: Path) -> None:
    table.write_bytes(table.read_bytes()[:100])


def _without_seed(table: Path) -> None:
    pd.read_parquet(table).drop(columns=["seed"]).to_parquet(table)


def _without_runs(table: Path) -> None:
    pd.read_parquet(table).iloc[:0].to_parquet(table)


@pytest.mark.parametrize("name, damage, says", [
    ("curves", _truncated, "curves.parquet is not a readable parquet table"),
    ("runs", _without_seed, "runs.parquet is not an orbitfl table (no seed column)"),
    ("runs", _without_runs, "runs.parquet holds no run")])
def test_the_report_refuses_damaged_shipped_tables_in_one_line(tmp_path, capsys, name,
                                                                damage, says):
    import shutil

    from orbitfl.studies.safe.report import main as report

    data, out = tmp_path / "data", tmp_path / "page.md"
    shutil.copytree(ROOT / "docs" / "safe-study-400-ace-data", data)
    damage(data / f"{name}.parquet")
    assert report([str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and err.endswith("export the study again")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_the_report_refuses_notes_it_cannot_read_and_a_folder_it_cannot_make(tmp_path,
                                                                             capsys):
    from orbitfl.studies.safe.report import main as report

    data, out = ROOT / "docs" / "safe-study-400-ace-data", tmp_path / "page.md"
    # a notes file named but absent was silently left out of the page
    assert report([str(data), "--out", str(out), "--notes", str(tmp_path / "no.md")]) == 2
    (tmp_path / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    assert report([str(data), "--out", str(out), "--notes", str(tmp_path / "latin1.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'no.md'}: notes file not found",
                   f"error: {tmp_path / 'latin1.md'}: cannot read notes file (not UTF-8 "
                   "text: byte 3)"]
    assert not out.exists() and not (tmp_path / "figures").exists()
    # a folder under a file cannot be made: one line, exit 1, as the orbitfl command does
    (tmp_path / "a-file").write_text("")
    assert report([str(data), "--out", str(tmp_path / "a-file" / "page.md")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'a-file'}")


def test_an_interrupted_or_terminated_driver_says_how_to_resume(tmp_path, monkeypatch,
                                                                 capsys):
    """Ctrl-C, or the SIGTERM that ends a sitting, was a traceback: now one line, exit 130
    (the sweeps write what finished before the interrupt reaches here)."""
    import os
    import signal

    from orbitfl.studies.safe import driver

    def stopped(self, methods, networks):
        os.kill(os.getpid(), signal.SIGTERM)   # the handler turns it into an interrupt

    monkeypatch.setattr(driver.Study, "run", stopped)
    assert driver.main(["--out", str(tmp_path / "study"), "--only", "fedavg"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("interrupted: the runs that finished are kept; run the same command "
                       "again to resume the rest")
    assert "Traceback" not in "\n".join(err)


def test_the_links_span_reaches_only_the_real_link_runs(tmp_path, monkeypatch):
    # 400 real-link rounds need ~12 days of contacts; the ideal runs keep the base's span,
    # so their scenarios (and hashes) stay those of a study without the flag
    swept = []
    monkeypatch.setattr(Study, "tune", lambda self, method, factor: {"fl.lr": 0.1})
    monkeypatch.setattr(Study, "sweeps", lambda self, sweeps: swept.append(
        [(s.folder.parts[-3], s.folder.name, s.setting) for s in sweeps]))
    study = Study(tmp_path, Protocol(links_duration="13d"))
    study.measure(["fedavg"], 100.0, "ideal", 5)
    study.measure(["fedavg", "safe"], 100.0, "links", 5)
    [(_, _, ideal)], [(_, _, links), (_, safe, _)] = swept  # the methods share one pool
    assert safe == "safe"
    assert "duration" not in ideal and ideal["network.mode"] == "ideal"
    assert links["duration"] == "13d" and links["network.mode"] == "links"
    assert Protocol().network_set("links") == {"network.mode": "links"}


def test_a_links_only_call_still_measures_ideal_links_at_every_seed(tmp_path, monkeypatch):
    # the pilot's sweep holds 5 seeds; were ideal left there, a real-link page would show
    # its ideal runs at 5 seeds beside 10 real-link ones (and a shared folder would shrink)
    measured = []
    monkeypatch.setattr(Study, "tune", lambda self, method, factor: {"fl.lr": 0.1})
    monkeypatch.setattr(Study, "power", lambda self, factor, methods: 10)
    monkeypatch.setattr(Study, "measure", lambda self, methods, factor, network, seeds:
                        measured.append((network, list(methods), seeds)))
    Study(tmp_path, Protocol(networks=("links",))).run(["fedavg", "safe"], ["links"])
    assert measured == [("ideal", ["fedavg", "safe"], 10), ("links", ["fedavg", "safe"], 10)]


def test_the_export_refuses_sweeps_over_other_seeds_than_the_record_measured(tmp_path):
    from orbitfl.studies.safe.export import check_seeds
    from orbitfl.studies.safe.report import check_finished

    # the record says 10 seeds; the links FedAvg sweep lists 1-10, the ideal one the pilot's
    # 1-5 (a links-only call, or a study stopped right after its power decision)
    record = {"protocol": {"first_seed": 1}, "power": {"if100": {"seeds_run": 10}}}
    runs = pd.DataFrame([{"network": n, "factor": 100.0, "method": m, "seed": s}
                         for n, m, seeds in (("links", "fedavg", range(1, 11)),
                                             ("ideal", "fedavg", range(1, 6)))
                         for s in seeds])
    # a study in progress: its carry ships, its page does not; so does one stopped while
    # seed 5 was still in flight and seed 6 had finished
    links = runs[runs["network"] == "links"]
    gap = pd.concat([links, runs.iloc[:5].assign(network="ideal", seed=[1, 2, 3, 4, 6])])
    for progress, shown in ((runs, "1-5"), (gap, "1, 2, 3, 4, 6")):
        check_seeds(tmp_path, record, progress)
        with pytest.raises(InputError, match=rf"runs.parquet: fedavg at if100 on ideal links "
                                             rf"was measured on seeds {shown}, but the "
                                             r"study's record measured 1-10; run the driver"):
            check_finished(tmp_path, record, progress)
    check_finished(tmp_path, record, links)                             # finished
    # every seed listed, one still interrupted: in progress
    stopped = links.assign(status=["complete"] * 9 + ["interrupted"])
    with pytest.raises(InputError, match=r"fedavg at if100 on real links: seed 10 was "
                                         r"interrupted; run the driver"):
        check_finished(tmp_path, record, stopped)
    # stopped before the pilot decided the count: a carry, not a page
    check_seeds(tmp_path, {"protocol": {"first_seed": 1}}, runs)
    with pytest.raises(InputError, match=r"seeds 1-10, but the study's record holds no seed "
                                         r"count \(its internal pilot is unfinished\)"):
        check_finished(tmp_path, {"protocol": {"first_seed": 1}}, links)
    # a seed the record never measured is another protocol's: refused both ways
    beyond = pd.concat([links, links.assign(network="ideal"),
                        links.iloc[:2].assign(network="ideal", seed=[11, 12])])
    with pytest.raises(InputError, match=r"measure/ideal/if100/fedavg: its sweep lists seeds "
                                         r"1-12, but the study's record measured 1-10"):
        check_seeds(tmp_path, record, beyond)
    with pytest.raises(InputError, match=r"measured on seeds 1-12, but"):
        check_finished(tmp_path, record, beyond)
    # a confirmation's fixed count from its first seed
    fixed = {"protocol": {"first_seed": 11, "fixed_seeds": 3}}
    check_seeds(tmp_path, fixed, runs.iloc[:3].assign(seed=[11, 12, 13]))
    with pytest.raises(InputError, match="lists seeds 11, 13, 14, but .* measured 11-13"):
        check_seeds(tmp_path, fixed, runs.iloc[:3].assign(seed=[11, 13, 14]))


def test_the_regenerate_line_repeats_the_protocol_flags():
    from orbitfl.studies.safe.report import regenerate_lines

    record = {"protocol": {**Protocol().__dict__, "lr_grid": [0.1, 0.3, 0.9],
                           "headline_rounds": 10, "selection_rounds": 10,
                           "variants_at_headline": True, "links_duration": "13d"}}
    runs = pd.DataFrame({"method": ["fedavg", "safe"], "network": ["ideal", "ideal"]})
    line = regenerate_lines(record, runs, Path("d"), Path("docs/x.md"), None)[3]
    assert ("--only fedavg,safe --networks ideal --lr-grid 0.1,0.3,0.9 "
            "--selection-rounds 10 --headline-rounds 10 --variants-at-safe "
            "--links-duration 13d") in line


def test_the_study_has_every_row_the_issue_asks_for():
    labels = {m["label"] for m in METHODS.values()}
    assert {"FedAvg", "FedProx", "FedLA (logit adjustment)", "FedAvg + local fine-tuning",
            "SAFE", "SAFE - CRO", "SAFE - FAU", "SAFE - ACE", "SAFE, fixed mu",
            "SAFE, DMR off"} <= labels
    assert any(m.startswith("Centralised") for m in labels)


def test_own_mix_accuracy_by_hand():
    # client 0 holds classes 0 and 1 as 3:1, client 1 only class 2
    per_class = [[1.0, 0.0, 0.5], [0.2, 0.4, 0.9]]
    counts = [np.array([3, 1, 0]), np.array([0, 0, 5])]
    assert mean_own_mix_accuracy(per_class, counts) == pytest.approx((0.75 + 0.9) / 2)


def test_the_ses_bytes_by_hand():
    sizes = extra_bytes("small-cnn", 32)
    # 64-byte message header; images: 16 + 4 x 4 header, 100 x 3 x 32 x 32 bytes;
    # offset and scale: 16 + 4 header and 3 float32 each
    assert sizes.ses == 64 + 32 + 100 * 3 * 32 * 32 + 2 * (20 + 12)
    assert extra_bytes("small-cnn", 256, classes=45).ses == \
        64 + 32 + 450 * 3 * 256 * 256 + 2 * (20 + 12)            # 88.5 MB
    assert sizes.a_g == 64 + 16 + 2 * 4 + 100 * 128 * 4            # 100 x 128 float32
    assert sizes.class_weights == 64 + 20 + 10 * 4


def test_one_row_of_the_shipped_study_recomputed_from_its_data():
    from scipy import stats

    runs = pd.read_parquet(SHIPPED / "runs.parquet")
    ideal = runs[(runs["network"] == "ideal") & (runs["factor"] == 100.0) &
                 (runs["status"] == "complete")]
    fedavg = ideal[ideal["method"] == "fedavg"].set_index("seed")["final_accuracy"]
    safe = ideal[ideal["method"] == "safe"].set_index("seed")["final_accuracy"]
    d = (safe - fedavg).dropna()
    n = len(d)
    m = ideal.loc[ideal["method"] != "fedavg", "method"].nunique()
    half = stats.t.ppf(1 - 0.025 / m, n - 1) * d.std(ddof=1) / math.sqrt(n)
    page = (ROOT / "docs" / "safe-study.md").read_text()
    row = next(line for line in page.splitlines()             # ideal comes first
               if line.startswith(f"| SAFE | FedAvg | {n} |"))
    assert f"{d.mean():+.4g} [{d.mean() - half:+.4g}, {d.mean() + half:+.4g}]" in row
    assert fedavg.notna().all() and json.loads((SHIPPED / "study.json").read_text())


@pytest.mark.parametrize("name", ["safe-study", "safe-study-100-rounds",
                                  "safe-study-replication", "safe-study-200-rounds",
                                  "safe-study-plateau", "safe-study-400",
                                  "safe-study-400-parts", "safe-study-400-links",
                                  "safe-study-400-ace", "safe-study-400-baselines"])
def test_the_page_is_what_the_shipped_data_give(tmp_path, name):
    from orbitfl.studies.safe.report import TABLES, write_report

    data = ROOT / "docs" / f"{name}-data"
    # a shipped page ships its data (.gitignore un-ignores each data folder's parquet)
    assert all((data / f"{t}.parquet").is_file() for t in TABLES), f"{data}: tables missing"
    shipped = (ROOT / "docs" / f"{name}.md").read_text()
    # a page that reads a plan's declared target says so in its regenerate line
    declared = re.search(r"studies\.safe\.report .* --target (\S+)", shipped)
    page = write_report(data, tmp_path / f"{name}.md", tmp_path / "figures",
                        ROOT / "docs" / f"{name}-notes.md",
                        float(declared.group(1)) if declared else None)
    # the whole page, prose from the notes included: a notes edit without regenerating the
    # page leaves it saying what the notes no longer say
    page = page.replace(str(tmp_path / f"{name}.md"), f"docs/{name}.md").replace(
        f"{ROOT}{os.sep}", "")                        # the command names the checkout's paths
    stale = [(n, mine, theirs) for n, (mine, theirs) in enumerate(
        zip(page.splitlines(), shipped.splitlines()), 1) if mine != theirs]
    assert page == shipped, f"docs/{name}.md is not what its data and notes give: " + (
        f"line {stale[0][0]}: {stale[0][2]!r}, regenerated {stale[0][1]!r}" if stale
        else "its length differs")
    tables = [line for line in page.splitlines() if line.startswith(("|", "- "))]
    assert "not shown" in page or "is shown" in page
    # one target a page section: the accuracy table carries no second, sim-time target
    assert not [line for line in tables if line.startswith("| group | n | accuracy") and
                "time to" in line]


def test_the_verdict_reads_every_baseline_as_it_reads_safe():
    """The 400-round baselines declared each method minus FedAvg on the late mean, on
    few-shot accuracy and to the common target; the verdict once read FedProx and FedLA on
    the late mean only, and hid that FedLA matches SAFE's few-shot gain."""
    page = (ROOT / "docs" / "safe-study-400-baselines.md").read_text()
    verdict = page.split("## Verdict")[1].split("\n## ")[0]
    readings = ["balanced test accuracy, mean of the last 10 rounds", "few-shot accuracy",
                "rounds to 60 %", "MB up + down to 60 %"]
    for network, more in (("ideal", []), ("links", ["simulated hours to 60 %"])):
        for method in ("SAFE", "FedProx", "FedLA (logit adjustment)"):
            for reading in readings + more:     # real links also read simulated time
                assert f"- IF 100, {network}: {method} - FedAvg, {reading}" in verdict, (
                    network, method, reading)
    assert "FedAvg + local fine-tuning - FedAvg" not in verdict   # the same training


def test_scores_of_the_last_round_only_are_drawn_as_points_with_intervals():
    """Personalised models are scored once, at the last round: their panel shows each
    method's mean and 95 % interval over seeds as a point (a band would be empty), at
    the mean cost of its runs."""
    from orbitfl.analysis.sweep_figures import bands_figure, plt
    from orbitfl.studies.safe.report import as_sweep, load_data

    record, runs, curves, _, _ = load_data(SHIPPED)
    mine = runs[(runs["network"] == "ideal") & runs["method"].isin(["fedavg-ft", "safe"])]
    figure = bands_figure(as_sweep(record, mine, curves[curves["network"] == "ideal"],
                                   SHIPPED), "bytes")
    panel = next(ax for ax in figure.axes if "personalised" in ax.get_ylabel())
    drawn = {c.get_label().split(" (")[0]: c for c in panel.containers}
    for method, name in (("fedavg-ft", "FedAvg + local fine-tuning"), ("safe", "SAFE")):
        scores = mine.loc[mine["method"] == method, "personalised_own_mix_accuracy"]
        low, high = sorted(cap.get_ydata()[0] for cap in drawn[name].lines[1])  # caps
        y = drawn[name].lines[0].get_ydata()[0]
        assert y == pytest.approx(100 * scores.mean())
        half = 100 * stats_half_width(scores.to_numpy())
        assert (low, high) == pytest.approx((y - half, y + half))
    plt.close(figure)


def stats_half_width(values: np.ndarray) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1)
                 / math.sqrt(len(values)))


LONGER = ROOT / "docs" / "safe-study-100-rounds-data"


def test_the_two_sittings_computed_the_same_runs():
    """FedAvg at lr 0.1 run for 100 rounds by the later sitting passes, round for round, the
    30-round study's FedAvg (FedAvg's rounds do not depend on the budget): the shipped pages
    may be compared."""
    short = pd.read_parquet(SHIPPED / "curves.parquet")
    long = pd.read_parquet(LONGER / "curves.parquet")
    a = short[(short["network"] == "ideal") & (short["method"] == "fedavg")]
    b = long[(long["network"] == "ideal") & (long["method"] == "fedavg-lr0.1") &
             (long["round"] <= a["round"].max())]
    keys = ["seed", "round"]
    a, b = a.set_index(keys).sort_index(), b.set_index(keys).sort_index()
    assert len(a) == len(b) == 5 * 31
    for column in ("accuracy", "val_balanced_accuracy", "bytes_up", "bytes_down"):
        assert a[column].tolist() == b[column].tolist()


REPLICATION = ROOT / "docs" / "safe-study-replication-data"


def test_the_replication_tuned_seed_1001_as_the_100_round_sitting_did():
    """The replication (three tuning seeds, a later commit) ran tuning seed 1001 at every
    rate the 100-round sitting tried: the same scores, to the last digit, so the two pages
    differ by their protocol, not by their code."""
    keys = ["method", "lr", "seed"]
    earlier = pd.read_parquet(LONGER / "tuning.parquet").set_index(keys)["score"]
    later = pd.read_parquet(REPLICATION / "tuning.parquet").set_index(keys)["score"]
    shared = earlier.index.intersection(later.index)
    assert len(shared) == len(earlier) == 7  # FedAvg at 3 rates, SAFE at 4
    assert later.loc[shared].tolist() == earlier.loc[shared].tolist()
    assert set(later.index.get_level_values("seed")) == {1001, 1002, 1003}


LONGEST = ROOT / "docs" / "safe-study-200-rounds-data"


def test_the_200_round_fedavg_runs_begin_as_the_replications_100_round_runs():
    """The 200-round check runs the replication's chosen settings untuned: FedAvg's rounds
    do not depend on the budget, so its first 100 rounds are the replication's, seed for
    seed (SAFE's are not: DMR's schedule spans the whole budget)."""
    record = json.loads((LONGEST / "study.json").read_text())
    assert record["tuning"]["if100"]["fedavg"]["chosen"] == \
        json.loads((REPLICATION / "study.json").read_text())["tuning"]["if100"]["fedavg"][
            "chosen"]
    long = pd.read_parquet(LONGEST / "curves.parquet")
    short = pd.read_parquet(REPLICATION / "curves.parquet")
    keys = ["seed", "round"]
    a = long[(long["method"] == "fedavg") & (long["round"] <= 100)].set_index(keys)
    b = short[(short["method"] == "fedavg") &
              short["seed"].isin(set(a.index.get_level_values("seed")))].set_index(keys)
    a, b = a.sort_index(), b.sort_index()
    assert len(a) == len(b) == 5 * 101
    for column in ("accuracy", "val_balanced_accuracy", "bytes_up", "bytes_down"):
        assert a[column].tolist() == b[column].tolist()
    assert long["round"].max() == 200


def test_a_small_holm_p_beside_an_interval_spanning_zero_is_explained_not_read_as_shown():
    # Holm steps down, Bonferroni does not: with 6 comparisons a difference may have Holm p
    # 0.042 and a simultaneous interval [-0.000, +0.242]; the interval decides
    from orbitfl.studies.safe.report import reading

    d = pd.Series({"pairs": 10, "comparisons": 6, "difference": 0.121,
                   "difference_lo": -0.0002, "difference_hi": 0.242, "p_holm": 0.042})
    text = reading(d, "SAFE - FedAvg")
    assert text.endswith("not shown (the interval includes zero; Holm's step-down p is below "
                         "0.05, but the declared reading is the simultaneous interval).")
    assert reading(pd.Series({**d, "p_holm": 0.3}),
                   "x").endswith("not shown (the interval includes zero).")
    assert reading(pd.Series({**d, "difference_lo": 0.01}), "x").endswith("a gain is shown.")


def test_a_diagnostic_a_variant_does_not_measure_is_left_out_not_printed_as_nan():
    # SAFE with fixed mu computes no CKA divergence (its rows are NaN) but logs mu, which
    # DMR's ramp scales: 0.25 and 0.5 at the two rounds, means over two clients by hand
    from orbitfl.studies.safe.report import parts_lines

    rows = [{"network": "ideal", "factor": 100.0, "method": "safe-fixed-mu", "seed": 1,
             "round": r, "quantity": q, "index": c, "value": v}
            for r, mu in ((200, 0.25), (400, 0.5)) for c in (0, 1)
            for q, v in (("fau_divergence", np.nan), ("fau_mu", mu + (0.1 if c else -0.1)))]
    lines = parts_lines(pd.DataFrame(rows), {})
    assert not [line for line in lines if "nan" in line or "CKA divergence" in line]
    assert "| FAU: mu, the share of its own model a client keeps (mean over clients) | 0.250 " \
           "| 0.500 |" in lines


def test_a_run_resumed_from_a_checkpoint_is_left_out_of_the_wall_times_by_hand():
    from orbitfl.studies.safe.report import wall_lines

    # seed 3 reached 60 % at 300 s of its round clock but its last process ran 120 s: it
    # resumed, so its 120 s is not a run's wall time; seeds 1 and 2 give mean 450 (no
    # record, so the method keeps its key as label)
    runs = pd.DataFrame({"method": ["safe"] * 3, "network": ["ideal"] * 3,
                         "status": ["complete"] * 3, "wall_s": [400.0, 500.0, 120.0],
                         "to_0.5_wall_time_s": [100.0, 200.0, 150.0],
                         "to_0.6_wall_time_s": [300.0, np.nan, 300.0]})
    assert wall_lines(runs, {})[2] == \
        "| safe | ideal | 2 (1 more resumed from a checkpoint, left out) | 450 (400 to 500) |"
    assert wall_lines(runs.iloc[:2], {})[2] == "| safe | ideal | 2 | 450 (400 to 500) |"


def test_fedprox_rate_grid_rows_say_their_mu_and_only_the_chosen_setting_is_marked():
    """FedProx's rate grid runs at the default mu before mu is tuned: its lr 0.1 row was
    marked chosen beside the chosen 'mu 0.1, lr 0.1', two settings for one choice."""
    from orbitfl.studies.safe.report import tuning_lines

    history = [{"fl.lr": 0.033, "score": 0.61}, {"fl.lr": 0.1, "score": 0.646},
               {"fl.lr": 0.3, "score": 0.59},
               *({"fl.lr": 0.1, "fl.fedprox.mu": mu, "score": s}
                 for mu, s in ((0.01, 0.646), (0.1, 0.691), (1.0, 0.665)))]
    record = {"methods": {"fedprox": {"label": "FedProx"}}, "tuning": {"if100": {"fedprox": {
        "history": history, "chosen": {"fl.lr": 0.1, "fl.fedprox.mu": 0.1},
        "interior": {"fl.lr": True, "fl.fedprox.mu": True}}}}}
    rows = tuning_lines(record, pd.DataFrame())[2:]
    assert [r for r in rows if "**yes**" in r] == [
        "| FedProx | mu 0.1, lr 0.1 | 0.691 | **yes** | yes |"]
    assert "| FedProx | mu 0.01, lr 0.033 | 0.610 |  |  |" in rows
    given = {**record, "overrides": [["fl.fedprox.mu", 0.1]]}     # the rate grid ran at 0.1
    assert "| FedProx | mu 0.1, lr 0.1 | 0.646 | **yes** | yes |" in tuning_lines(
        given, pd.DataFrame())


def test_the_export_reads_a_carry_of_other_code_than_its_own(monkeypatch):
    """The driver reuses a carry only if it is this code's; the export, run from any
    checkout, reads it and leaves the check to ``one_code`` (one code over the study)."""
    import orbitfl.studies.safe.carry as carry_module
    from orbitfl.core.errors import InputError
    from orbitfl.studies.safe.carry import Carry

    data = Path(__file__).resolve().parents[1] / "docs" / "safe-study-400-baselines-data"
    monkeypatch.setattr(carry_module, "code_sha256", lambda: "f" * 64)
    with pytest.raises(InputError, match="this is ffffffffffff"):
        Carry.read(data)
    carried = Carry.read(data, this_code=False)
    recorded = json.loads((data / "study.json").read_text())["code_sha256"]
    assert carried.code == recorded != "f" * 64 and carried.curves
