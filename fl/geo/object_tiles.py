"""Tiles of the synthetic ``geo-synthetic-objects`` dataset: a cluttered land-cover
background (the MODIS grid under the tile's footprint, several scene classes a tile) with
one class-defining object on it, seen with the Sun where and when the tile was taken.

Backgrounds carry no cloud cover here: cloud cells are one of the object classes, and a
cloud deck over the tile would hide the object the label names. Rendered sets are cached on
disk by a hash of everything that decides them, like the scene tiles.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from orbitfl.core.cache_dir import entry_path, read_entry, write_entry

from .objects import paint_objects
from .segmentation import label_maps
from .tiles import observe, surface_maps

OBJECT_RENDER_VERSION = 1  # bump when object tiles change their output


def object_tiles(classes: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                 sun_elevation_deg: np.ndarray, size: int, fraction: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, S, S) float32 reflectance and (n, S, S) uint8 masks (0 background, c + 1 the
    object of class c) for tiles centred on (lat, lon)."""
    ground = surface_maps(label_maps(lat_deg, lon_deg, size, rng, clouds=False), rng)
    painted, foreground = paint_objects(ground, np.asarray(classes), fraction, rng)
    images = observe(painted, sun_elevation_deg, rng)
    masks = np.where(foreground, np.asarray(classes, dtype=np.uint8)[:, None, None] + 1, 0)
    return images, masks.astype(np.uint8)


def cached_object_tiles(classes: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                        sun_elevation_deg: np.ndarray, size: int, fraction: float,
                        stream: tuple, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """``object_tiles`` seeded by the hash of its inputs, read from the cache when an entry
    with a matching checksum and shape is there."""
    key = hashlib.sha256()
    for array, dtype in ((classes, np.int64), (lat_deg, np.float64), (lon_deg, np.float64),
                         (sun_elevation_deg, np.float64)):
        key.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
    key.update(repr((size, float(fraction), stream, OBJECT_RENDER_VERSION)).encode())
    path = None if cache_dir is None else entry_path(Path(cache_dir), "object-tiles",
                                                     key.hexdigest())
    n = len(classes)
    if path is not None:
        cached = read_entry(path, lambda payload: _checked(payload, n, size))
        if cached is not None:
            return cached
    rng = np.random.default_rng(int.from_bytes(key.digest()[:8], "little"))
    images, masks = object_tiles(classes, lat_deg, lon_deg, sun_elevation_deg, size,
                                 fraction, rng)
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, images=images, masks=masks)
        write_entry(path, buffer.getvalue())
    return images, masks


def _checked(payload: bytes, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The tiles and masks of a cache entry, if they have the expected shapes and types."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as entry:
        images, masks = entry["images"], entry["masks"]
    if (images.shape != (n, 3, size, size) or images.dtype != np.float32
            or masks.shape != (n, size, size) or masks.dtype != np.uint8
            or not np.isfinite(images).all()):
        raise ValueError(f"tiles {images.shape} and masks {masks.shape}, not {n} of {size} px")
    return images, masks
