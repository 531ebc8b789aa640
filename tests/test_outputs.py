"""Output locations, names used as paths, run-directory locking and atomic writes: every
mistake a user can make here is one line and exit 2, found before any simulation."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from orbitfl.engine.runner import default_run_dir
from orbitfl.rundir.writer import safe_path_component, write_json, write_table

HOSTILE_NAMES = ["../../escape", "a/b/c", "/etc/passwd", "nul\0byte", "x" * 5000, "..", ".",
                 "", "$\\alpha$ and $", "back\\slash", " spaced out ", "-rf", "名前"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_path_component_stays_one_folder_level(tmp_path, name):
    part = safe_path_component(name)
    assert part and len(part) <= 100
    assert "/" not in part and "\\" not in part and "\0" not in part and "$" not in part
    assert not part.startswith((".", "-"))
    (tmp_path / part).mkdir()  # a legal name on this file system
    assert (tmp_path / part).resolve().parent == tmp_path.resolve()


def test_safe_path_component_keeps_plain_names_and_tells_long_ones_apart():
    assert safe_path_component("flock-safe_v2.1") == "flock-safe_v2.1"
    a, b = safe_path_component("x" * 5000 + "a"), safe_path_component("x" * 5000 + "b")
    assert a != b


@pytest.mark.parametrize("name", ["../../escape", "/abs", "x" * 5000])
def test_default_run_dir_stays_under_runs(name):
    target = default_run_dir(SimpleNamespace(name=name))
    assert target.parent == Path("runs") and len(target.name) < 140


def _renames(monkeypatch) -> list[Path]:
    """Record every ``os.replace`` target: a file that appears by rename was never seen
    half written."""
    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(b)), replace(a, b)))
    return renamed


def test_run_directory_writers_are_atomic(tmp_path, monkeypatch):
    renamed = _renames(monkeypatch)
    write_json(tmp_path / "manifest.json", {"status": "complete"})
    write_table(tmp_path / "partition.parquet", pd.DataFrame({"satellite": ["a", "b"]}))
    assert renamed == [tmp_path / "manifest.json", tmp_path / "partition.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "partition.parquet"]


def test_failed_table_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "partition.parquet"  # a declared table (orbitfl/rundir/columns.py)
    write_table(path, pd.DataFrame({"satellite": ["a"]}))

    def half_then_fail(self, target, **kwargs):
        Path(target).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_fail)
    with pytest.raises(OSError):
        write_table(path, pd.DataFrame({"satellite": ["a", "b"]}))
    monkeypatch.undo()
    assert list(pd.read_parquet(path)["satellite"]) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["partition.parquet"]


SCENARIO = {
    "name": "outputs", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "6h",
    "constellation": {"tle": str(Path(__file__).resolve().parents[1] / "tle"
                                 / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 2}},
    "ground_stations": {"sites": ["svalsat"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": 3, "image_size": 16,
             "samples_per_class_max": 40, "test_per_class": 10, "partition": "iid"},
    "fl": {"strategy": "fedavg", "rounds": 1, "schedule": {"deadline": "3h", "min_clients": 1}},
}


class Simulated(Exception):
    """Raised where the expensive work would start: reaching it means no check fired."""


@pytest.fixture
def scenario(tmp_path, monkeypatch) -> Path:
    import yaml

    import orbitfl.commands.contacts_report
    import orbitfl.engine.assemble

    def expensive(*args, **kwargs):
        raise Simulated

    monkeypatch.setattr(orbitfl.engine.assemble, "build_world", expensive)
    monkeypatch.setattr(orbitfl.commands.contacts_report, "build_world", expensive)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def _bad_outputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "file-link.png").symlink_to(tmp_path / "a-file")
    return {"file": tmp_path / "a-file", "device": Path("/dev/null"),
            "symlink": tmp_path / "link", "under-a-file": tmp_path / "a-file" / "x",
            "file-symlink": tmp_path / "file-link.png"}


def _one_line_error(capsys, path: Path) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {path}"), err
    return err


@pytest.mark.parametrize("case", ["file", "device", "symlink", "under-a-file"])
def test_run_out_is_checked_before_simulating(tmp_path, scenario, capsys, case):
    from orbitfl.cli import main

    out = _bad_outputs(tmp_path)[case]
    assert main(["run", str(scenario), "--out", str(out)]) == 2
    _one_line_error(capsys, out)
    assert (tmp_path / "a-file").read_text() == "not a folder"


@pytest.mark.parametrize("option, case", [
    ("--out", "device"), ("--out", "under-a-file"), ("--gantt", "device"),
    ("--gantt", "file-symlink"), ("--ground-track", "symlink"),
    ("--ground-track", "under-a-file")])
def test_contacts_outputs_are_checked_before_computing(tmp_path, scenario, capsys, option,
                                                       case):
    from orbitfl.cli import main

    out = _bad_outputs(tmp_path)[case]
    if option == "--out" and case == "device":
        out = tmp_path / "plan.csv"
        out.mkdir()  # a folder where the table should go
    elif option == "--out":
        out = out.with_name(out.name + ".csv")  # a table name, in a bad place
    table = out if option == "--out" else tmp_path / "plan.parquet"
    extra = [] if option == "--out" else [option, str(out)]
    assert main(["contacts", str(scenario), "--out", str(table), *extra]) == 2
    _one_line_error(capsys, out)


@pytest.mark.parametrize("case", ["file", "device", "symlink", "under-a-file", "not-empty",
                                  "unwritable"])
def test_contacts_report_folder_is_checked_before_computing(tmp_path, scenario, capsys, case):
    from orbitfl.cli import main

    if case == "unwritable" and os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    bad = _bad_outputs(tmp_path)
    (tmp_path / "real" / "notes.txt").write_text("someone's notes")
    (tmp_path / "locked").mkdir(mode=0o500)
    out = {"not-empty": tmp_path / "real", "unwritable": tmp_path / "locked" / "report",
           **bad}[case]
    assert main(["contacts", str(scenario), "--report", str(out)]) == 2
    err = _one_line_error(capsys, out)
    assert {"not-empty": "not empty and holds no earlier contact report",
            "unwritable": "not writable"}.get(case, "contact report folder") in err
    assert (tmp_path / "real" / "notes.txt").read_text() == "someone's notes"


def test_contacts_needs_a_table_or_a_report(scenario, capsys):
    from orbitfl.cli import main

    assert main(["contacts", str(scenario)]) == 2
    assert capsys.readouterr().err == "error: orbitfl contacts: give --out TABLE, --report " \
                                      "DIR, or both\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_out_is_one_line(tmp_path, scenario, capsys):
    from orbitfl.cli import main

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["run", str(scenario), "--out", str(locked / "run")]) == 2
    assert "not writable" in _one_line_error(capsys, locked / "run")


@pytest.mark.parametrize("case", ["file", "device", "symlink", "under-a-file"])
def test_report_out_is_checked(tmp_path, capsys, case):
    from orbitfl.cli import main

    out = _bad_outputs(tmp_path)[case]
    assert main(["report", str(tmp_path / "real"), "--out", str(out)]) == 2
    _one_line_error(capsys, out)
