"""Class-defining small objects for the synthetic ``geo-synthetic-objects`` dataset: one
shape family and one appearance per class, painted on land-cover tiles so that the object
covers an exact, chosen share of each tile.

A class's shape is the superlevel set of a score field over the tile (an elongated ellipse
for a ship, a few equal discs for storage tanks, ...). The ``k`` highest-scoring pixels are
the object, so its area is exactly ``k = round(fraction * S * S)`` pixels at every tile size
while its form stays the class's. The objects are drawn, not detected: nothing here is a
real observation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .tiles import fractal_noise

OBJECT_CLASSES = ("ship", "aircraft", "storage_tank", "cloud_cell", "building",
                  "solar_farm", "pivot_field", "bridge", "vehicle_convoy", "roundabout")
MIN_OBJECT_PIXELS = 24  # below this a convoy's vehicles or a tank farm's discs lose their form

# Surface reflectance (R, G, B) of each class's object.
OBJECT_COLOUR = np.array([
    (0.80, 0.80, 0.78), (0.70, 0.72, 0.76), (0.88, 0.88, 0.85), (0.95, 0.95, 0.96),
    (0.62, 0.24, 0.18), (0.10, 0.14, 0.32), (0.25, 0.55, 0.15), (0.28, 0.28, 0.30),
    (0.85, 0.75, 0.10), (0.75, 0.72, 0.65)])


def object_pixels(fraction: float, size: int) -> int:
    """Pixels an object covers in a ``size`` x ``size`` tile."""
    return int(round(fraction * size * size))


# -- shapes: score fields in the object's own frame (u along its axis), scaled by r --------
# r = sqrt(k) pixels; every outline at score -1 has an area of about r^2, so the top-k
# pixels keep the designed form. Multi-part shapes take the best score over their parts.

def _ellipse(u, v, a, b):
    return -np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _box(u, v, a, b):
    return -np.maximum(np.abs(u) / a, np.abs(v) / b)


def _parts(u, v, offsets, part):
    """Best score over parts at ``offsets`` (n, m, 2); NaN offsets mark unused parts."""
    best = np.full(u.shape, -np.inf)
    for j in range(offsets.shape[1]):
        du, dv = offsets[:, j, 0, None, None], offsets[:, j, 1, None, None]
        score = part(u - du, v - dv)
        best = np.where(np.isnan(du), best, np.maximum(best, score))
    return best


def _counts(n, low, high, rng):
    return rng.integers(low, high + 1, n)


def _ship(u, v, r, rng):
    return _ellipse(u, v, 1.26 * r, 0.25 * r)


def _aircraft(u, v, r, rng):
    fuselage = _ellipse(u, v, 0.9 * r, 0.16 * r)
    wings = _ellipse(u - 0.15 * r, v, 0.16 * r, 0.85 * r)
    tail = _ellipse(u + 0.75 * r, v, 0.1 * r, 0.35 * r)
    return np.maximum(np.maximum(fuselage, wings), tail)


def _grid_offsets(m, spacing, columns):
    """Offsets (n, max m, 2) of m parts on a grid of ``columns`` columns, NaN where unused."""
    j = np.arange(m.max())
    col, row = j % columns, j // columns
    off = np.stack(np.broadcast_arrays((col - (columns - 1) / 2) * spacing[:, None],
                                       (row - 0.5) * spacing[:, None]), axis=-1)
    return np.where((j[None, :] < m[:, None])[..., None], off, np.nan)


def _storage_tank(u, v, r, rng):
    m = _counts(len(u), 3, 6, rng)
    rho = r / np.sqrt(m * np.pi)
    offsets = _grid_offsets(m, 2.4 * rho, 3)
    return _parts(u, v, offsets, lambda du, dv: -np.hypot(du, dv) / rho[:, None, None])


def _cloud_cell(u, v, r, rng):
    lumps = fractal_noise(len(u), u.shape[-1], 2.0, rng)
    return -np.hypot(u, v) / (0.56 * r) + 0.3 * lumps


def _building(u, v, r, rng):
    m = _counts(len(u), 2, 4, rng)
    half = 0.5 * r / np.sqrt(m)
    offsets = _grid_offsets(m, 2.6 * half, 2)
    return _parts(u, v, offsets, lambda du, dv: _box(du, dv, half[:, None, None],
                                                     half[:, None, None]))


def _solar_farm(u, v, r, rng):
    return _box(u, v, 0.71 * r, 0.35 * r)


def _pivot_field(u, v, r, rng):
    return -np.hypot(u, v) / (0.56 * r)


def _bridge(u, v, r, rng):
    return _box(u, v, 1.6 * r, 0.16 * r)


def _vehicle_convoy(u, v, r, rng):
    m = _counts(len(u), 4, 7, rng)
    a = r / np.sqrt(2 * m)
    j = np.arange(m.max())
    offsets = np.stack(np.broadcast_arrays((j - (m[:, None] - 1) / 2) * 3 * a[:, None],
                                           0.0 * a[:, None]), axis=-1)
    offsets = np.where((j[None, :] < m[:, None])[..., None], offsets, np.nan)
    return _parts(u, v, offsets, lambda du, dv: _box(du, dv, a[:, None, None],
                                                     a[:, None, None] / 2))


def _roundabout(u, v, r, rng):
    radius, width = 0.6 * r, 0.133 * r
    return -np.abs(np.hypot(u, v) - radius) / width


SHAPES: tuple[Callable, ...] = (_ship, _aircraft, _storage_tank, _cloud_cell, _building,
                                _solar_farm, _pivot_field, _bridge, _vehicle_convoy,
                                _roundabout)


def _pattern(c: int, u: np.ndarray, v: np.ndarray, score: np.ndarray, r: float,
             rng: np.random.Generator) -> np.ndarray:
    """A class's texture inside the object, as a brightness factor (n, S, S)."""
    if c == 0:    # a darker deck line along the hull
        return np.where(np.abs(v) < 0.05 * r, 0.6, 1.0)
    if c == 2:    # domed tanks: bright centres, darker rims
        return 1.0 + 0.3 * np.clip(score, -1.0, 0.0)
    if c == 3:    # soft, uneven cloud tops
        return 1.0 - 0.08 * np.abs(fractal_noise(len(u), u.shape[-1], 1.5, rng))
    if c == 4:    # pitched roofs: one side in shade
        return np.where(v > 0, 0.8, 1.0)
    if c == 5:    # panel rows
        return np.where(np.sin(2 * np.pi * v / (0.14 * r)) > 0, 1.5, 1.0)
    if c == 6:    # crop sectors
        return 1.0 + 0.2 * np.cos(3 * np.arctan2(v, u))
    if c == 7:    # lighter kerbs along the deck
        return np.where(np.abs(v) > 0.08 * r, 1.4, 1.0)
    return np.ones_like(u)


def paint_objects(ground: np.ndarray, classes: np.ndarray, fraction: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``ground`` (n, 3, S, S) reflectance with one object of class ``classes[i]`` on tile i,
    covering exactly ``object_pixels(fraction, S)`` pixels; returns the painted tiles and the
    (n, S, S) boolean foreground."""
    n, size = len(ground), ground.shape[-1]
    k = object_pixels(fraction, size)
    if not MIN_OBJECT_PIXELS <= k < size * size:
        raise ValueError(f"an object of {k} pixels does not fit a {size} x {size} tile")
    r = float(np.sqrt(k))
    y, x = np.mgrid[0:size, 0:size].astype(float) + 0.5
    centre = rng.uniform(0.3 * size, 0.7 * size, (n, 2))
    angle = rng.uniform(0.0, np.pi, n)[:, None, None]
    dx, dy = x[None] - centre[:, 0, None, None], y[None] - centre[:, 1, None, None]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    painted, foreground = ground.copy(), np.zeros((n, size, size), dtype=bool)
    for c in range(len(OBJECT_CLASSES)):
        idx = np.flatnonzero(classes == c)
        if idx.size == 0:
            continue
        score = SHAPES[c](u[idx], v[idx], r, rng)
        score = score + 1e-6 * rng.random(score.shape)   # ties broken by the seed
        flat = score.reshape(idx.size, -1)
        top = np.argpartition(-flat, k - 1, axis=1)[:, :k]
        mask = np.zeros_like(flat, dtype=bool)
        np.put_along_axis(mask, top, True, axis=1)
        mask = mask.reshape(idx.size, size, size)
        colour = OBJECT_COLOUR[c][None] * rng.uniform(0.85, 1.15, (idx.size, 1))
        colour = colour + rng.normal(0.0, 0.03, (idx.size, 3))
        if c == 8:  # vehicles come in many paints
            colour = rng.uniform(0.3, 0.95, (idx.size, 3))
        shade = _pattern(c, u[idx], v[idx], score, r, rng)
        look = np.clip(colour[:, :, None, None] * shade[:, None], 0.02, 1.0)
        painted[idx] = np.where(mask[:, None], look, ground[idx])
        foreground[idx] = mask
    return painted, foreground
