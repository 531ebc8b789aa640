"""orbitfl without Flower: the adapter's module imports, and building the adapter says in
one line what to install (flwr hidden here whether or not it is installed)."""

import sys

import pytest
import torch

from orbitfl.core.errors import InputError
from orbitfl.fl.strategy import FLConfig


def test_without_flwr_the_adapter_asks_for_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "flwr" or m.startswith("flwr.")] + ["flwr"]:
        monkeypatch.setitem(sys.modules, name, None)  # import flwr... raises ImportError
    from orbitfl.fl.flower_adapter import FlowerStrategy

    with pytest.raises(InputError, match=r"^the Flower adapter needs flwr \(pip install "
                                         r"'orbitfl\[flower\]'\)$"):
        FlowerStrategy(torch.nn.Linear(2, 2), FLConfig(rounds=1),
                       strategy="flwr.server.strategy:FedAvg", client_app=print)
