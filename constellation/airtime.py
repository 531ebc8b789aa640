"""What every radio link shares: the transfer log, and sending through one window.

Ground passes and inter-satellite hops differ in how a transfer gets a window (an antenna
at a station in view, or both ISL terminals); once it has one, the bytes go out the same
way: at the window's piecewise-constant rate (the integral of rate(t), not rate x
duration) until the payload is across or the window closes, with a share of the airtime
lost to bit errors, and with each satellite's radio switched on and off through its power
system, which may stop it mid-window. :class:`Airtime` holds that common part so that the
ground links (``ground_link.py``) and the relay (``isl_relay.py``) keep one log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import simpy

from .events import EventLog
from .links import RateProfiles


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
    antenna: int = -1  # which of the station's antennas tracked the pass (-1: none, ISL)
    band: str = ""     # the band of the link that served it ('' where unknown)


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


Parties = list[tuple[int, str]]  # (satellite index, radio role 'tx' or 'rx')


class Airtime:
    """The transfer log and the sending of bytes through a window, with power gating,
    bit errors and the radio listener (the onboard power books)."""

    def __init__(self, env: simpy.Environment, events: EventLog | None = None,
                 packet_error_rate: float = 0.0,
                 radio_listener: Callable[[int, str, bool], None] | None = None):
        self.env = env
        self.events = events if events is not None else EventLog()
        # Bit errors: a fraction of the airtime carries packets that must be sent again.
        self.packet_error_rate = packet_error_rate
        self.listener = radio_listener
        self.power: RadioPower | None = None
        self.records: list[TransferRecord] = []
        self.air_bytes = 0.0  # running total, an independent check on the records

    def new_record(self, kind: str, nbytes: int, src: str, dst: str,
                   tag: dict[str, Any]) -> TransferRecord:
        record = TransferRecord(len(self.records), kind, int(nbytes), src, dst, self.env.now,
                                tag=tag)
        self.records.append(record)
        return record

    def delivered(self, record: TransferRecord) -> None:
        record.end_s, record.status = self.env.now, "delivered"
        self.events.record(self.env.now, "transfer_end", record.dst,
                           f"{record.kind} #{record.transfer_id} from {record.src}",
                           record.nbytes)

    def send(self, record: TransferRecord, window: int, label: str, profile: RateProfiles,
             remaining: float, parties: Parties, antenna: int = -1, band: str = ""):
        """Send through ``window`` until done or closed; returns the payload bytes moved.
        ``antenna`` and ``band`` say which antenna of station ``label`` served, in which band.

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
        record.segments.append(Segment(window, label, now, self.env.now, sent, antenna, band))
        self.events.record(self.env.now, "transfer_progress", record.src,
                           f"{record.kind} #{record.transfer_id} via {label}", sent)
        overhead = sent / goodput - sent if goodput > 0 else 0.0
        record.overhead_bytes += overhead
        self.air_bytes += sent + overhead
        return sent

    def allowed(self, parties: Parties) -> bool:
        return self.power is None or all(self.power.allowed(sat) for sat, _ in parties)

    def powered(self, parties: Parties):
        """Wait until every party's power system allows its radio."""
        power = self.power
        while power is not None and not self.allowed(parties):
            yield self.env.all_of([power.recharged(sat) for sat, _ in parties
                                   if not power.allowed(sat)])

    def _power_on(self, parties: Parties) -> list[simpy.Event]:
        if self.power is None:
            return []
        return [self.power.start(sat, role) for sat, role in parties]

    def _power_off(self, parties: Parties) -> None:
        if self.power is not None:
            for sat, role in parties:
                self.power.stop(sat, role)

    def _notify(self, parties: Parties, active: bool) -> None:
        if self.listener is not None:
            for sat, role in parties:
                self.listener(sat, role, active)
