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


def interrupt_and_resume(scenario, out: Path, monkeypatch, after_round: int) -> None:
    """Run ``scenario`` into ``out``, stop it as Ctrl-C would right after round
    ``after_round``'s checkpoint is saved, then resume it to the end."""
    from orbitfl.engine import runner

    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        if checkpoint["round"] == after_round:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run(scenario, out)
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    runner.run(scenario, out, resume=True)
