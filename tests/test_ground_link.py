"""Ground links, station antennas and the ISL relay on hand-made contact plans, against
times computed by hand (bytes x 8 / rate, window by window)."""

import numpy as np
import pandas as pd
import pytest
import simpy
from simpy.resources.base import BaseResource

from orbitfl.constellation.airtime import Airtime
from orbitfl.constellation.ground_link import (
    GROUND,
    AntennaPool,
    Backhaul,
    GroundLinks,
    GroundPlan,
)
from orbitfl.constellation.links import RateProfiles
from orbitfl.constellation.network import Network

NO_BACKHAUL = Backhaul(latency_ms=0.0, rate_mbps=float("inf"))


def profiles(windows, rate_bps):
    """One constant rate over every window (sat, station, start, end)."""
    start = np.array([w[2] for w in windows], float)
    end = np.array([w[3] for w in windows], float)
    return RateProfiles(start, end, np.full(len(windows), float(rate_bps)),
                        np.arange(len(windows) + 1))


def ground(windows, satellites=1, stations=(("gs", 1),), rate_bps=8000.0, **options):
    env = simpy.Environment()
    frame = pd.DataFrame(windows, columns=["sat_index", "station", "start_s", "end_s"])
    plan = profiles(windows, rate_bps)
    ground = GroundPlan(frame, list(stations), plan, plan,
                        **{"backhaul": NO_BACKHAUL, **options})
    links = GroundLinks(Airtime(env), [f"sat{i}" for i in range(satellites)], ground)
    return env, links


def test_one_window_finishes_at_start_plus_bits_over_rate():
    rate, nbytes, start = 2e6, 3_000_000, 400.0
    env, links = ground([(0, "gs", start, 1000.0)], rate_bps=rate)
    process = links.transfer("weights", nbytes, "sat0", GROUND)
    env.run()
    record = process.value
    assert record.start_s == start
    assert record.end_s == pytest.approx(start + nbytes * 8 / rate)
    assert [s.station for s in record.segments] == ["gs"]


def test_a_payload_larger_than_a_window_continues_in_the_next():
    # 1 kB/s; the first window (100 s) carries 100 kB, the other 60 kB go 60 s into the next.
    env, links = ground([(0, "gs", 100.0, 200.0), (0, "gs", 900.0, 1500.0)])
    process = links.transfer("weights", 160_000, "sat0", GROUND)
    env.run()
    record = process.value
    assert record.bytes_per_pass == pytest.approx([100_000.0, 60_000.0])
    assert record.segments[0].end_s == pytest.approx(200.0)
    assert record.end_s == pytest.approx(960.0)


def test_uplink_waits_for_the_backhaul_before_the_window():
    # 1 MB over a 1 Mbit/s backhaul with 2 s latency reaches the station at 10 s, inside the
    # window [5, 2000] that runs at 8 kbit/s, where 1 MB takes 1000 s.
    env, links = ground([(0, "gs", 5.0, 2000.0)],
                        backhaul=Backhaul(latency_ms=2000.0, rate_mbps=1.0))
    process = links.transfer("weights", 1_000_000, GROUND, "sat0")
    env.run()
    assert process.value.start_s == pytest.approx(2.0 + 8.0)
    assert process.value.end_s == pytest.approx(10.0 + 1000.0)


def test_single_antenna_serves_competing_satellites_in_priority_order():
    # Three satellites in view of one single-antenna station; sat2 holds it first, then the
    # priority policy serves sat1 (priority 1) before sat0 (priority 4): 10 s each.
    windows = [(s, "gs", 0.0, 1000.0) for s in range(3)]
    env, links = ground(windows, satellites=3, policy="priority")
    first = links.transfer("weights", 10_000, "sat2", GROUND, priority=9)
    low = links.transfer("weights", 10_000, "sat0", GROUND, priority=4)
    high = links.transfer("weights", 10_000, "sat1", GROUND, priority=1)
    env.run()
    assert first.value.end_s == pytest.approx(10.0)
    assert (high.value.start_s, high.value.end_s) == pytest.approx((10.0, 20.0))
    assert (low.value.start_s, low.value.end_s) == pytest.approx((20.0, 30.0))
    assert max(n for _, n in links.pools[0].log) == 1


def test_antenna_pool_is_a_simpy_resource_shared_per_satellite():
    env = simpy.Environment()
    pool = AntennaPool(env, 0, 1, lambda waiting, station: min(waiting, key=lambda r: r.order))
    assert isinstance(pool, BaseResource) and pool.capacity == 1
    down, up = pool.request(7, 0.0), pool.request(7, 0.0)  # one track, two transfers
    other = pool.request(8, 0.0)
    assert down.triggered and up.triggered and not other.triggered
    pool.release(7)
    assert not other.triggered  # the track still carries the uplink
    pool.release(7)
    assert other.triggered and pool.tracking == {8: 1}
    cancelled = pool.request(9, 0.0)
    cancelled.cancel()
    pool.release(8)
    assert not cancelled.triggered and pool.tracking == {}


def test_a_transfer_cut_by_the_horizon_is_undelivered_with_its_bytes_so_far():
    # Windows of 30 s and 20 s at 1 kB/s carry 50 kB of the 80 kB; the plan then ends.
    env, links = ground([(0, "gs", 0.0, 30.0), (0, "gs", 100.0, 120.0)])
    process = links.transfer("weights", 80_000, "sat0", GROUND)
    env.run(until=10_000)
    assert not process.triggered
    record = links.airtime.records[0]
    assert record.status == "sending" and record.end_s is None
    assert record.progress_bytes == pytest.approx(50_000.0)
    assert links.next_contact_start("sat0", env.now, "down") == float("inf")


def test_two_hop_relay_takes_the_sum_of_its_hop_times():
    # sat0 never sees the station; it reaches sat1 over an ISL at 8 kbit/s from t = 50 s,
    # and sat1 sees the station at 16 kbit/s from t = 0: 10 kB take 10 s, then 5 s.
    windows = [(1, "gs", 0.0, 1000.0)]
    frame = pd.DataFrame(windows, columns=["sat_index", "station", "start_s", "end_s"])
    isl = pd.DataFrame([(0, 1, 50.0, 500.0, 8000.0)],
                       columns=["sat_a", "sat_b", "start_s", "end_s", "rate_bps"])
    env = simpy.Environment()
    plan = profiles(windows, 16000.0)
    network = Network(env, ["sat0", "sat1"],
                      GroundPlan(frame, [("gs", 1)], plan, plan, backhaul=NO_BACKHAUL), isl=isl)
    route = network.plan_route("sat0", GROUND, 10_000)
    assert route.nodes == ["sat0", "sat1", GROUND]
    process = network.relay("weights", 10_000, "sat0", GROUND)
    env.run()
    hops = process.value
    assert [(h.src, h.dst) for h in hops] == [("sat0", "sat1"), ("sat1", GROUND)]
    assert (hops[0].start_s, hops[0].end_s) == pytest.approx((50.0, 60.0))
    assert hops[1].end_s == pytest.approx(50.0 + 10_000 * 8 / 8000.0 + 10_000 * 8 / 16000.0)
    assert hops[1].end_s == pytest.approx(route.arrival)


def test_backhaul_forwards_each_station_share_after_its_last_byte():
    # 30 kB down at 1 kB/s: 10 kB via station a in [0, 10], 20 kB via b from t = 100. Each
    # station forwards its share over a 1 kB/s backhaul with 1 s latency: a's is at the
    # server at 10 + 1 + 10 = 21 s, b's at 120 + 1 + 20 = 141 s, which decides.
    env, links = ground([(0, "a", 0.0, 10.0), (0, "b", 100.0, 500.0)],
                        stations=[("a", 1), ("b", 1)],
                        backhaul=Backhaul(latency_ms=1000.0, rate_mbps=0.008))
    process = links.transfer("weights", 30_000, "sat0", GROUND)
    env.run()
    record = process.value
    assert [s.end_s for s in record.segments] == pytest.approx([10.0, 120.0])
    assert record.end_s == pytest.approx(141.0)
