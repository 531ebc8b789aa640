"""``orbitfl report SWEEP_DIR`` as a study report (issue 21), on sweep folders built here
from small hand-made tables: intervals, paired differences and Kaplan-Meier times equal
hand-computed ones, censored groups are reported (never dropped), coinciding points are
marked, the curves stop where their runs stopped, bad options are one line, and the
report writes Markdown and CSV."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from orbitfl.analysis.comparisons import summary
from orbitfl.analysis.curves import band, common_grid, on_grid
from orbitfl.analysis.pareto import coinciding, draw_pareto
from orbitfl.analysis.sweep_data import load_sweep, parse_baseline, sweep_from_table
from orbitfl.analysis.sweep_report import markdown
from orbitfl.analysis.time_split import time_split
from orbitfl.analysis.time_to_target import choose_target
from orbitfl.cli import main
from orbitfl.core.errors import InputError

T975_2 = 4.302653  # Student's t, 97.5 % quantile, 2 degrees of freedom (tables)
T9875_2 = 6.205347  # 98.75 %: two comparisons, Bonferroni
STATIONS = "ground_stations.count"


def _run_dir(path: Path, hours: list[float], accuracy: list[float]) -> None:
    """A minimal run directory: rounds every ``hours``, 1 MB up and 1 J per round."""
    path.mkdir(parents=True)
    n = len(hours)
    rounds = pd.DataFrame({
        "round": range(n), "opened_s": [0.0] + [3600 * h for h in hours[:-1]],
        "sim_time_s": [3600 * h for h in hours], "accuracy": accuracy,
        "balanced_accuracy": accuracy, "few_shot_accuracy": accuracy,
        "per_class_accuracy": [[a, a] for a in accuracy],
        "bytes_up": [1e6 * i for i in range(n)], "bytes_down": [0.0] * n,
        "energy_j": [1.0 * i for i in range(n)]})
    rounds.to_parquet(path / "rounds.parquet")
    for name in ("transfers", "contacts"):
        pd.DataFrame().to_parquet(path / f"{name}.parquet")
    (path / "manifest.json").write_text(json.dumps(
        {"scenario": {"name": path.name},
         "summary": {"rounds_completed": n - 1, "final_accuracy": accuracy[-1]}}))


def make_sweep(folder: Path, groups: dict[object, list[dict]], replicated: bool = True,
               parameter: str = STATIONS) -> Path:
    """A sweep folder: one group per key of ``groups`` (its swept value), one row per
    replicate dict (final_accuracy, hours of its rounds, accuracy per round, reached
    0.7 at which round or None), and a run directory per replicate."""
    rows = []
    for value, replicates in groups.items():
        for r, rep in enumerate(replicates):
            point = f"s-{len(rows):03d}"
            hours, accuracy = rep["hours"], rep["accuracy"]
            hit = next((i for i, a in enumerate(accuracy) if a >= 0.7), None)
            row = {"point": point, parameter: value, "status": "complete",
                   "final_accuracy": rep["final"], "balanced_accuracy": rep["final"],
                   "few_shot_accuracy": rep["final"],
                   "personalised_own_mix_accuracy": np.nan, "rounds": len(hours) - 1,
                   "sim_time_h": hours[-1], "bytes_up": 1e6 * (len(hours) - 1),
                   "bytes_down": 0.0, "energy_j": float(len(hours) - 1)}
            if replicated:
                row = {"point": point, "group": f"g{value}", "replicate": r, "seed": 7 + r,
                       **{k: v for k, v in row.items() if k != "point"}}
            for t in (0.5, 0.7):
                first = next((i for i, a in enumerate(accuracy) if a >= t), None)
                row[f"to_{t:g}_round"] = np.nan if first is None else float(first)
                row[f"to_{t:g}_sim_time_s"] = np.nan if first is None else 3600 * hours[first]
            assert (hit is None) == (rep.get("reaches") is False)
            rows.append(row)
            _run_dir(folder / "runs" / point, hours, accuracy)
    pd.DataFrame(rows).to_parquet(folder / "sweep.parquet")
    return folder


def rep(final: float, reach_h: float | None, end_h: float = 30.0) -> dict:
    """A replicate whose accuracy climbs to ``final``, reaching 0.7 at ``reach_h`` hours
    (its run stopping there: a target_accuracy run) or never (running to ``end_h``)."""
    if reach_h is None:
        return {"final": final, "hours": [0.0, end_h / 2, end_h],
                "accuracy": [0.1, 0.5, 0.6], "reaches": False}
    return {"final": final, "hours": [0.0, reach_h / 2, reach_h],
            "accuracy": [0.1, 0.5, final]}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep"), {
        2: [rep(0.7, 10.0), rep(0.8, 20.0), rep(0.9, 30.0)],
        3: [rep(0.8, 8.0), rep(0.9, 12.0), rep(1.0, 16.0)],
        5: [rep(0.75, 10.0), rep(0.6, None), rep(0.7, 20.0)]})


def _report(sweep_dir: Path, out: Path, *options: str) -> tuple[pd.DataFrame, str]:
    """The whole report through the command (figures included: seconds)."""
    assert main(["report", str(sweep_dir), "--out", str(out), "-q", *options]) == 0
    return pd.read_csv(out / "summary.csv"), (out / "summary.md").read_text()


def _tables(sweep_dir: Path, *baseline: str, target: float | None = None
            ) -> tuple[pd.DataFrame, str]:
    """The report's numbers and Markdown without drawing (fast)."""
    sweep = load_sweep(sweep_dir)
    spec = parse_baseline(list(baseline), sweep)
    threshold = choose_target(sweep, target)
    numbers = summary(sweep, spec, threshold)
    return numbers, markdown(sweep, numbers, time_split(sweep, threshold), threshold, spec,
                             "png")


@pytest.fixture(scope="module")
def report(sweep_dir, tmp_path_factory) -> tuple[Path, pd.DataFrame, str]:
    """The default report of ``sweep_dir`` (target: the highest reached, 0.7)."""
    out = tmp_path_factory.mktemp("report")
    return (out, *_report(sweep_dir, out))


def _row(summary: pd.DataFrame, group: str, metric: str) -> pd.Series:
    return summary[(summary["group"] == group) & (summary["metric"] == metric)].iloc[0]


def test_the_report_writes_markdown_csv_figures_and_the_sweep_page(report):
    out, summary, text = report
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "summary.csv", "time_split.csv", "dashboard.html", "pareto.png",
            "time_to_target.png", "time_split.png", "accuracy_bands_vs_bytes.png",
            "accuracy_bands_vs_time.png", "accuracy_bands_vs_energy.png"} <= names
    assert list(summary.columns[:2]) == ["group", STATIONS]
    assert "## Paired differences against the baseline" in text
    assert f"Baseline: {STATIONS}=2" in text  # the default: the first group


def test_group_intervals_and_paired_differences_equal_hand_computed_ones(report):
    _, summary, text = report
    g2 = _row(summary, "g2", "final_accuracy")  # 0.7, 0.8, 0.9: mean 0.8, sd 0.1
    half = T975_2 * 0.1 / math.sqrt(3)
    assert (g2["n"], g2["mean"], g2["sd"]) == (3, pytest.approx(0.8), pytest.approx(0.1))
    assert (g2["lo"], g2["hi"]) == (pytest.approx(0.8 - half, abs=1e-6),
                                    pytest.approx(0.8 + half, abs=1e-6))
    # g3 - g2 by replicate: 0.1 each (sd 0: the interval is the point); g5 - g2:
    # 0.05, -0.2, -0.2: mean -0.35/3, sd 0.1443; two comparisons: Bonferroni t(0.9875, 2)
    g3 = _row(summary, "g3", "final_accuracy")
    assert g3["baseline"] == "g2" and g3["pairs"] == 3 and g3["comparisons"] == 2
    assert g3["difference"] == pytest.approx(0.1)
    g5 = _row(summary, "g5", "final_accuracy")
    d = np.array([0.05, -0.2, -0.2])
    half = T9875_2 * d.std(ddof=1) / math.sqrt(3)
    assert g5["difference"] == pytest.approx(d.mean())
    assert (g5["difference_lo"], g5["difference_hi"]) == (
        pytest.approx(d.mean() - half, abs=1e-5), pytest.approx(d.mean() + half, abs=1e-5))
    assert math.isnan(_row(summary, "g2", "final_accuracy")["difference"])
    assert "(baseline)" in text


def test_a_group_where_some_replicates_never_reach_is_censored_not_dropped(report):
    out, summary, text = report
    # g5 reached 0.7 at 10 h and 20 h, one replicate never did (censored at 30 h):
    # S(10) = 2/3, S(20) = 1/3, so the median is 20 h; n stays 3
    g5 = _row(summary, "g5", "to_0.7_sim_time_s")
    assert (g5["n"], g5["reached"], g5["median"]) == (3, 2, pytest.approx(20.0 * 3600))
    g3 = _row(summary, "g3", "to_0.7_sim_time_s")   # 8, 12, 16 h: all reached, median 12
    assert (g3["n"], g3["reached"], g3["median"]) == (3, 3, pytest.approx(12.0 * 3600))
    assert "(2/3 reached)" in text and "(3/3 reached)" in text
    split = pd.read_csv(out / "time_split.csv").set_index("group")
    # rounds needed: 2 in every replicate that reached; hours per round: g3 4, 6, 8 h
    assert split.loc["g5", "rounds_needed"] == 2 and split.loc["g5", "reached"] == 2
    assert split.loc["g3", "hours_per_round"] == pytest.approx(6.0)


def test_a_group_that_mostly_never_reaches_has_no_median(tmp_path):
    folder = make_sweep(tmp_path / "sweep", {1: [rep(0.8, 5.0), rep(0.8, 6.0)],
                                              2: [rep(0.6, None), rep(0.75, 9.0),
                                                  rep(0.6, None)]})
    summary, text = _tables(folder, target=0.7)
    row = _row(summary, "g2", "to_0.7_sim_time_s")
    assert row["n"] == 3 and row["reached"] == 1 and math.isnan(row["median"])
    assert "not reached by half (1/3 reached)" in text


def test_the_default_target_is_the_highest_threshold_some_group_reaches(sweep_dir, tmp_path):
    sweep = load_sweep(sweep_dir)
    assert choose_target(sweep, None) == 0.7 and choose_target(sweep, 0.5) == 0.5
    # 0.7 reached by one replicate of three in each group: no group's median; 0.5 by all
    table = sweep.table.copy()
    table.loc[table["replicate"] > 0, "to_0.7_sim_time_s"] = np.nan
    assert choose_target(sweep_from_table(tmp_path, table), None) == 0.5
    table["to_0.5_sim_time_s"] = np.nan
    table["to_0.7_sim_time_s"] = np.nan
    assert choose_target(sweep_from_table(tmp_path, table), None) is None


def test_a_sweep_without_replicates_says_n_1(tmp_path):
    folder = make_sweep(tmp_path / "sweep", {2: [rep(0.7, 10.0)], 5: [rep(0.8, 5.0)]},
                        replicated=False)
    summary, text = _tables(folder)
    assert set(summary["group"]) == {"s-000", "s-001"} and (summary["n"] == 1).all()
    assert summary["lo"].isna().all() and summary["median_lo"].isna().all()
    assert "(n=1, no interval)" in text and "1 pair, no interval" in text


def test_an_old_sweep_with_a_swept_seed_groups_its_seeds(tmp_path):
    folder = make_sweep(tmp_path / "sweep", {2: [rep(0.7, 10.0)]}, replicated=False)
    table = pd.concat([pd.read_parquet(folder / "sweep.parquet")] * 2, ignore_index=True)
    table.insert(1, "seed", [1, 2])
    table.insert(2, "fl.strategy", ["fedavg", "fedavg"])
    table = table.drop(columns=[STATIONS])
    table.to_parquet(folder / "sweep.parquet")
    sweep = load_sweep(folder)
    assert sweep.parameters == ["fl.strategy"] and sweep.groups == ["fedavg"]
    assert list(sweep.table["replicate"]) == [1, 2]  # paired by seed


@pytest.mark.parametrize("option, message", [
    ("stations", "--baseline 'stations': expected KEY=VALUE"),
    ("fl.strategy=safe", "'fl.strategy' is not a swept parameter (swept: "
                         "ground_stations.count)"),
    (f"{STATIONS}=7", f"no group has {STATIONS} = '7' (values: 2, 3, 5)"),
])
def test_bad_baselines_are_one_line_errors(sweep_dir, tmp_path, capsys, option, message):
    assert main(["report", str(sweep_dir), "--out", str(tmp_path / "r"),
                 "--baseline", option]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_target_the_table_does_not_record_is_one_line(sweep_dir, tmp_path, capsys):
    assert main(["report", str(sweep_dir), "--out", str(tmp_path / "r"),
                 "--target", "0.75"]) == 2
    err = capsys.readouterr().err
    assert "--target 0.75: the sweep table records time to target for 0.5, 0.7" in err
    assert err.count("\n") == 1


def test_baseline_values_are_read_as_yaml_and_pick_the_comparisons(sweep_dir):
    sweep = load_sweep(sweep_dir)
    assert parse_baseline([f"{STATIONS}=3.0"], sweep) == {STATIONS: 3}
    with pytest.raises(InputError):
        parse_baseline([f"{STATIONS}=true"], sweep)


def test_a_chosen_baseline_is_compared_with_every_other_group(sweep_dir):
    summary, text = _tables(sweep_dir, f"{STATIONS}=3")
    g2 = _row(summary, "g2", "final_accuracy")
    assert g2["baseline"] == "g3" and g2["difference"] == pytest.approx(-0.1)
    assert f"Baseline: {STATIONS}=3" in text


def test_coinciding_points_are_found_and_marked():
    x = np.array([1.0, 2.0, 1.0, 1.0, 3.0])
    y = np.array([0.5, 0.5, 0.5, 0.5, 0.7])
    assert [list(g) for g in coinciding(x, y)] == [[0, 2, 3]]
    table = pd.DataFrame({"point": ["a", "b", "c"], "n": [2, 5, 9], "status": "complete",
                          "final_accuracy": [0.6, 0.7, 0.7], "bytes_up": [1e6, 2e6, 2e6],
                          "bytes_down": [0.0, 0.0, 0.0]})
    fig, ax = plt.subplots()
    draw_pareto(ax, table, ["n"])
    notes = [t.get_text() for t in ax.texts if t.get_gid() == "coincide"]
    plt.close(fig)
    assert notes == ["2 points coincide"]


def test_the_sweep_page_marks_coinciding_points_and_escapes_values(tmp_path):
    from orbitfl.analysis.dashboard import unpack

    folder = make_sweep(tmp_path / "sweep", {"</script><b>x": [rep(0.7, 10.0)],
                                              "y": [rep(0.7, 10.0)]},
                        replicated=False, parameter="fl.strategy")
    _report(folder, tmp_path / "report")
    page = (tmp_path / "report" / "dashboard.html").read_text()
    assert "</script><b>x" not in page and "&lt;/script&gt;&lt;b&gt;x" in page
    packed = page.split('id="figures" type="application/json+gzip">')[1].split("<")[0]
    views = json.loads(unpack(packed))
    notes = [a["text"] for a in views["pareto_bytes"]["layout"].get("annotations", [])]
    assert notes == ["2 points coincide"]
    assert {"bands_bytes", "bands_time", "bands_energy", "time_to_target"} <= set(views)


def test_curves_stop_where_their_runs_stopped_and_the_band_is_their_mean():
    grid = np.array([0.0, 1.0, 2.0, 3.0])
    short, long = (np.array([0.0, 2.0]), np.array([0.2, 0.6])), \
        (np.array([0.0, 3.0]), np.array([0.0, 0.6]))
    assert np.isnan(on_grid(*short, grid)[3])          # no extrapolation beyond 2
    b = band([short, long], grid)
    assert list(b.n) == [2, 2, 2, 1] and list(b.full) == [True, True, True, False]
    # at x = 1: 0.4 and 0.2, mean 0.3, sd 0.1414, t(0.975, 1) = 12.706
    assert b.mean[1] == pytest.approx(0.3)
    assert b.high[1] - b.mean[1] == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2),
                                                  rel=1e-4)
    assert b.mean[3] == pytest.approx(0.6) and np.isnan(b.low[3])


def test_the_sweep_page_colours_the_pareto_by_every_swept_parameter(tmp_path):
    from orbitfl.analysis.dashboard import unpack
    from orbitfl.analysis.sweep_data import sweep_from_table
    from orbitfl.analysis.sweep_page import write_sweep_dashboard

    table = pd.DataFrame({"point": ["p0", "p1", "p2", "p3"],
                          "fl.strategy": ["fedavg", "safe", "fedavg", "safe"],
                          "rate": [1, 1, 2, 2], "status": ["complete"] * 3 + ["failed"],
                          "final_accuracy": [0.5, 0.8, 0.6, None],
                          "sim_time_h": [2.0, 3.0, 4.0, None],
                          "bytes_up": [1e6, 4e6, 2e6, None], "bytes_down": [1e6, 4e6, 2e6, None]})
    sweep = sweep_from_table(tmp_path, table)
    assert sweep.parameters == ["fl.strategy", "rate"]
    numbers = summary(sweep, {}, None)
    page = write_sweep_dashboard(sweep, numbers, None, tmp_path / "sweep.html").read_text()
    assert page.count('id="plotlyjs"') == 1 and "3 of 4 runs complete" in page
    packed = page.split('id="figures" type="application/json+gzip">')[1].split("<")[0]
    bytes_view = json.loads(unpack(packed))["pareto_bytes"]
    menu = [b["label"] for b in bytes_view["layout"]["updatemenus"][0]["buttons"]]
    assert menu == ["colour by fl.strategy", "colour by rate"]
    points, front = bytes_view["data"]
    assert points["marker"]["color"] == [0, 1, 0]  # fedavg, safe, fedavg
    assert front["x"] == [2.0, 4.0, 8.0] and front["y"] == [50.0, 60.0, 80.0]


def test_column_intervals_agree_with_mean_interval_column_by_column():
    from orbitfl.analysis.stats import column_intervals, mean_interval

    values = np.array([[0.2, 1.0, np.nan, 5.0], [0.4, np.nan, np.nan, 7.0],
                       [0.6, np.nan, np.nan, 9.0]])
    n, mean, lo, hi = column_intervals(values)
    assert list(n) == [3, 1, 0, 3]
    for j in range(values.shape[1]):
        one = mean_interval(values[:, j])
        np.testing.assert_allclose([mean[j], lo[j], hi[j]], [one.mean, one.lo, one.hi])
    assert lo[0] == pytest.approx(0.4 - T975_2 * 0.2 / math.sqrt(3), abs=1e-6)


def test_the_sweep_page_renders_in_headless_chromium(report):
    """Every view of the sweep page is drawn without a script error (CI has Chromium)."""
    import subprocess
    import tempfile

    from test_mission import _chromium

    out, _, _ = report
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=8000",
             "--window-size=1400,3000", "--dump-dom"]
    dom = subprocess.run([browser, *flags, (out / "dashboard.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-errors=""' in body, body
    assert 'data-drawn="6"' in body, body  # 2 Pareto, 3 bands, time to target


def test_the_network_part_splits_hours_per_round_by_what_rounds_waited_for():
    from orbitfl.analysis.run_data import FACTORS
    from orbitfl.analysis.time_split import network_hours, share_column

    split = pd.DataFrame({"group": ["a", "b"], "hours_per_round": [10.0, 4.0],
                          **{share_column(f): [np.nan, 0.0] for f in FACTORS}})
    split.loc[1, share_column("waiting for a contact")] = 0.75
    split.loc[1, share_column("training")] = 0.25
    hours = network_hours(split)
    assert hours.loc["b", "waiting for a contact"] == 3.0 and hours.loc["b", "training"] == 1.0
    assert hours.loc["b", "round"] == 0.0
    # no breakdown recorded: one unsplit bar of the round's hours
    assert hours.loc["a", "round"] == 10.0 and hours.loc["a", list(FACTORS)].sum() == 0.0


def test_curves_that_lie_on_each_other_are_named_not_hidden():
    from orbitfl.analysis.sweep_figures import coinciding_bands

    curve_a = (np.array([0.0, 2.0]), np.array([0.2, 0.6]))
    curve_b = (np.array([0.0, 2.0001]), np.array([0.2, 0.6]))  # a hair longer
    curve_c = (np.array([0.0, 2.0]), np.array([0.2, 0.9]))
    bands = {name: band([c], common_grid([c])) for name, c in
             (("a", curve_a), ("b", curve_b), ("c", curve_c))}
    assert coinciding_bands(bands) == {"b": "a"}


def test_two_swept_parameters_compare_within_the_other_values(tmp_path):
    from orbitfl.analysis.sweep_figures import ttt_figure

    folder = make_sweep(tmp_path / "sweep", {
        2: [rep(0.7, 10.0), rep(0.8, 20.0)], 3: [rep(0.8, 8.0), rep(0.9, 12.0)],
        4: [rep(0.6, None), rep(0.75, 9.0)], 5: [rep(0.9, 4.0), rep(0.9, 6.0)]})
    table = pd.read_parquet(folder / "sweep.parquet")
    table.insert(table.columns.get_loc(STATIONS), "fl.strategy",
                 table[STATIONS].map({2: "fedavg", 3: "fedavg", 4: "safe", 5: "safe"}))
    table[STATIONS] = table[STATIONS].map({2: 2, 3: 3, 4: 2, 5: 3})
    table.to_parquet(folder / "sweep.parquet")
    summary, _ = _tables(folder, f"{STATIONS}=2")
    rows = summary[summary["metric"] == "final_accuracy"].set_index("group")
    assert rows["baseline"].to_dict() == {"g2": "g2", "g3": "g2", "g4": "g4", "g5": "g4"}
    # g3 - g2: 0.1, 0.1; g5 - g4: 0.3, 0.15; two comparisons in one family
    assert rows.loc["g5", "difference"] == pytest.approx(0.225)
    assert (rows["comparisons"].dropna() == 2).all()
    fig = ttt_figure(load_sweep(folder), 0.7)
    notes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "censored"]
    plt.close(fig)
    assert notes == ["1/2"] * 2  # g4 (safe, 2 stations) in both panels


def test_a_missing_run_directory_is_named_and_the_table_still_reported(tmp_path):
    import shutil

    folder = make_sweep(tmp_path / "sweep", {2: [rep(0.7, 10.0), rep(0.8, 20.0)]})
    shutil.rmtree(folder / "runs" / "s-001")
    summary, text = _tables(folder)
    assert _row(summary, "g2", "final_accuracy")["n"] == 2  # from sweep.parquet
    assert "- s-001: " in text and "not a run directory (no such folder)" in text


def test_sweep_options_on_run_directories_are_one_line_errors(tmp_path, capsys):
    _run_dir(tmp_path / "run", [0.0, 1.0], [0.1, 0.5])
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r"),
                 "--baseline", "a=1"]) == 2
    err = capsys.readouterr().err
    assert "--baseline applies to a sweep folder" in err and err.count("\n") == 1


def test_a_sweep_where_nothing_completed_is_one_line(tmp_path, capsys):
    folder = make_sweep(tmp_path / "sweep", {2: [rep(0.7, 10.0)]})
    table = pd.read_parquet(folder / "sweep.parquet").assign(status="failed")
    table.to_parquet(folder / "sweep.parquet")
    assert main(["report", str(folder), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no run of the sweep completed (1 failed): nothing to report" in err
    assert err.count("\n") == 1


def test_only_the_replicates_that_go_on_are_drawn_beyond_the_common_part():
    grid = np.array([0.0, 1.0, 2.0, 3.0])
    short, long = (np.array([0.0, 2.0]), np.array([0.2, 0.6])), \
        (np.array([0.0, 3.0]), np.array([0.0, 0.6]))
    beyond = band([short, long], grid).beyond()
    assert len(beyond) == 1  # the long run, from the last common point on
    np.testing.assert_allclose(beyond[0], [np.nan, np.nan, 0.4, 0.6])


def test_an_sd_below_the_means_last_digit_reads_0_not_float_noise():
    """Equal simulated hours summed in another order differ by 1e-6: the Costs table
    printed '69.64 ± 1.392e-06'. A real spread keeps its digits."""
    from orbitfl.analysis.sweep_markdown import estimate

    row = pd.Series({"metric": "sim_time_h", "n": 5, "mean": 69.64, "sd": 1.392e-6,
                     "lo": 69.64, "hi": 69.64})
    assert estimate(row) == "69.64 ± 0 [69.64, 69.64]"
    assert estimate(row.copy().replace({1.392e-6: 0.004})) == "69.64 ± 0 [69.64, 69.64]"
    assert estimate(row.copy().replace({1.392e-6: 0.006})) == "69.64 ± 0.006 [69.64, 69.64]"
    small = pd.Series({"metric": "sim_time_h", "n": 5, "mean": 0.5, "sd": 0.0003,
                       "lo": 0.4997, "hi": 0.5003})
    assert estimate(small) == "0.5 ± 0.0003 [0.4997, 0.5003]"


def test_a_segmentation_sweep_summarises_its_miou_and_a_classification_one_does_not():
    """Segmentation's final_accuracy counts pixels (an all-background map scores 0.95 at a
    5 % object share): its mIoU is summarised beside it, with the hand-computed mean."""
    from orbitfl.analysis.sweep_summary import summarise

    base = {"group": "base", "status": "complete", "final_accuracy": 0.95}
    segmentation = pd.DataFrame([{**base, "miou": 0.2, "val_miou": 0.25},
                                 {**base, "miou": 0.4, "val_miou": 0.35}])
    found = summarise(segmentation, []).set_index("metric")
    assert found.loc["miou", "mean"] == pytest.approx(0.3)
    assert found.loc["val_miou", "mean"] == pytest.approx(0.3)
    classification = segmentation.assign(miou=np.nan, val_miou=np.nan)
    assert "miou" not in set(summarise(classification, [])["metric"])
    from orbitfl.analysis.comparisons import ACCURACY_METRICS
    from orbitfl.analysis.sweep_markdown import groups_table

    sweep = sweep_from_table(Path("."), segmentation.assign(seed=[1, 2], replicate=[0, 1]))
    head, _, row = groups_table(sweep, summary(sweep, {}, None), None, ACCURACY_METRICS)
    assert head == "| group | n | accuracy | mIoU |" and "| 0.3 ± 0.1414 " in row
    timed = sweep_from_table(Path("."), segmentation.assign(
        seed=[1, 2], replicate=[0, 1], rounds=[5, 5], sim_time_h=[1.0, 1.0],
        **{"to_0.3_round": [3.0, np.nan], "to_0.3_sim_time_s": [1800.0, np.nan]}))
    head = groups_table(timed, summary(timed, {}, 0.3), 0.3, ACCURACY_METRICS)[0]
    assert head.endswith("| time to 30 % mIoU |")    # its runs' targets read mIoU
