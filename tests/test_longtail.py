"""FedLA, the federated long-tail baseline: the logit-adjusted loss (Menon et al., 2021)
with each client's own class prior, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.extensions import strategy_class
from orbitfl.fl.logit_adjust import FedLA, logit_adjustment
from orbitfl.fl.registry import entry
from orbitfl.fl.training import LocalTrainer, TrainConfig


class BiasOnly(nn.Module):
    """Logits equal to a bias whatever the input: the loss is known by hand."""

    def __init__(self, bias: list[float]):
        super().__init__()
        self.classifier = nn.Linear(1, len(bias))
        with torch.no_grad():
            self.classifier.weight.zero_()
            self.classifier.bias.copy_(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.new_zeros(len(x), 1))


def test_adjustment_is_log_of_the_client_prior():
    shift = logit_adjustment(np.array([3, 1]))
    assert torch.allclose(shift, torch.tensor([math.log(0.75), math.log(0.25)]))


def test_an_absent_class_gets_the_prior_of_one_image():
    shift = logit_adjustment(np.array([2, 0, 1]))
    assert torch.allclose(shift, torch.log(torch.tensor([2 / 4, 1 / 4, 1 / 4])))


def test_logit_adjusted_loss_matches_the_hand_computation():
    # logits [0, 0] shifted by log [0.75, 0.25] give softmax [0.75, 0.25]: the loss is
    # -log 0.75 for the three class-0 images and -log 0.25 for the class-1 image.
    data = ImageSet(torch.zeros(4, 3, 2, 2), torch.tensor([0, 0, 0, 1]))
    trainer = LocalTrainer(BiasOnly([0.0, 0.0]), TrainConfig(epochs=1, batch_size=4))
    loss = trainer.train(data, torch.Generator().manual_seed(0),
                         logit_adjustment=logit_adjustment(data.class_counts(2)))
    expected = (3 * -math.log(0.75) - math.log(0.25)) / 4
    assert math.isclose(loss, expected, rel_tol=1e-6)
    plain = LocalTrainer(BiasOnly([0.0, 0.0]), TrainConfig(epochs=1, batch_size=4))
    assert math.isclose(plain.train(data, torch.Generator().manual_seed(0)), math.log(2),
                        rel_tol=1e-6)  # unadjusted: uniform softmax


def test_the_adjustment_moves_the_model_towards_the_rare_class():
    """On a 3:1 client, plain cross-entropy raises the common class's bias; the balanced
    softmax is already at its optimum when the raw logits are equal, so the biases stay
    equal (the gradient of the adjusted loss is zero there)."""
    data = ImageSet(torch.zeros(4, 3, 2, 2), torch.tensor([0, 0, 0, 1]))
    config = TrainConfig(epochs=1, batch_size=4, lr=0.1, momentum=0.0, weight_decay=0.0)
    adjusted, plain = BiasOnly([0.0, 0.0]), BiasOnly([0.0, 0.0])
    LocalTrainer(adjusted, config).train(data, torch.Generator().manual_seed(0),
                                         logit_adjustment=logit_adjustment(np.array([3, 1])))
    LocalTrainer(plain, config).train(data, torch.Generator().manual_seed(0))
    a, p = adjusted.classifier.bias.detach(), plain.classifier.bias.detach()
    assert torch.allclose(a, torch.zeros(2), atol=1e-6)
    assert p[0] > p[1]


def test_fedla_is_a_registered_strategy():
    assert strategy_class(entry("strategy", "fedla")) is FedLA
