"""What a contact plan offers a mission planner, computed from its tables alone: pass
durations, revisit gaps, passes competing for a station's antennas, and data volume per
station and day.

Inputs are the contact table (``orbitfl contacts``: ``satellite``, ``station``,
``start_s``, ``end_s``, ``duration_s``), the stations' antenna counts and the link's
piecewise-constant rate intervals; times are simulated seconds since the scenario epoch.
Nothing here knows orbits or links, so every number can be checked against a table made
by hand.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

DAY_S = 86400.0
ALL = "(all)"  # the row of a per-satellite table that describes every satellite together
_QUANTILES = {"min_s": 0.0, "p10_s": 0.1, "median_s": 0.5, "p90_s": 0.9, "max_s": 1.0}


def _describe(values: pd.Series) -> dict[str, float]:
    """Count, mean and the quantiles of ``_QUANTILES`` (NaN when there are no values)."""
    numbers = values.to_numpy(dtype=float)
    stats = {"count": len(numbers), "mean_s": float(numbers.mean()) if len(numbers) else np.nan}
    for name, q in _QUANTILES.items():
        stats[name] = float(np.quantile(numbers, q)) if len(numbers) else np.nan
    return stats


def pass_durations(contacts: pd.DataFrame, satellites: list[str]) -> pd.DataFrame:
    """Per satellite (in ``satellites`` order, those without a pass included) and overall
    (``ALL``): number of passes, mean and quantiles of their durations."""
    by_satellite = dict(tuple(contacts.groupby("satellite")["duration_s"]))
    empty = pd.Series([], dtype=float)
    rows = [{"satellite": s, **_describe(by_satellite.get(s, empty))} for s in satellites]
    rows.append({"satellite": ALL, **_describe(contacts["duration_s"])})
    return pd.DataFrame(rows)


def merged_passes(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as sorted, disjoint intervals (touching ones join): a
    satellite seen by two stations at once is in contact throughout."""
    order = np.argsort(starts, kind="stable")
    merged: list[list[float]] = []
    for a, b in zip(starts[order], ends[order]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([float(a), float(b)])
    array = np.array(merged, dtype=float).reshape(-1, 2)
    return array[:, 0], array[:, 1]


def revisit_gaps(contacts: pd.DataFrame, satellites: list[str],
                 horizon_s: float) -> pd.DataFrame:
    """Every stretch of a satellite without contact to any station: between the end of
    one pass and the start of the next, and before its first and after its last pass
    (``censored``: the gap began before or goes on after the horizon, so its length is
    a lower bound). A satellite without any pass has one censored gap, the horizon."""
    rows = []
    by_satellite = dict(tuple(contacts.groupby("satellite")))
    for satellite in satellites:
        mine = by_satellite.get(satellite, contacts.iloc[:0])
        starts, ends = merged_passes(mine["start_s"].to_numpy(float),
                                     mine["end_s"].to_numpy(float))
        edges_start = np.concatenate([[0.0], ends])
        edges_end = np.concatenate([starts, [horizon_s]])
        censored = np.zeros(len(edges_start), dtype=bool)
        censored[[0, -1]] = True
        for a, b, cut in zip(edges_start, edges_end, censored):
            if b > a:
                rows.append({"satellite": satellite, "start_s": a, "end_s": b,
                             "gap_s": b - a, "censored": bool(cut)})
    return pd.DataFrame(rows, columns=["satellite", "start_s", "end_s", "gap_s", "censored"])


def gap_summary(gaps: pd.DataFrame, satellites: list[str]) -> pd.DataFrame:
    """Per satellite and overall: the revisit gaps between passes (count, mean and
    quantiles, censored gaps left out), and the longest gap of all with when it began
    and whether it is censored (a lower bound)."""
    rows = []
    by_satellite = dict(tuple(gaps.groupby("satellite"))) | {ALL: gaps}
    for satellite in [*satellites, ALL]:
        mine = by_satellite.get(satellite, gaps.iloc[:0])
        row = {"satellite": satellite, **_describe(mine.loc[~mine["censored"], "gap_s"])}
        if len(mine):
            longest = mine.loc[mine["gap_s"].idxmax()]
            row.update(longest_gap_s=float(longest["gap_s"]),
                       longest_gap_start_s=float(longest["start_s"]),
                       longest_gap_satellite=str(longest["satellite"]),
                       longest_gap_censored=bool(longest["censored"]))
        else:  # contact for the whole horizon
            row.update(longest_gap_s=0.0, longest_gap_start_s=np.nan,
                       longest_gap_satellite="", longest_gap_censored=False)
        rows.append(row)
    return pd.DataFrame(rows)


def concurrency(contacts: pd.DataFrame, stations: list[str]) -> pd.DataFrame:
    """Per station, the number of passes in progress as a step function: one row per
    interval between consecutive pass starts and ends (a pass ending when another starts
    does not overlap it). Intervals with no pass are kept, so the rows tile each
    station's span from its first start to its last end."""
    rows = []
    for station in stations:
        mine = contacts[contacts["station"] == station]
        if mine.empty:
            continue
        times = np.concatenate([mine["start_s"].to_numpy(float), mine["end_s"].to_numpy(float)])
        steps = np.concatenate([np.ones(len(mine), int), -np.ones(len(mine), int)])
        order = np.lexsort((steps, times))  # at equal times, ends (-1) before starts
        times, level = times[order], np.cumsum(steps[order])
        for a, b, n in zip(times[:-1], times[1:], level[:-1]):
            if b > a:
                rows.append({"station": station, "start_s": a, "end_s": b, "passes": int(n)})
    return pd.DataFrame(rows, columns=["station", "start_s", "end_s", "passes"])


def station_load(contacts: pd.DataFrame, steps: pd.DataFrame, antennas: Mapping[str, int],
                 horizon_s: float) -> pd.DataFrame:
    """Per station: its antennas, passes (per day), the peak number of simultaneous passes,
    the time during which more passes are in view than it has antennas (some pass is not
    served then), the number of such episodes and when the first began."""
    rows = []
    days = horizon_s / DAY_S
    for station, count in antennas.items():
        mine = steps[steps["station"] == station]
        over = mine[mine["passes"] > count]
        # adjacent over-capacity intervals form one episode
        episodes = int((over["start_s"].to_numpy() != over["end_s"].shift().to_numpy()).sum())
        passes = int((contacts["station"] == station).sum())
        rows.append({"station": station, "antennas": int(count), "passes": passes,
                     "passes_per_day": passes / days if days > 0 else np.nan,
                     "peak_passes": int(mine["passes"].max()) if len(mine) else 0,
                     "time_over_capacity_s": float((over["end_s"] - over["start_s"]).sum()),
                     "over_capacity_episodes": episodes,
                     "first_over_capacity_s": float(over["start_s"].min()) if len(over)
                     else np.nan})
    return pd.DataFrame(rows)


def over_capacity_lines(load: pd.DataFrame) -> list[str]:
    """One sentence per station of ``station_load`` whose passes exceed its antennas: the
    text of every such warning (contact report, run log), so they read alike."""
    return [f"{row['station']}: up to {row['peak_passes']} passes at once for "
            f"{row['antennas']} antenna(s); over capacity for "
            f"{row['time_over_capacity_s'] / 60:.1f} min in {row['over_capacity_episodes']} "
            f"episode(s), first at {row['first_over_capacity_s'] / 3600:.2f} h"
            for _, row in load[load["time_over_capacity_s"] > 0].iterrows()]


def daily_volume(rates: pd.DataFrame, stations: list[str], epoch: pd.Timestamp,
                 horizon_s: float) -> pd.DataFrame:
    """Bytes the passes over each station could carry on each UTC day (the integral of
    the piecewise-constant rate, an interval that spans midnight split at it), per
    direction. ``rates``: ``direction`` (``down``/``up``), ``station``, ``start_s``,
    ``end_s``, ``rate_bps``. Every station appears on every day of the horizon. Simulated
    seconds are taken as UTC seconds here (a leap second inside the run shifts the
    midnight split by one second)."""
    epoch = pd.Timestamp(epoch)
    epoch = epoch.tz_convert("UTC") if epoch.tzinfo else epoch.tz_localize("UTC")
    first = epoch.normalize()
    offset = (epoch - first).total_seconds()  # midnights at k * DAY_S - offset
    n_days = max(1, int(np.ceil((offset + horizon_s) / DAY_S)))
    bounds = np.arange(n_days + 1) * DAY_S - offset
    frame = pd.DataFrame({"station": np.repeat(stations, n_days),
                          "date": np.tile([f"{first + pd.Timedelta(days=k):%Y-%m-%d}"
                                           for k in range(n_days)], len(stations))})
    index = {station: i for i, station in enumerate(stations)}
    for direction in ("down", "up"):
        mine = rates[rates["direction"] == direction]
        frame[f"{direction}link_bytes"] = _bytes_per_day(
            mine["station"].map(index).to_numpy(int), mine["start_s"].to_numpy(float),
            mine["end_s"].to_numpy(float), mine["rate_bps"].to_numpy(float), bounds,
            len(stations))
    return frame


def _bytes_per_day(station: np.ndarray, start: np.ndarray, end: np.ndarray,
                   rate: np.ndarray, bounds: np.ndarray, n_stations: int) -> np.ndarray:
    """(station, day) bytes, station-major, of intervals at constant ``rate``: each
    interval adds its overlap with every day it touches (one or two, in practice)."""
    n_days = len(bounds) - 1
    first = np.clip(np.searchsorted(bounds, start, side="right") - 1, 0, n_days - 1)
    last = np.clip(np.searchsorted(bounds, end, side="left") - 1, 0, n_days - 1)
    total = np.zeros(n_stations * n_days)
    for k in range(int((last - first).max()) + 1 if len(start) else 0):
        day = np.minimum(first + k, n_days - 1)
        overlap = np.minimum(end, bounds[day + 1]) - np.maximum(start, bounds[day])
        keep = (first + k <= last) & (overlap > 0)
        total += np.bincount(station[keep] * n_days + day[keep],
                             weights=overlap[keep] * rate[keep] / 8.0,
                             minlength=len(total))
    return total
