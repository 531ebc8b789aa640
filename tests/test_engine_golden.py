"""The mission engine's timeline, pinned: a tiny Walker run with a battery that runs flat,
reboots, dropped passes, bit errors and random client selection must write the same tables
as the engine did when they were recorded (issue 24: refactoring the seams between
assembly, world, network, onboard and mission changes no result).

The recorded tables are the ones the simulated timeline decides (transfers, client jobs,
power, events, contacts, partition, and the rounds without their accuracy columns, which
depend on torch's arithmetic on the machine, not on the engine). After a deliberate change
of behaviour, record them again with ``.venv/bin/python tests/test_engine_golden.py`` and
say why in the commit.
"""

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import orbitfl.engine.runner as runner

GOLDEN = Path(__file__).parent / "data" / "engine-golden"
SCENARIO = {
    "name": "engine-golden", "seed": 5, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"walker": {"planes": 2, "per_plane": 2, "phasing": 1,
                                 "altitude_km": 550, "inclination_deg": 97.6}},
    "ground_stations": {"sites": ["svalsat", "kiruna", "trollsat"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "onboard": {"compute": "jetson-nano",
                "power": {"battery_wh": 0.3, "solar_w": 8, "idle_w": 5, "transmit_w": 20,
                          "initial_soc": 0.3}},
    "faults": {"reboot_rate_per_day": 2, "link_drop_probability": 0.2,
               "bit_error_rate": 1.0e-7},
    "data": {"dataset": "synthetic", "classes": 4, "image_size": 16,
             "samples_per_class_max": 60, "imbalance_ratio": 2, "test_per_class": 5,
             "partition": "iid"},
    "fl": {"strategy": "fedavg", "rounds": 3, "local_epochs": 2,
           "schedule": {"deadline": "3h", "min_clients": 2, "selection": "random-k",
                        "clients_per_round": 3}},
    "report": {"figures": False},
}
TABLES = ("transfers", "clients", "power", "events", "contacts", "partition", "rounds")


def _timeline(run_dir: Path, table: str) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / f"{table}.parquet")
    learned = [c for c in frame.columns if c.endswith(("accuracy", "miou"))]
    return frame.drop(columns=learned)


def _run(tmp: Path) -> Path:
    scenario = tmp / "engine-golden.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    runner.run(scenario, tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("golden"))


def test_the_recorded_run_exercises_the_battery_and_the_faults(run_dir):
    """Otherwise the comparison below would pin little of the engine."""
    kinds = set(pd.read_parquet(run_dir / "events.parquet")["kind"])
    assert {"battery_floor_down", "battery_brownout_start", "training_wait_battery",
            "satellite_reboot", "pass_dropped", "training_end"} <= kinds


@pytest.mark.parametrize("table", TABLES)
def test_the_timeline_is_the_recorded_one(run_dir, table):
    recorded = pd.read_parquet(GOLDEN / f"{table}.parquet")
    now = _timeline(run_dir, table)
    # every decision (order, counts, kinds, clients) exactly; a float to 1e-12 of itself:
    # a pass's peak elevation differs by 1 ulp (7e-15 degrees) between numpy releases,
    # while any change of behaviour moves it by far more
    pd.testing.assert_frame_equal(now, recorded, check_exact=False, rtol=1e-12, atol=0.0)


if __name__ == "__main__":  # record the tables again (a deliberate change of behaviour)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        made = _run(Path(tmp))
        for name in TABLES:
            _timeline(made, name).to_parquet(GOLDEN / f"{name}.parquet")
    sys.exit(0)
