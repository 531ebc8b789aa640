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


def pytest_configure(config) -> None:
    """Keep the contact-plan cache of the test session away from the user's cache."""
    import os
    import tempfile

    os.environ.setdefault("ORBITFL_CACHE_DIR", tempfile.mkdtemp(prefix="orbitfl-test-cache-"))
