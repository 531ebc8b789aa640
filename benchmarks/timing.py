"""Shared by the benchmarks: timing that resists a noisy machine."""

from __future__ import annotations

import time
from typing import Callable


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Best wall time of a few repeats (the machine's noise only ever adds time)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)
