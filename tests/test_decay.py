"""A satellite that decays during the run leaves the fleet at the decay: an event, no
windows afterwards, and the mission's failure mechanism (``faults.failed_at``)."""

import numpy as np
import pytest
import yaml

from orbitfl.constellation.tle import parse_tle_text, tle_checksum
from orbitfl.engine.prepare import prepare
from orbitfl.engine.world import build_world

TERRA = ("TERRA\n1 25994U 99068A   24198.14820428  .00000807  00000+0  17813-3 0  9991\n"
         "2 25994  98.0467 260.7842 0000577 270.3016 142.2938 14.59863277307395\n")
# LANDSAT 7's record lowered to 16.3 rev/day (~190 km) with a huge drag term: SGP4
# reports it decayed (error 6) about 17 h after its epoch.
DECAYING = ("1 25682U 99020A   24198.19873101  .00000896  00000+0  10000-1 0  999",
            "2 25682  97.8864 223.6168 0001203  97.1798 337.4866 16.30000000343434")


def _checked(line: str) -> str:
    return line[:68] + str(tle_checksum(line))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decay")
    (folder / "fleet.tle").write_text(
        "DECAYING\n" + "\n".join(_checked(line) for line in DECAYING) + "\n" + TERRA)
    (folder / "s.yaml").write_text(yaml.safe_dump({
        "name": "decay", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "1d",
        "constellation": {"tle": "fleet.tle"},
        "ground_stations": {"sites": ["svalsat", "kiruna"]},
        "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 1}},
        "contacts": {"cache": False},
        "fl": {"rounds": 1, "schedule": {"deadline": "1h", "min_clients": 1}},
    }))
    return build_world(prepare(folder / "s.yaml"))


def _first_sgp4_failure_s() -> float:
    """Independent reference: a 0.1 s scan of SGP4 itself from the scenario epoch."""
    sat = parse_tle_text("X\n" + "\n".join(_checked(line) for line in DECAYING), "x")[0].satrec()
    epoch_offset_s = (6 / 24 - (198.19873101 - 198)) * 86400.0  # scenario epoch - TLE epoch
    t = np.arange(0.0, 86400.0, 0.1)
    minutes = (t + epoch_offset_s) / 60.0
    errors = np.array([sat.sgp4_tsince(m)[0] for m in minutes[::10]])  # 1 s first
    first = np.flatnonzero(errors)[0] * 10
    fine = np.array([sat.sgp4_tsince(m)[0] for m in minutes[first - 10:first + 1]])
    return float(t[first - 10 + np.flatnonzero(fine)[0]])


def test_decay_is_an_event_and_a_failure_at_the_first_sgp4_error(world):
    """Defect: NaN positions became zeros: the satellite stayed in the fleet, 'permanently
    eclipsed with no windows', and the mission kept scheduling it."""
    decayed = [e for e in world.events.frame().to_dict("records") if e["kind"] == "decayed"]
    assert [e["node"] for e in decayed] == ["DECAYING"]
    reference = _first_sgp4_failure_s()
    assert 15 * 3600 < reference < 20 * 3600
    assert abs(decayed[0]["t_s"] - reference) <= 0.1
    assert world.faults.failed_at == {"DECAYING": decayed[0]["t_s"]}


def test_no_window_of_a_decayed_satellite_outlives_it(world):
    t_decay = world.faults.failed_at["DECAYING"]
    mine = world.plan.windows[world.plan.windows["satellite"] == "DECAYING"]
    assert len(mine) > 0 and (mine["end_s"] <= t_decay).all()
    assert (world.contacts_table().query("satellite == 'DECAYING'")["end_s"] <= t_decay).all()
    terra = world.plan.windows[world.plan.windows["satellite"] == "TERRA"]
    assert terra["end_s"].max() > 20 * 3600  # the other satellite is untouched
    assert np.isfinite(world.down.capacity_bytes()).all()
