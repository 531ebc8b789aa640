"""``pip install 'orbitfl[flower]'`` as a user runs it: the wheel with its ``flower`` extra
into a fresh virtualenv, offline (the extra's requirements resolved against the packages of
this environment, as tests/test_install.py reuses them), then orbitfl and Flower imported
there and the Flower example (examples/flower_dove.py, which runs the scenario
examples/flower/flower-dove.yaml) run from a folder outside the tree."""

import json
import shutil
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
from test_install import _quiet_run, outside, wheel  # noqa: F401 (fixtures)

from conftest import REPO

pytest.importorskip("flwr", reason="Flower is not installed (pip install 'orbitfl[flower]')")


@pytest.fixture(scope="module")
def flower_venv(wheel, tmp_path_factory) -> Path:  # noqa: F811
    """A fresh virtualenv that sees this environment's packages through a plain path line
    (no editable finder) and gets the wheel with its extra from pip, with no index: pip
    must find every requirement of ``orbitfl[flower]`` satisfied, or fail."""
    target = tmp_path_factory.mktemp("flower-venv") / "venv"
    _quiet_run([sys.executable, "-m", "venv", "--without-pip", target])
    purelib = _quiet_run([target / "bin" / "python", "-c",
                          "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(purelib.strip()) / "orbitfl_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dependencies))
    _quiet_run([sys.executable, "-m", "pip", "--python", target / "bin" / "python", "install",
                "--no-index", "-q", f"{wheel}[flower]"])
    return target


def test_the_extra_installs_and_runs_the_flower_example(flower_venv, outside):  # noqa: F811
    python = flower_venv / "bin" / "python"
    shown = _quiet_run([python, "-c", "import orbitfl, flwr, ray; print(orbitfl.__file__); "
                        "print(flwr.__version__)"], **outside).stdout.split()
    assert Path(shown[0]).is_relative_to(flower_venv) and shown[1].startswith("1.")
    example = shutil.copy2(REPO / "examples" / "flower_dove.py", outside["cwd"])
    shutil.copytree(REPO / "examples" / "flower", outside["cwd"] / "flower")  # the scenario
    printed = _quiet_run([python, example, "run"], **outside).stdout
    run = outside["cwd"] / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    rounds = pd.read_parquet(run / "rounds.parquet")
    assert manifest["status"] == "complete" and len(manifest["satellites"]) == 3
    assert manifest["scenario"]["fl"]["strategy"]["class"] == \
        "orbitfl.fl.flower_adapter:FlowerStrategy"  # named by the scenario, not patched in
    assert list(rounds["round"]) == [0, 1, 2] and rounds["bytes_up"].iloc[-1] > 0
    assert "FedAdam over 3 Doves" in printed
    assert rounds["accuracy"].iloc[-1] != rounds["accuracy"].iloc[0]  # the rounds trained
