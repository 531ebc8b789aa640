"""A Flower app over Planet Doves: an unmodified Flower ``NumPyClient`` trains and Flower's
FedAdam aggregates, while orbitfl decides when each Dove trains and when its bytes cross
the S-band uplink and X-band downlink of two high-latitude stations.

    .venv/bin/python examples/flower_dove.py [OUT]     # needs: pip install 'orbitfl[flower]'

Until a scenario can name the strategy by reference (``fl.strategy: {class: ...}``, issue
25), the script swaps the Flower adapter in at the one point where orbitfl builds a run's
model and strategy (``orbitfl.assemble.build_learning``); everything else is a normal run.
"""

import sys
from importlib.resources import files
from unittest import mock

import flwr
import torch
from torch import nn

import orbitfl
from orbitfl import assemble
from orbitfl.fl.flower_adapter import FlowerStrategy, client_data
from orbitfl.fl.strategy import FLConfig

CLASSES, PIXELS, ROUNDS = 4, 16, 2
SCENARIO = {
    "name": "flower-dove", "seed": 5, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(files("orbitfl.tle") / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4Y*", "limit": 3}},
    "ground_stations": {"sites": ["svalsat", "kiruna"], "min_elevation_deg": 10},
    "links": {"downlink": {"preset": "dove-x"}, "uplink": {"preset": "dove-s"}},
    "onboard": {"compute": "jetson-nano"},
    "data": {"dataset": "synthetic", "classes": CLASSES, "image_size": PIXELS,
             "samples_per_class_max": 60, "imbalance_ratio": 4, "test_per_class": 20,
             "partition": "dirichlet", "dirichlet_alpha": 1.0},
    "fl": {"strategy": "fedavg", "rounds": ROUNDS, "local_epochs": 1,  # replaced below
           "schedule": {"deadline": "3h", "min_clients": 2}},
}


# -- the Flower app: what any Flower user already has --------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DoveClient(flwr.client.NumPyClient):
    """Trains on the images its satellite holds (``client_data``: the orbitfl partition)."""

    def __init__(self):
        self.net = Net()

    def get_parameters(self, config):
        return [v.detach().numpy().copy() for v in self.net.state_dict().values()]

    def fit(self, parameters, config):
        keys = list(self.net.state_dict())
        self.net.load_state_dict({k: torch.from_numpy(a) for k, a in zip(keys, parameters)})
        data = client_data()
        optimiser = torch.optim.SGD(self.net.parameters(), lr=0.05, momentum=0.9)
        self.net.train()
        for batch in torch.randperm(len(data)).split(16):
            loss = nn.functional.cross_entropy(self.net(data.images[batch]), data.labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return self.get_parameters({}), len(data), {"train_loss": loss.item()}


def client_fn(context):
    return DoveClient().to_client()


# -- orbitfl: the same app inside a mission -------------------------------------------------
def flower_learning(scenario, data):
    model = Net()
    strategy = FlowerStrategy(model, FLConfig(rounds=scenario.fl.rounds, seed=scenario.seed),
                              strategy="flwr.server.strategy:FedAdam",
                              strategy_options={"eta": 0.01, "eta_l": 0.05},
                              client_app=client_fn)
    return model, strategy


def main(out: str) -> None:
    scenario = orbitfl.load_scenario(SCENARIO)
    with mock.patch.object(assemble, "build_learning", flower_learning):
        run = orbitfl.run(scenario, out=out, progress=False)
    for r in run.rounds.itertuples():
        print(f"round {r.round}: accuracy {r.accuracy:.3f} at {r.sim_time_s / 3600:.1f} h, "
              f"{r.bytes_up / 1e3:.0f} kB up, {r.bytes_down / 1e3:.0f} kB down")
    print(f"Flower {flwr.__version__} FedAdam over {len(run.manifest['satellites'])} Doves: "
          f"{run.path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/flower-dove")
