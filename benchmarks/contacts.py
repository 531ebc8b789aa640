"""Contact-plan benchmark: orbitfl against skyfield's find_events and a bisection reference.

    .venv/bin/python benchmarks/contacts.py            # 1000 satellites x 50 stations x 24 h
    .venv/bin/python benchmarks/contacts.py --starlink # also 10,000 x 20 x 24 h, peak memory
    .venv/bin/python benchmarks/contacts.py --quick    # 200 x 10, for a smoke run

Prints figures and ratios measured in one run (nothing here is a pass/fail test):
orbitfl's wall time (all cores) and CPU time (with the load average, as the machine may be
shared), skyfield find_events timed on a sample of pairs and
scaled to all pairs, their ratio, the worst rise/set timing error of each against a
reference (1 s skyfield scan bisected to 0.1 ms) on the sampled pairs, and passes missed.

Satellites come from ../shared/tle (Starlink, 2024-07-16 and 2026-05-30) when present,
else from the element sets shipped in tle/ topped up with a Walker shell. Stations are the
17 catalog sites plus synthetic sites on a Fibonacci lattice up to the requested count.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from skyfield.api import EarthSatellite, wgs84
from timing import best_of

from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.propagation import Clock, Propagator, timescale
from orbitfl.constellation.stations import GroundStation, catalog
from orbitfl.constellation.walker import PRESETS, walker_elements

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "tle"
DAY = 86400.0


def fleet(n: int, shared_file: str, epoch: datetime):
    if (SHARED / shared_file).is_file():
        return load_element_file(SHARED / shared_file)[:n], f"../shared/tle/{shared_file}"
    shipped = [e for f in sorted((REPO / "tle").glob("*.tle")) for e in load_element_file(f)]
    extra = walker_elements(PRESETS["starlink-shell1"], epoch)
    return (shipped + extra)[:n], "tle/*.tle + Walker starlink-shell1"


def stations(n: int, mask: float = 10.0) -> list[GroundStation]:
    sites = [GroundStation(s.id, s.name, s.lat_deg, s.lon_deg, s.alt_m, mask, 1)
             for s in catalog().values()][:n]
    i = np.arange(n - len(sites)) + 0.5
    lat = np.degrees(np.arcsin(1 - 2 * i / max(len(i), 1))) * 0.95
    lon = (i * 137.50776) % 360 - 180
    sites += [GroundStation(f"lattice-{k}", f"lattice-{k}", lat[k], lon[k], 0.0, mask, 1)
              for k in range(len(i))]
    return sites


def cpu_seconds() -> float:
    """User and system CPU time of this process and its finished workers: on a shared
    machine a steadier figure than the wall time."""
    own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def reference_crossings(element, station, mask, epoch, horizon):
    """Every mask crossing from a 1 s skyfield scan, each bisected to 0.1 ms."""
    ts = timescale()
    sat = EarthSatellite(element.line1, element.line2, ts=ts)
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)

    def altitude(t_s):
        t = ts.utc(epoch.year, epoch.month, epoch.day, epoch.hour, epoch.minute, t_s)
        return (sat - topos).at(t).altaz()[0].degrees

    grid = np.arange(0.0, horizon + 0.5, 1.0)
    above = altitude(grid) > mask
    k = np.flatnonzero(above[:-1] != above[1:])
    lo, hi, rising = grid[k], grid[k + 1], ~above[k]
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        move_lo = (altitude(mid) > mask) != rising
        lo, hi = np.where(move_lo, mid, lo), np.where(move_lo, hi, mid)
    return np.sort(0.5 * (lo + hi))


def skyfield_events(element, station, mask, epoch, horizon):
    ts = timescale()
    sat = EarthSatellite(element.line1, element.line2, ts=ts)
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)
    t0 = ts.utc(epoch.year, epoch.month, epoch.day, epoch.hour)
    t1 = ts.utc(epoch.year, epoch.month, epoch.day, epoch.hour, 0, horizon)
    t, events = sat.find_events(topos, t0, t1, altitude_degrees=mask)
    return np.sort((t[events != 1] - t0) * DAY)


def compare(found: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(worst timing error over matched crossings, reference crossings not found)."""
    if len(reference) == 0:
        return 0.0, 0
    if len(found) == 0:
        return 0.0, len(reference)
    nearest = np.abs(found[None, :] - reference[:, None]).min(axis=1)
    matched = nearest < 5.0
    return float(nearest[matched].max(initial=0.0)), int((~matched).sum())


def contacts_benchmark(n_sat: int, n_station: int, sample_pairs: int, shared_file: str,
                       epoch: datetime) -> None:
    elements, source = fleet(n_sat, shared_file, epoch)
    sites = stations(n_station)
    print(f"\n== {len(elements)} satellites x {len(sites)} stations x 24 h ({source}) ==")
    clock = Clock(epoch)
    cpu, start = cpu_seconds(), time.perf_counter()
    propagator = Propagator(elements, clock)
    plan = compute_contacts(propagator, sites, DAY)
    ours = time.perf_counter() - start
    print(f"orbitfl: {ours:.2f} s wall on {os.cpu_count()} cores ({cpu_seconds() - cpu:.2f} s "
          f"CPU with its workers; load average {os.getloadavg()[0]:.2f}), "
          f"{len(plan.windows)} windows")

    rng = np.random.default_rng(0)
    pairs = [(int(s), int(g)) for s, g in zip(rng.integers(0, len(elements), sample_pairs),
                                              rng.integers(0, len(sites), sample_pairs))]
    start = time.perf_counter()
    theirs = {p: skyfield_events(elements[p[0]], sites[p[1]], 10.0, epoch, DAY) for p in pairs}
    per_pair = (time.perf_counter() - start) / len(pairs)
    scaled = per_pair * len(elements) * len(sites)
    print(f"skyfield find_events: {per_pair * 1e3:.1f} ms per pair-day, scaled to all pairs "
          f"{scaled:.0f} s; orbitfl is {scaled / ours:.0f}x faster")

    worst_ours = worst_theirs = 0.0
    missed_ours = missed_theirs = crossings = 0
    for (s, g), their_events in theirs.items():
        reference = reference_crossings(elements[s], sites[g], 10.0, epoch, DAY)
        w = plan.windows[(plan.windows.sat_index == s) & (plan.windows.station == sites[g].id)]
        mine = np.sort(np.concatenate([w.start_s, w.end_s]))
        error, missed = compare(mine, reference)
        worst_ours, missed_ours = max(worst_ours, error), missed_ours + missed
        error, missed = compare(their_events, reference)
        worst_theirs, missed_theirs = max(worst_theirs, error), missed_theirs + missed
        crossings += len(reference)
    print(f"against the bisection reference on {len(pairs)} pairs ({crossings} crossings): "
          f"orbitfl worst error {worst_ours * 1e3:.2f} ms, {missed_ours} missed; "
          f"find_events worst error {worst_theirs * 1e3:.1f} ms, {missed_theirs} missed")


def propagation_benchmark(epoch: datetime) -> None:
    elements, source = fleet(1000, "starlink_2024-07-16.tle", epoch)
    clock = Clock(epoch)
    propagator = Propagator(elements, clock)
    grid = np.arange(0, DAY, 60.0)
    steps = len(elements) * len(grid)
    from sgp4.api import SatrecArray
    array = SatrecArray([e.satrec() for e in elements])
    jd, fr = clock.sgp4_time(grid)
    bare = best_of(3, lambda: array.sgp4(jd, fr))
    full = best_of(3, lambda: propagator.states_grid(grid))
    print(f"\n== propagation, {len(elements)} satellites x {len(grid)} steps ({source}) ==")
    print(f"plain SatrecArray (TEME): {steps / bare / 1e6:.2f} M sat-steps/s; orbitfl "
          f"Earth-fixed positions and velocities: {steps / full / 1e6:.2f} M sat-steps/s "
          f"(overhead {100 * (full / bare - 1):.0f} %)")


def starlink_benchmark(epoch: datetime) -> None:
    elements, source = fleet(10_000, "starlink_2026-05-30.tle", epoch)
    sites = stations(20)
    start = time.perf_counter()
    plan = compute_contacts(Propagator(elements, Clock(epoch)), sites, DAY, grid_step_s=60.0)
    wall = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20
    print(f"\n== Starlink scale: {len(elements)} satellites x {len(sites)} stations x 24 h "
          f"({source}, 60 s grid) ==")
    print(f"orbitfl: {wall:.1f} s wall, {len(plan.windows)} windows, peak resident memory "
          f"{peak:.2f} GiB (largest single process)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--starlink", action="store_true")
    args = parser.parse_args()
    epoch = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)
    if args.quick:
        contacts_benchmark(200, 10, 4, "starlink_2024-07-16.tle", epoch)
        return 0
    contacts_benchmark(1000, 50, 12, "starlink_2024-07-16.tle", epoch)
    propagation_benchmark(epoch)
    if args.starlink:
        starlink_benchmark(datetime(2026, 5, 30, 12, tzinfo=timezone.utc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
