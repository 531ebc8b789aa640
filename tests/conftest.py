"""Shared fixtures. Tests use the element sets shipped in ``tle/`` (never ``../shared``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TLE_DIR = REPO / "tle"
SCENARIOS = REPO / "scenarios"


@pytest.fixture(scope="session")
def planet_tle() -> Path:
    return TLE_DIR / "planet_2024-07-16.tle"
