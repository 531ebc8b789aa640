"""The strategy interface: a federated algorithm's server and client halves.

Strategies are plain Python/torch: no clock and no network. The mission decides *when*
(after the bytes have crossed); the strategy decides *what* (payload contents, training,
aggregation). A new algorithm is one subclass.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .datasets import ImageSet
from .payloads import Payload
from .training import TrainConfig


@dataclass(frozen=True)
class ClientUpdate:
    """What a client sends back after local training."""

    client_id: int
    round_index: int
    num_samples: int
    payloads: list[Payload]
    train_loss: float


class Strategy(ABC):
    """Owns the global model (server half) and one reusable worker model (client half)."""

    name = "strategy"

    def __init__(self, model: nn.Module, train_config: TrainConfig, seed: int):
        self.global_model = model
        self.worker = copy.deepcopy(model)  # reused for every client's local training
        self.train_config = train_config
        self.seed = seed

    def client_generator(self, round_index: int, client_id: int) -> torch.Generator:
        """Shuffling depends on (seed, round, client) only, not on simulated event order."""
        seed = np.random.SeedSequence([self.seed, round_index, client_id]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    @abstractmethod
    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        """Payloads the server sends a selected client at the start of a round."""

    @abstractmethod
    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet) -> ClientUpdate:
        """Client half: absorb what arrived, train locally, say what to upload."""

    @abstractmethod
    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        """Server half: fold the updates that arrived in time into the global model."""


def weighted_average(states: Sequence[Mapping[str, torch.Tensor]],
                     weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Sample-weighted mean of state dicts, accumulated in float64.

    Integer buffers (BatchNorm's batch counter) take the maximum: averaging a counter is
    meaningless and it only matters when momentum is None.
    """
    total = float(sum(weights))
    out = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            acc = sum(s[key].to(torch.float64) * (w / total) for s, w in zip(states, weights))
            out[key] = acc.to(ref.dtype)
        else:
            out[key] = torch.stack([s[key] for s in states]).max(0).values
    return out
