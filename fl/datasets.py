"""The ``synthetic`` image-classification dataset: seeded class-conditional textures.

Each class has a colour and a few oriented sinusoidal gratings; every image draws a random
phase and translation (so memorising pixels does not work), brightness and colour jitter,
and pixel noise. A small CNN separates the classes well but not perfectly, which is what an
accuracy-vs-bytes study needs. (Orbit-driven imagery over real land cover comes with the
``geo-synthetic`` dataset.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from orbitfl.core.errors import InputError
from orbitfl.core.limits import MAX_IMAGE_BYTES, image_bytes

GRATINGS_PER_CLASS = 2


def require_image_memory(images: int, size: int, where: str, remedy: str,
                         masks: bool = False) -> None:
    """Images are held as float32 tensors (with int64 masks for segmentation): a data set
    that cannot fit ``MAX_IMAGE_BYTES`` is refused before any image is decoded or rendered,
    instead of exhausting the machine's memory halfway."""
    total = image_bytes(images, size, masks)
    if total > MAX_IMAGE_BYTES:
        raise InputError(f"{where}: {images} images of {size} x {size} take "
                         f"{total / 2**30:.3g} GiB in memory; at most "
                         f"{MAX_IMAGE_BYTES / 2**30:.3g} GiB: {remedy}")


@dataclass(frozen=True)
class ImageSet:
    """Images (N, 3, S, S) float32 and integer labels (N,). ``foreground`` (N, S, S) bool,
    where a generator knows it (``geo-synthetic-objects``): the pixels of each image's
    object, ground truth for diagnostics (ACE's mask against it); no model ever reads it."""

    images: torch.Tensor
    labels: torch.Tensor
    foreground: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "ImageSet":
        index_t = torch.as_tensor(index, dtype=torch.long)
        foreground = None if self.foreground is None else self.foreground[index_t]
        return ImageSet(self.images[index_t], self.labels[index_t], foreground)

    def class_counts(self, classes: int) -> np.ndarray:
        """Samples per class (pixels per class for segmentation masks; -1 is ignored)."""
        labels = self.labels.numpy().ravel()
        return np.bincount(labels[labels >= 0], minlength=classes)[:classes]


class TextureClasses:
    """The class definitions; the same seed always gives the same classes."""

    def __init__(self, classes: int, image_size: int, rng: np.random.Generator,
                 noise: float = 0.35):
        self.classes, self.size, self.noise = classes, image_size, noise
        self.colour = rng.uniform(0.25, 0.75, size=(classes, 3))
        self.frequency = rng.uniform(1.0, 4.0, size=(classes, GRATINGS_PER_CLASS))
        self.orientation = rng.uniform(0.0, np.pi, size=(classes, GRATINGS_PER_CLASS))
        self.amplitude = rng.uniform(0.15, 0.35, size=(classes, GRATINGS_PER_CLASS))
        self.channel_mix = rng.uniform(-1.0, 1.0, size=(classes, GRATINGS_PER_CLASS, 3))

    def render(self, labels: np.ndarray, rng: np.random.Generator) -> ImageSet:
        n, s = len(labels), self.size
        coords = np.arange(s, dtype=np.float64) / s
        y, x = np.meshgrid(coords, coords, indexing="ij")
        images = np.repeat(self.colour[labels][:, :, None, None], s, axis=2).repeat(s, axis=3)
        images = images * rng.uniform(0.8, 1.2, size=(n, 1, 1, 1))          # brightness
        images = images + rng.normal(0.0, 0.05, size=(n, 3, 1, 1))          # colour cast
        for g in range(GRATINGS_PER_CLASS):
            theta = self.orientation[labels, g] + rng.normal(0.0, 0.1, n)
            freq = self.frequency[labels, g] * rng.uniform(0.9, 1.1, n)
            phase = rng.uniform(0.0, 2 * np.pi, n)
            wave = np.sin(2 * np.pi * freq[:, None, None]
                          * (x * np.cos(theta)[:, None, None] + y * np.sin(theta)[:, None, None])
                          + phase[:, None, None])
            weight = self.amplitude[labels, g][:, None] * self.channel_mix[labels, g]
            images = images + weight[:, :, None, None] * wave[:, None]
        images = images + rng.normal(0.0, self.noise, size=images.shape)
        images = (images - 0.5) / 0.25
        return ImageSet(torch.as_tensor(images, dtype=torch.float32),
                        torch.as_tensor(labels, dtype=torch.long))


def labels_for_counts(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shuffled label vector with ``counts[c]`` samples of class c."""
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


@dataclass(frozen=True)
class FederatedData:
    """Per-client training sets, the balanced test set and the server's SES. A client's set
    may be a ``lazy_data.LazyImageSet`` (labels held, images built on first use): the
    histograms below read labels only."""

    clients: list[ImageSet]
    test: ImageSet
    classes: int
    ses: ImageSet | None = None
    class_names: tuple[str, ...] = ()
    # tuning's set: balanced and apart from test, SES and clients (data.validation_per_class)
    # or held out of each client's training data (data.validation_fraction)
    validation: ImageSet | None = None

    def client_histograms(self) -> np.ndarray:
        """(clients, classes) sample counts."""
        return np.stack([c.class_counts(self.classes) for c in self.clients])

    def train_class_counts(self) -> np.ndarray:
        return self.client_histograms().sum(axis=0)
