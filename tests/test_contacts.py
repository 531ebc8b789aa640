"""Contact windows against skyfield: find_events, and a dense bisection reference."""

from datetime import datetime, timezone

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.propagation import Clock, Propagator, timescale
from orbitfl.constellation.stations import GroundStation, from_catalog
from orbitfl.constellation.tle import select

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
DAY = 86400.0


@pytest.fixture(scope="module")
def flock():
    return select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4Y*", limit=3)


def _skyfield_altitude(element, station: GroundStation):
    ts = timescale()
    sat = EarthSatellite(element.line1, element.line2, ts=ts)
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)

    def altitude(t_s):
        t = ts.utc(2024, 7, 16, 6, 0, np.atleast_1d(t_s))
        return (sat - topos).at(t).altaz()[0].degrees
    return sat, topos, altitude


def _reference_crossings(altitude, mask: float, horizon: float) -> np.ndarray:
    """Every mask crossing from a 1 s skyfield scan, each bisected to 0.1 ms."""
    grid = np.arange(0.0, horizon + 0.5, 1.0)
    above = altitude(grid) > mask
    k = np.flatnonzero(above[:-1] != above[1:])
    lo, hi = grid[k], grid[k + 1]
    rising = ~above[k]
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        mid_above = altitude(mid) > mask
        move_lo = mid_above != rising
        lo = np.where(move_lo, mid, lo)
        hi = np.where(move_lo, hi, mid)
    return 0.5 * (lo + hi)


def test_windows_agree_with_skyfield_find_events(flock):
    stations = [from_catalog(s, min_elevation_deg=10.0) for s in ("svalsat", "fairbanks-planet")]
    plan = compute_contacts(Propagator(flock, Clock(EPOCH)), stations, DAY)
    ts = timescale()
    matched = 0
    for i, element in enumerate(flock):
        for station in stations:
            sat, topos, _ = _skyfield_altitude(element, station)
            t, events = sat.find_events(topos, ts.utc(2024, 7, 16, 6), ts.utc(2024, 7, 17, 6),
                                        altitude_degrees=10.0)
            theirs = np.sort((t[events != 1] - ts.utc(2024, 7, 16, 6)) * DAY)
            w = plan.windows[(plan.windows.sat_index == i) & (plan.windows.station == station.id)]
            ours = np.sort(np.concatenate([w.start_s, w.end_s]))
            # find_events may miss very short passes; every event it reports must be ours.
            for event in theirs:
                assert np.min(np.abs(ours - event)) < 1.0
                matched += 1
    assert matched > 40


def test_crossings_match_a_dense_reference_to_10_ms(flock):
    station = from_catalog("svalsat", min_elevation_deg=10.0)
    plan = compute_contacts(Propagator(flock[:1], Clock(EPOCH)), [station], DAY / 2)
    _, _, altitude = _skyfield_altitude(flock[0], station)
    reference = _reference_crossings(altitude, 10.0, DAY / 2)
    w = plan.windows
    ours = np.sort(np.concatenate([w.start_s, w.end_s]))
    assert len(ours) == len(reference) > 6
    assert np.max(np.abs(ours - reference)) < 0.010


def test_peak_elevation_is_the_true_maximum(flock):
    station = from_catalog("kiruna", min_elevation_deg=10.0)
    plan = compute_contacts(Propagator(flock, Clock(EPOCH)), [station], DAY)
    for i, element in enumerate(flock):
        _, _, altitude = _skyfield_altitude(element, station)
        w = plan.windows[plan.windows.sat_index == i]
        peak_t = w.max_elevation_s.to_numpy()
        np.testing.assert_allclose(altitude(peak_t), w.max_elevation_deg, atol=1e-4)
        assert np.all(altitude(peak_t - 2.0) < w.max_elevation_deg + 1e-6)
        assert np.all(altitude(peak_t + 2.0) < w.max_elevation_deg + 1e-6)
        assert np.all((peak_t > w.start_s) & (peak_t < w.end_s))


@pytest.mark.parametrize("step", [90.0, 180.0])
def test_coarse_grid_misses_no_short_pass(flock, step):
    """Grids of 1.5 and 3 minutes (longer than the shortest passes) find the same windows as
    a 10 s grid, to the millisecond, including passes cut by the horizon."""
    stations = [from_catalog(s, min_elevation_deg=30.0) for s in ("svalsat", "kiruna", "inuvik")]
    propagator = Propagator(flock, Clock(EPOCH))
    horizon = DAY - 1234.5  # not a multiple of any step
    fine = compute_contacts(propagator, stations, horizon, grid_step_s=10.0).windows
    coarse = compute_contacts(propagator, stations, horizon, grid_step_s=step).windows
    assert (fine.duration_s < step).any()  # there are passes shorter than a coarse step
    assert len(coarse) == len(fine)
    np.testing.assert_allclose(coarse.start_s, fine.start_s, atol=1e-3)
    np.testing.assert_allclose(coarse.end_s, fine.end_s, atol=1e-3)
    np.testing.assert_allclose(coarse.max_elevation_deg, fine.max_elevation_deg, atol=1e-3)


def test_window_open_at_start_and_end_is_clipped_to_the_horizon(flock):
    station = from_catalog("svalsat", min_elevation_deg=10.0)
    full = compute_contacts(Propagator(flock[:1], Clock(EPOCH)), [station], DAY).windows
    first = full.iloc[0]
    mid = 0.5 * (first.start_s + first.end_s)
    shifted = compute_contacts(Propagator(flock[:1], Clock(EPOCH)), [station], mid).windows
    assert shifted.iloc[-1].end_s == pytest.approx(mid)
    late_epoch = Clock(datetime.fromtimestamp(EPOCH.timestamp() + mid, tz=timezone.utc))
    later = compute_contacts(Propagator(flock[:1], late_epoch), [station], DAY / 4).windows
    assert later.iloc[0].start_s == 0.0
    assert later.iloc[0].end_s == pytest.approx(first.end_s - mid, abs=0.01)
