"""The mission's evaluator: the global model on the balanced test (and validation) set and
on each client's own class mix, and the clients' personalised models on both.

Personalised models are SAFE's (FAU keeps one per client) or, for a strategy that keeps
none, the global model fine-tuned on each client's own data for one local job with the
client's own training options (``fl.schedule.fine_tune``): the fair baseline for a
personalised score (FedAvg + local fine-tuning). Both are scored alike, so a personalised
gain is never a gain of the global model measured on another distribution: the global
model's own-mix score sits beside them.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.metrics import evaluate as metrics
from orbitfl.fl.metrics import mean_own_mix_accuracy
from orbitfl.fl.strategy import Strategy
from orbitfl.fl.training import LocalTrainer, predict


class Evaluator:
    """Scores a round record in place (``evaluate``); ``fine_tune``: personalise a strategy
    without personal models by fine-tuning the global model on each client's data."""

    def __init__(self, test_data: ImageSet, validation_data: ImageSet | None,
                 client_data: Sequence[ImageSet], classes: int, train_counts: np.ndarray,
                 strategy: Strategy, fine_tune: bool = False):
        self.test_data, self.validation_data = test_data, validation_data
        self.client_data, self.classes, self.train_counts = client_data, classes, train_counts
        self.strategy, self.fine_tune = strategy, fine_tune
        self._tuner: LocalTrainer | None = None

    def client_counts(self) -> list[np.ndarray]:
        return [d.class_counts(self.classes) for d in self.client_data]

    def evaluate(self, record, personal: dict[int, dict] | None) -> None:
        """Global-model metrics always; personalised ones when ``personal`` is not None
        (the clients' models, or {} to fine-tune when this evaluator does so)."""
        labels = self.test_data.labels.numpy()
        report = metrics(predict(self.strategy.global_model, self.test_data),
                         labels, self.classes, self.train_counts)
        record.accuracy = report["accuracy"]
        record.balanced_accuracy = report["balanced_accuracy"]
        record.per_class_accuracy = report["per_class_accuracy"]
        for group in ("many", "medium", "few"):
            setattr(record, f"{group}_shot_accuracy", report[f"{group}_shot_accuracy"])
        record.miou = report.get("miou", float("nan"))
        record.global_own_mix_accuracy = mean_own_mix_accuracy(
            [report["per_class_accuracy"]] * len(self.client_data), self.client_counts())
        if personal is not None:
            if not personal and self.fine_tune:
                personal = self.fine_tuned(record.round)
            record.personalised_accuracy, record.personalised_own_mix_accuracy = \
                self.personalised_accuracy(labels, personal)
        if self.validation_data is not None and len(self.validation_data):
            val = metrics(predict(self.strategy.global_model, self.validation_data),
                          self.validation_data.labels.numpy(), self.classes)
            record.val_accuracy = val["accuracy"]
            record.val_balanced_accuracy = val["balanced_accuracy"]
            record.val_miou = val.get("miou", float("nan"))  # tuning a segmentation study
        self.strategy.note_evaluation(record.round)

    def fine_tuned(self, round_index: int) -> dict[int, dict]:
        """Each client's copy of the global model after one local job on its own data (the
        strategy's training options, shuffled by the client's own seeded generator for the
        round after this one), as that client's personalised model."""
        if self._tuner is None:
            self._tuner = LocalTrainer(copy.deepcopy(self.strategy.global_model),
                                       self.strategy.config.train)
        start = self.strategy.global_model.state_dict()
        out = {}
        for client, data in enumerate(self.client_data):
            self._tuner.model.load_state_dict(start)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(round_index * 100_003 + client)
                self._tuner.train(data, self.strategy.client_generator(round_index + 1, client))
            out[client] = {k: v.detach().clone() for k, v in
                           self._tuner.model.state_dict().items()}
        return out

    def personalised_accuracy(self, labels: np.ndarray,
                              personal: dict[int, dict]) -> tuple[float, float]:
        """Mean accuracy of the clients' personalised models on the balanced test set and
        on each client's own class mix (the mix-weighted per-class accuracy: what
        personalisation is for, and what the balanced set hides)."""
        if not personal:
            return float("nan"), float("nan")
        worker = self.strategy.worker
        balanced, per_class, counts = [], [], []
        for client, state in personal.items():
            worker.load_state_dict(state)
            report = metrics(predict(worker, self.test_data), labels, self.classes)
            balanced.append(report["accuracy"])
            per_class.append(report["per_class_accuracy"])
            counts.append(self.client_data[client].class_counts(self.classes))
        return float(np.mean(balanced)), mean_own_mix_accuracy(per_class, counts)
