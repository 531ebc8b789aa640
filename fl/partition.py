"""Class-imbalance and client partitioners (docs/safe-method.md, protocol).

All take a numpy ``Generator`` so that the scenario seed decides every split.
"""

from __future__ import annotations

import numpy as np

from orbitfl.core.errors import InputError


def long_tail_counts(n_max: int, classes: int, imbalance_factor: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Per-class counts ``n_c = floor(n_max * IF^(-r/(C-1)))``, r the class's rank in a
    seeded random order (so which classes are rare depends on the seed, not on the label)."""
    ranks = rng.permutation(classes)
    exponent = ranks / max(classes - 1, 1)
    return np.floor(n_max * imbalance_factor ** (-exponent)).astype(np.int64)


def dirichlet_partition(labels: np.ndarray, clients: int, alpha: float,
                        rng: np.random.Generator, min_per_client: int = 10,
                        max_tries: int = 1000) -> list[np.ndarray]:
    """Split sample indices over clients with Dirichlet(alpha) class proportions.

    Redraws until every client holds at least ``min_per_client`` samples (the usual
    protocol); small alpha gives each client few dominant classes.
    """
    if len(labels) < clients * min_per_client:
        raise InputError(f"{len(labels)} samples cannot give {clients} clients "
                         f"{min_per_client} each")
    classes = np.unique(labels)
    for _ in range(max_tries):
        shards: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha)))[:-1] * len(idx)).astype(int)
            for client, part in enumerate(np.split(idx, cuts)):
                shards[client].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(p) for p in parts) >= min_per_client:
            return parts
    raise InputError(f"no Dirichlet(alpha={alpha}) split gave all {clients} clients "
                     f"{min_per_client} samples in {max_tries} draws; raise alpha or the data")


def iid_partition(n_samples: int, clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniformly random, equal-size (within one sample) split."""
    return [np.sort(p) for p in np.array_split(rng.permutation(n_samples), clients)]


def pathological_partition(labels: np.ndarray, clients: int, classes_per_client: int,
                           rng: np.random.Generator) -> list[np.ndarray]:
    """Each client holds (about) ``classes_per_client`` classes (McMahan et al., 2017): the
    samples, sorted by class, are cut into ``clients x classes_per_client`` shards and every
    client takes that many shards at random."""
    order = np.argsort(labels, kind="stable")
    order = np.concatenate([rng.permutation(order[labels[order] == c])
                            for c in np.unique(labels)])
    shards = np.array_split(order, clients * classes_per_client)
    picks = rng.permutation(len(shards)).reshape(clients, classes_per_client)
    return [np.sort(np.concatenate([shards[k] for k in row])) for row in picks]
