"""OMM (JSON, CSV) against TLE, Walker shells, skipping bad records, station networks."""

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sgp4.api import Satrec

from orbitfl.constellation.constants import EARTH_RADIUS_KM
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.stations import NETWORKS, catalog, from_catalog
from orbitfl.constellation.tle import parse_tle_text
from orbitfl.constellation.walker import (
    PRESETS,
    WalkerShell,
    encode_catalog_number,
    walker_elements,
)
from orbitfl.core.errors import InputError

from conftest import TLE_DIR

DATA = Path(__file__).parent / "data"
ISS_2019 = ("1 25544U 98067A   19343.69339541  .00001764  00000-0  38792-4 0  9991",
            "2 25544  51.6439 211.2001 0007417  17.6667  85.6398 15.50103472202482")


def _positions(sat: Satrec, days: np.ndarray) -> np.ndarray:
    err, r, _ = sat.sgp4_array(np.full(days.shape, sat.jdsatepoch), sat.jdsatepochF + days)
    assert (err == 0).all()
    return r


@pytest.mark.parametrize("name, lines", [
    ("iss_2019-12-09_celestrak.csv", ISS_2019),
])
def test_celestrak_csv_omm_propagates_like_its_tle(name, lines):
    (omm,) = load_element_file(DATA / name)
    assert omm.name == "ISS (ZARYA)" and omm.catalog_number == 25544
    assert (omm.line1, omm.line2) == lines  # the TLE rendering of the same elements
    days = np.linspace(0.0, 3.0, 50)
    np.testing.assert_allclose(_positions(omm.satrec(), days),
                               _positions(Satrec.twoline2rv(*lines), days), atol=1e-6)


def test_spacetrack_json_omm_matches_the_tle_lines_it_carries():
    import json

    record = json.loads((DATA / "iss_2016-04-22_spacetrack.json").read_text())[0]
    (omm,) = load_element_file(DATA / "iss_2016-04-22_spacetrack.json")
    assert omm.line1 == record["TLE_LINE1"] and omm.line2 == record["TLE_LINE2"]
    days = np.linspace(0.0, 2.0, 30)
    np.testing.assert_allclose(
        _positions(omm.satrec(), days),
        _positions(Satrec.twoline2rv(record["TLE_LINE1"], record["TLE_LINE2"]), days),
        atol=1e-6)


def test_bad_omm_records_name_file_and_record(tmp_path):
    bad = tmp_path / "bad.csv"
    text = (DATA / "iss_2019-12-09_celestrak.csv").read_text().replace(",.0007417,", ",1.2,")
    bad.write_text(text)
    with pytest.raises(InputError, match=r"bad.csv:2: ECCENTRICITY 1.2 is outside"):
        load_element_file(bad)
    bad.write_text(text.replace("15.50103472", "fast"))
    with pytest.raises(InputError, match=r"bad.csv:2: MEAN_MOTION 'fast' is not a number"):
        load_element_file(bad)


def test_skip_bad_records_reports_what_was_skipped():
    lines = (TLE_DIR / "planet_2024-07-16.tle").read_text().splitlines()
    lines[1] = lines[1][:-1] + str((int(lines[1][-1]) + 1) % 10)  # first record's checksum
    lines[7] = lines[7][:40]                                     # third record truncated
    skipped: list[str] = []
    records = parse_tle_text("\n".join(lines), "p.tle", skipped)
    assert len(records) == 139 - 2
    assert len(skipped) == 2
    assert skipped[0].startswith("p.tle:2: line 1 checksum")
    assert skipped[1].startswith("p.tle:8: line 1 has 40 characters")
    with pytest.raises(InputError, match="p.tle:2: line 1 checksum"):
        parse_tle_text("\n".join(lines), "p.tle")


def test_walker_delta_elements_and_checksums():
    shell = WalkerShell(planes=6, per_plane=4, phasing=2, altitude_km=700.0,
                        inclination_deg=60.0)
    epoch = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
    elements = walker_elements(shell, epoch)  # parse_tle_text checks every checksum
    assert len(elements) == 24
    sats = [e.satrec() for e in elements]
    raan = np.degrees([s.nodeo for s in sats]).reshape(6, 4)
    anomaly = np.degrees([s.mo for s in sats]).reshape(6, 4)
    np.testing.assert_allclose(raan[:, 0], np.arange(6) * 60.0, atol=1e-4)
    np.testing.assert_allclose(np.diff(anomaly[0]), 90.0, atol=1e-4)
    # Phasing: plane p+1 leads plane p by F * 360 / T degrees.
    np.testing.assert_allclose((anomaly[1, 0] - anomaly[0, 0]) % 360, 2 * 360 / 24, atol=1e-4)
    assert all(abs(np.degrees(s.inclo) - 60.0) < 1e-4 for s in sats)
    assert elements[0].epoch == epoch
    r = _positions(sats[0], np.linspace(0, 1, 200))
    altitude = np.linalg.norm(r, axis=1) - EARTH_RADIUS_KM
    assert 680 < altitude.min() and altitude.max() < 730  # nominal 700 km, J2 oscillation


def test_walker_star_spreads_planes_over_180_degrees():
    elements = walker_elements(PRESETS["iridium-next"], datetime(2024, 7, 16, tzinfo=timezone.utc))
    assert len(elements) == 66
    raan = sorted({round(np.degrees(e.satrec().nodeo), 4) for e in elements})
    np.testing.assert_allclose(raan, np.arange(6) * 30.0, atol=1e-4)


def test_alpha5_walker_catalog_numbers_round_trip():
    assert encode_catalog_number(99999) == "99999"
    assert encode_catalog_number(100000) == "A0000"
    assert encode_catalog_number(339999) == "Z9999"
    elements = walker_elements(WalkerShell(2, 3, 0, 550.0, 53.0),
                               datetime(2024, 7, 16, tzinfo=timezone.utc),
                               first_catalog_number=99998)
    assert [e.catalog_number for e in elements] == list(range(99998, 100004))
    assert elements[2].line1[2:7] == "A0000"
    assert elements[2].satrec().satnum == 100000


def test_networks_name_catalog_sites_and_overrides_apply():
    for members in NETWORKS.values():
        assert all(m in catalog() for m in members)
    assert catalog()["svalsat"].min_elevation_deg == 5.0
    site = from_catalog("svalsat", min_elevation_deg=12.0, antennas=3)
    assert (site.min_elevation_deg, site.antennas) == (12.0, 3)
    assert site.lat_deg == catalog()["svalsat"].lat_deg


@pytest.mark.parametrize("name, text, message", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json: JSON nested more than 100 levels"),
    ("deep-objects.json", '{"a":' * 5_000 + "1" + "}" * 5_000, "JSON nested more than 100"),
    ("huge-number.json", "[" + "9" * 5_000 + "]", "huge-number.json: cannot read the JSON"),
    ("cut.json", '[{"OBJECT_NAME": "ISS"', "cut.json:1:23: invalid JSON"),
    ("control.json", '{"OBJECT_NAME": "a\x00b"}', "control.json:1:19: invalid JSON"),
    ("long-field.csv", 'OBJECT_NAME,EPOCH\n"' + "x" * 200_000 + '"\n',
     "long-field.csv:2: cannot read as CSV (field larger than field limit"),
])
def test_every_omm_reader_error_is_one_line(tmp_path, name, text, message):
    """Issue 22: the parsers' own errors (RecursionError, ValueError, csv.Error) on user
    bytes are input errors naming the file, like a bad record is."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_element_file(path)
    assert message in str(err.value) and "\n" not in str(err.value), err.value
    assert str(err.value).startswith(str(path))
