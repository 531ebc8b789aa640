"""A Flower app as any Flower user already has it: a model, a ``NumPyClient`` and its
``client_fn``. ``flower-dove.yaml`` runs it over three Planet Doves (docs/extending.md,
"A Flower app over a constellation"); nothing here knows about orbits."""

import flwr
import torch
from torch import nn

from orbitfl.fl.flower_adapter import client_data


class Net(nn.Module):
    def __init__(self, classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(classes: int) -> nn.Module:
    """The model factory the scenario names (``model: {factory: "dove_app:build"}``)."""
    return Net(classes)


class DoveClient(flwr.client.NumPyClient):
    """Trains on the images its satellite holds (``client_data``: the orbitfl partition)."""

    def __init__(self, classes: int):
        self.net = Net(classes)

    def get_parameters(self, config):
        return [v.detach().numpy().copy() for v in self.net.state_dict().values()]

    def fit(self, parameters, config):
        keys = list(self.net.state_dict())
        self.net.load_state_dict({k: torch.from_numpy(a) for k, a in zip(keys, parameters)})
        data = client_data()
        optimiser = torch.optim.SGD(self.net.parameters(), lr=float(config.get("lr", 0.05)),
                                    momentum=0.9)
        self.net.train()
        for batch in torch.randperm(len(data)).split(16):
            loss = nn.functional.cross_entropy(self.net(data.images[batch]), data.labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return self.get_parameters({}), len(data), {"train_loss": loss.item()}


def client_fn(context):
    return DoveClient(int(context.run_config["classes"])).to_client()
