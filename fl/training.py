"""Local training and evaluation: plain torch loops, one model object reused per worker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .datasets import ImageSet


@dataclass(frozen=True)
class TrainConfig:
    """SGD settings of SAFE.md section 5 (momentum 0.9, weight decay 5e-4)."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_local(model: nn.Module, data: ImageSet, config: TrainConfig,
                generator: torch.Generator, class_weights: torch.Tensor | None = None) -> float:
    """Train ``model`` in place on ``data``; returns the mean training loss.

    A fresh optimiser per call: in FedAvg momentum does not survive a round.
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    images, labels = data.images.to(device), data.labels.to(device)
    weight = class_weights.to(device) if class_weights is not None else None
    model.train()
    total, count = torch.zeros((), device=device), 0
    for _ in range(config.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        for start in range(0, len(labels), config.batch_size):
            batch = order[start:start + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(model(images[batch]), labels[batch], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
            count += len(batch)
    return float(total) / max(count, 1)


@torch.no_grad()
def predict(model: nn.Module, data: ImageSet, batch_size: int = 512) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    out = [model(data.images[i:i + batch_size].to(device)).argmax(1).cpu()
           for i in range(0, len(data), batch_size)]
    return torch.cat(out).numpy()


def accuracy_report(predicted: np.ndarray, labels: np.ndarray, classes: int) -> dict:
    """Top-1 accuracy and per-class accuracy (NaN for a class absent from ``labels``)."""
    correct = predicted == labels
    per_class = np.array([correct[labels == c].mean() if np.any(labels == c) else np.nan
                          for c in range(classes)])
    return {"accuracy": float(correct.mean()),
            "balanced_accuracy": float(np.nanmean(per_class)),
            "per_class_accuracy": per_class.tolist()}
