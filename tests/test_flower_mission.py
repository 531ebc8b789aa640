"""A Flower strategy and client inside a whole mission, named by the scenario
(``fl.strategy: {class: "orbitfl.fl.flower_adapter:FlowerStrategy", options: {...}}``): a run
stopped after a round and resumed ends with the tables of an uninterrupted run (FedAdam's
moments travel in the checkpoint), a local pool gives the serial run's tables, the Flower app
trained the model the mission evaluated, and the manifest records the Flower app."""

import copy
import json

import pandas as pd
import pytest
import torch
import yaml
from test_resume import TABLES
from torch import nn

import orbitfl.engine.runner as runner

from conftest import TLE_DIR, interrupt_and_resume

flwr = pytest.importorskip("flwr", reason="Flower is not installed (pip install "
                           "'orbitfl[flower]')")
from orbitfl.fl.flower_adapter import client_data  # noqa: E402

CLASSES, PIXELS = 4, 16
ADAPTER = "orbitfl.fl.flower_adapter:FlowerStrategy"
SCENARIO = {
    "name": "flower-resume", "seed": 6, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 3}},
    "ground_stations": {"sites": ["svalsat", "kiruna"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": CLASSES, "image_size": PIXELS,
             "samples_per_class_max": 40, "imbalance_ratio": 2, "test_per_class": 20,
             "partition": "dirichlet", "dirichlet_alpha": 1.0},
    "model": {"factory": "test_flower_mission:net"},
    "fl": {"strategy": {"class": ADAPTER, "options": {
               "strategy": "flwr.server.strategy:FedAdam", "strategy_options": {"eta": 0.02},
               "client_app": "test_flower_mission:client_fn"}},
           "rounds": 3, "schedule": {"deadline": "1h", "min_clients": 2}},
}


def net(classes: int = CLASSES) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * PIXELS * PIXELS, classes))


class Client(flwr.client.NumPyClient):
    def fit(self, parameters, config):
        model = net()
        model.load_state_dict({k: torch.from_numpy(a)
                               for k, a in zip(model.state_dict(), parameters)})
        data = client_data()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
        for batch in torch.randperm(len(data)).split(8):
            loss = nn.functional.cross_entropy(model(data.images[batch]), data.labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return ([v.detach().numpy().copy() for v in model.state_dict().values()], len(data),
                {"train_loss": loss.item()})


def client_fn(context):
    return Client().to_client()


def write(tmp_path, name: str = "s.yaml", **execution):
    document = copy.deepcopy(SCENARIO)
    if execution:
        document["execution"] = execution
    (tmp_path / name).write_text(yaml.safe_dump(document))
    return tmp_path / name


def same_tables(one, other) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(one / f"{name}.parquet"),
                                      pd.read_parquet(other / f"{name}.parquet"), obj=name)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flower")
    runner.run(write(out), out / "full")
    return out / "full"


def test_a_flower_mission_stopped_and_resumed_equals_an_uninterrupted_one(full_run, tmp_path,
                                                                          monkeypatch):
    scenario = write(tmp_path)
    interrupt_and_resume(scenario, tmp_path / "cut", monkeypatch, after_round=2)
    same_tables(full_run, tmp_path / "cut")
    rounds = pd.read_parquet(full_run / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1, 2, 3]
    assert rounds["accuracy"].iloc[-1] > rounds["accuracy"].iloc[0]  # Flower's client trained


def test_a_local_pool_gives_the_serial_tables(full_run, tmp_path):
    runner.run(write(tmp_path, backend="local", workers=2), tmp_path / "local")
    same_tables(full_run, tmp_path / "local")


def test_the_manifest_names_the_flower_app_and_its_versions(full_run):
    manifest = json.loads((full_run / "manifest.json").read_text())
    strategy = manifest["scenario"]["fl"]["strategy"]
    assert strategy["class"] == ADAPTER
    assert strategy["options"]["strategy"] == "flwr.server.strategy:FedAdam"
    uses = manifest["plugins"]["fl.strategy"]["uses"]
    assert uses["flwr"] == flwr.__version__
    assert uses["strategy"] == f"flwr=={flwr.__version__}"
    assert uses["client_app"].startswith("sha256:")  # a loose module: its source's hash
