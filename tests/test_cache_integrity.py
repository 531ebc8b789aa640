"""The shared cache is read back only when it can be trusted (issue 22): an entry with
flipped bytes, an empty or truncated file, or content of the wrong shape is rebuilt, with
one warning line, and what comes back equals a cold computation; never used silently."""

import io
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.plan_cache import cached_contacts
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.stations import from_catalog
from orbitfl.constellation.tle import select
from orbitfl.core.cache_dir import read_entry, write_entry
from orbitfl.fl.federation import cached_render

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
HORIZON_S = 6 * 3600


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x5A  # inside the payload, past the header
    path.write_bytes(bytes(data))


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _only_entry(folder: Path) -> Path:
    entries = list(folder.glob("*.cache"))
    assert len(entries) == 1, entries
    return entries[0]


@pytest.fixture(scope="module")
def plan_inputs():
    fleet = select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4X*",
                   limit=2)
    return Propagator(fleet, Clock(EPOCH)), [from_catalog("svalsat"), from_catalog("kiruna")]


@pytest.fixture(scope="module")
def cold_plan(plan_inputs, tmp_path_factory) -> pd.DataFrame:
    propagator, stations = plan_inputs
    plan, cached = cached_contacts(propagator, stations, HORIZON_S,
                                   cache_dir=tmp_path_factory.mktemp("nocache"))
    assert not cached and len(plan.windows) > 2
    return plan.windows


PLAN_DAMAGE = {
    "flipped-bytes": lambda path, windows: _flip(path),
    "empty": lambda path, windows: path.write_bytes(b""),
    "truncated": lambda path, windows: path.write_bytes(path.read_bytes()[:200]),
    # a checksum that matches, over content that is not this plan
    "wrong-columns": lambda path, windows: write_entry(
        path, _parquet(windows.drop(columns="max_elevation_s"))),
    "other-satellites": lambda path, windows: write_entry(
        path, _parquet(windows.assign(sat_index=windows["sat_index"] + 5))),
    "times-outside-the-horizon": lambda path, windows: write_entry(
        path, _parquet(windows.assign(end_s=windows["end_s"] + 1e6))),
    "not-parquet": lambda path, windows: write_entry(path, b"PAR1 holiday photos"),
}


@pytest.mark.parametrize("case", PLAN_DAMAGE)
def test_a_damaged_contact_plan_entry_is_rebuilt_with_one_warning(plan_inputs, cold_plan,
                                                                  tmp_path, caplog, case):
    propagator, stations = plan_inputs
    first, cached = cached_contacts(propagator, stations, HORIZON_S, cache_dir=tmp_path)
    entry = _only_entry(tmp_path / "contacts")
    assert not cached
    PLAN_DAMAGE[case](entry, cold_plan)
    with caplog.at_level(logging.WARNING, logger="orbitfl"):
        again, cached = cached_contacts(propagator, stations, HORIZON_S, cache_dir=tmp_path)
    assert not cached
    pd.testing.assert_frame_equal(again.windows, cold_plan)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"cache entry {entry} is damaged" in warnings[0]
    assert "\n" not in warnings[0] and warnings[0].endswith("rebuilding it")
    third, cached = cached_contacts(propagator, stations, HORIZON_S, cache_dir=tmp_path)
    assert cached  # the rebuilt entry is good again
    pd.testing.assert_frame_equal(third.windows, cold_plan)


def test_an_intact_plan_entry_is_used_without_a_warning(plan_inputs, cold_plan, tmp_path,
                                                        caplog):
    propagator, stations = plan_inputs
    cached_contacts(propagator, stations, HORIZON_S, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="orbitfl"):
        plan, cached = cached_contacts(propagator, stations, HORIZON_S, cache_dir=tmp_path)
    assert cached and not caplog.records
    pd.testing.assert_frame_equal(plan.windows, cold_plan)


LABELS, SUN = np.arange(6) % 4, np.full(6, 45.0)
TILE_DAMAGE = {
    "flipped-bytes": lambda path: _flip(path),
    "empty": lambda path: path.write_bytes(b""),
    "wrong-shape": lambda path: write_entry(path, _npy(np.zeros((6, 3, 8, 8), np.float32))),
    "wrong-dtype": lambda path: write_entry(path, _npy(np.zeros((6, 3, 16, 16)))),
    "nan-tiles": lambda path: write_entry(
        path, _npy(np.full((6, 3, 16, 16), np.nan, np.float32))),
}


@pytest.mark.parametrize("case", TILE_DAMAGE)
def test_a_damaged_tile_entry_is_rebuilt_with_one_warning(tmp_path, caplog, case):
    cold = cached_render(LABELS, SUN, 16, ("t",), None)  # no cache: rendered
    cached_render(LABELS, SUN, 16, ("t",), tmp_path)
    entry = _only_entry(tmp_path / "tiles")
    TILE_DAMAGE[case](entry)
    with caplog.at_level(logging.WARNING, logger="orbitfl"):
        again = cached_render(LABELS, SUN, 16, ("t",), tmp_path)
    assert np.array_equal(again, cold)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"cache entry {entry} is damaged" in warnings[0]
    assert read_entry(entry, lambda b: np.load(io.BytesIO(b))) is not None  # rewritten


def test_entries_round_trip_and_any_flipped_bit_is_caught(tmp_path):
    """Every single-bit flip of a small entry, header included, is refused."""
    path = tmp_path / "e.cache"
    write_entry(path, b"twelve bytes")
    assert read_entry(path, bytes) == b"twelve bytes"
    good = path.read_bytes()
    for i in range(len(good)):
        for bit in range(8):
            damaged = bytearray(good)
            damaged[i] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            assert read_entry(path, bytes) is None, (i, bit)
            assert not path.exists()  # removed, to be rebuilt
