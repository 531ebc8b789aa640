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
