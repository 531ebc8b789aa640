"""Client training sets whose images are built when a job uses them, not all at once.

A constellation of thousands of satellites images more tiles than fit in memory, but what a
client trains on is fixed by a small recipe (its labels and sun elevations, the image size,
its seeded stream). ``LazyImageSet`` keeps the recipe and the labels; its images come from
the recipe on first use and stay in a byte-bounded, least-recently-used ``ImageCache``.
Peak memory then follows the clients training at once (plus the cache's budget), not the
fleet. Labels are held eagerly, so sizes, class counts, partitions and imbalance factors
need no image.

A recipe is a picklable callable; a pickled ``LazyImageSet`` carries the recipe and labels
only (never cached images), so a worker process or a Ray actor receives every client's data
in a few bytes and builds a client's images itself, identical to what this process would
build (the recipe decides them, not the order of use).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np
import torch

from .datasets import ImageSet

CACHE_BYTES = 128 << 20   # images of recently used clients kept per process


class ImageCache:
    """Image tensors by key, at most ``budget`` bytes; the least recently used go first. A
    set larger than the whole budget is returned without being kept."""

    def __init__(self, budget: int = CACHE_BYTES):
        self.budget, self.held = budget, 0
        self._sets: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0   # how many times a recipe ran (misses), for tests and benchmarks

    def get(self, key: str, build: Callable[[], torch.Tensor]) -> torch.Tensor:
        with self._lock:
            if key in self._sets:
                self._sets.move_to_end(key)
                return self._sets[key]
        images = build()
        size = images.element_size() * images.nelement()
        with self._lock:
            self.builds += 1
            if size <= self.budget and key not in self._sets:
                self._sets[key] = images
                self.held += size
                while self.held > self.budget:
                    _, dropped = self._sets.popitem(last=False)
                    self.held -= dropped.element_size() * dropped.nelement()
        return images

    def __len__(self) -> int:
        return len(self._sets)

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()
            self.held = 0


PROCESS_CACHE = ImageCache()


class LazyImageSet:
    """An ``ImageSet`` whose labels are held and whose images are built from ``recipe`` (a
    picklable callable returning the (N, 3, S, S) float32 tensor) when first used. ``key``
    names the content: two sets with the same key have the same images."""

    foreground: torch.Tensor | None = None  # no generator's ground truth (ImageSet's)

    def __init__(self, labels: torch.Tensor, recipe: Callable[[], torch.Tensor], key: str,
                 cache: ImageCache | None = None):
        self.labels, self.recipe, self.key = labels, recipe, key
        self.cache = cache if cache is not None else PROCESS_CACHE

    @property
    def images(self) -> torch.Tensor:
        return self.cache.get(self.key, self.recipe)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "LazyImageSet":
        """Still lazy: the subset's recipe builds the parent's images and takes rows."""
        index = np.asarray(index, dtype=np.int64)
        digest = _digest(index)
        return LazyImageSet(self.labels[torch.as_tensor(index)], _Rows(self, index),
                            f"{self.key}[{digest}]", self.cache)

    def class_counts(self, classes: int) -> np.ndarray:
        labels = self.labels.numpy().ravel()
        return np.bincount(labels[labels >= 0], minlength=classes)[:classes]

    def materialise(self) -> ImageSet:
        return ImageSet(self.images, self.labels)

    def __getstate__(self) -> dict:
        # never ship cached images: the receiver builds them from the recipe
        return {"labels": self.labels, "recipe": self.recipe, "key": self.key}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, state["labels"], state["recipe"], state["key"])

    def __repr__(self) -> str:
        return f"LazyImageSet({len(self)} images, key={self.key[:12]})"


class _Rows:
    """Rows ``index`` of another set's images (a picklable recipe)."""

    def __init__(self, parent: LazyImageSet, index: np.ndarray):
        self.parent, self.index = parent, index

    def __call__(self) -> torch.Tensor:
        return self.parent.images[torch.as_tensor(self.index)]


def _digest(index: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(index).tobytes()).hexdigest()[:16]
