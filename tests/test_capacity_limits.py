"""Scenarios larger than the machine class can hold are refused at validation, naming the
limit, instead of exhausting memory after the contacts are computed."""

import yaml

from orbitfl.cli import main

from conftest import SCENARIOS


def test_a_fleet_too_large_for_its_duration_is_one_line(tmp_path, capsys):
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"] = {"walker": {"planes": 50, "per_plane": 40,
                                            "altitude_km": 550, "inclination_deg": 53}}
    document["duration"] = "120d"   # 2,000 satellites x 345,600 steps of 30 s
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "duration: 2000 satellites over 120 d" in err and "MAX_SATELLITE_STEPS" in err
    document["duration"] = "1d"     # the same fleet for a day fits
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 0
