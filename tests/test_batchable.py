"""A model opts in to batched training through ``fl/batchable.py``'s seam: a model of one's
own that declares ``batched_obstacle`` trains batched exactly as one by one, its layers are
still checked whatever it declares, and a model that declares nothing is refused in one
line that says how to opt in."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from orbitfl.fl.batchable import BatchableModel, batching_obstacle
from orbitfl.fl.batched import train_many
from orbitfl.fl.config import TrainConfig
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.models import build_model
from orbitfl.fl.training import LocalTrainer


class OwnClassifier(nn.Module):
    """Not a ClassifierNet: a user's model that opts in."""

    def __init__(self, classes: int, *extra: nn.Module, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU(), *extra, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def batched_obstacle(self) -> str | None:
        return None


def test_a_model_of_ones_own_that_opts_in_trains_batched_as_one_by_one():
    torch.manual_seed(0)
    model = OwnClassifier(5).double()
    assert isinstance(model, BatchableModel) and batching_obstacle(model) is None
    data = [ImageSet(torch.randn(n, 3, 8, 8, dtype=torch.float64), torch.randint(0, 5, (n,)))
            for n in (9, 20)]
    config = TrainConfig(epochs=2, batch_size=8, augment=True)
    trainer = LocalTrainer(copy.deepcopy(model), config)
    want = []
    for i, d in enumerate(data):
        trainer.model.load_state_dict(model.state_dict())
        trainer.train(d, torch.Generator().manual_seed(i))
        want.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    got, _ = train_many(model, [model.state_dict()] * 2, data,
                        [torch.Generator().manual_seed(i) for i in range(2)], config)
    for w, g in zip(want, got):
        assert max((w[k].double() - g[k].double()).abs().max().item() for k in w) < 1e-10


@pytest.mark.parametrize("layer, named", [
    (nn.Dropout(0.2), r"dropout \(body.3\) needs per-client code"),
    (nn.BatchNorm2d(4, momentum=None), r"body.3 \(BatchNorm2d.* needs per-client code"),
    (nn.BatchNorm2d(4, affine=False), r"body.3 \(BatchNorm2d.* needs per-client code"),
    (nn.InstanceNorm2d(4, track_running_stats=True), r"body.3 \(InstanceNorm2d.*"),
])
def test_layers_are_checked_whatever_the_model_declares(layer, named):
    model = OwnClassifier(5, layer)
    data = [ImageSet(torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)))]
    with pytest.raises(ValueError, match=f"^batched training supports .*; {named}"):
        train_many(model, [model.state_dict()], data, [torch.Generator()], TrainConfig())


def test_a_model_that_declares_nothing_is_refused_saying_how_to_opt_in():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5))
    assert batching_obstacle(model) == ("Sequential needs per-client code (it declares no "
                                        "batched_obstacle: docs/extending.md)")
    assert batching_obstacle(build_model("seg-unet", 3)).startswith("SegmentationNet needs")


def test_the_built_in_classifiers_answer_for_themselves():
    for name in ("tiny-cnn", "small-cnn", "resnet18"):
        assert batching_obstacle(build_model(name, 10)) is None
    assert batching_obstacle(build_model("small-cnn", 10, ace={})) == \
        "a model with ACE (Gumbel noise, a mask prior) needs per-client code"
