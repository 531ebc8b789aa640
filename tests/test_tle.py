from pathlib import Path

import pytest

from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.tle import decode_catalog_number, parse_tle_text, select, tle_checksum
from orbitfl.core.errors import InputError

from conftest import TLE_DIR

# A real record (first of tle/eo-core_2024-07-16.tle).
REAL = (
    "LANDSAT 7",
    "1 25682U 99020A   24198.19873101  .00000896  00000+0  19265-3 0  9995",
    "2 25682  97.8864 223.6168 0001203  97.1798 337.4866 14.60749944343434",
)


def test_every_shipped_file_parses_with_valid_checksums():
    for path in sorted(TLE_DIR.glob("*.tle")):
        records = load_element_file(path)
        assert records, path
        for r in records:
            assert tle_checksum(r.line1) == int(r.line1[68])
            assert tle_checksum(r.line2) == int(r.line2[68])


def test_checksum_counts_digits_and_minus_signs_only():
    assert tle_checksum("1 -- 2") == 5            # 1 + 1 + 1 + 2
    assert tle_checksum("9 9 A.+ 3") == 1         # 21 mod 10; letters, '.', '+' count 0


def test_known_record_checksums_verify():
    records = parse_tle_text("\n".join(REAL), "iss.tle")
    assert records[0].name == "LANDSAT 7"
    assert records[0].catalog_number == 25682
    assert records[0].epoch.isoformat().startswith("2024-07-16T04:46:10")


def _corrupt(line: str, column: int, char: str) -> str:
    return line[:column] + char + line[column + 1:]


def test_checksum_rejection_names_file_and_line():
    bad = _corrupt(REAL[2], 22, "9")  # one RAAN digit changed: 223.6168 -> 223.6968
    with pytest.raises(InputError) as err:
        parse_tle_text("\n".join([REAL[0], REAL[1], bad]), "fleet.tle")
    assert str(err.value).startswith("fleet.tle:3: line 2 checksum")


@pytest.mark.parametrize("mutate, message", [
    (lambda l1, l2: (l1[:-1], l2), "line 1 has 68 characters"),
    (lambda l1, l2: (l1, l2.replace("25682", "25683", 1)), "checksum"),
    (lambda l1, l2: (_corrupt(l1, 54, "X"), l2), "BSTAR drag term field"),
    (lambda l1, l2: ("3" + l1[1:], l2), "expected line 1 of"),
])
def test_malformed_records_are_rejected(mutate, message):
    l1, l2 = mutate(REAL[1], REAL[2])
    with pytest.raises(InputError, match=message):
        parse_tle_text("\n".join([REAL[0], l1, l2]), "x.tle")


def test_mismatched_catalog_numbers_are_reported():
    l2 = REAL[2].replace("25682", "25683", 1)
    l2 = l2[:68] + str(tle_checksum(l2))
    with pytest.raises(InputError, match="catalog numbers differ"):
        parse_tle_text("\n".join([REAL[0], REAL[1], l2]), "x.tle")


def test_two_line_files_and_space_track_names():
    records = parse_tle_text("\n".join(REAL[1:]), "two.tle")
    assert records[0].name == "NORAD 25682"
    records = parse_tle_text("\n".join(["0 LANDSAT 7", *REAL[1:]]), "3le.tle")
    assert records[0].name == "LANDSAT 7"


def test_alpha5_catalog_numbers():
    assert decode_catalog_number("A0000") == 100000
    assert decode_catalog_number("E8493") == 148493
    assert decode_catalog_number("Z9999") == 339999
    assert decode_catalog_number("25682") == 25682


def test_missing_file_is_one_line(tmp_path: Path):
    with pytest.raises(InputError, match="element file not found"):
        load_element_file(tmp_path / "nope.tle")


def test_selection_by_pattern_and_limit(planet_tle):
    records = load_element_file(planet_tle)
    flock = select(records, name="flock 4y*")
    assert len(flock) == 36 and all(r.name.startswith("FLOCK 4Y") for r in flock)
    assert [r.name for r in select(records, name="FLOCK 4Y*", limit=3)] == \
        [r.name for r in flock[:3]]
    assert select(records, catalog_numbers=[39418])[0].name == "SKYSAT-A"
