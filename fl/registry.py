"""The strategies by name, and how to build one."""

from __future__ import annotations

from torch import nn

from .datasets import ImageSet
from .fedavg import FedAvg, FedProx
from .fedbuff import FedBuff
from .logit_adjust import FedLA
from .safe import Safe
from .strategy import FLConfig, Strategy

STRATEGIES = {"fedavg": FedAvg, "fedprox": FedProx, "fedbuff": FedBuff, "safe": Safe,
              "fedla": FedLA}


def make_strategy(name: str, model: nn.Module, config: FLConfig,
                  ses: ImageSet | None = None) -> Strategy:
    if name == "safe":
        if ses is None:
            raise ValueError("SAFE needs the server's Self-Examination Sample")
        return Safe(model, config, ses)
    return STRATEGIES[name](model, config)
