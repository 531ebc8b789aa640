"""Models: a small CNN sized for CPU-scale federated classification."""

from __future__ import annotations

import torch
from torch import nn

from orbitfl.errors import InputError


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, linear classifier (~95 k parameters).

    ``features`` returns the penultimate representation (SAFE's FAU compares these) and
    ``classifier`` is the final layer (SAFE's CRO differentiates through it).
    """

    def __init__(self, classes: int, in_channels: int = 3, width: int = 32):
        super().__init__()
        self.backbone = nn.Sequential(
            _block(in_channels, width), nn.MaxPool2d(2),
            _block(width, 2 * width), nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


MODELS = {"small-cnn": SmallCNN}


def build_model(name: str, classes: int) -> nn.Module:
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](classes)
