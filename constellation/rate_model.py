"""What every link model offers (a fixed rate, a DVB-S2 budget, a station's own link): its
rate at a slant range and elevation, and its band. Its own module so that a station can
name its link without the stations and links modules importing each other."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RateModel(Protocol):
    def rate_bps(self, range_km: np.ndarray, elevation_deg: np.ndarray,
                 attenuation_db: np.ndarray | None = None) -> np.ndarray: ...

    @property
    def band(self) -> str: ...
