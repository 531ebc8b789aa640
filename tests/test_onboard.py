"""Compute, power and faults against analytic answers."""

import json

import numpy as np
import pandas as pd
import pytest
import simpy
import yaml
from test_end_to_end import TINY
from torch import nn

from orbitfl.cli import main
from orbitfl.constellation.compute import CHIPS
from orbitfl.constellation.events import EventLog
from orbitfl.constellation.faults import Failure, FaultSpec, StationOutage, apply_faults
from orbitfl.constellation.links import RateProfiles
from orbitfl.constellation.network import GROUND, Backhaul, GroundPlan, Network
from orbitfl.constellation.onboard import Onboard
from orbitfl.constellation.power import WH, Battery, PowerSpec
from orbitfl.fl.flops import forward_flops, training_flops

SPEC = PowerSpec(battery_wh=10.0, initial_soc=0.5, solar_w=20.0, idle_w=5.0, transmit_w=10.0,
                 receive_w=2.0, train_threshold_soc=0.4, floor_soc=0.1)


def test_flops_are_counted_from_the_model():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(),
                          nn.Linear(8 * 16 * 16, 10, bias=False))
    conv = 2 * (3 * 3 * 3) * 8 * 16 * 16          # 2 FLOPs per multiply-accumulate
    linear = 2 * (8 * 16 * 16) * 10
    assert forward_flops(model, (3, 16, 16)) == conv + linear
    assert training_flops(model, (3, 16, 16), samples=100, epochs=2) == 3 * 200 * (conv + linear)
    chip = CHIPS["jetson-nano"]
    assert chip.training_time_s(1e12) == pytest.approx(1e12 / (472e9 * chip.utilisation))
    assert chip.training_energy_j(1e12) == pytest.approx(chip.power_w * chip.training_time_s(1e12))


def test_battery_integrates_sun_and_loads_and_never_goes_negative():
    # Sunlit during [0, 1000) and [3000, 4000); 5 W idle, 20 W solar.
    battery = Battery(SPEC, np.array([0.0, 3000.0]), np.array([1000.0, 4000.0]), 6000.0)
    start = battery.level_j
    battery.advance(1000.0)
    assert battery.level_j == pytest.approx(start + 15.0 * 1000.0)
    battery.set_load(1000.0, "compute", 25.0)  # 30 W net drain in shadow
    empty = battery.time_to_fall_to(0.0)
    assert empty == pytest.approx(1000.0 + (start + 15000.0) / 30.0)  # 2100 s, before the Sun
    battery.advance(2999.0)
    assert battery.level_j == 0.0 and battery.soc >= 0.0  # clamped, never negative
    battery.set_load(2999.0, "compute", 0.0)
    assert battery.time_to_rise_to(0.4) == pytest.approx(3000.0 + 0.4 * 10 * WH / 15.0)
    assert all(0.0 <= s.soc <= 1.0 for s in battery.trace)


def test_satellite_in_full_eclipse_with_low_battery_does_not_train():
    env = simpy.Environment()
    low = PowerSpec(**{**SPEC.__dict__, "initial_soc": 0.2})
    dark = Battery(low, np.array([]), np.array([]), 10_000.0)
    lit = Battery(low, np.array([5000.0]), np.array([10_000.0]), 10_000.0)
    onboard = Onboard(CHIPS["jetson-nano"], [dark, lit], ["dark", "lit"], EventLog())
    flops = 1e13
    results = [env.process(onboard.train(env, i, flops, 10_000.0)) for i in (0, 1)]
    env.run()
    assert results[0].value is False
    assert "compute" not in dark.loads and all(t != "compute" for t in dark.loads)
    assert results[1].value is True
    events = onboard.events.frame()
    start = events[(events.kind == "training_start") & (events.node == "lit")].t_s.iloc[0]
    # The 5 W idle load emptied it in the dark (7200 J / 5 W = 1440 s); it waited for the
    # Sun (t = 5000) and for the charge to climb from 0 to 0.4 at 15 W net.
    assert start == pytest.approx(5000.0 + 0.4 * 10 * WH / 15.0)
    assert events[events.node == "dark"].kind.tolist() == ["training_wait_battery"]


def test_training_pauses_at_the_floor_and_resumes():
    env = simpy.Environment()
    battery = Battery(PowerSpec(**{**SPEC.__dict__, "initial_soc": 0.45}),
                      np.array([4000.0]), np.array([20_000.0]), 20_000.0)
    chip = CHIPS["jetson-nano"]
    onboard = Onboard(chip, [battery], ["sat"], EventLog())
    flops = chip.effective_flops * 3000.0  # 3000 s of compute at 15 W net drain
    done = env.process(onboard.train(env, 0, flops, 20_000.0))
    env.run()
    assert done.value is True
    kinds = onboard.events.frame().kind.tolist()
    assert kinds[:3] == ["training_start", "training_pause", "training_wait_battery"]
    assert "training_resume" in kinds and kinds[-1] == "training_end"
    events = onboard.events.frame()
    paused = events[events.kind == "training_pause"].value
    assert paused.to_numpy() == pytest.approx(SPEC.floor_soc)  # stopped at the floor
    ran = events[events.kind.isin(["training_start", "training_resume"])].value
    assert (ran >= SPEC.train_threshold_soc - 1e-9).all()


def _books_balance(battery: Battery) -> None:
    """Supplied = initial + harvested - stored - wasted at every sample, and nothing is
    supplied that was neither stored nor harvested."""
    initial = battery.spec.initial_soc * battery.capacity_j
    for s in battery.trace:
        stored = s.soc * battery.capacity_j
        assert s.supplied_j == pytest.approx(initial + s.harvested_j - stored - s.wasted_j,
                                             abs=1e-6)
        assert 0.0 <= stored <= battery.capacity_j


def test_battery_without_sun_supplies_exactly_what_it_stored():
    """72 Wh, no Sun, a 6 W bus for 24 h: the battery empties at 72 Wh / 6 W = 12 h, has
    supplied exactly 72 Wh, and the bus is browned out (unserved) for the other 12 h."""
    spec = PowerSpec(battery_wh=72.0, initial_soc=1.0, idle_w=6.0)
    crossings = []
    battery = Battery(spec, np.array([]), np.array([]), 86_400.0,
                      on_cross=lambda t, name, d: crossings.append((t, name, d)))
    assert battery.time_to_fall_to(0.0) == pytest.approx(43_200.0)
    battery.advance(86_400.0)
    assert battery.supplied_j == pytest.approx(72.0 * WH)
    assert battery.unserved_j == pytest.approx(6.0 * 43_200.0)
    assert battery.brownout_s == pytest.approx(43_200.0)
    assert battery.level_j == 0.0 and battery.harvested_j == 0.0
    assert (pytest.approx(43_200.0), "brownout", "start") in crossings
    empty = [s for s in battery.trace if s.soc == 0.0]
    assert empty[0].t_s == pytest.approx(43_200.0)  # the corner is sampled, not interpolated
    _books_balance(battery)


def test_battery_books_balance_through_sun_shade_full_and_empty():
    # 20 W in the Sun during [0, 3000) and [6000, 9000); loads switch on and off.
    battery = Battery(SPEC, np.array([0.0, 6000.0]), np.array([3000.0, 9000.0]), 10_000.0)
    battery.advance(2900.0)                   # 15 W net: full at 1200 s, then wastes 15 W
    assert battery.wasted_j == pytest.approx(15.0 * (2900.0 - 1200.0))
    battery.set_load(2900.0, "compute", 40.0)  # drains 25 W, then 45 W in the shade
    battery.advance(5000.0)
    battery.set_load(5000.0, "compute", 0.0)
    battery.advance(10_000.0)
    assert battery.unserved_j > 0.0 and battery.wasted_j > 15.0 * 1700.0
    _books_balance(battery)
    # The load was only served while there was energy: 36000 J stored at 2900 s less
    # 25 W x 100 s, drained at 45 W from 3000 s, empty at 3000 + 33500 / 45 s.
    empty_at = 3000.0 + (36_000.0 - 2_500.0) / 45.0
    assert battery.consumed_j["compute"] == pytest.approx(40.0 * (empty_at - 2900.0))


def test_a_transfer_pauses_at_the_battery_floor_and_resumes_when_recharged():
    """One 10 000 s pass at 1000 B/s, 5 MB to send; 18 kJ stored, 5 W bus + 10 W
    transmitter, no Sun before 3000 s. The radio stops at the floor (3.6 kJ) at 960 s; the
    bus alone empties the battery at 1680 s (brown-out until the Sun at 3000 s); at 15 W net
    it is back at the 40 % threshold at 3960 s and the rest goes out by 8000 s."""
    env = simpy.Environment()
    battery = Battery(SPEC, np.array([3000.0]), np.array([20_000.0]), 20_000.0)
    onboard = Onboard(CHIPS["jetson-nano"], [battery], ["sat"], EventLog())
    windows = pd.DataFrame({"sat_index": [0], "station": ["gs"], "start_s": [0.0],
                            "end_s": [10_000.0]})
    profile = RateProfiles(np.array([0.0]), np.array([10_000.0]), np.array([8000.0]),
                           np.array([0, 1]))
    network = Network(env, ["sat"], GroundPlan(windows, [("gs", 1)], profile, profile,
                                               backhaul=Backhaul(latency_ms=0.0,
                                                                 rate_mbps=1e12)))
    network.gate_radios(onboard.radio_power(env))
    done = network.transfer("weights", 5_000_000, "sat", GROUND)
    env.run(until=20_000.0)
    record = done.value
    assert [(s.start_s, s.end_s, s.bytes) for s in record.segments] == [
        pytest.approx((0.0, 960.0, 960_000.0)), pytest.approx((3960.0, 8000.0, 4_040_000.0))]
    assert record.end_s == pytest.approx(8000.0)
    assert battery.consumed_j["radio_tx"] == pytest.approx(10.0 * 5000.0)
    assert onboard.mission_energy_j(20_000.0) == pytest.approx(10.0 * 5000.0)
    assert battery.brownout_s == pytest.approx(3000.0 - 1680.0)
    _books_balance(battery)


def test_faults_cut_windows_and_are_logged():
    windows = pd.DataFrame({"sat_index": [0, 0, 1], "station": ["a", "b", "a"],
                            "start_s": [0.0, 500.0, 100.0], "end_s": [400.0, 900.0, 300.0]})
    spec = FaultSpec(failures=(Failure("s0", 600.0),),
                     station_outages=(StationOutage("a", 150.0, 200.0),))
    plan = apply_faults(windows, ["s0", "s1"], spec, 1000.0, np.random.default_rng(0))
    pieces = sorted(zip(plan.windows.sat_index, plan.windows.start_s, plan.windows.end_s))
    assert pieces == [(0, 0.0, 150.0), (0, 200.0, 400.0), (0, 500.0, 600.0),
                      (1, 100.0, 150.0), (1, 200.0, 300.0)]
    assert {e["kind"] for e in plan.events} == {"satellite_failure", "station_outage"}
    assert FaultSpec(bit_error_rate=1e-6, packet_bytes=1000).packet_error_rate == \
        pytest.approx(1 - (1 - 1e-6) ** 8000)


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("faulty")
    scenario = {**TINY, "name": "faulty",
                "network": {"transfer_policy": "restart", "antenna_policy": "elevation"},
                "faults": {"failures": [{"satellite": "FLOCK 4X-2", "at": "3h"}],
                           "reboot_rate_per_day": 4, "reboot_duration": "20min",
                           "station_outages": [{"station": "svalsat", "start": "1h",
                                                "end": "2h"}],
                           "link_drop_probability": 0.2, "bit_error_rate": 2e-6}}
    scenario["links"] = {"downlink": {"rate_mbps": 0.5}, "uplink": {"rate_mbps": 0.02}}
    path = base / "faulty.yaml"
    path.write_text(yaml.safe_dump(scenario))
    assert main(["run", str(path), "--out", str(base / "run")]) == 0
    return base / "run"


def test_byte_conservation_in_a_faulty_scenario(faulty_run):
    transfers = pd.read_parquet(faulty_run / "transfers.parquet")
    manifest = json.loads((faulty_run / "manifest.json").read_text())
    air = transfers.air_bytes.sum()
    assert air == pytest.approx(transfers.delivered_bytes.sum() + transfers.lost_bytes.sum()
                                + transfers.in_flight_bytes.sum())
    assert air == pytest.approx(manifest["summary"]["air_bytes"])  # the engine's own counter
    assert transfers.retransmitted_bytes.sum() > 0  # bit errors and restarts did happen


def test_failed_satellite_is_silent_after_its_failure(faulty_run):
    transfers = pd.read_parquet(faulty_run / "transfers.parquet")
    failed = transfers[(transfers.src == "FLOCK 4X-2") | (transfers.dst == "FLOCK 4X-2")]
    events = pd.read_parquet(faulty_run / "events.parquet")
    after = events[(events.node == "FLOCK 4X-2") & (events.t_s > 3 * 3600)]
    assert not after.kind.str.startswith(("transfer", "training")).any()
    for record in failed.itertuples():
        assert record.end_s is None or np.isnan(record.end_s) or record.end_s <= 3 * 3600
    kinds = set(events.kind)
    assert {"satellite_failure", "station_outage", "satellite_reboot", "pass_dropped",
            "contact_start", "transfer_end", "training_start"} <= kinds
