"""One time scale across the leap second at the end of 2016: rises and sets after it agree
with skyfield, and the UTC labels of the contact table count the inserted second."""

import numpy as np
import pandas as pd
import pytest
import yaml
from skyfield.api import EarthSatellite, wgs84

from orbitfl.constellation.propagation import timescale
from orbitfl.engine.prepare import prepare
from orbitfl.engine.world import build_world

HORIZON_S = 16 * 3600.0
MIDNIGHT_S = 12 * 3600.0  # 2017-01-01T00:00:00 UTC is 43201 SI seconds after the epoch


@pytest.fixture(scope="module")
def reference(world):
    return _reference_crossings(world.prepared.fleet[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("leap") / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "leap", "seed": 1, "epoch": "2016-12-31T12:00:00Z", "duration": "16h",
        "constellation": {"walker": {"planes": 1, "per_plane": 1, "altitude_km": 550,
                                     "inclination_deg": 97.6}},
        "ground_stations": {"sites": [{"id": "svalbard", "lat_deg": 78.23,
                                       "lon_deg": 15.39}], "min_elevation_deg": 10.0},
        "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 1}},
        "contacts": {"cache": False},
        "fl": {"rounds": 1, "schedule": {"deadline": "1h", "min_clients": 1}},
    }))
    return build_world(prepare(path))


def _reference_crossings(element) -> tuple[np.ndarray, object]:
    """Mask crossings from a 10 s skyfield scan bisected to 0.1 ms, as skyfield Times
    (passes above a 10 degree mask last minutes)."""
    ts = timescale()
    sat = EarthSatellite(element.line1, element.line2, ts=ts)
    topos = wgs84.latlon(78.23, 15.39)

    def altitude(t_s):
        return (sat - topos).at(ts.utc(2016, 12, 31, 12, 0, t_s)).altaz()[0].degrees

    grid = np.arange(0.0, HORIZON_S + 5.0, 10.0)
    above = altitude(grid) > 10.0
    k = np.flatnonzero(above[:-1] != above[1:])
    lo, hi, rising = grid[k], grid[k + 1], ~above[k]
    for _ in range(17):
        mid = 0.5 * (lo + hi)
        move_lo = (altitude(mid) > 10.0) != rising
        lo, hi = np.where(move_lo, mid, lo), np.where(move_lo, hi, mid)
    t_s = 0.5 * (lo + hi)
    return t_s, ts.utc(2016, 12, 31, 12, 0, t_s)


def test_rises_and_sets_after_the_leap_second_match_skyfield(world, reference):
    """Defect: SGP4 ran on UTC calendar seconds and the Earth's rotation on SI seconds,
    so passes after 2016-12-31T23:59:60 were shifted by up to 0.3 s."""
    reference, _ = reference
    w = world.plan.windows
    ours = np.sort(np.concatenate([w.start_s, w.end_s]))
    ours = ours[(ours > 0.0) & (ours < HORIZON_S)]
    assert len(ours) == len(reference) and (reference > MIDNIGHT_S).sum() >= 2
    np.testing.assert_allclose(ours, reference, atol=0.01)


def test_contact_table_utc_labels_count_the_leap_second(world, reference):
    _, when = reference
    table = world.contacts_table()
    ours = pd.to_datetime(np.sort(np.concatenate([table.start, table.end])), utc=True)
    theirs = pd.to_datetime([t.utc_datetime() for t in when], utc=True)
    assert np.abs((ours - theirs).total_seconds()).max() < 0.01
