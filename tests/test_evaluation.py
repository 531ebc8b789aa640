"""The evaluator's personalised scoring: FedAvg + local fine-tuning (the global model trained
one local job on each client's own data) and the global model on each client's own mix,
on hand-made data where the answer is known."""

from __future__ import annotations

import numpy as np
import torch

from orbitfl.engine.evaluation import Evaluator
from orbitfl.engine.mission import RoundRecord
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.extensions import strategy_named
from orbitfl.fl.models import build_model
from orbitfl.fl.strategy import FLConfig
from orbitfl.fl.training import TrainConfig


def _images(label: int, n: int) -> ImageSet:
    """Class 0: dark tiles, class 1: bright tiles (separable at once)."""
    generator = torch.Generator().manual_seed(label)
    base = torch.full((n, 3, 8, 8), -1.0 if label == 0 else 1.0)
    return ImageSet(base + 0.1 * torch.randn(base.shape, generator=generator),
                    torch.full((n,), label, dtype=torch.long))


def _evaluator(fine_tune: bool) -> Evaluator:
    torch.manual_seed(0)
    model = build_model("small-cnn", 2)
    config = FLConfig(rounds=1, seed=3, train=TrainConfig(epochs=3, batch_size=8, lr=0.1))
    strategy = strategy_named("fedavg", model, config)
    clients = [_images(0, 16), _images(1, 16)]      # each client holds one class only
    test = ImageSet(torch.cat([_images(0, 8).images, _images(1, 8).images]),
                    torch.cat([torch.zeros(8), torch.ones(8)]).long())
    return Evaluator(test, None, clients, 2, np.array([16, 16]), strategy, fine_tune)


def test_fine_tuning_personalises_each_client_to_its_own_class_and_repeats():
    evaluator = _evaluator(fine_tune=True)
    record = RoundRecord(1, 0.0, 0.0, 2, 2)
    evaluator.evaluate(record, {})
    # a client holding one class, fine-tuned on it, predicts that class: on its own mix
    # (that class only) it scores 1; on the balanced test set, one class of two
    assert record.personalised_own_mix_accuracy == 1.0
    assert record.personalised_accuracy == 0.5
    # the global model's own-mix score is its per-class accuracy weighted by each mix
    per_class = np.array(record.per_class_accuracy)
    assert record.global_own_mix_accuracy == np.mean(per_class)
    again = RoundRecord(1, 0.0, 0.0, 2, 2)
    evaluator.evaluate(again, {})
    assert again.personalised_accuracy == record.personalised_accuracy


def test_without_fine_tuning_or_at_an_unscored_round_there_is_no_personalised_score():
    record = RoundRecord(1, 0.0, 0.0, 2, 2)
    _evaluator(fine_tune=False).evaluate(record, {})
    assert np.isnan(record.personalised_accuracy)
    skipped = RoundRecord(1, 0.0, 0.0, 2, 2)
    _evaluator(fine_tune=True).evaluate(skipped, None)
    assert np.isnan(skipped.personalised_own_mix_accuracy)
    assert np.isfinite(skipped.global_own_mix_accuracy)


def test_a_segmentation_validation_set_gets_its_own_miou_by_hand():
    """A model that calls every pixel background, on masks half background and half
    class 1: pixel accuracy 1/2; IoU 1/2 for background and 0 for class 1, so mIoU 1/4
    (the column a segmentation study tunes on). A classification run has none."""
    torch.manual_seed(0)
    model = build_model("seg-unet", 2, {"dim": 8})
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([1.0, 0.0]))
    masks = torch.zeros((4, 8, 8), dtype=torch.long)
    masks[:, :, 4:] = 1
    tiles = ImageSet(torch.randn((4, 3, 8, 8)), masks)
    config = FLConfig(rounds=1, seed=3, train=TrainConfig(epochs=1, batch_size=4, lr=0.1))
    evaluator = Evaluator(tiles, tiles, [tiles], 2, np.array([128, 128]),
                          strategy_named("fedavg", model, config))
    record = RoundRecord(1, 0.0, 0.0, 1, 1)
    evaluator.evaluate(record, None)
    assert (record.val_accuracy, record.val_miou, record.miou) == (0.5, 0.25, 0.25)
    classifying = _evaluator(fine_tune=False)
    classifying.validation_data = classifying.test_data
    plain = RoundRecord(1, 0.0, 0.0, 2, 2)
    classifying.evaluate(plain, None)
    assert np.isfinite(plain.val_accuracy) and np.isnan(plain.val_miou)
