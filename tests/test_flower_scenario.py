"""The Flower adapter as a scenario names it: ``orbitfl validate`` refuses, in one line naming
the YAML path and before anything is simulated, what the adapter cannot run (an unknown
option, a Flower strategy or client that does not import or is not one, arguments the
strategy does not take, flwr not installed, an asynchronous schedule); the scenario's hash
follows the Flower app's code."""

import copy
import sys

import pytest
import yaml

import orbitfl
from orbitfl.cli import main
from orbitfl.core.errors import InputError
from orbitfl.engine.plugin_check import check_plugins

from conftest import REPO, TLE_DIR

flwr = pytest.importorskip("flwr", reason="Flower is not installed (pip install "
                           "'orbitfl[flower]')")

APP = REPO / "examples" / "flower"
REFUSED = "fl.strategy: strategy 'orbitfl.fl.flower_adapter:FlowerStrategy' refuses its options: "


@pytest.fixture
def dove(monkeypatch) -> dict:
    """examples/flower/flower-dove.yaml, its app importable, its element file absolute."""
    monkeypatch.syspath_prepend(str(APP))
    document = yaml.safe_load((APP / "flower-dove.yaml").read_text())
    document["constellation"]["tle"] = str(TLE_DIR / "planet_2024-07-16.tle")
    return document


def options(document: dict, **changes) -> dict:
    changed = copy.deepcopy(document)
    changed["fl"]["strategy"]["options"].update(changes)
    return changed


def test_the_example_scenario_validates(dove):
    check_plugins(orbitfl.load_scenario(dove))


@pytest.mark.parametrize("changes, message", [
    ({"colour": "red"}, "unknown colour; known: strategy, client_app, strategy_options, "
                        "run_config"),
    ({"strategy": "flwr.server.strategy:FedNope"},
     "fl.strategy.options.strategy: 'flwr.server.strategy' has no attribute 'FedNope'"),
    ({"strategy": "dove_app:Net"}, "fl.strategy.options.strategy: <class 'dove_app.Net'> is "
                                   "not a Flower strategy"),
    ({"strategy_options": {"etaa": 1}}, "fl.strategy.options.strategy_options: FedAdam: "
                                        "FedAdam.__init__() got an unexpected keyword"),
    ({"client_app": "dove_ap:client_fn"}, "fl.strategy.options.client_app: cannot import "
                                          "'dove_ap'"),
    ({"client_app": "dove_app:CLIENT"}, "fl.strategy.options.client_app: 'dove_app' has no "
                                        "attribute 'CLIENT'"),
], ids=["unknown-key", "no-strategy", "not-a-strategy", "bad-argument", "no-client-module",
        "no-client"])
def test_what_the_adapter_cannot_use_is_one_line_at_validation(dove, changes, message):
    with pytest.raises(InputError) as error:
        check_plugins(orbitfl.load_scenario(options(dove, **changes)))
    assert str(error.value).startswith(REFUSED + message)
    assert "\n" not in str(error.value)


def test_a_missing_required_option_is_named(dove):
    document = copy.deepcopy(dove)
    del document["fl"]["strategy"]["options"]["client_app"]
    with pytest.raises(InputError, match=r"refuses its options: client_app: Field required$"):
        check_plugins(orbitfl.load_scenario(document))


def test_an_asynchronous_schedule_is_refused(dove):
    dove["fl"]["schedule"]["mode"] = "async"
    with pytest.raises(InputError, match=r"^fl.strategy: strategy 'orbitfl.fl.flower_adapter:"
                                         r"FlowerStrategy' runs with schedule.mode sync, not "
                                         r"async$"):
        check_plugins(orbitfl.load_scenario(dove))


def test_without_flwr_validation_asks_for_the_extra(dove, monkeypatch):
    for name in [m for m in sys.modules if m == "flwr" or m.startswith("flwr.")] + ["flwr"]:
        monkeypatch.setitem(sys.modules, name, None)  # import flwr... raises ImportError
    with pytest.raises(InputError, match=r"refuses its options: the Flower adapter needs flwr "
                                         r"\(pip install 'orbitfl\[flower\]'\)$"):
        check_plugins(orbitfl.load_scenario(dove))


def test_the_cli_refuses_with_exit_2(dove, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(options(dove, strategy="flwr.server.strategy:FedNope")))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip().endswith("has no attribute 'FedNope'")


def test_the_hash_follows_the_flower_app(dove, tmp_path, monkeypatch):
    """The client's source, the Flower strategy named and flwr's version each change it."""
    base = orbitfl.load_scenario(dove).content_hash()
    assert orbitfl.load_scenario(dove).content_hash() == base
    assert orbitfl.load_scenario(options(
        dove, strategy="flwr.server.strategy:FedYogi")).content_hash() != base
    edited = tmp_path / "app"
    edited.mkdir()
    (edited / "dove_app.py").write_text((APP / "dove_app.py").read_text() + "\n# edited\n")
    monkeypatch.syspath_prepend(str(edited))
    monkeypatch.delitem(sys.modules, "dove_app", raising=False)
    assert orbitfl.load_scenario(dove).content_hash() != base
    monkeypatch.syspath_prepend(str(APP))
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.0.1" if name == "flwr" else real(name))
    assert orbitfl.load_scenario(dove).content_hash() != base



def test_the_documented_flower_app_is_the_example_the_tests_run():
    doc = (REPO / "docs" / "extending.md").read_text()
    for name in ("dove_app.py", "flower-dove.yaml"):
        assert (APP / name).read_text().strip() in doc, name
