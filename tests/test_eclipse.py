"""Earth shadow against skyfield's is_sunlit (DE421 from skyfield-data)."""

from datetime import datetime, timezone

import numpy as np
from skyfield.api import EarthSatellite

from orbitfl.constellation.eclipse import ephemeris, is_sunlit, sun_ecef_km, sunlit_fraction
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.propagation import Clock, Propagator, timescale

from conftest import TLE_DIR


def test_shadow_agrees_with_skyfield_on_99_99_percent_of_samples():
    fleet = load_element_file(TLE_DIR / "planet_2024-07-16.tle")[::20] \
        + load_element_file(TLE_DIR / "iridium-next_2024-07-16.tle")[::20]
    clock = Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc))
    times = np.arange(0.0, 86400.0, 15.0)
    ours = is_sunlit(Propagator(fleet, clock).ecef_grid(times), sun_ecef_km(clock, times)[None])
    ts = timescale()
    t = ts.utc(2024, 7, 16, 6, 0, times)
    reference = np.array([EarthSatellite(e.line1, e.line2, ts=ts).at(t).is_sunlit(ephemeris())
                          for e in fleet])
    agreement = (ours == reference).mean()
    assert agreement >= 0.9999
    assert 0.2 < 1 - reference.mean() < 0.5  # these orbits do spend time in shadow


def test_sunlit_fraction_limits():
    sun = np.array([1.496e8, 0.0, 0.0])
    day = np.array([7000.0, 0.0, 0.0])
    night = np.array([-7000.0, 0.0, 0.0])
    assert sunlit_fraction(day, sun) == 1.0 and sunlit_fraction(night, sun) == 0.0
    # Crossing the terminator, the fraction falls monotonically from 1 to 0 and is 0.5
    # (the Sun's centre on the limb) exactly where is_sunlit flips.
    limb_y = np.linspace(6500.0, 6200.0, 400)
    x = -np.sqrt(7000.0**2 - limb_y**2)
    points = np.column_stack([x, limb_y, np.zeros_like(x)])
    fraction = sunlit_fraction(points, sun)
    assert fraction[0] == 1.0 and fraction[-1] == 0.0
    assert np.all(np.diff(fraction) <= 1e-12)
    flip = np.flatnonzero(np.diff(is_sunlit(points, sun).astype(int)))[0]
    assert 0.4 < fraction[flip] < 0.6
