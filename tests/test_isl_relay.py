"""Inter-satellite links, topology snapshots, and relayed transfers."""

from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
import simpy
from skyfield.api import EarthSatellite

from orbitfl.constellation.constants import EARTH_RADIUS_KM
from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.isl import (
    IslModel,
    clear_line_of_sight,
    isl_windows,
    time_expanded,
    topology_at,
)
from orbitfl.constellation.links import FixedRate, LinkSpec, rate_profiles
from orbitfl.constellation.network import GROUND, Backhaul, GroundPlan, Network
from orbitfl.constellation.propagation import Clock, Propagator, timescale
from orbitfl.constellation.routing import LinkSchedule
from orbitfl.constellation.stations import from_catalog

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
HORIZON = 6 * 3600.0


@pytest.fixture(scope="module")
def shell():
    fleet = load_element_file(TLE_DIR / "starlink-shell1_2024-07-16.tle")[:24]
    propagator = Propagator(fleet, Clock(EPOCH))
    model = IslModel(max_range_km=2500.0, link=LinkSpec(rate_mbps=50.0))
    isl = isl_windows(propagator, HORIZON, model)
    stations = [from_catalog("wallops", min_elevation_deg=25.0)]
    plan = compute_contacts(propagator, stations, HORIZON)
    return fleet, propagator, model, isl, stations, plan


def test_line_of_sight_geometry():
    r = EARTH_RADIUS_KM + 550.0
    a, b = np.array([r, 0.0, 0.0]), np.array([-r, 0.0, 0.0])
    assert not clear_line_of_sight(a, b, 80.0)  # through the Earth
    c = np.array([r * np.cos(0.3), r * np.sin(0.3), 0.0])
    assert clear_line_of_sight(a, c, 80.0)      # closest point at r cos(0.15) = 6857 km
    assert not clear_line_of_sight(a, c, 500.0)


def test_isl_windows_respect_range_and_line_of_sight(shell):
    _, propagator, model, isl, _, _ = shell
    assert len(isl) > 20
    for row in isl.sample(20, random_state=0).itertuples():
        for t in np.linspace(row.start_s + 0.05, row.end_s - 0.05, 5):
            ra, rb = (propagator.ecef_at(np.array([i]), np.array([t]))[0]
                      for i in (row.sat_a, row.sat_b))
            assert np.linalg.norm(ra - rb) <= model.max_range_km
            assert clear_line_of_sight(ra, rb, model.grazing_altitude_km)
        if row.start_s > 0.1:  # just before a rise the pair cannot link
            ra, rb = (propagator.ecef_at(np.array([i]), np.array([row.start_s - 0.05]))[0]
                      for i in (row.sat_a, row.sat_b))
            assert (np.linalg.norm(ra - rb) > model.max_range_km
                    or not clear_line_of_sight(ra, rb, model.grazing_altitude_km))


def test_topology_snapshot_and_time_expanded_view(shell):
    fleet, _, _, isl, _, plan = shell
    names = [e.name for e in fleet]
    graph = topology_at(1800.0, names, isl, plan)
    live = isl[(isl.start_s <= 1800.0) & (isl.end_s > 1800.0)]
    assert sum(1 for *_, d in graph.edges(data=True) if d["kind"] == "isl") == len(live)
    expanded = time_expanded([0.0, 600.0, 1200.0], names, isl, plan)
    assert expanded.has_edge((names[0], 0), (names[0], 1))  # data can wait on board
    assert all(d["kind"] == "hold" for u, v, d in expanded.edges(data=True) if u[1] != v[1])


def test_relay_is_never_later_than_direct_and_simulation_matches_plan(shell):
    fleet, propagator, _, isl, stations, plan = shell
    names = [e.name for e in fleet]
    down = rate_profiles(plan, propagator, stations, FixedRate(10e6))
    env = simpy.Environment()
    ground = GroundPlan(plan.windows, [(s.id, 1) for s in stations], down, down,
                        backhaul=Backhaul(latency_ms=0.0, rate_mbps=float("inf")))
    network = Network(env, names, ground, isl=isl)
    nbytes = 2_000_000
    improved = 0
    for sat in names:
        route = network.plan_route(sat, GROUND, nbytes)
        direct = network.router.links[sat].get(GROUND)
        direct_arrival = direct.finish(0.0, nbytes) if direct else np.inf
        if route is None:  # unreachable within the horizon, directly or relayed
            assert direct_arrival == np.inf
            continue
        assert route.arrival <= direct_arrival + 1e-9
        improved += route.arrival < direct_arrival - 1.0
    assert improved >= 3  # relays do help some satellites of this shell
    sat = next(n for n in names if (r := network.plan_route(n, GROUND, nbytes)) and
               len(r.nodes) > 2)
    expected = network.plan_route(sat, GROUND, nbytes)
    process = network.relay("weights", nbytes, sat, GROUND)
    env.run()
    hops = process.value
    assert [h.src for h in hops] + [hops[-1].dst] == expected.nodes
    assert hops[-1].end_s == pytest.approx(expected.arrival, abs=1e-6)
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(hops, hops[1:]))


def test_link_schedule_finish_is_analytic():
    link = LinkSchedule([100, 500, 540], [200, 600, 700], [8000, 8000, 16000])
    assert link.finish(0, 100_000) == pytest.approx(200.0)
    assert link.finish(0, 150_000) == pytest.approx(545.0)  # 0.8 + 0.32 + 0.08 Mbit at 16k
    assert link.finish(650, 50_000) == pytest.approx(675.0)
    assert link.finish(0, 1e9) == np.inf


KA_ISL_LINK = LinkSpec(frequency_ghz=26.5, eirp_dbw=30.0, gt_dbk=10.0, bandwidth_mhz=100.0,
                       zenith_atmospheric_loss_db=0.5)
KA_ISL = KA_ISL_LINK.model()


def test_isl_rate_has_no_atmosphere():
    """Defect: an atmospheric loss was applied between two satellites, in vacuum."""
    ranges = np.linspace(200.0, 2500.0, 2000)
    vacuum = replace(KA_ISL, zenith_atmospheric_loss_db=0.0).rate_bps(ranges, 90.0)
    assert (KA_ISL.rate_bps(ranges, 90.0) < vacuum).any()  # the loss matters at some range
    np.testing.assert_array_equal(IslModel(link=KA_ISL_LINK).rate_bps(ranges), vacuum)


def test_isl_capacity_is_the_integral_of_rate_over_range(shell):
    """Defect: capacity came from the mid-window range (0 to 2.4 times the integral).
    Reference: the rate integrated over skyfield's range every 0.5 s."""
    fleet, propagator, *_ = shell
    model = IslModel(max_range_km=2500.0, link=KA_ISL_LINK)
    isl = isl_windows(propagator, HORIZON, model)
    vacuum = replace(KA_ISL, zenith_atmospheric_loss_db=0.0)
    ts = timescale()
    sats = [EarthSatellite(e.line1, e.line2, ts=ts) for e in fleet]
    pieces = isl.assign(bytes=isl.rate_bps * (isl.end_s - isl.start_s) / 8.0)
    windows = pieces.groupby("window").agg(sat_a=("sat_a", "first"), sat_b=("sat_b", "first"),
                                           start_s=("start_s", "min"), end_s=("end_s", "max"),
                                           bytes=("bytes", "sum"))
    short = windows[windows.end_s - windows.start_s < 3600.0].head(6)
    assert len(short) >= 3
    for w in short.itertuples():
        t = np.arange(w.start_s, w.end_s, 0.5) + 0.25
        when = ts.utc(2024, 7, 16, 6, 0, t)
        distance = np.linalg.norm(sats[w.sat_a].at(when).position.km
                                  - sats[w.sat_b].at(when).position.km, axis=0)
        reference = np.sum(vacuum.rate_bps(distance, 90.0)) * 0.5 / 8.0
        assert w.bytes == pytest.approx(reference, rel=0.005)  # mid-range: 3-5 % off here
