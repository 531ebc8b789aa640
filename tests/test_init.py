"""``orbitfl init DIR``: the scenario library and the element sets it names, copied byte for
byte in the repository's layout, so that every copied scenario validates from DIR as it
does in the checkout (the installed-wheel case is in test_install.py)."""

from pathlib import Path

import pytest
import yaml

from orbitfl.cli import main
from orbitfl.scenario import load_scenario
from orbitfl.sweeps.runner import load_sweep

from conftest import REPO, SCENARIOS, TLE_DIR


def _library() -> list[Path]:
    """The independent truth: what the checkout's library holds."""
    return sorted(p.relative_to(SCENARIOS) for p in SCENARIOS.rglob("*")
                  if p.is_file() and p.suffix in (".yaml", ".yml", ".md"))


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    folder = tmp_path_factory.mktemp("init") / "mission"
    return folder, main(["init", str(folder)])


def test_init_copies_the_library_and_its_element_sets_unchanged(copied, capsys):
    folder, code = copied
    assert code == 0
    library = _library()
    assert library and sorted(p.relative_to(folder / "scenarios")
                              for p in (folder / "scenarios").rglob("*")) == \
        sorted({*library, *(q for p in library for q in p.parents if q != Path("."))})
    for relative in library:
        assert (folder / "scenarios" / relative).read_bytes() == \
            (SCENARIOS / relative).read_bytes(), relative
    named = set()
    for path in (SCENARIOS).rglob("*.yaml"):
        tle = (yaml.safe_load(path.read_text()).get("constellation") or {}).get("tle")
        if tle is not None:
            named.add((path.parent / tle).resolve().relative_to(REPO / "tle"))
    assert sorted(p.name for p in (folder / "tle").glob("*.tle")) == \
        sorted(str(p) for p in named)
    for name in named:
        assert (folder / "tle" / name).read_bytes() == (TLE_DIR / name).read_bytes()


@pytest.mark.parametrize("relative", [p for p in _library() if p.suffix == ".yaml"],
                         ids=str)
def test_every_copied_scenario_and_sweep_loads_from_the_copy(copied, relative):
    folder, _ = copied
    path = folder / "scenarios" / relative
    if "parameters" in yaml.safe_load(path.read_text()):
        load_sweep(path)  # its base is found beside it, and valid
        return
    scenario = load_scenario(path)
    if scenario.constellation.tle is not None:
        assert Path(scenario.constellation.tle).resolve().parent == (folder / "tle").resolve()


def test_init_prints_what_to_run_next_and_validates(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "start"]) == 0
    out = capsys.readouterr().out
    assert "orbitfl validate start/scenarios/quickstart.yaml" in out
    assert "orbitfl run start/scenarios/quickstart.yaml" in out
    assert main(["validate", "start/scenarios/quickstart.yaml"]) == 0
    assert capsys.readouterr().out.startswith("start/scenarios/quickstart.yaml: ok (8 satellites")


def test_init_refuses_a_non_empty_folder_unless_forced(tmp_path, capsys):
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["init", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {folder}: folder is not empty; choose an "
                                        "empty or new folder, or give --force to copy into it "
                                        "(files of the same names are replaced)"]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / "quickstart.yaml").write_text("edited: true\n")
    assert main(["init", str(folder), "--force"]) == 0
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "scenarios" / "quickstart.yaml").read_bytes() == \
        (SCENARIOS / "quickstart.yaml").read_bytes()


def test_init_into_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["init", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'a-file'}: folder to copy into exists and is not a " \
                  "folder\n"


@pytest.mark.parametrize("damage", [b"name: a\x07b\n", b"name: [unclosed\n", b"\xff\xfe"])
def test_a_damaged_library_is_one_line_and_copies_nothing(tmp_path, capsys, monkeypatch, damage):
    import orbitfl.commands.init_cmd as init_cmd

    library = tmp_path / "library"
    (library / "sweeps").mkdir(parents=True)
    (library / "a.yaml").write_text("name: fine\n")
    (library / "sweeps" / "z.yaml").write_bytes(damage)  # read last: nothing copied before
    monkeypatch.setattr(init_cmd, "scenario_library", lambda: library)
    assert main(["init", str(tmp_path / "mission")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {Path('orbitfl', 'scenarios', 'sweeps', 'z.yaml')}"), err
    assert not (tmp_path / "mission" / "scenarios").exists()
