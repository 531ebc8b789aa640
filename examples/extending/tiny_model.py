"""A custom model (docs/extending.md): any ``torch.nn.Module`` mapping (n, 3, S, S)
images to (n, classes) logits, from a factory ``build(classes, **options)``. Named as

    model: {factory: "tiny_model:build", options: {width: 8}}
"""

from torch import nn


def build(classes: int, width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))
