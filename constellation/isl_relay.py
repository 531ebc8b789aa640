"""The relay: payloads routed over the time-varying topology, inter-satellite hops included.

A relayed payload follows the earliest-arrival route planned when it leaves
(``routing.py``: ground links and inter-satellite links as schedules of capacity) and moves
store-and-forward, each hop its own transfer: a ground hop through the ground links, an
inter-satellite hop here, over the pair's windows with both terminals held (one ISL
terminal per satellite). Without inter-satellite links every route is the direct one.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import pandas as pd
import simpy

from .airtime import Airtime, TransferRecord
from .ground_link import GROUND
from .links import RateProfiles
from .routing import LinkSchedule, Route, Router

ISL_COLUMNS = ["sat_a", "sat_b", "start_s", "end_s", "rate_bps"]


class GroundHops(Protocol):
    """What the relay needs from the ground links."""

    def transfer(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
                 **tag: Any) -> simpy.Process: ...

    def schedules(self, direction: str) -> dict[str, LinkSchedule]: ...


class IslRelay:
    """Route planning over every link, and inter-satellite hops.

    ``isl`` has one row per piece of a pair's window (``sat_a < sat_b``, times, rate).
    """

    def __init__(self, airtime: Airtime, ground: GroundHops, satellites: Sequence[str],
                 isl: pd.DataFrame | None = None):
        self.airtime, self.env, self.ground = airtime, airtime.env, ground
        self.satellites = list(satellites)
        self._sat_index = {name: i for i, name in enumerate(self.satellites)}
        self.router = Router()
        for direction in ("down", "up"):
            for name, schedule in ground.schedules(direction).items():
                if direction == "down":
                    self.router.add(name, GROUND, schedule)
                else:
                    self.router.add(GROUND, name, schedule)
        self.isl = isl if isl is not None else pd.DataFrame(columns=ISL_COLUMNS)
        self._profile = RateProfiles(self.isl["start_s"].to_numpy(dtype=float),
                                     self.isl["end_s"].to_numpy(dtype=float),
                                     self.isl["rate_bps"].to_numpy(dtype=float),
                                     np.arange(len(self.isl) + 1))
        for (a, b), rows in self.isl.groupby(["sat_a", "sat_b"]):
            schedule = LinkSchedule(rows["start_s"], rows["end_s"], rows["rate_bps"])
            self.router.add(self.satellites[a], self.satellites[b], schedule)
            self.router.add(self.satellites[b], self.satellites[a], schedule)
        self._terminals = [simpy.Resource(self.env, capacity=1) for _ in self.satellites]

    def plan_route(self, src: str, dst: str, nbytes: int) -> Route | None:
        return self.router.earliest_arrival(src, dst, self.env.now, nbytes)

    def relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
              **tag: Any) -> simpy.Process:
        """Move a payload along the earliest-arrival route, store-and-forward; the
        process's value is the list of hop records."""
        return self.env.process(self._relay(kind, nbytes, src, dst, priority, tag))

    def _relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float,
               tag: dict[str, Any]):
        route = self.plan_route(src, dst, nbytes)
        nodes = route.nodes if route is not None else [src, dst]
        records = []
        for hop, (u, v) in enumerate(zip(nodes[:-1], nodes[1:])):
            hop_tag = {**tag, "hop": hop, "route": "->".join(nodes)}
            if GROUND in (u, v):
                records.append((yield self.ground.transfer(kind, nbytes, u, v, priority,
                                                           **hop_tag)))
            else:
                record = self.airtime.new_record(kind, nbytes, u, v, hop_tag)
                records.append((yield self.env.process(self._hop(record))))
        return records

    def _hop(self, record: TransferRecord):
        """One inter-satellite hop over the pair's windows, both terminals held."""
        airtime = self.airtime
        src, dst = self._sat_index[record.src], self._sat_index[record.dst]
        a, b = sorted((src, dst))
        rows = np.flatnonzero((self.isl["sat_a"].to_numpy() == a)
                              & (self.isl["sat_b"].to_numpy() == b))
        with self._terminals[a].request() as first, self._terminals[b].request() as second:
            yield first
            yield second
            remaining = float(record.nbytes)
            while remaining > 1e-9:
                live = rows[self._profile.end[rows] > self.env.now]
                if len(live) == 0:
                    yield self.env.event()  # the pair never links again: in flight for ever
                w = int(live[np.argmin(self._profile.start[live])])
                if self._profile.start[w] > self.env.now:
                    yield self.env.timeout(self._profile.start[w] - self.env.now)
                parties = [(src, "tx"), (dst, "rx")]
                if not airtime.allowed(parties):
                    yield from airtime.powered(parties)
                    continue  # the window may have closed meanwhile
                remaining -= yield from airtime.send(record, w, f"isl:{record.dst}",
                                                     self._profile, remaining, parties)
        airtime.delivered(record)
        return record
