"""Evaluation metrics: top-1, balanced and per-class accuracy, many/medium/few-shot groups,
and mIoU for segmentation."""

from __future__ import annotations

import numpy as np


def shot_groups(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Classes ranked by training frequency and cut into thirds: many, medium, few (the
    minority). Ties keep class order, so the split is deterministic."""
    order = np.argsort(-np.asarray(train_counts), kind="stable")
    thirds = np.array_split(order, 3)
    return {"many": thirds[0], "medium": thirds[1], "few": thirds[2]}


def classification_report(predicted: np.ndarray, labels: np.ndarray, classes: int,
                          train_counts: np.ndarray | None = None) -> dict:
    correct = predicted == labels
    per_class = np.array([correct[labels == c].mean() if np.any(labels == c) else np.nan
                          for c in range(classes)])
    report = {"accuracy": float(correct.mean()),
              "balanced_accuracy": float(np.nanmean(per_class)),
              "per_class_accuracy": per_class.tolist()}
    if train_counts is not None:
        for name, group in shot_groups(train_counts).items():
            report[f"{name}_shot_accuracy"] = float(np.nanmean(per_class[group])) \
                if len(group) else float("nan")
    return report


def mix_weighted_accuracy(per_class_accuracy: np.ndarray, class_counts: np.ndarray) -> float:
    """Accuracy on a client's own class mix: sum_c p(c) acc(c), with p the client's training
    class distribution and acc(c) the per-class accuracy on the balanced test set. This is
    the expected accuracy on test data drawn like the client's own, which is what a
    personalised model (FAU) is for; the balanced test set alone hides that benefit."""
    counts = np.asarray(class_counts, dtype=np.float64)
    accuracy = np.asarray(per_class_accuracy, dtype=np.float64)
    seen = (counts > 0) & np.isfinite(accuracy)
    if not seen.any():
        return float("nan")
    return float(np.sum(counts[seen] * accuracy[seen]) / counts[seen].sum())


def mean_own_mix_accuracy(per_class_accuracies: list, client_counts: list) -> float:
    """The mean over clients of ``mix_weighted_accuracy``: client i's model (its own
    per-class accuracies, or the global model's for every client) scored on client i's
    class mix. NaN when no client has a defined score."""
    scores = [mix_weighted_accuracy(a, c) for a, c in zip(per_class_accuracies, client_counts)]
    scores = [s for s in scores if np.isfinite(s)]
    return float(np.mean(scores)) if scores else float("nan")


def imbalance_factor(class_counts: np.ndarray) -> float:
    """Largest over smallest class count (inf when a class has no sample at all)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return float("inf") if counts.min() == 0 else float(counts.max() / counts.min())


def mean_iou(predicted: np.ndarray, labels: np.ndarray, classes: int,
             ignore_index: int = -1) -> float:
    """Mean over classes present in either map of |P ∩ L| / |P ∪ L|."""
    valid = labels != ignore_index
    p, t = predicted[valid], labels[valid]
    ious = []
    for c in range(classes):
        union = np.sum((p == c) | (t == c))
        if union:
            ious.append(np.sum((p == c) & (t == c)) / union)
    return float(np.mean(ious)) if ious else float("nan")


def segmentation_report(predicted: np.ndarray, labels: np.ndarray, classes: int,
                        train_counts: np.ndarray | None = None) -> dict:
    """Pixel accuracy ("accuracy"), per-class pixel recall, shot groups over those, and mIoU."""
    valid = labels != -1
    report = classification_report(predicted[valid], labels[valid], classes, train_counts)
    report["miou"] = mean_iou(predicted, labels, classes)
    return report


def evaluate(predicted: np.ndarray, labels: np.ndarray, classes: int,
             train_counts: np.ndarray | None = None) -> dict:
    """Classification or segmentation metrics, by the shape of the labels."""
    if labels.ndim > 1:
        return segmentation_report(predicted, labels, classes, train_counts)
    return classification_report(predicted, labels, classes, train_counts)
