"""A tiny scenario through the whole system: orbits, contacts, network, FedAvg, run dir."""

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import yaml

from orbitfl.cli import main
from orbitfl.constellation.network import GROUND

from conftest import TLE_DIR

TINY = {
    "name": "tiny",
    "seed": 3,
    "epoch": "2024-07-16T06:00:00Z",
    "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 3}},
    "ground_stations": {"sites": ["svalsat", "kiruna"], "min_elevation_deg": 10},
    "links": {"downlink": {"rate_mbps": 0.5}, "uplink": {"rate_mbps": 0.25}},
    "onboard": {"compute": "jetson-nano"},
    "data": {"dataset": "synthetic", "classes": 4, "image_size": 16,
             "samples_per_class_max": 120, "imbalance_ratio": 4, "test_per_class": 50,
             "partition": "dirichlet", "dirichlet_alpha": 1.0},
    "fl": {"strategy": "fedavg", "rounds": 3, "local_epochs": 2,
           "schedule": {"deadline": "3h", "min_clients": 2}},
}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tiny")
    scenario = base / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    runs = base / "run-a", base / "run-b"
    for run_dir in runs:
        assert main(["run", str(scenario), "--out", str(run_dir)]) == 0
    return runs


def test_run_directory_is_complete(tiny_runs):
    run_dir = tiny_runs[0]
    for name in ("manifest.json", "contacts.parquet", "transfers.parquet", "rounds.parquet",
                 "clients.parquet", "figures/accuracy_vs_bytes.png"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 3
    assert len(manifest["scenario_sha256"]) == 64 and manifest["packages"]["torch"]
    assert not list(run_dir.parent.glob(".run-a.partial-*"))


def test_federated_learning_beats_chance(tiny_runs):
    rounds = pd.read_parquet(tiny_runs[0] / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1, 2, 3]
    assert rounds["accuracy"].iloc[-1] > 2 * (1 / 4)
    assert rounds["accuracy"].iloc[-1] > rounds["accuracy"].iloc[0]
    assert (np.diff(rounds["sim_time_s"]) > 0).all()


def test_bytes_cross_only_inside_contact_windows(tiny_runs):
    contacts = pd.read_parquet(tiny_runs[0] / "contacts.parquet")
    transfers = pd.read_parquet(tiny_runs[0] / "transfers.parquet")
    delivered = transfers[transfers.status == "delivered"]
    assert len(delivered) >= 12
    for _, t in delivered.iterrows():
        satellite = t.dst if t.src == GROUND else t.src
        w = contacts[contacts.satellite == satellite]
        for instant in (t.start_s, t.end_s):
            assert ((w.start_s <= instant + 1e-9) & (instant <= w.end_s + 1e-9)).any()
        assert sum(t.bytes_per_pass) == pytest.approx(t.bytes)


def test_each_pass_names_an_antenna_of_its_station(tiny_runs):
    """SvalSat's 100 and Kiruna's 2 published antennas (no count in the scenario); fixed
    rates have no band."""
    stations = pd.read_parquet(tiny_runs[0] / "stations.parquet").set_index("id")
    assert stations["antennas"].to_dict() == {"svalsat": 100, "kiruna": 2}
    assert stations["bands"].to_dict() == {"svalsat": "S/X/Ka", "kiruna": "S/X"}
    transfers = pd.read_parquet(tiny_runs[0] / "transfers.parquet")
    for _, t in transfers.iterrows():
        assert len(t.antenna_per_pass) == len(t.via) == len(t.band_per_pass)
        for station, antenna in zip(t.via, t.antenna_per_pass):
            assert 0 <= antenna < stations.loc[station, "antennas"]
        assert set(t.band_per_pass) <= {""}


def test_round_byte_totals_match_the_transfer_log(tiny_runs):
    rounds = pd.read_parquet(tiny_runs[0] / "rounds.parquet")
    transfers = pd.read_parquet(tiny_runs[0] / "transfers.parquet")
    last = rounds.iloc[-1]
    done = transfers[(transfers.status == "delivered") & (transfers.end_s <= last.sim_time_s)]
    assert last.bytes_up == done[done.src == GROUND].bytes.sum()
    assert last.bytes_down == done[done.dst == GROUND].bytes.sum()


def test_same_seed_same_numbers(tiny_runs):
    a, b = (pd.read_parquet(r / "rounds.parquet") for r in tiny_runs)
    pd.testing.assert_frame_equal(a, b)
    ta, tb = (pd.read_parquet(r / "transfers.parquet") for r in tiny_runs)
    pd.testing.assert_frame_equal(ta, tb)


def test_existing_run_directory_is_refused(tiny_runs, capsys):
    assert main(["run", str(tiny_runs[0].parent / "tiny.yaml"), "--out", str(tiny_runs[0])]) == 2
    assert "already exists" in capsys.readouterr().err


def test_failed_run_leaves_nothing_behind(tmp_path, monkeypatch):
    import orbitfl.engine.assemble as assemble
    import orbitfl.engine.runner as runner

    def explode(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(assemble, "build_world", explode)
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    with pytest.raises(RuntimeError):
        runner.run(scenario, tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_run_opens_no_network_connection(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("orbitfl tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump({**TINY, "contacts": {"cache": False}}))
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 0


def _copy_run(run_dir: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run_dir, to)
    return to


def _damage(run_dir: Path, case: str) -> Path:
    """A run directory spoilt the way a user's disk, tools or typing spoil one."""
    if case == "no-manifest":
        (run_dir / "manifest.json").unlink()
    elif case == "manifest-not-json":
        (run_dir / "manifest.json").write_text("{'status': complete")
    elif case == "manifest-not-a-mapping":
        (run_dir / "manifest.json").write_text("[1, 2, 3]\n")
    elif case == "manifest-without-summary":
        (run_dir / "manifest.json").write_text('{"status": "complete"}\n')
    elif case == "garbage-parquet":
        (run_dir / "rounds.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)
    elif case == "foreign-parquet":
        pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(run_dir / "contacts.parquet")
    elif case == "garbage-optional-table":
        (run_dir / "power.parquet").write_text("not parquet")
    elif case == "something-else":
        for child in run_dir.iterdir():
            child.unlink() if child.is_file() else None
        (run_dir / "notes.txt").write_text("holiday photos")
    elif case == "a-file":
        run_dir = run_dir.with_suffix(".txt")
        run_dir.write_text("a file, not a folder")
    elif case == "missing":
        run_dir = run_dir.with_name("no-such-run")
    else:
        DAMAGE[case](run_dir)
    return run_dir


def _retype(table: str, column: str, value) -> Callable[[Path], None]:
    """A damage that gives one column of a table values of another type."""
    def damage(run_dir: Path) -> None:
        frame = pd.read_parquet(run_dir / f"{table}.parquet")
        frame[column] = value
        frame.to_parquet(run_dir / f"{table}.parquet")
    return damage


def _edit_manifest(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        change(manifest)
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return damage


def _cut(name: str, keep: int) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        (run_dir / name).write_bytes((run_dir / name).read_bytes()[:keep])
    return damage


# Issue 22: each of these gave a traceback, or a report drawn from wrong values, before the
# run directory was checked against its declaration (orbitfl/rundir/columns.py).
DAMAGE: dict[str, Callable[[Path], None]] = {
    "empty-parquet": _cut("rounds.parquet", 0),
    "truncated-parquet": _cut("contacts.parquet", 300),
    "empty-optional-table": _cut("tracks.parquet", 0),
    "text-accuracy": _retype("rounds", "accuracy", "high"),
    "text-times": _retype("contacts", "start_s", "noon"),
    "number-kinds": _retype("transfers", "kind", 3),
    "flat-per-class": _retype("rounds", "per_class_accuracy", 0.5),
    "text-latitudes": _retype("tracks", "lat_deg", "north"),
    "text-charge": _retype("power", "soc", "full"),
    "text-training-times": _retype("clients", "training_s", "long"),
    "manifest-empty": _cut("manifest.json", 0),
    "manifest-not-utf8": lambda d: (d / "manifest.json").write_bytes(b'{"a": "\xff"}'),
    "manifest-summary-a-list": _edit_manifest(lambda m: m.update(summary=[1, 2])),
    "manifest-rounds-as-text": _edit_manifest(
        lambda m: m["summary"].update(rounds_completed="<b>3</b>")),
    "manifest-accuracy-as-text": _edit_manifest(
        lambda m: m["summary"].update(final_accuracy="0.9")),
    "manifest-missing-key": _edit_manifest(lambda m: m["summary"].pop("final_accuracy")),
    "manifest-scenario-a-list": _edit_manifest(lambda m: m.update(scenario=[1])),
    "manifest-class-names-a-string": _edit_manifest(lambda m: m.update(class_names="abc")),
    "manifest-time-to-target-a-list": _edit_manifest(lambda m: m.update(time_to_target=[1])),
    "manifest-deep": lambda d: (d / "manifest.json").write_text("[" * 10**5 + "]" * 10**5),
}


@pytest.mark.parametrize("case", [
    "no-manifest", "manifest-not-json", "manifest-not-a-mapping", "manifest-without-summary",
    "garbage-parquet", "foreign-parquet", "garbage-optional-table", "something-else",
    "a-file", "missing", *DAMAGE])
def test_report_on_a_damaged_or_foreign_directory_is_one_line(tiny_runs, tmp_path, capsys,
                                                              case):
    bad = _damage(_copy_run(tiny_runs[0], tmp_path / "run"), case)
    assert main(["report", str(tiny_runs[1]), str(bad), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {bad}"), err
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("case", ["manifest-deep", "manifest-rounds-as-text", "text-accuracy",
                                  "truncated-parquet", "manifest-not-utf8"])
def test_open_run_on_a_damaged_directory_is_one_input_error(tiny_runs, tmp_path, case):
    from orbitfl.api import open_run
    from orbitfl.core.errors import InputError

    bad = _damage(_copy_run(tiny_runs[0], tmp_path / "run"), case)
    with pytest.raises(InputError) as err:
        open_run(bad)
    assert str(err.value).startswith(f"{bad}") and "\n" not in str(err.value)


def test_open_run_checks_each_table_it_reads_later(tiny_runs, tmp_path):
    from orbitfl.api import open_run
    from orbitfl.core.errors import InputError

    run_dir = _copy_run(tiny_runs[0], tmp_path / "run")
    _retype("events", "t_s", "soon")(run_dir)
    _cut("partition.parquet", 10)(run_dir)
    run = open_run(run_dir)  # the tables a report reads are fine
    assert run.rounds["round"].tolist() == [0, 1, 2, 3]
    with pytest.raises(InputError, match=r"events.parquet: column 't_s' holds .* declared float"):
        run.events
    with pytest.raises(InputError, match=r"partition.parquet is not a readable parquet table"):
        run.partition


def test_one_lazy_run_model_for_the_api_and_the_report(tiny_runs, monkeypatch):
    """Issue 24: ``orbitfl.open_run`` gives the analysis ``Run`` (a thin subclass), which
    reads each table through the reader when first used and never twice; the report's
    ``load_run`` checks every table it draws at once."""
    from orbitfl.analysis import run_model
    from orbitfl.api import open_run
    from orbitfl.rundir import reader

    read, real = [], reader.read_table
    monkeypatch.setattr(reader, "read_table", lambda path, file, required=(): (
        read.append(file), real(path, file, required))[1])
    run = open_run(tiny_runs[0])
    assert isinstance(run, run_model.Run) and run.name == "tiny"
    assert sorted(read) == ["contacts.parquet", "rounds.parquet", "transfers.parquet"]
    assert run.events is run.table("events") and read.count("events.parquet") == 1
    assert run.safe_diagnostics is None and not run.has("safe_diagnostics")  # FedAvg's run
    with pytest.raises(KeyError, match="no table 'accuracy'"):
        run.table("accuracy")
    read.clear()
    report = run_model.load_run(tiny_runs[0])
    assert sorted(read) == sorted(f"{name}.parquet" for name in run_model.COLUMNS)
    assert report.rounds.equals(run.rounds) and type(report) is run_model.Run


NAMES = {"scenario": "cost $5 vs $x_2$ and $", "satellite": "$SAT_1", "station": "st$"}


def test_report_draws_user_strings_literally_and_atomically(tiny_runs, tmp_path, monkeypatch):
    import os

    from matplotlib.cbook import is_math_text
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from orbitfl.analysis.report import write_report

    run_dir = _copy_run(tiny_runs[0], tmp_path / "run")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["scenario"]["name"] = NAMES["scenario"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    for table, column, value in (("contacts", "satellite", NAMES["satellite"]),
                                 ("contacts", "station", NAMES["station"]),
                                 ("power", "satellite", NAMES["satellite"]),
                                 ("stations", "id", NAMES["station"])):
        frame = pd.read_parquet(run_dir / f"{table}.parquet")
        frame[column] = frame[column].where(frame[column] != frame[column].iloc[0], value)
        frame.to_parquet(run_dir / f"{table}.parquet")
    shown, savefig = [], Figure.savefig

    def record_texts(fig, *args, **kwargs):
        savefig(fig, *args, **kwargs)  # drawing fills in tick labels
        shown.extend(t.get_text().replace(r"\$", "$") for t in fig.findobj(Text)
                     if not is_math_text(t.get_text()))

    monkeypatch.setattr(Figure, "savefig", record_texts)
    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(b)), replace(a, b)))
    written = write_report([run_dir], tmp_path / "report")
    assert set(written) <= set(renamed) and len(written) >= 8
    for name in NAMES.values():
        assert any(name in text for text in shown), name
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]


def test_a_name_with_math_runs_into_runs_and_draws(tmp_path, monkeypatch, capsys):
    """Defect: '$...$' in the scenario name was parsed as mathtext and crashed the figures
    after the whole simulation; the default run directory is made from the name, under
    runs/."""
    monkeypatch.chdir(tmp_path)
    name = "fuel $x^$ " + "y" * 150
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "name": name,
                                                        "fl": {**TINY["fl"], "rounds": 1}}))
    assert main(["run", "tiny.yaml"]) == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("fuel_x_yyy") and len(run_dir.name) < 100
    assert (run_dir / "figures" / "accuracy_vs_bytes.png").is_file()
    assert json.loads((run_dir / "manifest.json").read_text())["scenario"]["name"] == name
