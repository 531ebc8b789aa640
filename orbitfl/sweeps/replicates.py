"""Replicates of a sweep's points: how many seeded runs each point (a *group* of swept
values) gets, with which seeds, and the one-line errors for a sweep file's ``replicates:``
and ``seeds:`` keys.

One seed answers nothing when the learning noise (which clients a round happens to
aggregate) is as large as the effect swept; replicates give each group a mean with an
interval. The seed rule:

- ``replicates: N``: replicate 0 keeps the point's own seed (so ``replicates: 1`` is the
  sweep without replicates, run for run); replicate k >= 1 runs with
  ``SeedSequence(seed, spawn_key=(k,)).generate_state(1, uint64)[0] >> 1`` (a 63-bit seed,
  as the tables store int64), skipping any repeat. Every group shares the base's seed, so
  replicate k of every group uses the same seed: paired comparisons by replicate use
  common random numbers.
- ``seeds: [..]``: replicate k of every group runs with the k-th seed given.
- neither, with ``seed`` among the swept parameters: the swept seeds are the replicates of
  the group formed by the other values (a study's ``seed: [1, 2, 3]``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from orbitfl.core.errors import InputError, short
from orbitfl.core.limits import MAX_REPLICATES, MAX_SWEEP_POINTS

MAX_SEED = 2**63 - 1  # the scenario's seed is an int64


@dataclasses.dataclass(frozen=True)
class Replicates:
    """Runs per point: ``count`` derived seeds, or the ``seeds`` given explicitly.
    ``given`` says the sweep file asked for them (the point's seed is then set per run)."""

    count: int = 1
    seeds: tuple[int, ...] | None = None
    given: bool = False

    def seeds_for(self, point_seed: int) -> list[int]:
        """The seeds of one point's replicates, replicate 0 first."""
        if self.seeds is not None:
            return list(self.seeds)
        return derived_seeds(point_seed, self.count)


def derived_seeds(seed: int, count: int) -> list[int]:
    """``count`` distinct seeds: ``seed`` itself, then one per replicate k >= 1 from
    numpy's SeedSequence (see the module's rule); the same for the same ``seed``."""
    seeds, used, k = [seed], {seed}, 1
    while len(seeds) < count:
        state = np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, np.uint64)
        candidate = int(state[0]) >> 1
        k += 1
        if candidate not in used:
            seeds.append(candidate)
            used.add(candidate)
    return seeds


def read_replicates(document: dict, path: str | Path, parameters: dict[str, list]
                    ) -> Replicates:
    """The ``replicates:`` or ``seeds:`` of a sweep file, checked (one-line errors naming
    the file and the key)."""
    has_count, has_seeds = "replicates" in document, "seeds" in document
    if has_count and has_seeds:
        raise InputError(f"{path}: give either replicates (seeds derived from each point's "
                         "seed) or seeds (an explicit list), not both")
    if (has_count or has_seeds) and "seed" in parameters:
        key = "replicates" if has_count else "seeds"
        raise InputError(f"{path}: parameters.seed: the seeds come from {key}; sweep seed "
                         f"or give {key}, not both")
    if has_count:
        count = document["replicates"]
        if not _is_int(count):
            raise InputError(f"{path}: replicates: expected a whole number of runs per point, "
                             f"got {short(count)}")
        _check_count(count, path, "replicates")
        return Replicates(count=count, given=True)
    if has_seeds:
        return Replicates(count=len(seeds := _seed_list(document["seeds"], path)),
                          seeds=seeds, given=True)
    return Replicates()


def _seed_list(seeds: Any, path: str | Path) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise InputError(f"{path}: seeds: expected a non-empty list of integer seeds, got "
                         f"{short(seeds)}")
    _check_count(len(seeds), path, "seeds")
    for i, seed in enumerate(seeds):
        if not _is_int(seed):
            raise InputError(f"{path}: seeds[{i}]: expected an integer seed, got {short(seed)}")
        if not 0 <= seed <= MAX_SEED:
            raise InputError(f"{path}: seeds[{i}]: a seed lies between 0 and 2**63 - 1, "
                             f"got {short(seed)}")
    duplicate = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if duplicate is not None:
        raise InputError(f"{path}: seeds: {duplicate} is given twice (replicates need "
                         "distinct seeds)")
    return tuple(seeds)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(count: int, path: str | Path, key: str) -> None:
    if count < 1:
        raise InputError(f"{path}: {key}: expected at least 1 run per point, got {count}")
    if count > MAX_REPLICATES:
        raise InputError(f"{path}: {key}: {count} runs per point exceed the limit of "
                         f"{MAX_REPLICATES:,}")


def check_point_count(parameters: dict[str, list], mode: str, replicates: Replicates,
                      path: str | Path) -> int:
    """The number of runs (groups x replicates), counted before any is built; an absurd
    total is refused at once (a small file may describe 10**12 points)."""
    lengths = [len(v) for v in parameters.values()]
    groups = math.prod(lengths) if mode == "grid" else lengths[0]
    total = groups * replicates.count
    if total > MAX_SWEEP_POINTS:
        shape = " x ".join(map(str, lengths if mode == "grid" else [groups]))
        per = f" x {replicates.count} replicates" if replicates.count > 1 else ""
        raise InputError(f"{path}: {shape}{per} = {total:,} runs exceed the limit of "
                         f"{MAX_SWEEP_POINTS:,} runs a sweep may hold")
    return total


def group_key(values: dict[str, Any]) -> str:
    """The group a point belongs to: its swept values other than ``seed``, as
    ``path=value`` pairs (mappings and lists as one line of YAML); ``base`` when only the
    seed is swept."""
    pairs = [f"{k}={yaml_line(v)}" for k, v in values.items() if k != "seed"]
    return ", ".join(pairs) if pairs else "base"


def yaml_line(value: Any) -> str:
    """A swept value as text: mappings and lists as one line of YAML."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=1_000).strip()
    return str(value)
