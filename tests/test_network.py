"""The network engine against analytic answers on hand-made contact plans."""

import numpy as np
import pandas as pd
import pytest
import simpy

from orbitfl.constellation.links import RateProfiles
from orbitfl.constellation.network import GROUND, Backhaul, GroundPlan, Network

NO_BACKHAUL = Backhaul(latency_ms=0.0, rate_mbps=float("inf"))


def make_network(windows, rates=None, satellites=1, stations=(("gs", 1),), policy="fifo",
                 resume=True, backhaul=NO_BACKHAUL, elevation=None, up_rate=None):
    """``windows``: (sat, station, start, end); ``rates``: per window, a constant (bit/s)
    or a list of (start, end, rate) intervals."""
    frame = pd.DataFrame(windows, columns=["sat_index", "station", "start_s", "end_s"])
    rates = rates if rates is not None else [8000.0] * len(windows)

    def profile(per_window):
        start, end, rate, offsets = [], [], [], [0]
        for (_, _, a, b), r in zip(windows, per_window):
            pieces = r if isinstance(r, list) else [(a, b, r)]
            for s, e, v in pieces:
                start.append(s), end.append(e), rate.append(v)
            offsets.append(len(rate))
        return RateProfiles(np.array(start, float), np.array(end, float), np.array(rate, float),
                            np.array(offsets))

    env = simpy.Environment()
    ground = GroundPlan(frame, list(stations), down=profile(rates),
                        up=profile(up_rate or rates), policy=policy, resume=resume,
                        backhaul=backhaul, elevation=elevation)
    net = Network(env, [f"sat{i}" for i in range(satellites)], ground)
    return env, net


def test_constant_rate_transfer_over_three_passes_ends_at_the_analytic_time():
    # 1000 B/s; passes of 100 s, 50 s, 100 s carry 100 kB, 50 kB, then 30 kB of 180 kB.
    env, net = make_network([(0, "gs", 100.0, 200.0), (0, "gs", 500.0, 550.0),
                             (0, "gs", 900.0, 1000.0)])
    p = net.transfer("weights", 180_000, "sat0", GROUND)
    env.run()
    record = p.value
    assert record.start_s == 100.0
    assert record.end_s == pytest.approx(930.0, abs=1e-3)
    assert record.bytes_per_pass == pytest.approx([100_000.0, 50_000.0, 30_000.0])


def test_time_varying_rate_is_integrated_not_multiplied():
    # One pass [0, 30]: 8 kbit/s for 10 s, 24 kbit/s for 10 s, 8 kbit/s for 10 s.
    rates = [[(0.0, 10.0, 8000.0), (10.0, 20.0, 24000.0), (20.0, 30.0, 8000.0)]]
    env, net = make_network([(0, "gs", 0.0, 30.0)], rates)
    p = net.transfer("weights", 10_000 + 15_000, "sat0", GROUND)  # 10 kB, then 15 kB at 3 kB/s
    env.run()
    assert p.value.end_s == pytest.approx(15.0)


def test_restart_policy_resends_from_zero():
    env, net = make_network([(0, "gs", 0.0, 10.0), (0, "gs", 100.0, 130.0)], resume=False)
    p = net.transfer("weights", 15_000, "sat0", GROUND)
    env.run()
    assert p.value.end_s == pytest.approx(115.0)
    assert p.value.retransmitted_bytes == pytest.approx(10_000)


def test_direction_rates_and_backhaul():
    env, net = make_network([(0, "gs", 1000.0, 2000.0)], rates=[160e6], up_rate=[2e6],
                            backhaul=Backhaul(latency_ms=50.0, rate_mbps=1000.0))
    up = net.transfer("weights", 1_000_000, GROUND, "sat0")
    down = net.transfer("weights", 1_000_000, "sat0", GROUND)
    env.run()
    assert up.value.end_s == pytest.approx(1000.0 + 8e6 / 2e6)
    assert down.value.end_s == pytest.approx(1000.0 + 8e6 / 160e6 + 0.05 + 8e6 / 1e9)


def test_one_radio_per_direction_queues_by_priority():
    env, net = make_network([(0, "gs", 0.0, 100.0)])
    first = net.transfer("weights", 10_000, "sat0", GROUND, priority=5)
    urgent = net.transfer("control", 10_000, "sat0", GROUND, priority=1)
    late = net.transfer("delta", 10_000, "sat0", GROUND, priority=5)
    env.run()
    assert first.value.end_s == pytest.approx(10.0)  # already holding the radio
    assert urgent.value.end_s == pytest.approx(20.0)
    assert late.value.end_s == pytest.approx(30.0)


def test_k_antennas_never_serve_k_plus_one_satellites():
    windows = [(s, "gs", 10.0 * s, 500.0) for s in range(5)]
    env, net = make_network(windows, satellites=5, stations=[("gs", 2)])
    procs = [net.transfer("weights", 50_000, f"sat{s}", GROUND) for s in range(5)]
    env.run()
    assert max(n for _, n in net.pools[0].log) == 2
    ends = sorted(p.value.end_s for p in procs)
    # Two at a time, 50 s each: FIFO in request order.
    assert ends == pytest.approx([50.0, 60.0, 100.0, 110.0, 150.0])


def test_shared_track_carries_uplink_and_downlink_together():
    env, net = make_network([(0, "gs", 0.0, 100.0), (1, "gs", 0.0, 100.0)], satellites=2)
    down = net.transfer("weights", 20_000, "sat0", GROUND)
    up = net.transfer("weights", 20_000, GROUND, "sat0")
    other = net.transfer("weights", 20_000, "sat1", GROUND)
    env.run()
    assert down.value.end_s == pytest.approx(20.0) and up.value.end_s == pytest.approx(20.0)
    assert other.value.start_s == pytest.approx(20.0)


@pytest.mark.parametrize("policy, first", [("fifo", "sat0"), ("elevation", "sat2"),
                                           ("priority", "sat1")])
def test_antenna_policies_pick_what_they_promise(policy, first):
    windows = [(s, "gs", 0.0, 1000.0) for s in range(4)]
    env, net = make_network(windows, satellites=4, policy=policy,
                            elevation=lambda sat, station, t: [10, 20, 80, 40][sat])
    blocker = net.transfer("weights", 10_000, "sat3", GROUND, priority=9)  # takes the antenna
    procs = {f"sat{s}": net.transfer("weights", 10_000, f"sat{s}", GROUND,
                                     priority=[3, 1, 2][s]) for s in range(3)}
    env.run()
    assert blocker.value.end_s == pytest.approx(10.0)
    served_next = min(procs, key=lambda name: procs[name].value.start_s)
    assert served_next == first


def test_pass_ends_mid_transfer_and_another_station_continues():
    windows = [(0, "a", 0.0, 10.0), (0, "b", 5.0, 40.0)]
    env, net = make_network(windows, stations=[("a", 1), ("b", 1)])
    p = net.transfer("weights", 30_000, "sat0", GROUND)
    env.run()
    assert [s.station for s in p.value.segments] == ["a", "b"]
    assert p.value.end_s == pytest.approx(30.0)


def test_no_byte_outside_a_window_and_no_pass_over_capacity():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 5000, 12))
    windows = [(int(i % 3), "gs", float(a), float(a + rng.uniform(20, 200)))
               for i, a in enumerate(starts)]
    env, net = make_network(windows, satellites=3, stations=[("gs", 1)])
    for i in range(9):
        net.transfer("weights", int(rng.integers(10_000, 200_000)), f"sat{i % 3}", GROUND)
    env.run()
    for record in net.records:
        for seg in record.segments:
            _, _, a, b = windows[seg.window]
            assert a - 1e-9 <= seg.start_s and seg.end_s <= b + 1e-9
            assert seg.bytes <= (b - a) * 1000.0 + 1e-6


def test_transfer_without_enough_contact_stays_in_flight():
    env, net = make_network([(0, "gs", 0.0, 10.0)])
    p = net.transfer("weights", 20_000, "sat0", GROUND)
    env.run(until=5_000)
    assert not p.triggered
    record = net.records[0]
    assert record.status == "sending" and record.end_s is None
    assert record.bytes_sent == pytest.approx(10_000)
