"""Ideal links (``network.mode: ideal``): every satellite is always reachable and every
payload crosses the instant it is sent, so a study can isolate the learning algorithm from
orbital timing while running on the same mission engine.

Bytes are still counted exactly: each payload is one ``TransferRecord`` with one segment
carrying all its bytes, delivered at the time it was requested, so ``transfers.parquet``,
the byte columns of ``rounds.parquet`` and the bytes to target read as in any other run.
Nothing waits for an antenna, a radio, a pass or the battery (power gating is accepted and
ignored), and no inter-satellite hop is ever needed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import simpy

from .events import EventLog
from .network import GROUND, Segment, TransferRecord

IDEAL_STATION = "ideal"  # the ``via`` of every transfer


class IdealNetwork:
    """The relay interface of ``Network`` with links that are always up and infinitely
    fast."""

    def __init__(self, env: simpy.Environment, satellites: Sequence[str],
                 events: EventLog | None = None):
        self.env, self.satellites = env, list(satellites)
        self.events = events if events is not None else EventLog()
        self.records: list[TransferRecord] = []
        self.air_bytes = 0.0
        self._known = set(self.satellites)

    def gate_radios(self, power: Any) -> None:
        """Radios need no power here: the link is ideal."""

    def next_contact_start(self, satellite: str, after_s: float, direction: str) -> float:
        """Always in contact."""
        return float(after_s)

    def windows_of(self, satellite: str) -> np.ndarray:
        """No contact windows: the link does not depend on geometry."""
        return np.empty((0, 4))

    def transfer(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
                 **tag: Any) -> simpy.Process:
        """Deliver at once; the process's value is the ``TransferRecord``."""
        self._check(src, dst)
        return self.env.process(self._deliver(kind, nbytes, src, dst, tag))

    def relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
              **tag: Any) -> simpy.Process:
        """As ``Network.relay``: the value is the list of hop records (here, one)."""
        self._check(src, dst)
        hop_tag = {**tag, "hop": 0, "route": f"{src}->{dst}"}
        return self.env.process(self._one_hop(kind, nbytes, src, dst, hop_tag))

    def _check(self, src: str, dst: str) -> None:
        if (src == GROUND) == (dst == GROUND):
            raise ValueError(f"a transfer joins the ground and a satellite, got {src} -> {dst}")
        satellite = dst if src == GROUND else src
        if satellite not in self._known:
            raise ValueError(f"unknown satellite {satellite!r}")

    def _one_hop(self, kind: str, nbytes: int, src: str, dst: str, tag: dict):
        record = yield self.env.process(self._deliver(kind, nbytes, src, dst, tag))
        return [record]

    def _deliver(self, kind: str, nbytes: int, src: str, dst: str, tag: dict):
        now = self.env.now
        record = TransferRecord(len(self.records), kind, int(nbytes), src, dst, now, tag=tag)
        self.records.append(record)
        record.start_s, record.end_s, record.status = now, now, "delivered"
        record.segments.append(Segment(-1, IDEAL_STATION, now, now, float(nbytes)))
        self.air_bytes += float(nbytes)
        self.events.record(now, "transfer_end", dst, f"{kind} #{record.transfer_id} from {src}",
                           int(nbytes))
        return record
        yield  # a generator, so that simpy runs it as a process
