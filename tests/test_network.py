"""Transfers against analytic answers on hand-made contact plans."""

import pandas as pd
import pytest
import simpy

from orbitfl.constellation.contacts import WINDOW_COLUMNS, ContactPlan
from orbitfl.constellation.network import GROUND, Network


def plan_from(windows: list[tuple[int, float, float]], horizon: float = 10_000.0) -> ContactPlan:
    rows = [{"sat_index": s, "satellite": f"sat{s}", "norad_id": s, "station": "gs",
             "start_s": a, "end_s": b, "duration_s": b - a, "max_elevation_deg": 45.0,
             "max_elevation_s": (a + b) / 2} for s, a, b in windows]
    return ContactPlan(pd.DataFrame(rows, columns=WINDOW_COLUMNS), horizon)


def test_transfer_spanning_two_passes_ends_at_the_analytic_time():
    # Passes [100, 200] and [500, 600] at 8 kbit/s = 1000 B/s: 150 kB needs all of the
    # first pass (100 kB) and 50 s of the second, so it ends at 550 s exactly.
    env = simpy.Environment()
    net = Network(env, plan_from([(0, 100.0, 200.0), (0, 500.0, 600.0)]), ["sat0"],
                  uplink_bps=8_000, downlink_bps=8_000)
    process = net.transfer("weights", 150_000, "sat0", GROUND)
    env.run()
    record = process.value
    assert record.start_s == 100.0
    assert record.end_s == pytest.approx(550.0, abs=1e-9)
    assert record.passes_used == 2
    assert record.bytes_per_pass == pytest.approx([100_000.0, 50_000.0])


def test_transfer_waits_for_the_next_contact_and_uses_the_direction_rate():
    env = simpy.Environment()
    net = Network(env, plan_from([(0, 1000.0, 2000.0)]), ["sat0"],
                  uplink_bps=2e6, downlink_bps=160e6)
    up = net.transfer("weights", 1_000_000, GROUND, "sat0")
    down = net.transfer("weights", 1_000_000, "sat0", GROUND)
    env.run()
    assert up.value.end_s == pytest.approx(1000.0 + 8e6 / 2e6)
    assert down.value.end_s == pytest.approx(1000.0 + 8e6 / 160e6)


def test_one_radio_per_direction_queues_transfers_in_order():
    env = simpy.Environment()
    net = Network(env, plan_from([(0, 0.0, 100.0)]), ["sat0"], 8_000, 8_000)
    first = net.transfer("weights", 10_000, "sat0", GROUND)
    second = net.transfer("delta", 10_000, "sat0", GROUND)
    env.run()
    assert first.value.end_s == pytest.approx(10.0)
    assert second.value.start_s == pytest.approx(10.0)
    assert second.value.end_s == pytest.approx(20.0)


def test_overlapping_windows_of_two_stations_merge():
    env = simpy.Environment()
    net = Network(env, plan_from([(0, 0.0, 60.0), (0, 40.0, 100.0)]), ["sat0"], 8_000, 8_000)
    p = net.transfer("weights", 90_000, "sat0", GROUND)
    env.run()
    assert p.value.end_s == pytest.approx(90.0)
    assert p.value.passes_used == 1


def test_transfer_without_enough_contact_stays_in_flight():
    env = simpy.Environment()
    net = Network(env, plan_from([(0, 0.0, 10.0)]), ["sat0"], 8_000, 8_000)
    p = net.transfer("weights", 20_000, "sat0", GROUND)
    env.run(until=5_000)
    assert not p.triggered
    record = net.records[0]
    assert record.status == "sending" and record.end_s is None
    assert sum(record.bytes_per_pass) == pytest.approx(10_000)
