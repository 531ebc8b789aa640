"""Procedural image tiles per scene class: colour, texture and structure that differ per
class, intra-class variation, sensor noise, and illumination from the solar elevation.

Every generator works on a batch (numpy, seeded ``Generator``); textures are fractal noise
shaped in the Fourier domain. Reflectances are in [0, 1]; ``normalise`` maps them to the
network's input scale.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .landcover import SCENE_CLASSES

Images = np.ndarray  # (n, 3, size, size) float32 reflectance

# Mean surface reflectance (R, G, B) per class, from the usual look of true-colour imagery.
BASE_COLOUR = {
    "water": (0.05, 0.11, 0.22), "forest": (0.07, 0.20, 0.08),
    "shrub_savanna": (0.36, 0.32, 0.20), "grassland": (0.30, 0.44, 0.19),
    "cropland": (0.32, 0.40, 0.18), "wetland": (0.10, 0.22, 0.17),
    "urban": (0.42, 0.41, 0.42), "barren": (0.74, 0.58, 0.40),
    "snow_ice": (0.86, 0.90, 0.95), "cloud": (0.92, 0.92, 0.93),
}
CHANNEL_MEAN, CHANNEL_STD = 0.40, 0.25


def fractal_noise(n: int, size: int, beta: float | np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """(n, size, size) noise with power spectrum ~ 1/f^beta, zero mean, unit std."""
    white = rng.standard_normal((n, size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    beta = np.broadcast_to(np.asarray(beta, dtype=float), (n,))
    shaped = np.fft.rfft2(white) * f[None] ** (-beta[:, None, None] / 2.0)
    shaped[:, 0, 0] = 0.0
    field = np.fft.irfft2(shaped, s=(size, size))
    return field / (field.std(axis=(1, 2), keepdims=True) + 1e-9)


def _colour(name: str, n: int, rng: np.random.Generator, jitter: float = 0.04) -> np.ndarray:
    return np.clip(np.array(BASE_COLOUR[name])[None] + rng.normal(0, jitter, (n, 3)), 0, 1)


def _fill(colour: np.ndarray, size: int) -> np.ndarray:
    return np.repeat(colour[:, :, None, None], size, 2).repeat(size, 3)


def _modulate(images: np.ndarray, field: np.ndarray, amount: np.ndarray | float) -> np.ndarray:
    return images * (1.0 + np.asarray(amount).reshape(-1, 1, 1, 1) * field[:, None])


def _water(n, s, rng):
    img = _fill(_colour("water", n, rng, 0.02), s)
    img = _modulate(img, fractal_noise(n, s, 3.0, rng), 0.12)
    glint = rng.random(n) < 0.3  # specular sun glint on some tiles
    y, x = np.mgrid[0:s, 0:s] / s
    cx, cy = rng.random(n), rng.random(n)
    spot = np.exp(-((x[None] - cx[:, None, None]) ** 2 + (y[None] - cy[:, None, None]) ** 2) / 0.08)
    return img + (glint[:, None, None] * spot * 0.25)[:, None]


def _forest(n, s, rng):
    img = _fill(_colour("forest", n, rng, 0.02), s)
    canopy = fractal_noise(n, s, 0.8, rng)
    return _modulate(_modulate(img, canopy, 0.35), fractal_noise(n, s, 2.5, rng), 0.15)


def _shrub(n, s, rng):
    img = _fill(_colour("shrub_savanna", n, rng), s)
    shrubs = fractal_noise(n, s, 1.6, rng) > rng.uniform(0.3, 1.0, (n, 1, 1))
    dark = np.array(BASE_COLOUR["forest"])[None, :, None, None] * 1.2
    img = np.where(shrubs[:, None], dark, img)
    return _modulate(img, fractal_noise(n, s, 2.0, rng), 0.12)


def _grass(n, s, rng):
    img = _fill(_colour("grassland", n, rng), s)
    return _modulate(img, fractal_noise(n, s, 2.8, rng), 0.15)


def _crop(n, s, rng):
    """A patchwork of rectangular fields, each its own crop colour, with row stripes."""
    palette = np.array([(0.25, 0.42, 0.15), (0.55, 0.50, 0.25), (0.40, 0.30, 0.20),
                        (0.30, 0.50, 0.20), (0.60, 0.55, 0.35)])
    img = np.empty((n, 3, s, s))
    y, x = np.mgrid[0:s, 0:s]
    for i in range(n):
        cuts_x = np.sort(rng.integers(1, s, rng.integers(1, 4)))
        cuts_y = np.sort(rng.integers(1, s, rng.integers(1, 4)))
        field = np.searchsorted(cuts_x, x, side="right") * 7 + np.searchsorted(cuts_y, y,
                                                                                side="right")
        colours = palette[rng.integers(0, len(palette), field.max() + 1)]
        angle = rng.uniform(0, np.pi)
        stripes = 0.08 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * rng.uniform(1.5, 3.0))
        img[i] = colours[field].transpose(2, 0, 1) * (1.0 + stripes[None])
    return _modulate(img, fractal_noise(n, s, 2.0, rng), 0.06)


def _wetland(n, s, rng):
    green = _fill(_colour("wetland", n, rng), s)
    water = _fill(_colour("water", n, rng, 0.02), s)
    channels = fractal_noise(n, s, 2.6, rng) > rng.uniform(-0.3, 0.5, (n, 1, 1))
    img = np.where(channels[:, None], water, green)
    return _modulate(img, fractal_noise(n, s, 1.2, rng), 0.15)


def _urban(n, s, rng):
    img = _fill(_colour("urban", n, rng), s)
    y, x = np.mgrid[0:s, 0:s]
    for i in range(n):
        period = rng.integers(max(4, s // 8), max(6, s // 3))
        offset = rng.integers(0, period, 2)
        roads = ((x + offset[0]) % period < 1 + s // 32) | ((y + offset[1]) % period < 1 + s // 32)
        blocks = rng.uniform(0.7, 1.3, (s // int(period) + 2, s // int(period) + 2))
        shade = blocks[(y + offset[1]) // period, (x + offset[0]) // period]
        img[i] = img[i] * shade[None] * np.where(roads, 0.55, 1.0)[None]
    return _modulate(img, fractal_noise(n, s, 0.5, rng), 0.10)


def _barren(n, s, rng):
    img = _fill(_colour("barren", n, rng, 0.05), s)
    y, x = np.mgrid[0:s, 0:s] / s
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    freq = rng.uniform(3.0, 7.0, n)[:, None, None]
    warp = 0.15 * fractal_noise(n, s, 3.0, rng)
    dunes = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle) + warp))
    return _modulate(img, dunes, rng.uniform(0.04, 0.12, n))


def _snow(n, s, rng):
    img = _fill(_colour("snow_ice", n, rng, 0.02), s)
    img = _modulate(img, fractal_noise(n, s, 3.2, rng), 0.05)
    cracks = np.abs(fractal_noise(n, s, 1.8, rng)) < 0.05
    return img * np.where(cracks, 0.85, 1.0)[:, None]


def _cloud(n, s, rng):
    """Cumulus over some ground: opacity from thresholded fractal noise."""
    grounds = (_water, _forest, _grass, _barren, _crop)
    ground_class = rng.choice(len(grounds), n)
    ground = np.empty((n, 3, s, s))
    # in this fixed order: iterating a set of functions follows their memory addresses,
    # which differ between processes and so changed which draws each ground class took
    for k, generator in enumerate(grounds):
        idx = np.flatnonzero(ground_class == k)
        if idx.size:
            ground[idx] = generator(len(idx), s, rng)
    opacity = np.clip(fractal_noise(n, s, 2.2, rng) * 0.6 + rng.uniform(0.4, 1.2, (n, 1, 1)),
                      0, 1)
    cloud = _fill(_colour("cloud", n, rng, 0.02), s)
    return ground * (1 - opacity[:, None]) + cloud * opacity[:, None]


GENERATORS: dict[str, Callable] = {
    "water": _water, "forest": _forest, "shrub_savanna": _shrub, "grassland": _grass,
    "cropland": _crop, "wetland": _wetland, "urban": _urban, "barren": _barren,
    "snow_ice": _snow, "cloud": _cloud,
}


def surface(labels: np.ndarray, size: int, rng: np.random.Generator) -> Images:
    """Ground reflectance of one tile per scene-class label, before the sensor sees it."""
    labels = np.asarray(labels)
    images = np.empty((len(labels), 3, size, size))
    for c, name in enumerate(SCENE_CLASSES):
        idx = np.flatnonzero(labels == c)
        if idx.size:
            images[idx] = GENERATORS[name](idx.size, size, rng)
    return images


def observe(images: np.ndarray, sun_elevation_deg: np.ndarray, rng: np.random.Generator,
            noise: float = 0.02) -> Images:
    """Illumination from the solar elevation, atmospheric haze, gain and sensor noise."""
    sun = np.sin(np.radians(np.clip(np.asarray(sun_elevation_deg, dtype=float), 1.0, 90.0)))
    light = (np.clip(sun, 0.1, 1.0) ** 0.6)[:, None, None, None]
    haze = (0.06 * (1.0 - sun))[:, None, None, None] * np.array([0.6, 0.8, 1.0])[None, :, None,
                                                                                 None]
    gain = rng.normal(1.0, 0.05, (len(images), 1, 1, 1))
    images = images * light * gain + haze + rng.normal(0.0, noise, images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def render(labels: np.ndarray, sun_elevation_deg: np.ndarray, size: int,
           rng: np.random.Generator, noise: float = 0.02) -> Images:
    """Tiles for scene-class ``labels`` seen with the Sun at ``sun_elevation_deg``."""
    return observe(surface(labels, size, rng), sun_elevation_deg, rng, noise)


def render_maps(label_maps: np.ndarray, sun_elevation_deg: np.ndarray,
                rng: np.random.Generator) -> Images:
    """Tiles whose every pixel shows the texture of its class in ``label_maps`` (n, S, S)."""
    return observe(surface_maps(label_maps, rng), sun_elevation_deg, rng)


def surface_maps(label_maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ground reflectance under ``label_maps`` (n, S, S), before the sensor sees it: each
    class's texture is generated over the whole tile and kept where that class is."""
    n, size = len(label_maps), label_maps.shape[1]
    images = np.zeros((n, 3, size, size))
    for c in range(len(SCENE_CLASSES)):
        present = np.flatnonzero((label_maps == c).any(axis=(1, 2)))
        if present.size:
            texture = surface(np.full(present.size, c), size, rng)
            mask = (label_maps[present] == c)[:, None]
            images[present] = np.where(mask, texture, images[present])
    return images


def normalise(images: Images) -> np.ndarray:
    return (images - CHANNEL_MEAN) / CHANNEL_STD
