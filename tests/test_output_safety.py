"""Where orbitfl writes (issue 22, the smaller cases): a run directory whose name is not
UTF-8 is refused before any work; a full disk is one line with the resume command and the
checkpoint survives; a link at the staging path is one line; ``orbitfl init --force``
never writes through a symbolic link out of its folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import yaml
from test_end_to_end import TINY as END_TO_END_TINY

import orbitfl.engine.assemble as assemble
import orbitfl.engine.runner as runner
from orbitfl.cli import main

# the end-to-end tests' tiny FedAvg mission, without figures: what matters here is where
# its files go, not what it learns
TINY = {**END_TO_END_TINY, "report": {"figures": False}}


@pytest.fixture
def scenario(tmp_path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_run_directory_name_that_is_not_utf8_is_refused_before_work(scenario, capsys,
                                                                      monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the run began")

    monkeypatch.setattr(assemble, "build_world", never)
    out = os.fsdecode(os.fsencode(str(scenario.parent)) + b"/run-\xff")
    assert main(["run", str(scenario), "--out", out]) == 2
    assert "name is not UTF-8 text" in one_line(capsys)
    assert main(["sweep", str(scenario), "--out", out]) == 2
    assert "name is not UTF-8 text" in one_line(capsys)


def test_a_full_disk_is_one_line_and_the_checkpoint_survives(scenario, capsys, monkeypatch):
    def full(path, frame):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(runner, "write_table", full)
    out = scenario.parent / "run"
    assert main(["run", str(scenario), "--out", str(out), "-q"]) == 1
    err = one_line(capsys)
    assert err.startswith(f"error: {scenario.parent / '.run.partial' / 'contacts.parquet'}: "
                          "No space left on device; continue with: orbitfl run "), err
    assert err.endswith(f"--resume {out}"), err
    assert (scenario.parent / ".run.partial" / "checkpoint.pt").is_file()


def test_a_link_at_the_staging_path_is_one_line(scenario, capsys, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".run.partial").symlink_to(tmp_path / "elsewhere")
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 2
    assert "staging folder is a symbolic link" in one_line(capsys)
    assert not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("link", ["scenarios", "scenarios/sweeps", "tle"])
def test_init_force_never_writes_through_a_linked_subfolder(tmp_path, capsys, link):
    folder, outside = tmp_path / "missions", tmp_path / "outside"
    outside.mkdir()
    (folder / link).parent.mkdir(parents=True, exist_ok=True)
    (folder / link).symlink_to(outside, target_is_directory=True)
    assert main(["init", str(folder), "--force"]) == 2
    assert f"{folder / link}: is a symbolic link" in one_line(capsys)
    assert not any(outside.iterdir())
