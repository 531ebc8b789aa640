"""The segmentation variant of geo-synthetic: per-pixel labels from the MODIS grid under the
tile's footprint, plus cloud masks.

A tile spans ``cells`` x ``cells`` land-cover cells (0.05 deg, about 5.5 km each), each
cell upsampled to a block of pixels; clouds are fractal-noise blobs covering a random
fraction of the tile drawn around the climatological cloud probability there.
"""

from __future__ import annotations

import numpy as np

from .acquisition import cloud_probability
from .landcover import CLOUD, SCENE_CLASSES, scene_at, scene_patch
from .tiles import fractal_noise

CELLS = 8


def label_maps(lat_deg: np.ndarray, lon_deg: np.ndarray, size: int,
               rng: np.random.Generator, clouds: bool = True) -> np.ndarray:
    """(n, size, size) scene classes (``CLOUD`` where a cloud hides the ground)."""
    block = int(np.ceil(size / CELLS))
    maps = np.empty((len(lat_deg), size, size), dtype=np.int64)
    for i, (lat, lon) in enumerate(zip(lat_deg, lon_deg)):
        patch = scene_patch(float(lat), float(lon), CELLS)
        maps[i] = np.kron(patch, np.ones((block, block), dtype=patch.dtype))[:size, :size]
    if clouds:
        p = cloud_probability(np.asarray(lat_deg), scene_at(lat_deg, lon_deg))
        cover = np.clip(rng.normal(p, 0.25), 0.0, 1.0)
        field = fractal_noise(len(maps), size, 2.4, rng)
        ranked = np.sort(field.reshape(len(maps), -1), axis=1)
        k = np.clip(((1.0 - cover) * size * size).astype(int), 0, size * size - 1)
        threshold = np.where(cover > 0, ranked[np.arange(len(maps)), k], np.inf)
        maps = np.where(field > threshold[:, None, None], CLOUD, maps)
    return maps


def class_rich_positions(per_class: int, rng: np.random.Generator, candidates: int = 20000,
                         clouds: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Places (lat, lon) whose footprints hold each scene class the most: ``per_class``
    places per class, for test sets and the SES (a uniform draw would miss rare classes)."""
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, candidates)))  # uniform on the sphere
    lon = rng.uniform(-180.0, 180.0, candidates)
    land = np.stack([scene_patch(a, b, CELLS) for a, b in zip(lat, lon)])
    chosen: list[int] = []
    classes = [c for c in range(len(SCENE_CLASSES)) if c != CLOUD]
    for c in classes:
        share = (land == c).mean(axis=(1, 2))
        taken = set(chosen)
        order = [i for i in np.argsort(-share, kind="stable") if i not in taken]
        chosen += order[:per_class]
    if clouds:  # cloud scenes: any place (clouds are drawn on top later)
        chosen += [int(i) for i in rng.choice(candidates, per_class, replace=False)]
    idx = np.array(chosen)
    return lat[idx], lon[idx]
