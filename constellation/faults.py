"""Faults: failed satellites, reboots, station outages, dropped passes, bit errors.

Faults that remove link time are applied to the contact plan before the simulation runs
(a rebooting satellite or an offline station simply has no window then), so the network
engine stays one mechanism; every fault is returned as an event for the log. Bit errors
act inside the engine, as a packet error rate that turns airtime into retransmissions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from orbitfl.core.options import STRICT, Duration, option


@dataclass(frozen=True)
class Outage:
    node: str          # a satellite name or a station id
    start_s: float
    end_s: float       # inf for a permanent failure


@dataclass(frozen=True)
class Failure:
    __pydantic_config__ = STRICT

    satellite: str = option(description="name of the satellite that fails for good")
    at: Duration = option(description="time of the failure after the epoch [s]")


@dataclass(frozen=True)
class StationOutage:
    __pydantic_config__ = STRICT

    station: str = option(description="ground station id")
    start: Duration = option(description="outage start after the epoch [s]")
    end: Duration = option(description="outage end after the epoch [s]")

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("an outage must end after it starts")


@dataclass(frozen=True)
class FaultSpec:
    """The scenario's ``faults`` section is this class (``orbitfl/core/options.py``)."""

    __pydantic_config__ = STRICT

    failures: tuple[Failure, ...] = option((), "permanent satellite failures")
    reboot_rate_per_day: float = option(
        0.0, "Poisson rate of reboots per satellite [1/day]", ge=0, le=100)
    reboot_duration: Duration = option(600.0, "how long a reboot keeps a satellite offline [s]")
    station_outages: tuple[StationOutage, ...] = option((), "ground station outages")
    link_drop_probability: float = option(
        0.0, "probability that a whole pass is lost", ge=0, lt=1)
    bit_error_rate: float = option(
        0.0, "bit error rate; a packet with a bad bit is sent again", ge=0, lt=1e-2)
    packet_bytes: int = option(1024, "packet size for bit errors [bytes]", gt=0, le=1 << 20)

    @property
    def packet_error_rate(self) -> float:
        """A packet survives only if all its bits do."""
        return 1.0 - (1.0 - self.bit_error_rate) ** (8 * self.packet_bytes)


@dataclass
class FaultPlan:
    windows: pd.DataFrame
    outages: list[Outage] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    failed_at: dict[str, float] = field(default_factory=dict)
    isl: pd.DataFrame | None = None


def apply_faults(windows: pd.DataFrame, satellites: list[str], spec: FaultSpec,
                 horizon_s: float, rng: np.random.Generator,
                 isl: pd.DataFrame | None = None) -> FaultPlan:
    """Cut the windows (columns ``sat_index, station, start_s, end_s``) by every outage and
    drop whole passes at random. The rows that survive keep their other columns. ISL
    windows (``sat_a, sat_b``), when given, lose the outages of both ends."""
    outages: list[Outage] = [Outage(f.satellite, f.at, np.inf) for f in spec.failures]
    events = [{"t_s": f.at, "kind": "satellite_failure", "node": f.satellite,
               "detail": "permanent"} for f in spec.failures]
    if spec.reboot_rate_per_day > 0:
        for name in satellites:
            count = rng.poisson(spec.reboot_rate_per_day * horizon_s / 86400.0)
            for t in np.sort(rng.uniform(0.0, horizon_s, count)):
                outages.append(Outage(name, float(t), float(t + spec.reboot_duration)))
                events.append({"t_s": float(t), "kind": "satellite_reboot", "node": name,
                               "detail": f"{spec.reboot_duration:g} s"})
    for station in spec.station_outages:
        outage = Outage(station.station, station.start, station.end)
        outages.append(outage)
        events.append({"t_s": outage.start_s, "kind": "station_outage", "node": outage.node,
                       "detail": f"until {outage.end_s:g} s"})
    cut = _subtract(windows, outages, lambda r: (satellites[r["sat_index"]], r["station"]))
    isl_cut = None if isl is None else _subtract(
        isl, outages, lambda r: (satellites[r["sat_a"]], satellites[r["sat_b"]]))
    if spec.link_drop_probability > 0 and len(cut):
        dropped = rng.random(len(cut)) < spec.link_drop_probability
        for row in cut[dropped].itertuples():
            events.append({"t_s": row.start_s, "kind": "pass_dropped",
                           "node": satellites[row.sat_index], "detail": row.station})
        cut = cut[~dropped].reset_index(drop=True)
    return FaultPlan(cut, outages, events, {f.satellite: f.at for f in spec.failures}, isl_cut)


def _subtract(windows: pd.DataFrame, outages: list[Outage],
              nodes: Callable[[dict], tuple[str, ...]]) -> pd.DataFrame:
    """Windows minus the outages of any node they involve (a window may split)."""
    by_node: dict[str, list[Outage]] = {}
    for outage in outages:
        by_node.setdefault(outage.node, []).append(outage)
    rows = []
    for row in windows.to_dict("records"):
        pieces = [(row["start_s"], row["end_s"])]
        for outage in (o for node in nodes(row) for o in by_node.get(node, [])):
            pieces = [part for a, b in pieces
                      for part in ((a, min(b, outage.start_s)), (max(a, outage.end_s), b))
                      if part[1] > part[0]]
        for a, b in pieces:
            rows.append({**row, "start_s": a, "end_s": b})
    frame = pd.DataFrame(rows, columns=windows.columns)
    if "duration_s" in frame:
        frame["duration_s"] = frame["end_s"] - frame["start_s"]
    return frame
