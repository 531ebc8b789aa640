"""Azimuth-elevation masks and refraction (issue 26): the table against hand-computed
values, bad tables as one-line errors, masked windows against a brute-force skyfield scan
of elevation against the mask at the satellite's azimuth, and refraction's earlier rises
against skyfield's apparent altitude and the analytic R / (d elevation / dt)."""

from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
import yaml
from skyfield.api import EarthSatellite, wgs84

from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.horizon import HorizonMask, refraction_deg
from orbitfl.constellation.plan_cache import ALGORITHM_VERSION, plan_key
from orbitfl.constellation.propagation import Clock, Propagator, timescale
from orbitfl.constellation.stations import from_catalog
from orbitfl.constellation.tle import select
from orbitfl.core.errors import InputError
from orbitfl.engine.prepare import prepare
from orbitfl.scenario import load_scenario

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
HORIZON = 43200.0
# Low in the south, a 30 deg wall between azimuths 40 and 50, a hill to the west.
JAGGED = [(0.0, 3.0), (40.0, 3.0), (41.0, 30.0), (49.0, 30.0), (50.0, 3.0), (180.0, 2.0),
          (250.0, 12.0), (300.0, 6.0)]


@pytest.fixture(scope="module")
def flock():
    return select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4Y*", limit=3)


def _topocentric(element, station):
    ts = timescale()
    sat = EarthSatellite(element.line1, element.line2, ts=ts)
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)

    def look(t_s, **refraction):
        t = ts.utc(2024, 7, 16, 6, 0, np.atleast_1d(np.asarray(t_s, dtype=float)))
        alt, az, _ = (sat - topos).at(t).altaz(**refraction)
        return alt.degrees, az.degrees
    return look


def test_the_table_is_linear_between_points_and_periodic_across_north():
    mask = HorizonMask.from_pairs([(10.0, 5.0), (100.0, 20.0), (350.0, 15.0)])
    # 0 deg lies half way from 350 (15 deg) to 370 = 10 (5 deg); 55 half way to 100.
    np.testing.assert_allclose(mask.at([0.0, 360.0, -360.0, 55.0, 225.0, 355.0]),
                               [10.0, 10.0, 10.0, 12.5, 17.5, 12.5])
    assert mask.lowest_deg == 5.0


def _scenario(folder, site: dict, name: str = "s.yaml"):
    (folder / name).write_text(yaml.safe_dump({
        "name": "masks", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "2h",
        "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                          "select": {"name": "FLOCK 4Y*", "limit": 1}},
        "ground_stations": {"sites": [site]},
        "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 1}},
        "contacts": {"cache": False},
    }))
    return folder / name


@pytest.mark.parametrize("table, message", [
    ([[10, 5], [5, 6]], "point 1: azimuths must increase"),
    ([[0, 5], [90, 95]], "point 1: elevation 95 deg is outside [-5, 90]"),
    ([[0, -6]], "point 0: elevation -6 deg is outside [-5, 90]"),
    ([[360, 5]], "point 0: azimuth 360 deg is outside [0, 360)"),
    ("mask.csv", "line 3: azimuth and elevation must be numbers, got 90.0, nan"),
    ("missing.csv", "horizon mask file not found"),
    ("header.csv", "line 1: expected the header 'azimuth_deg,elevation_deg'"),
])
def test_a_bad_table_is_one_line_naming_the_site_and_problem(tmp_path, table, message):
    (tmp_path / "mask.csv").write_text("azimuth_deg,elevation_deg\n0,5\n90,nan\n")
    (tmp_path / "header.csv").write_text("az,el\n0,5\n")
    path = _scenario(tmp_path, {"id": "svalsat", "horizon_mask": table})
    with pytest.raises(InputError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "\n" not in text and message in text
    assert "ground_stations.sites[0].horizon_mask" in text or \
        "ground_stations.sites.0.horizon_mask" in text


def test_a_csv_mask_reaches_the_station_and_an_unset_one_keeps_the_hash(tmp_path):
    (tmp_path / "mask.csv").write_text("azimuth_deg,elevation_deg\n"
                                       + "".join(f"{a},{e}\n" for a, e in JAGGED))
    masked = prepare(_scenario(tmp_path, {"id": "svalsat", "horizon_mask": "mask.csv"}),
                     purpose="contacts")
    station = masked.stations[0]
    assert station.horizon_mask == HorizonMask.from_pairs(JAGGED)
    assert station.min_elevation_deg == 2.0  # the table's lowest point
    plain = load_scenario(_scenario(tmp_path, {"id": "svalsat"}, "plain.yaml"))
    document = plain.model_dump(mode="json")
    assert document["ground_stations"]["sites"][0]["horizon_mask"] is None
    # The hash of a scenario without masks or refraction ignores the new options.
    assert plain.content_hash() == plain.with_overrides({}).content_hash()
    assert plain.content_hash() != plain.with_overrides(
        {"contacts.refraction": True}).content_hash()


def _reference_transitions(look, mask: HorizonMask, step: float) -> tuple[np.ndarray, ...]:
    """Brute force: skyfield's elevation against the mask at its azimuth every ``step``
    wherever a 10 s scan finds the satellite within 3 deg of the mask's lowest point (and
    30 s either side); each change of side lies in (t_k, t_k + step]."""
    coarse = np.arange(0.0, HORIZON + 5.0, 10.0)
    near = np.convolve(look(coarse)[0] > mask.lowest_deg - 3.0, np.ones(7), "same") > 0
    t = np.arange(0.0, HORIZON + step / 2, step)
    t = t[np.interp(t, coarse, near.astype(float)) > 0.0]
    alt, az = look(t)
    above = alt > mask.at(az)
    k = np.flatnonzero((above[:-1] != above[1:]) & (np.diff(t) < 1.5 * step))
    assert not above[np.flatnonzero(np.diff(t) > 1.5 * step)].any()  # gaps lie below
    return t[k], ~above[k]


def test_masked_windows_match_a_brute_force_scan_with_skyfield(flock):
    mask = HorizonMask.from_pairs(JAGGED)
    station = replace(from_catalog("svalsat"), min_elevation_deg=mask.lowest_deg,
                      horizon_mask=mask)
    plan = compute_contacts(Propagator(flock, Clock(EPOCH)), [station], HORIZON).windows
    lowest = compute_contacts(Propagator(flock, Clock(EPOCH)),
                              [replace(station, horizon_mask=None)], HORIZON).windows
    assert len(plan) > len(lowest)  # the wall splits passes
    step = 0.25
    walled = 0
    for i, element in enumerate(flock):
        look = _topocentric(element, station)
        t_k, rising = _reference_transitions(look, mask, step)
        w = plan[plan.sat_index == i]
        ours = np.concatenate([w.start_s, w.end_s])
        ours_rising = np.concatenate([np.ones(len(w), bool), np.zeros(len(w), bool)])
        inner = (ours > 0.0) & (ours < HORIZON)
        ours, ours_rising = ours[inner], ours_rising[inner]
        order = np.argsort(ours)
        ours, ours_rising = ours[order], ours_rising[order]
        assert len(ours) == len(t_k) > 10
        assert (ours_rising == rising).all()
        assert ((ours > t_k - 1e-3) & (ours <= t_k + step + 1e-3)).all()
        alt, az = look(ours)
        walled += int((np.abs(alt - 30.0) < 0.01).sum())
        # Each window's peak: skyfield's elevation there, and nothing higher inside.
        alt_peak, _ = look(w.max_elevation_s.to_numpy())
        np.testing.assert_allclose(alt_peak, w.max_elevation_deg, atol=1e-4)
    assert walled >= 2  # crossings on the 30 deg wall, not only on the low mask


@pytest.mark.parametrize("mask_deg", [0.0, 5.0, 10.0])
def test_refraction_brings_rises_earlier_as_skyfield_and_the_analytic_value_say(flock, mask_deg):
    """Measured on FLOCK 4Y-24 at SvalSat over 12 h (median over its rises): 9.2 s earlier
    at a 0 deg mask, 2.1 s at 5 deg, 0.87 s at 10 deg (docs/contact-report.md)."""
    station = from_catalog("svalsat", min_elevation_deg=mask_deg)
    propagator = Propagator(flock[:1], Clock(EPOCH))
    geometric = compute_contacts(propagator, [station], HORIZON).windows
    apparent = compute_contacts(propagator, [station], HORIZON, refraction=True).windows
    # Passes that peak below the mask but within refraction of it appear only refracted.
    extra = apparent.max_elevation_deg <= mask_deg
    assert (apparent.max_elevation_deg[extra] > mask_deg - refraction_deg(mask_deg)).all()
    apparent = apparent[~extra].reset_index(drop=True)
    assert len(geometric) == len(apparent) > 5
    rises = (apparent.start_s > 0) & (geometric.start_s > 0)
    earlier = (geometric.start_s - apparent.start_s)[rises].to_numpy()
    later = (apparent.end_s - geometric.end_s)[geometric.end_s < HORIZON].to_numpy()
    assert (earlier > 0).all() and (later > 0).all()
    look = _topocentric(flock[0], station)
    t = apparent.start_s[rises].to_numpy()
    alt_before, _ = look(t - 1e-3, temperature_C=10.0, pressure_mbar=1010.0)
    alt_after, _ = look(t + 1e-3, temperature_C=10.0, pressure_mbar=1010.0)
    # skyfield's apparent altitude crosses the mask within a millisecond of our rise (its
    # own iteration stops at 3e-5 deg: a few milliseconds at the horizon).
    assert ((alt_before < mask_deg + 3e-5) & (alt_after > mask_deg - 3e-5)).all()
    # Analytic: the rise moves by R(mask) / (d elevation / dt) at the rise.
    rate = (look(t + 0.5)[0] - look(t - 0.5)[0]) / 1.0
    np.testing.assert_allclose(earlier, refraction_deg(mask_deg) / rate, rtol=0.02)
    print(f"mask {mask_deg:g} deg: R = {refraction_deg(mask_deg):.4f} deg, rises earlier by "
          f"median {np.median(earlier):.2f} s (min {earlier.min():.2f}, max {earlier.max():.2f})")


def test_a_site_with_both_a_mask_table_and_a_minimum_elevation_is_refused(tmp_path):
    path = _scenario(tmp_path, {"id": "svalsat", "min_elevation_deg": 5,
                                "horizon_mask": [[0, 3]]})
    with pytest.raises(InputError, match="give one of min_elevation_deg and horizon_mask"):
        load_scenario(path)


def test_the_plan_cache_key_covers_tables_and_refraction_only_where_used(flock):
    """Plans without masks or refraction keep their keys' content (the version moved on
    with the search's fixes, so no entry of the old search is read)."""
    propagator = Propagator(flock, Clock(EPOCH))
    station = from_catalog("svalsat")
    masked = replace(station, horizon_mask=HorizonMask.from_pairs(JAGGED))
    other = replace(station, horizon_mask=HorizonMask.from_pairs(JAGGED[:-1]))
    keys = {plan_key(propagator, [s], HORIZON, 90.0, 1e-3, refraction)
            for s in (station, masked, other) for refraction in (False, True)}
    assert len(keys) == 6
    assert plan_key(propagator, [station], HORIZON, 90.0, 1e-3) == \
        plan_key(propagator, [station], HORIZON, 90.0, 1e-3, False)
    assert ALGORITHM_VERSION >= 4  # answers of the search before the issue-26 fixes
