"""What ``links.weather`` costs: the DVB-S2 downlink's rate profiles of a day of 100
satellites over 20 stations, in clear sky (the band's estimate), at an availability and
with a per-pass draw, and the one-off cost of itur (import, climate maps).

    .venv/bin/python benchmarks/atmosphere.py

Printed figures from one run; nothing here is a pass/fail test.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from orbitfl.constellation import atmosphere
from orbitfl.constellation.atmosphere import Weather, WeatherSpec
from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.links import LinkSpec, rate_profiles
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.stations import catalog

REPO = Path(__file__).resolve().parents[1]
KA = LinkSpec(band="Ka", eirp_dbw=12.0, gt_dbk=30.0, bandwidth_mhz=100.0).model()


def main() -> None:
    fleet = [e for f in ("planet_2024-07-16.tle", "eo-core_2024-07-16.tle")
             for e in load_element_file(REPO / "tle" / f)][:100]
    stations = list(catalog().values())[:17]
    stations += [stations[0].__class__(f"extra-{i}", f"extra-{i}", lat, lon, 0.0, 10.0, 2)
                 for i, (lat, lon) in enumerate([(-33.9, 18.4), (1.3, 103.8), (-45.9, 170.5)])]
    propagator = Propagator(fleet, Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc)))
    plan = compute_contacts(propagator, stations, 86400.0)
    print(f"{len(fleet)} satellites, {len(stations)} stations, 1 day: "
          f"{len(plan.windows)} passes, Ka-band budget sampled every 5 s")

    start = time.perf_counter()
    atmosphere._itur()
    atmosphere.site_attenuation_db(0.0, 0.0, 0.0, 26.5, 45.0, 1.0)
    print(f"itur import and climate maps (once per process): {time.perf_counter() - start:.2f} s")

    draw = Weather.draw(len(plan.windows), np.random.default_rng(1))
    modes = {"clear sky (weather off)": None,
             "availability 99.5 %": Weather(WeatherSpec(availability=99.5), stations),
             "per-pass draw": Weather(WeatherSpec(per_pass_draw=True), stations, draw)}
    for label, weather in modes.items():
        for run in ("first", "cached"):
            start = time.perf_counter()
            profiles = rate_profiles(plan, propagator, stations, KA, attenuation=None
                                     if weather is None else weather.attenuation_db)
            took = time.perf_counter() - start
            print(f"{label:26s} {run:6s}: {took:6.2f} s "
                  f"({took / len(plan.windows) * 1e3:.2f} ms per pass), "
                  f"{profiles.capacity_bytes().sum() / 1e12:.2f} TB")


if __name__ == "__main__":
    main()
