"""Element sets a planner could stake a decision on: impossible, truncated or duplicated
records are refused (or deduplicated with a warning) with one line naming where."""

import json
from pathlib import Path

import pytest
import yaml

from orbitfl.cli import main
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.tle import parse_tle_text, tle_checksum
from orbitfl.constellation.walker import WalkerShell
from orbitfl.core.errors import InputError
from orbitfl.engine.prepare import prepare

DATA = Path(__file__).parent / "data"

# A real record (LANDSAT 7, first of tle/eo-core_2024-07-16.tle).
LINE1 = "1 25682U 99020A   24198.19873101  .00000896  00000+0  19265-3 0  9995"
LINE2 = "2 25682  97.8864 223.6168 0001203  97.1798 337.4866 14.60749944343434"


def _with(line: str, start: int, text: str) -> str:
    """``line`` with ``text`` written at ``start`` and its checksum recomputed."""
    edited = line[:start] + text + line[start + len(text):]
    return edited[:68] + str(tle_checksum(edited))


def _tle(line1: str = LINE1, line2: str = LINE2, name: str = "SAT") -> str:
    return f"{name}\n{line1}\n{line2}\n"


@pytest.mark.parametrize("line1, line2, reason", [
    (LINE1, _with(LINE2, 52, "17.50000000"), r"SGP4 cannot initialise .*decayed"),
    (LINE1, _with(_with(LINE2, 26, "9500000"), 43, "180.0000"),
     r"perigee .* km below the Earth's surface"),
    (_with(LINE1, 18, "23366.50000000"), LINE2, r"epoch day 366.5 does not exist in 2023"),
], ids=["mean-motion-17.5", "eccentricity-0.95", "day-366-of-2023"])
def test_impossible_element_sets_are_refused_with_file_and_line(line1, line2, reason):
    """Defect: SGP4 errors, a perigee inside the Earth and day 366 of 2023 were accepted."""
    with pytest.raises(InputError, match=rf"^bad.tle:2: {reason}"):
        parse_tle_text(_tle(line1, line2), "bad.tle")


def test_day_366_of_a_leap_year_is_accepted():
    record = parse_tle_text(_tle(_with(LINE1, 18, "24366.50000000")), "ok.tle")[0]
    assert record.epoch.isoformat() == "2024-12-31T12:00:00+00:00"


def _omm_json(tmp_path: Path, **changes) -> Path:
    record = json.loads((DATA / "iss_2016-04-22_spacetrack.json").read_text())[0]
    record.update(changes)
    record = {k: v for k, v in record.items() if v is not None}
    path = tmp_path / "omm.json"
    path.write_text(json.dumps([record]))
    return path


def test_impossible_omm_records_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"omm.json: record 1: SGP4 cannot initialise"):
        load_element_file(_omm_json(tmp_path, MEAN_MOTION="17.5"))
    with pytest.raises(InputError, match=r"omm.json: record 1: perigee .* below"):
        load_element_file(_omm_json(tmp_path, ECCENTRICITY="0.95", MEAN_ANOMALY="180"))


def test_omm_json_fields_are_required_and_parsed(tmp_path):
    """Defect: missing fields were defaulted, unparseable optional ones passed through."""
    with pytest.raises(InputError, match=r"omm.json: record 1: OMM record lacks "
                                         r"MEAN_MOTION_DDOT"):
        load_element_file(_omm_json(tmp_path, MEAN_MOTION_DDOT=None))
    with pytest.raises(InputError, match=r"omm.json: record 1: REV_AT_EPOCH '9963x' is not "
                                         r"an integer"):
        load_element_file(_omm_json(tmp_path, REV_AT_EPOCH="9963x"))


def test_truncated_omm_csv_row_is_refused_naming_the_row(tmp_path):
    """Defect: a row cut short loaded with defaults for its missing fields."""
    header, row = (DATA / "iss_2019-12-09_celestrak.csv").read_text().splitlines()
    path = tmp_path / "cut.csv"
    cut = row[:row.rindex(",", 0, row.rindex(","))]  # loses MEAN_MOTION_DDOT and a digit
    path.write_text(f"{header}\n{row}\n{cut[:-1]}\n")
    with pytest.raises(InputError, match=r"^.*cut.csv:3: row has 15 of the header's 17 "
                                         r"fields \(truncated\?\)$"):
        load_element_file(path)
    path.write_text(f"{header}\n{row},0\n")
    with pytest.raises(InputError, match=r"cut.csv:2: row has 18 fields"):
        load_element_file(path)


def _scenario(tmp_path: Path, **changes) -> Path:
    document = {
        "name": "s", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "1h",
        "constellation": {"walker": {"planes": 2, "per_plane": 2, "altitude_km": 550,
                                     "inclination_deg": 53}},
        "ground_stations": {"sites": ["svalsat"]},
        "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 1}},
        "fl": {"rounds": 1, "schedule": {"deadline": "1h", "min_clients": 1}},
    }
    document.update(changes)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _one_line_error(capsys, path: Path) -> str:
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_walker_shell_past_the_alpha5_range_is_one_line(tmp_path, capsys):
    """Defect: a shell numbered past Z9999 ended in a traceback. The schema's own size
    limit now answers first; the shell itself refuses what Alpha-5 cannot number."""
    path = _scenario(tmp_path, constellation={"walker": {
        "planes": 600, "per_plane": 500, "altitude_km": 550, "inclination_deg": 53}})
    err = _one_line_error(capsys, path)
    assert err.startswith(f"error: {path}: constellation.walker: ") and "300000" in err
    with pytest.raises(ValueError, match="260001 satellites exceed the Alpha-5 catalog "
                                         "numbers: numbered from 80000, a shell holds at "
                                         "most 260000"):
        WalkerShell(260001, 1, 0, 550.0, 53.0)


@pytest.mark.parametrize("epoch, duration", [("2053-10-05T00:00:00Z", "10d"),
                                             ("1899-07-01T00:00:00Z", "1h"),
                                             ("9999-12-31T00:00:00Z", "2d"),
                                             ("0001-01-01T00:30:00Z", "1h")])
def test_epochs_outside_de421_are_one_line(tmp_path, capsys, epoch, duration):
    """Defect: a scenario outside DE421's dates failed deep inside the Sun's ephemeris."""
    err = _one_line_error(capsys, _scenario(tmp_path, epoch=epoch, duration=duration))
    assert "epoch" in err and "duration" in err and "DE421" in err
    assert "1899-07-29" in err and "2053-10-09" in err


def test_walker_epoch_a_tle_cannot_write_is_one_line(tmp_path, capsys):
    """Defect: a 1940 epoch became 2040 in the generated element sets (two-digit years)."""
    err = _one_line_error(capsys, _scenario(tmp_path, epoch="1940-01-01T00:00:00Z"))
    assert "constellation.walker" in err and "epoch" in err and "1957" in err


TERRA = ("TERRA", "1 25994U 99068A   24198.14820428  .00000807  00000+0  17813-3 0  9991",
         "2 25994  98.0467 260.7842 0000577 270.3016 142.2938 14.59863277307395")


def _fleet_scenario(tmp_path: Path, records: list[tuple[str, str, str]]) -> Path:
    (tmp_path / "fleet.tle").write_text("".join(_tle(l1, l2, name) for name, l1, l2 in records))
    return _scenario(tmp_path, constellation={"tle": "fleet.tle"})


def test_duplicate_catalog_numbers_keep_the_record_nearest_the_epoch(tmp_path):
    """Defect: two records of one satellite became one index whose transfers all
    serialised through one radio, silently."""
    older = _with(LINE1, 18, "24190.19873101")  # 8 days before the scenario epoch
    path = _fleet_scenario(tmp_path, [("LANDSAT 7", older, LINE2), TERRA,
                                      ("LANDSAT 7", LINE1, LINE2)])
    prepared = prepare(path)
    assert [e.name for e in prepared.fleet] == ["TERRA", "LANDSAT 7"]
    assert prepared.fleet[1].line1 == LINE1
    duplicate = [w for w in prepared.warnings if "NORAD 25682" in w]
    assert len(duplicate) == 1
    assert "fleet.tle:2" in duplicate[0] and "fleet.tle:8" in duplicate[0]


def test_two_satellites_with_one_name_are_an_error(tmp_path, capsys):
    path = _fleet_scenario(tmp_path, [("LANDSAT 7", LINE1, LINE2), ("LANDSAT 7", *TERRA[1:])])
    err = _one_line_error(capsys, path)
    assert "fleet.tle:2" in err and "fleet.tle:5" in err and "'LANDSAT 7'" in err


@pytest.mark.parametrize("text", [
    "root:x:0:0:secret-token:/root:/bin/bash\ndaemon:x:1:1:another-secret:/usr/sbin\n",
    "api_key = secret-token\n"])
def test_a_foreign_file_given_as_element_set_is_not_echoed(tmp_path, text):
    """Say what is wrong with a file, not what it holds (it may be someone's secrets)."""
    path = tmp_path / "not-elements.tle"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_element_file(path)
    assert "secret" not in str(err.value) and str(path) in str(err.value)
