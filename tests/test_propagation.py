"""Earth-fixed positions agree with skyfield's ITRS (independent frame chain)."""

from datetime import datetime, timezone

import numpy as np
from skyfield.api import EarthSatellite
from skyfield.framelib import itrs

from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.propagation import Clock, Propagator, timescale

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)


def test_ecef_matches_skyfield_itrs_to_a_metre():
    fleet = load_element_file(TLE_DIR / "planet_2024-07-16.tle")[::15] \
        + load_element_file(TLE_DIR / "eo-core_2024-07-16.tle")[::5]
    times = np.sort(np.random.default_rng(1).uniform(0, 3 * 86400, 200))
    ours = Propagator(fleet, Clock(EPOCH)).ecef_grid(times)
    ts = timescale()
    t = ts.utc(2024, 7, 16, 6, 0, times)
    for i, element in enumerate(fleet):
        reference = EarthSatellite(element.line1, element.line2, ts=ts).at(t).frame_xyz(itrs).km
        assert np.max(np.linalg.norm(ours[i] - reference.T, axis=1)) < 1e-3  # km


def test_per_sample_times_match_the_grid():
    fleet = load_element_file(TLE_DIR / "iridium-next_2024-07-16.tle")[:4]
    propagator = Propagator(fleet, Clock(EPOCH))
    times = np.array([0.0, 60.0, 3600.0])
    grid = propagator.ecef_grid(times)
    sats = np.array([3, 0, 2, 3])
    picks = np.array([2, 1, 0, 0])
    np.testing.assert_allclose(propagator.ecef_at(sats, times[picks]), grid[sats, picks],
                               atol=1e-9)
