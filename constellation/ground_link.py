"""Ground links: payloads cross between the ground segment and a satellite only inside
contact windows, window by window at each window's link-budget rate, sharing station
antennas.

A transfer holds its satellite's radio for that direction (one link per band), then, pass
after pass, asks the stations in view for an antenna, sends through the window (see
``airtime.py``) until the bytes are across or the window closes, and then resumes in a
later pass (policy ``resume``) or starts over (``restart``). Antennas are a simpy resource
per station (:class:`AntennaPool`): each tracks one satellite at a time (uplink and
downlink with that satellite share the track); when several satellites wait, a policy
picks who gets one. Station-to-server backhaul adds latency and a terrestrial rate. The
engine jumps from event to event; it never steps a clock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import simpy
from simpy.resources.base import BaseResource, Get, Put

from orbitfl.core.options import STRICT, option

from .airtime import Airtime, TransferRecord
from .links import RateProfiles
from .routing import LinkSchedule

GROUND = "ground"
POLICIES = ("fifo", "elevation", "priority")


@dataclass(frozen=True)
class Backhaul:
    """Terrestrial link between every station and the ground server: the scenario's
    ``network.backhaul`` section, in its units (``orbitfl/core/options.py``)."""

    __pydantic_config__ = STRICT

    latency_ms: float = option(
        50.0, "station-to-server latency added to every ground transfer [ms]", ge=0, le=1e6)
    rate_mbps: float = option(1000.0, "terrestrial station-to-server rate [Mbit/s]",
                              gt=0, le=1e6)

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1e3

    @property
    def rate_bps(self) -> float:
        return self.rate_mbps * 1e6

    def delay(self, nbytes: float) -> float:
        return self.latency_s + nbytes * 8.0 / self.rate_bps

    def tail(self, record: TransferRecord, arrival: float) -> float:
        """How long after ``arrival`` (the last byte down) the payload is at the server:
        each station forwards its share after its own last byte; the last share decides."""
        by_station: dict[str, tuple[float, float]] = {}
        for s in record.segments:
            done, total = by_station.get(s.station, (0.0, 0.0))
            by_station[s.station] = (max(done, s.end_s), total + s.bytes)
        finish = max(done + self.delay(total) for done, total in by_station.values())
        return max(finish - arrival, 0.0)


class AntennaRequest(Put):
    """A request for an antenna to track ``satellite``; granted (triggered) once one does."""

    def __init__(self, pool: "AntennaPool", satellite: int, priority: float):
        self.satellite, self.priority, self.order = satellite, priority, next(pool._order)
        super().__init__(pool)


class AntennaRelease(Get):
    """A transfer is done with its satellite's track."""

    def __init__(self, pool: "AntennaPool", satellite: int):
        self.satellite = satellite
        super().__init__(pool)


class AntennaPool(BaseResource):
    """A station's antennas as a simpy resource (capacity = antennas).

    Unlike ``simpy.Resource``, the unit of use is a tracked satellite, not a request:
    requests for a satellite already tracked are granted at once (they share the track),
    and when an antenna frees up, ``choose`` (the antenna policy) picks the waiting
    satellite, whose waiting requests are then all granted. A release hands the antenna
    over in the same instant, before any other event (as a plain call would).
    """

    def __init__(self, env: simpy.Environment, station: int, antennas: int,
                 choose: Callable[[list[AntennaRequest], int], AntennaRequest]):
        self.station, self._choose = station, choose
        self.tracking: dict[int, int] = {}  # satellite -> transfers using the track
        self.antenna: dict[int, int] = {}   # satellite -> the antenna (0-based) tracking it
        self.log: list[tuple[float, int]] = []  # (time, satellites tracked), for audits
        self._order = itertools.count()
        super().__init__(env, antennas)

    def request(self, satellite: int, priority: float) -> AntennaRequest:
        """Ask for a track of ``satellite`` (the put of this resource; typed, unlike
        simpy's ``BoundClass`` attributes, which do the same call)."""
        return AntennaRequest(self, satellite, priority)

    def release(self, satellite: int) -> AntennaRelease:
        """A transfer is done with ``satellite``'s track (the get of this resource)."""
        return AntennaRelease(self, satellite)

    def _trigger_put(self, get_event: Any) -> None:
        """Grant what can be granted: requests for tracked satellites, then, while an
        antenna is free, the satellite the policy picks."""
        for request in [r for r in self.put_queue if r.satellite in self.tracking]:
            self._grant(request)
        while self.put_queue and len(self.tracking) < self._capacity:
            chosen = self._choose(list(self.put_queue), self.station)
            for request in [r for r in self.put_queue if r.satellite == chosen.satellite]:
                self._grant(request)

    def _grant(self, request: AntennaRequest) -> None:
        self.put_queue.remove(request)
        if request.satellite not in self.tracking:
            self.tracking[request.satellite] = 0
            busy = set(self.antenna.values())
            self.antenna[request.satellite] = next(a for a in itertools.count() if a not in busy)
            self.log.append((self._env.now, len(self.tracking)))
        self.tracking[request.satellite] += 1
        request.succeed()

    def _do_get(self, release: AntennaRelease) -> bool:
        satellite = release.satellite
        self.tracking[satellite] -= 1
        if self.tracking[satellite] == 0:
            del self.tracking[satellite]
            del self.antenna[satellite]
            self.log.append((self._env.now, len(self.tracking)))
        release.succeed()
        self._trigger_put(release)  # now, not when the release event is processed
        return True


@dataclass(frozen=True)
class GroundPlan:
    """What the ground links work over, as one value (the network passes it on whole).

    ``windows`` needs columns ``sat_index, station, start_s, end_s``; ``down`` and ``up``
    are rate profiles over the same rows; ``stations`` are (id, antennas) in the order of
    ``windows``' station indices. ``elevation(sat, station, t)`` (degrees) serves the
    ``elevation`` antenna policy; ``resume`` keeps a transfer's progress across passes;
    ``bands`` names, per direction, the band of each station's link (for the transfer log;
    '' where unknown).
    """

    windows: pd.DataFrame
    stations: Sequence[tuple[str, int]]
    down: RateProfiles
    up: RateProfiles
    policy: str = "fifo"
    resume: bool = True
    backhaul: Backhaul = Backhaul()
    elevation: Callable[[int, int, float], float] | None = None
    bands: Mapping[str, Sequence[str]] | None = None


class GroundLinks:
    """Ground <-> satellite transfers over a contact plan (a :class:`GroundPlan`) with
    per-window rate profiles."""

    def __init__(self, airtime: Airtime, satellites: Sequence[str], plan: GroundPlan):
        windows, stations, down, up = plan.windows, plan.stations, plan.down, plan.up
        policy, resume, backhaul, elevation, bands = \
            plan.policy, plan.resume, plan.backhaul, plan.elevation, plan.bands
        if policy not in POLICIES:
            raise ValueError(f"unknown antenna policy {policy!r}")
        if policy == "elevation" and elevation is None:
            raise ValueError("the elevation policy needs an elevation function")
        self.airtime, self.env = airtime, airtime.env
        self.satellites = list(satellites)
        self.resume, self.backhaul = resume, backhaul
        self._sat_index = {name: i for i, name in enumerate(self.satellites)}
        self._station_ids = [sid for sid, _ in stations]
        station_index = {sid: i for i, sid in enumerate(self._station_ids)}
        self.profiles = {"down": down, "up": up}
        self._bands = {d: list((bands or {}).get(d, [""] * len(stations))) for d in ("down", "up")}
        self._owner = windows["sat_index"].to_numpy()
        self._end = windows["end_s"].to_numpy()
        # The last instant each window can carry bytes (a window may end below every
        # MODCOD threshold): windows past it are useless.
        self._useful_until = {d: _useful_until(p, len(windows)) for d, p in self.profiles.items()}
        self._elevation = elevation
        self._policy = policy
        self.pools = [AntennaPool(self.env, i, antennas, self._choose)
                      for i, (_, antennas) in enumerate(stations)]
        self._radios = {(i, d): simpy.PriorityResource(self.env, capacity=1)
                        for i in range(len(self.satellites)) for d in ("up", "down")}
        # Windows per satellite, sorted by start: [window row, station index, start, end].
        table = np.column_stack([np.arange(len(windows)),
                                 windows["station"].map(station_index).to_numpy(),
                                 windows["start_s"].to_numpy(), windows["end_s"].to_numpy()])
        self._windows = {}
        for i in range(len(self.satellites)):
            rows = table[self._owner == i]
            self._windows[i] = rows[np.argsort(rows[:, 2], kind="stable")]

    def transfer(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
                 **tag: Any) -> simpy.Process:
        """Start moving ``nbytes``; the process's value is the finished ``TransferRecord``.

        ``priority``: lower goes first for the radio and, under the ``priority`` policy,
        for antennas (e.g. a round deadline, or staleness).
        """
        if (src == GROUND) == (dst == GROUND):
            raise ValueError(f"a transfer joins the ground and a satellite, got {src} -> {dst}")
        record = self.airtime.new_record(kind, nbytes, src, dst, tag)
        return self.env.process(self._run(record, priority))

    def windows_of(self, satellite: str) -> np.ndarray:
        return self._windows[self._sat_index[satellite]]

    def next_contact_start(self, satellite: str, after_s: float, direction: str) -> float:
        """When the satellite's next window that can carry bytes in ``direction`` ('up' or
        'down') opens (``after_s`` if one is open; inf if none is left)."""
        rows = self._windows[self._sat_index[satellite]]
        live = rows[self._useful_until[direction][rows[:, 0].astype(int)] > after_s]
        return float(max(live[:, 2].min(), after_s)) if len(live) else float("inf")

    def schedules(self, direction: str) -> dict[str, LinkSchedule]:
        """Each satellite's capacity in ``direction`` over time, for route planning."""
        profile = self.profiles[direction]
        owner = self._owner[np.repeat(np.arange(len(self._owner)), np.diff(profile.offsets))]
        # pieces grouped by satellite, in their order (one sort, not a mask per satellite)
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(len(self.satellites) + 1))
        return {name: LinkSchedule(*(column[order[bounds[i]:bounds[i + 1]]]
                                     for column in (profile.start, profile.end, profile.rate)))
                for i, name in enumerate(self.satellites)}

    # -- internals ----------------------------------------------------------------------
    def _choose(self, waiting: list[AntennaRequest], station: int) -> AntennaRequest:
        if self._policy == "elevation":
            elevation = self._elevation
            assert elevation is not None  # __init__ refuses this policy without one
            return max(waiting, key=lambda r: (elevation(r.satellite, station, self.env.now),
                                               -r.order))
        if self._policy == "priority":
            return min(waiting, key=lambda r: (r.priority, r.order))
        return min(waiting, key=lambda r: r.order)

    def _run(self, record: TransferRecord, priority: float):
        direction = "up" if record.src == GROUND else "down"
        sat = self._sat_index[record.dst if direction == "up" else record.src]
        profile = self.profiles[direction]
        airtime = self.airtime
        earliest = self.env.now + (self.backhaul.delay(record.nbytes) if direction == "up"
                                   else 0.0)  # the payload must first reach the stations
        # simpy annotates priority as int but only compares it; transfer priorities are floats
        with self._radios[(sat, direction)].request(
                priority=priority) as radio:  # type: ignore[arg-type]
            yield radio
            if self.env.now < earliest:
                yield self.env.timeout(earliest - self.env.now)
            remaining = float(record.nbytes)
            parties = [(sat, "rx" if direction == "up" else "tx")]
            while remaining > 0.0:
                yield from airtime.powered(parties)
                grant = yield from self._acquire_antenna(sat, direction, priority)
                if grant is None:
                    yield self.env.event()  # no usable window left: in flight for ever
                window, station = grant
                if not airtime.allowed(parties):  # drained while waiting for the window
                    self.pools[station].release(sat)
                    continue
                sent = yield from airtime.send(
                    record, window, self._station_ids[station], profile, remaining, parties,
                    antenna=self.pools[station].antenna[sat],
                    band=self._bands[direction][station])
                self.pools[station].release(sat)
                remaining -= sent
                if remaining > 1e-9 and not self.resume:
                    record.discarded_bytes += record.nbytes - remaining
                    remaining = float(record.nbytes)
                remaining = max(remaining, 0.0) if remaining > 1e-9 else 0.0
        if direction == "down":
            yield self.env.timeout(self.backhaul.tail(record, self.env.now))
        airtime.delivered(record)
        return record

    def _acquire_antenna(self, sat: int, direction: str, priority: float):
        """Wait for an antenna at a station in view; returns (window row, station) or None.

        Asks every station in view at once and keeps the first grant (the others are
        handed back); waits for a grant, a window closing or another opening.
        """
        windows = self._windows[sat]
        while True:
            now = self.env.now
            live = windows[self._useful_until[direction][windows[:, 0].astype(int)] > now]
            if len(live) == 0:
                return None
            open_now = live[live[:, 2] <= now]
            if len(open_now) == 0:
                yield self.env.timeout(live[:, 2].min() - now)
                continue
            requests = [(int(w), int(st), self.pools[int(st)].request(sat, priority))
                        for w, st, _, _ in open_now]
            granted = [r for r in requests if r[2].triggered]
            if not granted:
                pending = [r[2] for r in requests]
                upcoming = live[live[:, 2] > now][:, 2]
                change = min(open_now[:, 3].min(), upcoming.min() if len(upcoming) else np.inf)
                yield self.env.any_of(pending + [self.env.timeout(change - now)])
                granted = [r for r in requests if r[2].triggered]
            chosen = granted[0] if granted else None
            for request in requests:
                if request is chosen:
                    continue
                _, st, event = request
                if event.triggered:
                    self.pools[st].release(sat)  # granted elsewhere too: hand it back
                else:
                    event.cancel()
            if chosen is not None:
                w, st, _ = chosen
                if self.env.now < self._end[w]:
                    return w, st
                self.pools[st].release(sat)


def _useful_until(profile: RateProfiles, n_windows: int) -> np.ndarray:
    owner = np.repeat(np.arange(n_windows), np.diff(profile.offsets))
    until = np.full(n_windows, -np.inf)
    useful = profile.rate > 0.0
    np.maximum.at(until, owner[useful], profile.end[useful])
    return until
