"""``orbitfl contacts``: the table, its formats, the summaries and the figures."""

import subprocess
import sys

import pandas as pd
import yaml

from orbitfl.cli import main

from conftest import TLE_DIR

SCENARIO = {
    "name": "contacts", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "eo-core_2024-07-16.tle"),
                      "select": {"name": ["LANDSAT*", "SENTINEL-2*"]}},
    "ground_stations": {"network": "ksat", "sites": ["sioux-falls"]},
    "links": {"downlink": {"preset": "dove-x"}, "uplink": {"rate_mbps": 2}},
    "fl": {"rounds": 1, "schedule": {"deadline": "1h", "min_clients": 1}},
}
REQUIRED = ["satellite", "norad_id", "station", "station_lat_deg", "station_lon_deg",
            "station_alt_m", "min_elevation_deg", "start", "end", "duration_s",
            "max_elevation_deg", "downlink_bytes", "uplink_bytes"]


def test_contacts_table_summary_and_figures(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    args = ["contacts", str(scenario), "--out", str(tmp_path / "plan.csv"),
            "--gantt", str(tmp_path / "gantt.png"), "--ground-track", str(tmp_path / "gt.png")]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "passes_per_day" in summary and "svalsat" in summary and "sioux-falls" in summary
    table = pd.read_csv(tmp_path / "plan.csv")
    assert list(table.columns[:len(REQUIRED)]) == REQUIRED
    assert set(table.satellite) == {"LANDSAT 7", "LANDSAT 8", "LANDSAT 9", "SENTINEL-2A",
                                    "SENTINEL-2B"}
    assert table.start.str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$").all()
    start = pd.to_datetime(table.start)
    expected = pd.Timestamp("2024-07-16T06:00:00Z") + pd.to_timedelta(table.start_s, unit="s")
    assert (abs(start - expected) < pd.Timedelta(milliseconds=1)).all()
    assert (table.downlink_bytes > 0).all() and (table.min_elevation_deg == 5.0).any()
    for png in ("gantt.png", "gt.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "plan.parquet")]) == 0
    parquet = pd.read_parquet(tmp_path / "plan.parquet")
    pd.testing.assert_series_equal(parquet.duration_s, table.duration_s, atol=1e-6)


def test_unknown_table_format_is_one_line(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    result = subprocess.run([sys.executable, "-m", "orbitfl.cli", "contacts", str(scenario),
                             "--out", str(tmp_path / "plan.xlsx")], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'plan.xlsx'}: the contact table must " \
                                    "end in .csv or .parquet"


def test_contacts_prints_the_stale_epoch_warning_as_run_does(tmp_path, capsys):
    """Defect: ``orbitfl contacts`` dropped the prepare warnings ``run`` prints."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({**SCENARIO, "epoch": "2024-08-16T06:00:00Z",
                                        "duration": "1h"}))
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "plan.csv")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning:")]
    assert len(warnings) == 1 and "days from the scenario epoch" in warnings[0]


def test_report_into_an_empty_folder_then_again_over_it(tmp_path, capsys, monkeypatch):
    """The report folder may exist empty; a second report replaces the first whole. (The
    figures are drawn in tests/test_contact_report.py; here they are left out.)"""
    import orbitfl.engine.plan_report

    monkeypatch.setattr(orbitfl.engine.plan_report.views, "draw_all", lambda *args: [])
    scenario = tmp_path / "s.yaml"
    plan_only = {k: v for k, v in SCENARIO.items() if k != "fl"}
    plan_only["ground_stations"] = {**plan_only["ground_stations"], "antennas": 1}
    scenario.write_text(yaml.safe_dump({**plan_only, "duration": "2h"}))
    (tmp_path / "report").mkdir()
    for _ in range(2):
        assert main(["contacts", str(scenario), "--report", str(tmp_path / "report")]) == 0
        out, err = capsys.readouterr()
        assert out.endswith(f"contact report written to {tmp_path / 'report'}\n")
        assert "contact plan written" not in out
    load = pd.read_csv(tmp_path / "report" / "station_load.csv")
    over = load.loc[load.time_over_capacity_s > 0, "station"].tolist()
    assert over  # five Landsats and Sentinels over two polar stations with one antenna
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # one line, in the words the run's log uses too
    rows = load[load.time_over_capacity_s > 0]
    assert warnings[0] == (
        f"warning: passes exceed the antennas at {len(over)} station(s): " + "; ".join(
            f"{r.station}: up to {r.peak_passes} passes at once for 1 antenna(s); over "
            f"capacity for {r.time_over_capacity_s / 60:.1f} min in {r.over_capacity_episodes}"
            f" episode(s), first at {r.first_over_capacity_s / 3600:.2f} h"
            for r in rows.itertuples())
        + f"; see {tmp_path / 'report' / 'contact-report.md'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "s.yaml"]
    volume = pd.read_csv(tmp_path / "report" / "station_volume.csv")
    assert sorted(volume.station) == ["sioux-falls", "svalsat", "trollsat"]
    assert set(volume.date) == {"2024-07-16"}
