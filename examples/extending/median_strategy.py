"""A custom strategy in about 30 lines (docs/extending.md): FedAvg's clients, and a server
that takes the coordinate-wise median of the updates, shrunk towards the current model by
``server_lr``. Named in a scenario as

    fl:
      strategy: {class: "median_strategy:FedMedian", options: {server_lr: 0.5}}
"""

from dataclasses import dataclass

import torch

from orbitfl.fl.fedavg import FedAvg


@dataclass(frozen=True)
class MedianOptions:
    server_lr: float = 1.0  # 1: install the median; smaller: move part of the way

    def __post_init__(self) -> None:
        if not 0 < self.server_lr <= 1:
            raise ValueError("server_lr must be in (0, 1]")


class FedMedian(FedAvg):
    """Coordinate-wise median aggregation (Yin et al., ICML 2018)."""

    name = "fedmedian"
    Options = MedianOptions

    def aggregate(self, round_index, updates):
        current = self.global_model.state_dict()
        states = [self.uploaded_state(u) for u in updates]
        new = {}
        for key, now in current.items():
            if not now.is_floating_point():  # BatchNorm's counter: keep the largest
                new[key] = torch.stack([s[key] for s in states]).max(dim=0).values
                continue
            median = torch.stack([s[key] for s in states]).median(dim=0).values
            new[key] = now + self.options.server_lr * (median - now)
        self.commit(new)
