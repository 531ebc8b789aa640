"""DMR, the dual-factor schedule (docs/safe-method.md, DMR)."""

from __future__ import annotations

import math


def progress(round_index: int, planned_rounds: int) -> float:
    """p = min(t / (T_r - 1), 1), with t counted from 0 for the first round."""
    t = round_index - 1
    return min(t / max(planned_rounds - 1, 1), 1.0) if t > 0 else 0.0


def local_factor(round_index: int, planned_rounds: int) -> float:
    """s(t) = (1 - cos(pi p)) / 2: 0 -> 1 (keep local knowledge later in training)."""
    return (1.0 - math.cos(math.pi * progress(round_index, planned_rounds))) / 2.0


def global_factor(round_index: int, planned_rounds: int) -> float:
    """g(t) = 1 - s(t): 1 -> 0."""
    return 1.0 - local_factor(round_index, planned_rounds)
