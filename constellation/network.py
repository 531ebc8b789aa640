"""The simpy network: payloads cross between the ground segment and satellites only inside
contact windows, at each window's time-varying rate, sharing station antennas.

A transfer holds its satellite's radio for that direction (one link per band), then, pass
after pass, asks the stations in view for an antenna, sends at the window's piecewise-
constant rate (the integral of rate(t), not rate x duration) until the bytes are across or
the window closes, and then resumes in a later pass (policy ``resume``) or starts over
(``restart``). Antennas track one satellite at a time (uplink and downlink with that
satellite share the track); when several satellites wait, a policy picks who gets one.
Station-to-server backhaul adds latency and a terrestrial rate. The engine jumps from
event to event; it never steps a clock. Payloads are opaque: a kind and a size.

With a ``RadioPower`` (``gate_radios``), a radio runs only while its satellite's power
system allows: a transfer waits for charge before it sends, and when the battery falls to
its floor mid-pass the transfer pauses exactly as at the end of a pass (keeping or, under
``restart``, discarding its progress) and goes on in the same or a later pass once charged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd
import simpy

from .events import EventLog
from .links import RateProfiles
from .routing import LinkSchedule, Route, Router

GROUND = "ground"
POLICIES = ("fifo", "elevation", "priority")


@dataclass(frozen=True)
class Backhaul:
    """Terrestrial link between every station and the ground server."""

    latency_s: float = 0.05
    rate_bps: float = 1e9

    def delay(self, nbytes: float) -> float:
        return self.latency_s + nbytes * 8.0 / self.rate_bps


class RadioPower(Protocol):
    """A satellite power system as the network sees it (satellites by index, roles
    ``tx``/``rx``)."""

    def allowed(self, sat: int) -> bool:
        """Whether the satellite may switch a radio on now."""

    def recharged(self, sat: int) -> simpy.Event:
        """An event that fires when it may again (never, if not before the horizon)."""

    def start(self, sat: int, role: str) -> simpy.Event:
        """Switch a radio on; the event fires when the radio must stop (the charge fell
        to the floor)."""

    def stop(self, sat: int, role: str) -> None:
        """Switch a radio off."""


@dataclass
class Segment:
    """Bytes sent through one window (one pass over one station)."""

    window: int
    station: str
    start_s: float
    end_s: float
    bytes: float


@dataclass
class TransferRecord:
    transfer_id: int
    kind: str
    nbytes: int
    src: str
    dst: str
    requested_s: float
    start_s: float | None = None
    end_s: float | None = None
    segments: list[Segment] = field(default_factory=list)
    discarded_bytes: float = 0.0  # progress thrown away when a pass ended (restart policy)
    overhead_bytes: float = 0.0   # airtime spent resending packets hit by bit errors
    status: str = "waiting"  # waiting -> sending -> delivered
    tag: dict[str, Any] = field(default_factory=dict)

    @property
    def retransmitted_bytes(self) -> float:
        return self.discarded_bytes + self.overhead_bytes

    @property
    def air_bytes(self) -> float:
        """Everything put on the air for this payload."""
        return self.bytes_sent + self.overhead_bytes

    @property
    def progress_bytes(self) -> float:
        """Payload bytes across and still valid (``nbytes`` once delivered)."""
        return self.bytes_sent - self.discarded_bytes

    @property
    def passes_used(self) -> int:
        return len(self.segments)

    @property
    def bytes_per_pass(self) -> list[float]:
        return [s.bytes for s in self.segments]

    @property
    def bytes_sent(self) -> float:
        return sum(s.bytes for s in self.segments)


@dataclass
class _Request:
    event: simpy.Event
    satellite: int
    priority: float
    order: int


class AntennaPool:
    """A station's antennas. Each tracks one satellite; requests for a satellite already
    tracked are granted at once (they share the track)."""

    def __init__(self, env: simpy.Environment, station: int, antennas: int,
                 choose: Callable[[list[_Request], int], _Request]):
        self.env, self.station, self.capacity, self._choose = env, station, antennas, choose
        self.tracking: dict[int, int] = {}  # satellite -> transfers using the track
        self.waiting: list[_Request] = []
        self.log: list[tuple[float, int]] = []  # (time, satellites tracked), for audits
        self._order = itertools.count()

    def request(self, satellite: int, priority: float) -> simpy.Event:
        event = self.env.event()
        if satellite in self.tracking or len(self.tracking) < self.capacity:
            self._track(satellite, event)
        else:
            self.waiting.append(_Request(event, satellite, priority, next(self._order)))
        return event

    def cancel(self, event: simpy.Event) -> None:
        self.waiting = [r for r in self.waiting if r.event is not event]

    def release(self, satellite: int) -> None:
        self.tracking[satellite] -= 1
        if self.tracking[satellite] == 0:
            del self.tracking[satellite]
            self.log.append((self.env.now, len(self.tracking)))
        while self.waiting and len(self.tracking) < self.capacity:
            chosen = self._choose(self.waiting, self.station)
            for request in [r for r in self.waiting if r.satellite == chosen.satellite]:
                self.waiting.remove(request)
                self._track(request.satellite, request.event)

    def _track(self, satellite: int, event: simpy.Event) -> None:
        if satellite not in self.tracking:
            self.tracking[satellite] = 0
            self.log.append((self.env.now, len(self.tracking)))
        self.tracking[satellite] += 1
        event.succeed()


class Network:
    """Ground <-> satellite transfers over a contact plan with per-window rate profiles.

    ``windows`` needs columns ``sat_index, station, start_s, end_s``; ``down`` and ``up``
    are rate profiles over the same rows. ``elevation(sat, station, t)`` (degrees) serves
    the ``elevation`` antenna policy.
    """

    def __init__(self, env: simpy.Environment, windows: pd.DataFrame, satellites: Sequence[str],
                 stations: Sequence[tuple[str, int]], down: RateProfiles, up: RateProfiles,
                 policy: str = "fifo", resume: bool = True, backhaul: Backhaul = Backhaul(),
                 elevation: Callable[[int, int, float], float] | None = None,
                 isl: pd.DataFrame | None = None, packet_error_rate: float = 0.0,
                 radio_listener: Callable[[int, str, bool], None] | None = None,
                 events: EventLog | None = None):
        if policy not in POLICIES:
            raise ValueError(f"unknown antenna policy {policy!r}")
        if policy == "elevation" and elevation is None:
            raise ValueError("the elevation policy needs an elevation function")
        self.env, self.satellites = env, list(satellites)
        self.resume, self.backhaul = resume, backhaul
        # Bit errors: a fraction of the airtime carries packets that must be sent again.
        self.packet_error_rate = packet_error_rate
        self._radio_listener = radio_listener
        self._power: RadioPower | None = None
        self.events = events if events is not None else EventLog()
        self._sat_index = {name: i for i, name in enumerate(self.satellites)}
        self._station_ids = [sid for sid, _ in stations]
        station_index = {sid: i for i, sid in enumerate(self._station_ids)}
        self._profiles = {"down": down, "up": up}
        self._end = windows["end_s"].to_numpy()
        # The last instant each window can carry bytes (a window may end below every
        # MODCOD threshold): windows past it are useless.
        self._useful_until = {d: _useful_until(p, len(windows)) for d, p in self._profiles.items()}
        self._elevation = elevation
        self._policy = policy
        self.pools = [AntennaPool(env, i, antennas, self._choose)
                      for i, (_, antennas) in enumerate(stations)]
        self._radios = {(i, d): simpy.PriorityResource(env, capacity=1)
                        for i in range(len(self.satellites)) for d in ("up", "down")}
        # Windows per satellite, sorted by start: [window row, station index, start, end].
        table = np.column_stack([np.arange(len(windows)),
                                 windows["station"].map(station_index).to_numpy(),
                                 windows["start_s"].to_numpy(), windows["end_s"].to_numpy()])
        sat = windows["sat_index"].to_numpy()
        self._windows = {}
        for i in range(len(self.satellites)):
            rows = table[sat == i]
            self._windows[i] = rows[np.argsort(rows[:, 2], kind="stable")]
        self.records: list[TransferRecord] = []
        self.air_bytes = 0.0  # running total, an independent check on the records
        self._setup_relays(windows, isl)

    # -- public -------------------------------------------------------------------------
    def transfer(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
                 **tag: Any) -> simpy.Process:
        """Start moving ``nbytes``; the process's value is the finished ``TransferRecord``.

        ``priority``: lower goes first for the radio and, under the ``priority`` policy,
        for antennas (e.g. a round deadline, or staleness).
        """
        if (src == GROUND) == (dst == GROUND):
            raise ValueError(f"a transfer joins the ground and a satellite, got {src} -> {dst}")
        record = TransferRecord(len(self.records), kind, int(nbytes), src, dst, self.env.now,
                                tag=tag)
        self.records.append(record)
        return self.env.process(self._run(record, priority))

    def gate_radios(self, power: RadioPower) -> None:
        """Run every radio under ``power`` (before the simulation starts)."""
        self._power = power

    def windows_of(self, satellite: str) -> np.ndarray:
        return self._windows[self._sat_index[satellite]]

    def next_contact_start(self, satellite: str, after_s: float, direction: str) -> float:
        """When the satellite's next window that can carry bytes in ``direction`` ('up' or
        'down') opens (``after_s`` if one is open; inf if none is left)."""
        rows = self._windows[self._sat_index[satellite]]
        live = rows[self._useful_until[direction][rows[:, 0].astype(int)] > after_s]
        return float(max(live[:, 2].min(), after_s)) if len(live) else float("inf")

    def relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
              **tag: Any) -> simpy.Process:
        """Move a payload along the earliest-arrival route (inter-satellite hops allowed),
        store-and-forward, each hop its own transfer. The value is the list of hop records;
        without inter-satellite links this is the direct transfer."""
        return self.env.process(self._relay(kind, nbytes, src, dst, priority, tag))

    def plan_route(self, src: str, dst: str, nbytes: int) -> Route | None:
        return self.router.earliest_arrival(src, dst, self.env.now, nbytes)

    # -- internals ----------------------------------------------------------------------
    def _setup_relays(self, windows: pd.DataFrame, isl: pd.DataFrame | None) -> None:
        """The router's view of every link, and the ISL terminals (one link each)."""
        self.router = Router()
        sat = windows["sat_index"].to_numpy()
        for direction, profile in self._profiles.items():
            owner = sat[np.repeat(np.arange(len(windows)), np.diff(profile.offsets))]
            for i, name in enumerate(self.satellites):
                mine = owner == i
                schedule = LinkSchedule(profile.start[mine], profile.end[mine],
                                        profile.rate[mine])
                if direction == "down":
                    self.router.add(name, GROUND, schedule)
                else:
                    self.router.add(GROUND, name, schedule)
        self._isl = isl if isl is not None else pd.DataFrame(
            columns=["sat_a", "sat_b", "start_s", "end_s", "rate_bps"])
        self._isl_profile = RateProfiles(self._isl["start_s"].to_numpy(dtype=float),
                                         self._isl["end_s"].to_numpy(dtype=float),
                                         self._isl["rate_bps"].to_numpy(dtype=float),
                                         np.arange(len(self._isl) + 1))
        for (a, b), rows in self._isl.groupby(["sat_a", "sat_b"]):
            schedule = LinkSchedule(rows["start_s"], rows["end_s"], rows["rate_bps"])
            self.router.add(self.satellites[a], self.satellites[b], schedule)
            self.router.add(self.satellites[b], self.satellites[a], schedule)
        self._terminals = [simpy.Resource(self.env, capacity=1) for _ in self.satellites]

    def _relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float,
               tag: dict[str, Any]):
        route = self.plan_route(src, dst, nbytes)
        nodes = route.nodes if route is not None else [src, dst]
        records = []
        for hop, (u, v) in enumerate(zip(nodes[:-1], nodes[1:])):
            hop_tag = {**tag, "hop": hop, "route": "->".join(nodes)}
            if GROUND in (u, v):
                records.append((yield self.transfer(kind, nbytes, u, v, priority, **hop_tag)))
            else:
                record = TransferRecord(len(self.records), kind, int(nbytes), u, v,
                                        self.env.now, tag=hop_tag)
                self.records.append(record)
                records.append((yield self.env.process(self._isl_hop(record))))
        return records

    def _isl_hop(self, record: TransferRecord):
        """One inter-satellite hop over the pair's windows, both terminals held."""
        a, b = sorted((self._sat_index[record.src], self._sat_index[record.dst]))
        rows = np.flatnonzero((self._isl["sat_a"].to_numpy() == a)
                              & (self._isl["sat_b"].to_numpy() == b))
        with self._terminals[a].request() as first, self._terminals[b].request() as second:
            yield first
            yield second
            remaining = float(record.nbytes)
            while remaining > 1e-9:
                ends = self._isl_profile.end[rows]
                live = rows[ends > self.env.now]
                if len(live) == 0:
                    yield self.env.event()  # the pair never links again: in flight for ever
                w = int(live[np.argmin(self._isl_profile.start[live])])
                if self._isl_profile.start[w] > self.env.now:
                    yield self.env.timeout(self._isl_profile.start[w] - self.env.now)
                parties = [(self._sat_index[record.src], "tx"),
                           (self._sat_index[record.dst], "rx")]
                if not self._allowed(parties):
                    yield from self._powered(parties)
                    continue  # the window may have closed meanwhile
                remaining -= yield from self._send(record, w, f"isl:{record.dst}",
                                                   self._isl_profile, remaining, parties)
        self._delivered(record)
        return record

    def _choose(self, waiting: list[_Request], station: int) -> _Request:
        if self._policy == "elevation":
            return max(waiting, key=lambda r: (self._elevation(r.satellite, station,
                                                               self.env.now), -r.order))
        if self._policy == "priority":
            return min(waiting, key=lambda r: (r.priority, r.order))
        return min(waiting, key=lambda r: r.order)

    def _run(self, record: TransferRecord, priority: float):
        direction = "up" if record.src == GROUND else "down"
        sat = self._sat_index[record.dst if direction == "up" else record.src]
        profile = self._profiles[direction]
        earliest = self.env.now + (self.backhaul.delay(record.nbytes) if direction == "up"
                                   else 0.0)  # the payload must first reach the stations
        with self._radios[(sat, direction)].request(priority=priority) as radio:
            yield radio
            if self.env.now < earliest:
                yield self.env.timeout(earliest - self.env.now)
            remaining = float(record.nbytes)
            parties = [(sat, "rx" if direction == "up" else "tx")]
            while remaining > 0.0:
                yield from self._powered(parties)
                grant = yield from self._acquire_antenna(sat, direction, priority)
                if grant is None:
                    yield self.env.event()  # no usable window left: in flight for ever
                window, station = grant
                if not self._allowed(parties):  # drained while waiting for the window
                    self.pools[station].release(sat)
                    continue
                sent = yield from self._send(record, window, self._station_ids[station], profile,
                                             remaining, parties)
                self.pools[station].release(sat)
                remaining -= sent
                if remaining > 1e-9 and not self.resume:
                    record.discarded_bytes += record.nbytes - remaining
                    remaining = float(record.nbytes)
                remaining = max(remaining, 0.0) if remaining > 1e-9 else 0.0
        if direction == "down":
            yield self.env.timeout(self._backhaul_tail(record))
        self._delivered(record)
        return record

    def _delivered(self, record: TransferRecord) -> None:
        record.end_s, record.status = self.env.now, "delivered"
        self.events.record(self.env.now, "transfer_end", record.dst,
                           f"{record.kind} #{record.transfer_id} from {record.src}",
                           record.nbytes)

    def _acquire_antenna(self, sat: int, profile_key: str, priority: float):
        """Wait for an antenna at a station in view; returns (window row, station) or None."""
        windows = self._windows[sat]
        while True:
            now = self.env.now
            live = windows[self._useful_until[profile_key][windows[:, 0].astype(int)] > now]
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
                    self.pools[st].cancel(event)
            if chosen is not None:
                w, st, _ = chosen
                if self.env.now < self._end[w]:
                    return w, st
                self.pools[st].release(sat)

    def _send(self, record: TransferRecord, window: int, label: str,
              profile: RateProfiles, remaining: float, parties: list[tuple[int, str]]):
        """Send through ``window`` until done or closed; returns the payload bytes moved.

        With bit errors, only ``1 - PER`` of the airtime delivers payload; the rest is
        retransmission, counted on the record.
        """
        span = profile.window(window)
        goodput = 1.0 - self.packet_error_rate
        start, end = profile.start[span], profile.end[span]
        rate = profile.rate[span] * goodput
        now = self.env.now
        if record.start_s is None:
            record.start_s, record.status = now, "sending"
            self.events.record(now, "transfer_start", record.src,
                               f"{record.kind} #{record.transfer_id} to {record.dst}",
                               record.nbytes)
        # Bytes each interval can still carry from now on, and where the transfer ends.
        usable = np.clip(end - np.maximum(start, now), 0.0, None)
        carried = np.cumsum(rate * usable / 8.0)
        k = int(np.searchsorted(carried, remaining - 1e-9))
        if k < len(carried):
            before = carried[k - 1] if k > 0 else 0.0
            finish = max(start[k], now) + (remaining - before) * 8.0 / rate[k]
            sent = remaining
        else:
            finish, sent = float(end[-1]), float(carried[-1]) if len(carried) else 0.0
        self._notify(parties, True)
        cuts = self._power_on(parties)
        done = self.env.timeout(max(finish - now, 0.0))
        yield self.env.any_of([done, *cuts]) if cuts else done
        self._power_off(parties)
        self._notify(parties, False)
        if self.env.now < finish:  # the battery fell to its floor: what went out so far
            moved = np.clip(np.minimum(end, self.env.now) - np.maximum(start, now), 0.0, None)
            sent = min(float(np.sum(rate * moved / 8.0)), sent)
        record.segments.append(Segment(window, label, now, self.env.now, sent))
        self.events.record(self.env.now, "transfer_progress", record.src,
                           f"{record.kind} #{record.transfer_id} via {label}", sent)
        overhead = sent / goodput - sent if goodput > 0 else 0.0
        record.overhead_bytes += overhead
        self.air_bytes += sent + overhead
        return sent

    def _allowed(self, parties: list[tuple[int, str]]) -> bool:
        return self._power is None or all(self._power.allowed(sat) for sat, _ in parties)

    def _powered(self, parties: list[tuple[int, str]]):
        """Wait until every party's power system allows its radio."""
        while not self._allowed(parties):
            yield self.env.all_of([self._power.recharged(sat) for sat, _ in parties
                                   if not self._power.allowed(sat)])

    def _power_on(self, parties: list[tuple[int, str]]) -> list[simpy.Event]:
        if self._power is None:
            return []
        return [self._power.start(sat, role) for sat, role in parties]

    def _power_off(self, parties: list[tuple[int, str]]) -> None:
        if self._power is not None:
            for sat, role in parties:
                self._power.stop(sat, role)

    def _notify(self, parties: list[tuple[int, str]], active: bool) -> None:
        if self._radio_listener is not None:
            for sat, role in parties:
                self._radio_listener(sat, role, active)

    def _backhaul_tail(self, record: TransferRecord) -> float:
        """Each station forwards its share after its last byte; the last share decides."""
        arrival = self.env.now
        by_station: dict[str, tuple[float, float]] = {}
        for s in record.segments:
            done, total = by_station.get(s.station, (0.0, 0.0))
            by_station[s.station] = (max(done, s.end_s), total + s.bytes)
        finish = max(done + self.backhaul.delay(total) for done, total in by_station.values())
        return max(finish - arrival, 0.0)


def _useful_until(profile: RateProfiles, n_windows: int) -> np.ndarray:
    owner = np.repeat(np.arange(n_windows), np.diff(profile.offsets))
    until = np.full(n_windows, -np.inf)
    useful = profile.rate > 0.0
    np.maximum.at(until, owner[useful], profile.end[useful])
    return until
