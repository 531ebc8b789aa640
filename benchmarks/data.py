"""Data benchmark: tile generation throughput, and the cost of sampling MODIS land cover
along 100 satellites' ground tracks for a day; prints the class histograms a Planet Flock
and a Starlink shell-1 fleet collect.

    .venv/bin/python benchmarks/data.py
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.groundtrack import ground_tracks
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.tle import select
from orbitfl.fl.geo.acquisition import GroundTrack, acquire
from orbitfl.fl.geo.landcover import SCENE_CLASSES, scene_at, scene_grid
from orbitfl.fl.geo.tiles import render

REPO = Path(__file__).resolve().parents[1]
EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)


def main() -> int:
    rng = np.random.default_rng(0)
    for size in (32, 64):
        labels = rng.integers(0, len(SCENE_CLASSES), 4000)
        start = time.perf_counter()
        render(labels, rng.uniform(10, 80, len(labels)), size, rng)
        wall = time.perf_counter() - start
        print(f"tiles {size} px: {len(labels) / wall:,.0f} tiles/s")

    start = time.perf_counter()
    scene_grid()
    print(f"land cover grid load (7200 x 3600 GeoTIFF): {time.perf_counter() - start:.2f} s")
    fleet = (load_element_file(REPO / "tle" / "planet_2024-07-16.tle")
             + load_element_file(REPO / "tle" / "starlink-shell1_2024-07-16.tle"))[:100]
    times = np.arange(0.0, 86400.0, 10.0)
    start = time.perf_counter()
    lat, lon, _ = ground_tracks(Propagator(fleet, Clock(EPOCH)), times)
    tracks = time.perf_counter() - start
    start = time.perf_counter()
    scene_at(lat.ravel(), lon.ravel())
    sampling = time.perf_counter() - start
    print(f"100 satellites x 1 day at 10 s ({lat.size:,} nadir points): ground tracks "
          f"{tracks:.2f} s, land-cover sampling {sampling * 1e3:.0f} ms "
          f"({lat.size / sampling / 1e6:.1f} M points/s)")

    for label, file, pattern in (("Planet Flock (16 x FLOCK 4*)", "planet_2024-07-16.tle",
                                  "FLOCK 4*"),
                                 ("Starlink shell 1 (16 sats)",
                                  "starlink-shell1_2024-07-16.tle", "*")):
        sats = select(load_element_file(REPO / "tle" / file), name=pattern, limit=16)
        step = np.arange(0.0, 86400.0, 60.0)
        la, lo, sun = ground_tracks(Propagator(sats, Clock(EPOCH)), step)
        counts = np.zeros(len(SCENE_CLASSES), dtype=int)
        for i in range(len(sats)):
            shot = acquire(GroundTrack(step, la[i], lo[i], sun[i]), 10.0,
                           np.random.default_rng(i))
            counts += np.bincount(shot.labels, minlength=len(SCENE_CLASSES))
        share = ", ".join(f"{n} {100 * c / counts.sum():.1f}%" for n, c in
                          zip(SCENE_CLASSES, counts))
        print(f"{label}, one day, a tile a minute in daylight: {counts.sum()} tiles: {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
