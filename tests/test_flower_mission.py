"""A Flower strategy and client inside a whole mission: a run stopped after a round and
resumed ends with the tables of an uninterrupted run (FedAdam's moments travel in the
checkpoint), and the Flower app trained the model the mission evaluated."""

import pandas as pd
import pytest
import torch
import yaml
from test_resume import TABLES
from torch import nn

import orbitfl.assemble as assemble
import orbitfl.runner as runner
from orbitfl.fl.strategy import FLConfig

from conftest import TLE_DIR

flwr = pytest.importorskip("flwr", reason="Flower is not installed (pip install "
                           "'orbitfl[flower]')")
from orbitfl.fl.flower_adapter import FlowerStrategy, client_data  # noqa: E402

CLASSES, PIXELS = 4, 16
SCENARIO = {
    "name": "flower-resume", "seed": 6, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 3}},
    "ground_stations": {"sites": ["svalsat", "kiruna"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": CLASSES, "image_size": PIXELS,
             "samples_per_class_max": 40, "imbalance_ratio": 2, "test_per_class": 20,
             "partition": "dirichlet", "dirichlet_alpha": 1.0},
    "fl": {"strategy": "fedavg", "rounds": 3,
           "schedule": {"deadline": "1h", "min_clients": 2}},
}


def net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * PIXELS * PIXELS, CLASSES))


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


def flower_learning(scenario, data):
    model = net()
    return model, FlowerStrategy(model, FLConfig(rounds=scenario.fl.rounds, seed=scenario.seed),
                                 strategy="flwr.server.strategy:FedAdam",
                                 strategy_options={"eta": 0.02}, client_app=client_fn)


def test_a_flower_mission_stopped_and_resumed_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setattr(assemble, "build_learning", flower_learning)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    runner.run(scenario, tmp_path / "full")
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        if checkpoint["round"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run(scenario, tmp_path / "cut")
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    runner.run(scenario, tmp_path / "cut", resume=True)
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "full" / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "cut" / f"{name}.parquet"),
                                      obj=name)
    rounds = pd.read_parquet(tmp_path / "full" / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1, 2, 3]
    assert rounds["accuracy"].iloc[-1] > rounds["accuracy"].iloc[0]  # Flower's client trained
