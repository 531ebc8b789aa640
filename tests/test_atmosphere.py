"""ITU-R attenuation (constellation/atmosphere.py) against ITU-R's published validation
examples, its wiring into the DVB-S2 budget, and what the transfers table says about it."""

from datetime import datetime, timezone

import numpy as np
import pytest
import simpy

from orbitfl.constellation.atmosphere import (
    DRAW_PERCENTS,
    NODE_ELEVATIONS_DEG,
    Weather,
    WeatherSpec,
    attenuation_table,
    site_attenuation_db,
    slant_attenuation_db,
)
from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.ground_link import Backhaul, GroundPlan
from orbitfl.constellation.links import (
    LINK_PRESETS,
    LinkSpec,
    LinkState,
    RateProfiles,
    rate_profiles,
)
from orbitfl.constellation.network import GROUND, Network
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.stations import GroundStation, from_catalog
from orbitfl.constellation.tle import select
from orbitfl.core.errors import InputError
from orbitfl.engine import tables
from orbitfl.scenario import load_scenario

from conftest import SCENARIOS, TLE_DIR

# ITU-R Study Group 3 validation examples, CG-3M3J-13-ValEx-Rev5_1.xlsx, sheet of P.618-13
# total attenuation (as transcribed in ITU-Rpy 0.4.0, test/ITU_validation_test.py,
# test_total_attenuation): site, P.1511-1 altitude used there (m), frequency (GHz),
# elevation (deg), horizontal polarisation (tau 0), gas A_G and cloud A_C (dB), and the rain
# attenuation A_R (dB) exceeded p = 1, 0.1, 0.01, 0.001 % of the time. Scintillation is left
# out here as in our budget, so the total is A_G + A_C + A_R (P.618-13 eq. 64 with A_S = 0).
VALIDATION = {
    ("London", 14.25): (51.5, -0.14, 69.164224, 31.07694309, 0.223693782, 0.45517046,
                        (0.48914539, 2.16093588, 6.72783273, 14.76175093)),
    ("Rome", 14.25): (41.9, 12.49, 56.701045, 40.23202374, 0.184499507, 0.26338517,
                      (0.62159459, 2.69016502, 8.20502671, 17.63642115)),
    ("London", 29.0): (51.5, -0.14, 69.164224, 31.07694309, 0.799999368, 1.77247154,
                       (2.17897957, 8.46777895, 23.19077435, 44.76003026)),
    ("Rome", 29.0): (41.9, 12.49, 56.701045, 40.23202374, 0.673619867, 1.0256437,
                     (2.81538514, 10.70292908, 28.67456675, 54.14027603)),
}
PERCENTS = (1.0, 0.1, 0.01, 0.001)
SINGAPORE = GroundStation("sin", "Singapore (wet tropical site)", 1.35, 103.82, 15.0,
                          min_elevation_deg=5.0)
KA = LinkSpec(band="Ka", eirp_dbw=12.0, gt_dbk=30.0, bandwidth_mhz=100.0).model()


@pytest.mark.parametrize("site", VALIDATION, ids=lambda s: f"{s[0]}-{s[1]}GHz")
def test_availability_versus_margin_matches_itu_validation_examples(site):
    """The margin a link needs for 99, 99.9, 99.99 and 99.999 % availability (P.618's curve
    at a named site) equals ITU-R's published figure: 1e-5 relative, the spread that
    P.837's R0.01 interpolation leaves between ITU's sheet and ITU-Rpy."""
    lat, lon, alt, elevation, gas, cloud, rain = VALIDATION[site]
    for percent, a_rain in zip(PERCENTS, rain):
        ours = site_attenuation_db(lat, lon, alt, site[1], elevation, percent, tilt_deg=0.0)
        assert float(ours) == pytest.approx(gas + cloud + a_rain, rel=1e-5)


@pytest.mark.filterwarnings("ignore:The approximated method:RuntimeWarning")
def test_weather_at_node_elevations_is_the_direct_itur_value():
    import itur  # the reference: a direct call with the inputs our wiring passes on

    spec = WeatherSpec(availability=99.5)
    weather = Weather(spec, [SINGAPORE])
    got = weather.attenuation_db(26.5, 0, np.zeros(len(NODE_ELEVATIONS_DEG), int),
                                 NODE_ELEVATIONS_DEG)
    direct = itur.atmospheric_attenuation_slant_path(
        1.35, 103.82, 26.5, NODE_ELEVATIONS_DEG, 0.5, 1.0, hs=0.015, tau=45.0,
        include_scintillation=False).value
    np.testing.assert_allclose(got, direct, rtol=1e-12)
    assert got[0] > got[-1] > 1.0  # a wet site at Ka band: dBs, worst low


def test_interpolation_between_nodes_and_percentages_stays_within_2_5_percent():
    elevation = np.array([5.5, 9.0, 13.0, 27.5, 42.0, 67.0, 84.0, 89.5])
    table = attenuation_table(1.35, 103.82, 15.0, 26.5, DRAW_PERCENTS, 45.0)
    for percent in (0.003, 0.07, 0.7, 4.0, 33.0):
        direct = site_attenuation_db(1.35, 103.82, 15.0, 26.5, elevation, percent)
        ours = slant_attenuation_db(table, DRAW_PERCENTS, elevation,
                                    np.full(len(elevation), percent))
        np.testing.assert_allclose(ours, direct, rtol=0.025)  # worst: 89.5 deg, P.618 cusp


def test_below_five_degrees_the_path_lengthens_continuously():
    table = attenuation_table(51.5, -0.14, 69.0, 8.2, (0.5,), 45.0)
    elevation = np.array([0.0, 1.0, 3.0, 4.999, 5.0])
    loss = slant_attenuation_db(table, (0.5,), elevation, np.full(5, 0.5))
    assert np.all(np.diff(loss) < 0)  # lower is longer
    assert loss[3] == pytest.approx(loss[4], rel=1e-3)
    assert np.isfinite(loss[0])


def test_per_pass_draw_is_uniform_seeded_and_shared_by_the_pass():
    draw = Weather.draw(20000, np.random.default_rng(7))
    assert np.array_equal(draw, Weather.draw(20000, np.random.default_rng(7)))
    assert draw.min() >= 0.0 and draw.max() < 100.0
    assert np.mean(draw < 10.0) == pytest.approx(0.10, abs=0.01)  # uniform in percent
    weather = Weather(WeatherSpec(per_pass_draw=True), [SINGAPORE], np.array([0.1, 10.0]))
    rows = np.array([0, 0, 1, 1])
    loss = weather.attenuation_db(26.5, 0, rows, np.array([30.0, 60.0, 30.0, 60.0]))
    wet = site_attenuation_db(1.35, 103.82, 15.0, 26.5, np.array([30.0, 60.0]), 0.1)
    np.testing.assert_allclose(loss[:2], wet, rtol=1e-12)  # 0.1 % is a tabulated row
    assert np.all(loss[:2] > loss[2:])  # the rarer the weather, the wetter


def test_state_over_weights_time_and_picks_the_modcod_that_carried_most():
    state = LinkState(np.array([1.0, 3.0, 5.0]), np.array([9.0, 7.0, 2.0]),
                      np.array(["8PSK 3/4", "QPSK 3/4", "QPSK 1/2"], dtype=object))
    profile = RateProfiles(np.array([0.0, 10.0, 20.0]), np.array([10.0, 20.0, 30.0]),
                           np.array([300.0, 100.0, 50.0]), np.array([0, 3]), state)
    loss, es_n0, modcod = profile.state_over(0, 5.0, 30.0)  # 5 s, 10 s, 10 s of airtime
    assert loss == pytest.approx((5 * 1 + 10 * 3 + 10 * 5) / 25)
    assert es_n0 == pytest.approx((5 * 9 + 10 * 7 + 10 * 2) / 25)
    assert modcod == "8PSK 3/4"  # 1500 bits against 1000 and 500
    assert profile.state_over(0, 25.0, 25.0)[2] == "QPSK 1/2"  # an instant: its interval
    restricted = profile.restrict(np.array([0]), np.array([12.0]), np.array([30.0]))
    assert list(restricted.state.modcod) == ["QPSK 3/4", "QPSK 1/2"]


@pytest.fixture(scope="module")
def dove_passes():
    """Two Doves for 12 hours over a wet tropical site."""
    fleet = select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4Y*",
                   limit=2)
    propagator = Propagator(fleet, Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc)))
    plan = compute_contacts(propagator, [SINGAPORE], 12 * 3600.0)
    assert len(plan.windows) >= 2
    return fleet, propagator, plan


def test_ka_band_pass_loses_throughput_in_rain_and_the_transfers_table_says_why(dove_passes):
    fleet, propagator, plan = dove_passes
    weather = Weather(WeatherSpec(availability=99.0), [SINGAPORE])
    dry = rate_profiles(plan, propagator, [SINGAPORE], KA)
    wet = rate_profiles(plan, propagator, [SINGAPORE], KA, attenuation=weather.attenuation_db)
    assert np.all(wet.capacity_bytes() < dry.capacity_bytes())
    assert np.all(wet.state.attenuation_db > dry.state.attenuation_db + 1.0)
    assert np.all(wet.rate <= dry.rate) and np.any(wet.rate < dry.rate)
    efficiency = {m[0]: m[2] for m in KA.modcods()} | {"none": 0.0}
    rows = {}
    for name, profile in (("dry", dry), ("wet", wet)):
        env = simpy.Environment()
        ground = GroundPlan(plan.windows, [(SINGAPORE.id, 1)], profile, profile,
                            backhaul=Backhaul(latency_ms=0.0))
        network = Network(env, [e.name for e in fleet], ground)
        w = int(np.argmax(dry.capacity_bytes()))  # a payload the best pass carries dry
        sat = fleet[int(plan.windows.sat_index.iloc[w])].name
        network.transfer("weights", int(dry.capacity_bytes()[w] * 0.9), sat, GROUND)
        env.run()
        rows[name] = tables.transfers(network, set()).iloc[0]
    dry_row, wet_row = rows["dry"], rows["wet"]
    assert dry_row.status == "delivered"
    assert wet_row.status != "delivered" or wet_row.end_s > dry_row.end_s
    assert wet_row.atmosphere_db_per_pass[0] > dry_row.atmosphere_db_per_pass[0] + 1.0
    assert wet_row.es_n0_db_per_pass[0] < dry_row.es_n0_db_per_pass[0] - 1.0
    assert efficiency[wet_row.modcod_per_pass[0]] < efficiency[dry_row.modcod_per_pass[0]]
    assert len(wet_row.modcod_per_pass) == wet_row.passes_used


def test_without_weather_the_budget_is_todays_to_the_bit():
    """Capacities of the Dove X-band preset over SvalSat recorded before links.weather
    existed (Flock 4Y, 2 satellites, 6 h from 2024-07-16 06:00 UTC, 3 deg mask), re-recorded
    once when the contact search settled rises and sets on SGP4's positions (issue 26: the
    windows' ends moved by under a millisecond, the capacities by under 1e-11 of themselves)."""
    fleet = select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4Y*",
                   limit=2)
    propagator = Propagator(fleet, Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc)))
    station = [from_catalog("svalsat", min_elevation_deg=3.0)]
    plan = compute_contacts(propagator, station, 6 * 3600.0)
    profiles = rate_profiles(plan, propagator, station, LINK_PRESETS["dove-x"])
    assert profiles.capacity_bytes().tolist() == [
        7094123042.533761, 7647497452.921327, 10477539123.237822, 10938970261.422615,
        12145418855.548279, 12218271220.754349, 7923848045.197594]


def test_scenario_weather_section_hash_and_errors():
    base = load_scenario(SCENARIOS / "quickstart.yaml")
    # the quickstart's hash without links.weather (pinned since the station catalog joined
    # the hash, tests/test_station_antennas.py): an unset option leaves it alone
    assert base.content_hash() == \
        "32112a9955a3cf0582e636bb277cd1be6bf80b5fce4cce54d08940b68c8f45a7"
    wet = base.with_overrides({"links.weather": {"availability": 99.5}})
    assert wet.links.weather.availability == 99.5
    assert wet.content_hash() != base.content_hash()
    with pytest.raises(InputError, match=r"links\.weather.*either availability or "
                                         r"per_pass_draw"):
        base.with_overrides({"links.weather": {"availability": 99.5, "per_pass_draw": True}})
    with pytest.raises(InputError, match=r"links\.weather\.availability"):
        base.with_overrides({"links.weather": {"availability": 100.0}})


def test_world_draws_one_sky_per_pass_from_the_scenario_seed():
    """``build_world`` with ``per_pass_draw``: the percentages come from the scenario seed's
    weather sub-stream, and uplink and downlink of a pass see the same sky."""
    from orbitfl.core.random_streams import WEATHER_STREAM
    from orbitfl.engine.prepare import prepare
    from orbitfl.engine.world import build_world

    overrides = [("duration", "3h"), ("contacts.cache", False), ("fl", None),
                 ("links.weather", {"per_pass_draw": True}),
                 ("links.uplink", {"band": "Ka", "eirp_dbw": 50.0, "gt_dbk": 5.0,
                                   "bandwidth_mhz": 10.0})]
    worlds = [build_world(prepare(SCENARIOS / "quickstart.yaml",
                                  overrides + [("seed", seed)], purpose="contacts"))
              for seed in (3, 4)]
    world = worlds[0]
    stations = world.prepared.stations
    spec = world.prepared.scenario.links.weather
    draw = Weather.draw(len(world.plan.windows), np.random.default_rng(
        np.random.SeedSequence([3, WEATHER_STREAM])))
    weather = Weather(spec, stations, draw)
    for model, profile in ((world.prepared.scenario.links.downlink.model(), world.down),
                           (world.prepared.scenario.links.uplink.model(), world.up)):
        expected = rate_profiles(world.plan, world.propagator, stations, model,
                                 attenuation=weather.attenuation_db)
        np.testing.assert_array_equal(profile.state.attenuation_db,
                                      expected.state.attenuation_db)
        np.testing.assert_array_equal(profile.rate, expected.rate)
    assert not np.array_equal(worlds[1].down.state.attenuation_db,
                              world.down.state.attenuation_db)


def test_weather_over_fixed_rate_links_only_warns_that_it_does_nothing():
    from orbitfl.engine.prepare import prepare

    weather = [("links.weather", {"availability": 99.0})]
    fixed = prepare(SCENARIOS / "quickstart.yaml", weather + [
        ("links.downlink", {"rate_mbps": 10.0})], purpose="contacts")
    budget = prepare(SCENARIOS / "quickstart.yaml", weather, purpose="contacts")
    assert any("links.weather: no effect" in w for w in fixed.warnings)
    assert not any("links.weather" in w for w in budget.warnings)


def test_weather_without_the_extra_is_one_line(monkeypatch):
    """itur is the `weather` extra: without it a scenario that sets links.weather is
    refused in one line that says what to install, before any simulation."""
    import importlib.util

    from orbitfl.constellation import atmosphere

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "itur" else real(name, *a))
    with pytest.raises(InputError, match=r"orbitfl\[weather\]"):
        atmosphere.require_itur()
