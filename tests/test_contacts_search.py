"""The contact search's parts against independent truth: the Earth-fixed acceleration and
g'' against finite differences of SGP4 and skyfield, the quintic against a polynomial it
must reproduce, and coarse grids against a fine one where the screen used to be cut off."""

from datetime import datetime, timezone

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from orbitfl.constellation.contacts import _QuinticBracket, _StationGeometry, compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.propagation import Clock, Propagator, ecef_acceleration, timescale
from orbitfl.constellation.stations import from_catalog
from orbitfl.constellation.tle import select

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
DAY = 86400.0


@pytest.fixture(scope="module")
def flock():
    return select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4Y*", limit=3)


def test_acceleration_matches_sgp4_velocity_differences(flock):
    """Central differences of SGP4's Earth-fixed velocity (+-0.5 s) against the J2 model with
    the Coriolis and centrifugal terms: within 1e-4 (J2 alone is 1e-3 of gravity; drag and
    the higher zonal terms are left out)."""
    propagator = Propagator(flock, Clock(EPOCH))
    t = np.linspace(0.0, DAY, 50)
    sats = np.arange(len(flock)).repeat(len(t))
    t = np.tile(t, len(flock))
    r, v = propagator.states_at(sats, t)
    _, v_after = propagator.states_at(sats, t + 0.5)
    _, v_before = propagator.states_at(sats, t - 0.5)
    differences = v_after - v_before
    model = ecef_acceleration(r, v)
    error = np.linalg.norm(model - differences, axis=1) / np.linalg.norm(differences, axis=1)
    assert error.max() < 1e-4
    # Without the frame's terms the model would be off by about 2 omega v / g ~ 13 %.
    assert np.linalg.norm(differences, axis=1).min() > 5e-3  # km/s^2: a real acceleration


def test_g_and_its_derivatives_match_skyfield_elevation(flock):
    """g = sin(el) - sin(mask) and its first two time derivatives against finite differences
    of skyfield's topocentric altitude."""
    station = from_catalog("svalsat", min_elevation_deg=10.0)
    geometry = _StationGeometry([station])
    propagator = Propagator(flock[:1], Clock(EPOCH))
    t = np.linspace(0.0, DAY, 400)
    g, rate, curv = geometry.derivatives(*propagator.states_at(np.zeros(t.size, int), t), None,
                                         np.zeros(t.size, int))
    ts = timescale()
    sat = EarthSatellite(flock[0].line1, flock[0].line2, ts=ts)
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)

    def sin_el(x):
        alt = (sat - topos).at(ts.utc(2024, 7, 16, 6, 0, x)).altaz()[0].radians
        return np.sin(alt) - np.sin(np.radians(10.0))

    h = 0.25
    before, here, after = sin_el(t - h), sin_el(t), sin_el(t + h)
    np.testing.assert_allclose(g, here, atol=1e-7)
    np.testing.assert_allclose(rate, (after - before) / (2 * h), rtol=1e-4, atol=1e-9)
    second = (after - 2 * here + before) / h**2
    assert np.abs(curv - second).max() < 1e-3 * np.abs(second).max()


def test_quintic_reproduces_a_quintic():
    """Hermite interpolation through values and two derivatives at both ends is exact for a
    polynomial of degree 5: its value, slope, curvature and roots."""
    coef = np.array([-0.3, 1.1, 0.7, -2.0, 0.4, 0.9])  # p(s) = sum coef[n] s^n, s in [0, 1]
    h, t0 = 90.0, 1000.0

    def p(s, order=0):
        c = np.polynomial.polynomial.polyder(coef, order) if order else coef
        return np.polynomial.polynomial.polyval(s, c)

    one = np.ones(1)
    q = _QuinticBracket(t0, h, p(0) * one, p(1) * one, p(0, 1) / h * one, p(1, 1) / h * one,
                        p(0, 2) / h**2 * one, p(1, 2) / h**2 * one)
    s = np.linspace(0.0, 1.0, 11)
    rows = np.zeros(s.size, dtype=int)
    np.testing.assert_allclose(q.value(rows, s), p(s), atol=1e-12)
    np.testing.assert_allclose(q.slope(rows, s), p(s, 1), atol=1e-12)
    np.testing.assert_allclose(q.curvature(rows, s), p(s, 2), atol=1e-12)
    roots = np.polynomial.polynomial.polyroots(coef)
    root = roots[(np.abs(roots.imag) < 1e-12) & (roots.real > 0) & (roots.real < 1)].real
    assert root.size == 1
    found = q.root(np.zeros(1, dtype=int), np.zeros(1), np.ones(1), np.array([p(0) < 0]),
                   False, 1e-12)
    np.testing.assert_allclose(q.time(found), t0 + h * root, atol=1e-9)


@pytest.mark.parametrize("step", [120.0, 300.0])
def test_low_mask_coarse_grid_matches_a_fine_one(flock, step):
    """With a 0 degree mask and steps of 2 and 5 minutes, a candidate peak can lie below the
    horizon: the windows still match a 10 s grid's, to the millisecond."""
    stations = [from_catalog(s, min_elevation_deg=0.0) for s in ("svalsat", "kiruna")]
    propagator = Propagator(flock, Clock(EPOCH))
    horizon = DAY / 2
    fine = compute_contacts(propagator, stations, horizon, grid_step_s=10.0).windows
    coarse = compute_contacts(propagator, stations, horizon, grid_step_s=step).windows
    assert len(coarse) == len(fine) > 20
    np.testing.assert_allclose(coarse.start_s, fine.start_s, atol=1e-3)
    np.testing.assert_allclose(coarse.end_s, fine.end_s, atol=1e-3)
    np.testing.assert_allclose(coarse.max_elevation_deg, fine.max_elevation_deg, atol=1e-3)
