"""Per-pass link use (``run_data.pass_utilisation``) on hand-made tables: a case worked out by
hand, and seeded random tables against a plain reference (every transfer scans every
window, the definition read literally), so that the indexed matching stays exact. Also
what the report does for speed at scale: derived tables worked out once, and the garbage
collector's freeze of older objects undone after drawing."""

import gc
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orbitfl.analysis import run_data
from orbitfl.analysis.run_model import Run
from orbitfl.core.gc_freeze import older_objects_frozen


def _run(contacts: pd.DataFrame, transfers: pd.DataFrame) -> Run:
    return Run(Path("hand"), {}, name="hand", tables={
        "rounds": pd.DataFrame(), "transfers": transfers, "contacts": contacts})


def _contacts(rows) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["satellite", "station", "start_s", "end_s",
                                        "downlink_bytes", "uplink_bytes"])
    return table.assign(duration_s=table["end_s"] - table["start_s"])


def _transfers(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["src", "dst", "start_s", "end_s", "via",
                                       "bytes_per_pass"]).assign(
        kind="weights", bytes=0, status="delivered")


HAND_CONTACTS = _contacts([
    ("s1", "A", 100.0, 200.0, 1000.0, 100.0),   # 0
    ("s1", "B", 150.0, 250.0, 1000.0, 40.0),    # 1
    ("s1", "A", 400.0, 500.0, 200.0, 100.0),    # 2
    ("s1", "A", 50.0, 90.0, 1000.0, 100.0),     # 3: over before any transfer starts
    ("s2", "A", 100.0, 200.0, 0.0, 100.0),      # 4: no downlink capacity
])
HAND_TRANSFERS = _transfers([
    ("s1", "ground", 120.0, 450.0, ["A", "A"], [300.0, 200.0]),  # passes 0 then 2
    ("ground", "s1", 160.0, math.nan, ["B"], [50.0]),            # in flight: pass 1
    ("s1", "ground", 160.0, 420.0, ["B", "A"], [10.0, 20.0]),    # 1, then A after 150: 2
    ("s1", "s2", 100.0, 200.0, ["A"], [1e6]),                    # not a ground hop
    ("s2", "ground", 110.0, 300.0, ["C"], [9.0]),                # no pass with C
    ("s2", "ground", 110.0, 300.0, ["A", "A"], [5.0, 7.0]),      # 4, no later A pass
    ("s1", "ground", 100.0, 200.0, ["A"], None),                 # nothing recorded
    ("ground", "s3", 0.0, 1e9, ["A"], [1.0]),                    # satellite without passes
])


def test_pass_utilisation_by_hand():
    table = run_data.pass_utilisation(_run(HAND_CONTACTS, HAND_TRANSFERS))
    assert list(table.columns) == ["satellite", "station", "start_s", "direction",
                                   "capacity", "moved", "time_share"]
    assert list(table["direction"]) == ["down"] * 5 + ["up"] * 5
    assert list(table["start_s"]) == list(HAND_CONTACTS["start_s"]) * 2
    assert list(table["moved"]) == [300.0, 10.0, 220.0, 0.0, 5.0, 0.0, 50.0, 0.0, 0.0, 0.0]
    share = table["time_share"].to_numpy()
    assert share[:4] == pytest.approx([0.3, 0.01, 1.0, 0.0])  # 220 B over 200: clipped
    assert math.isnan(share[4])  # no capacity: no share
    assert share[5:] == pytest.approx([0.0, 1.0, 0.0, 0.0, 0.0])  # 50 B over 40: clipped


def _reference_moved(contacts: pd.DataFrame, transfers: pd.DataFrame) -> dict[str, list]:
    """The definition read literally: for each ground transfer, its satellite's windows
    that overlap it in start order; each hop takes the first one with its station that
    begins after the previous hop's window."""
    windows = contacts.to_dict("records")
    moved = {"down": [0.0] * len(windows), "up": [0.0] * len(windows)}
    for t in transfers.to_dict("records"):
        if "ground" not in (t["src"], t["dst"]) or t["bytes_per_pass"] is None:
            continue
        up = t["src"] == "ground"
        satellite = t["dst"] if up else t["src"]
        end = math.inf if math.isnan(t["end_s"]) else t["end_s"]
        overlapping = sorted((w["start_s"], i) for i, w in enumerate(windows)
                             if w["satellite"] == satellite and w["end_s"] > t["start_s"]
                             and w["start_s"] < end)
        after = -math.inf
        for station, nbytes in zip(t["via"], t["bytes_per_pass"]):
            for start, i in overlapping:
                if windows[i]["station"] == station and start > after:
                    moved["up" if up else "down"][i] += float(nbytes)
                    after = start
                    break
    return moved


def _random_tables(rng: random.Random) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Windows that may overlap (also with their own station) and share start times;
    transfers of one to four hops, some still in flight, a few between satellites."""
    satellites, stations = ["s0", "s1", "s2"], ["A", "B", "C"]
    rows = []
    for _ in range(rng.randint(0, 30)):
        start = float(rng.choice([rng.randint(0, 100) * 10, 200, 500]))
        rows.append((rng.choice(satellites), rng.choice(stations), start,
                     start + rng.choice([5.0, 30.0, 80.0, 300.0]), rng.choice([0.0, 400.0]),
                     100.0))
    transfers = []
    for _ in range(rng.randint(0, 25)):
        satellite = rng.choice(satellites + ["s9"])
        start = float(rng.randint(0, 1000))
        hops = rng.randint(1, 4)
        pair = rng.choice([("ground", satellite), (satellite, "ground"),
                           (satellite, "s1")])
        transfers.append((*pair, start, rng.choice([math.nan, start + rng.randint(1, 600)]),
                          [rng.choice(stations) for _ in range(hops)],
                          [float(rng.randint(1, 300)) for _ in range(hops)]))
    return _contacts(rows), _transfers(transfers)


@pytest.mark.parametrize("seed", range(40))
def test_pass_utilisation_matches_the_plain_reference(seed):
    contacts, transfers = _random_tables(random.Random(seed))
    table = run_data.pass_utilisation(_run(contacts, transfers))
    if not len(contacts):
        assert table.empty
        return
    truth = _reference_moved(contacts, transfers)
    n = len(contacts)
    assert table["moved"].tolist() == truth["down"] + truth["up"]  # same sums, same order
    assert table["satellite"].tolist() == contacts["satellite"].tolist() * 2
    assert table["direction"].tolist() == ["down"] * n + ["up"] * n
    capacity = np.concatenate([contacts["downlink_bytes"], contacts["uplink_bytes"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(capacity > 0, np.minimum(table["moved"] / capacity, 1.0), np.nan)
    np.testing.assert_array_equal(table["time_share"].to_numpy(), share)


def test_pass_utilisation_is_worked_out_once_per_tables():
    run = _run(HAND_CONTACTS, HAND_TRANSFERS)
    first = run_data.pass_utilisation(run)
    assert run_data.pass_utilisation(run) is first  # static figure and dashboard share it
    run.transfers = HAND_TRANSFERS.iloc[:1]  # other tables: worked out again
    again = run_data.pass_utilisation(run)
    assert again is not first and again["moved"].sum() == 500.0


def test_older_objects_are_frozen_only_meanwhile():
    """What the mission and the report's drawing do (orbitfl/core/gc_freeze.py)."""
    assert gc.get_freeze_count() == 0
    with older_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze is left as it was
    try:
        frozen = gc.get_freeze_count()
        with older_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
