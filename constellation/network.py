"""The simpy network: payloads cross between the ground segment and satellites only inside
contact windows, at the link rate, resuming in the next pass when a pass ends mid-transfer.

The engine jumps from contact boundary to completion; it never steps a clock. Payloads are
opaque here (a kind and a size): the network never imports the learning layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .contacts import ContactPlan

GROUND = "ground"


@dataclass
class TransferRecord:
    """One payload's journey; ``bytes_per_pass`` has one entry per contact it used."""

    transfer_id: int
    kind: str
    nbytes: int
    src: str
    dst: str
    requested_s: float
    start_s: float | None = None
    end_s: float | None = None
    bytes_per_pass: list[float] = field(default_factory=list)
    status: str = "waiting"  # waiting -> sending -> delivered
    tag: dict[str, Any] = field(default_factory=dict)

    @property
    def passes_used(self) -> int:
        return len(self.bytes_per_pass)


class Network:
    """Ground <-> satellite transfers over a contact plan at fixed up/down rates.

    Contacts with different stations are interchangeable at a fixed rate, so a satellite's
    usable time is the union of its windows. Each satellite has one radio per direction;
    transfers in the same direction queue for it in request order.
    """

    def __init__(self, env: simpy.Environment, plan: ContactPlan, satellites: list[str],
                 uplink_bps: float, downlink_bps: float):
        self.env = env
        self.satellites = satellites
        self._index = {name: i for i, name in enumerate(satellites)}
        self._rate = {"up": float(uplink_bps), "down": float(downlink_bps)}
        self._intervals = [_union(plan.for_satellite(i)[["start_s", "end_s"]].to_numpy())
                           for i in range(len(satellites))]
        self._radios = {(i, d): simpy.Resource(env, capacity=1)
                        for i in range(len(satellites)) for d in ("up", "down")}
        self.records: list[TransferRecord] = []

    def transfer(self, kind: str, nbytes: int, src: str, dst: str,
                 **tag: Any) -> simpy.Process:
        """Start moving ``nbytes``; the process's value is the finished ``TransferRecord``."""
        if (src == GROUND) == (dst == GROUND):
            raise ValueError(f"a transfer joins the ground and a satellite, got {src} -> {dst}")
        record = TransferRecord(len(self.records), kind, int(nbytes), src, dst, self.env.now,
                                tag=tag)
        self.records.append(record)
        return self.env.process(self._run(record))

    def next_contact(self, satellite: str, after_s: float) -> tuple[float, float] | None:
        """The first usable interval of ``satellite`` that ends after ``after_s``."""
        starts, ends = self._intervals[self._index[satellite]]
        i = int(np.searchsorted(ends, after_s, side="right"))
        return (float(starts[i]), float(ends[i])) if i < len(ends) else None

    def _run(self, record: TransferRecord):
        direction = "up" if record.src == GROUND else "down"
        satellite = record.dst if direction == "up" else record.src
        rate_bytes = self._rate[direction] / 8.0
        with self._radios[(self._index[satellite], direction)].request() as radio:
            yield radio
            remaining = float(record.nbytes)
            while remaining > 0.0:
                contact = self.next_contact(satellite, self.env.now)
                if contact is None:
                    yield self.env.event()  # no contact left before the horizon: in flight forever
                start, end = contact
                if start > self.env.now:
                    yield self.env.timeout(start - self.env.now)
                if record.start_s is None:
                    record.start_s, record.status = self.env.now, "sending"
                needed = remaining / rate_bytes
                available = end - self.env.now
                if needed <= available:
                    yield self.env.timeout(needed)
                    record.bytes_per_pass.append(remaining)
                    remaining = 0.0
                else:
                    yield self.env.timeout(available)
                    sent = available * rate_bytes
                    record.bytes_per_pass.append(sent)
                    remaining -= sent
            if record.start_s is None:
                record.start_s = self.env.now
        record.end_s, record.status = self.env.now, "delivered"
        return record


def _union(intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge overlapping [start, end] rows into disjoint sorted intervals."""
    if len(intervals) == 0:
        return np.empty(0), np.empty(0)
    intervals = intervals[np.argsort(intervals[:, 0])]
    starts, ends = [intervals[0, 0]], [intervals[0, 1]]
    for start, end in intervals[1:]:
        if start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return np.array(starts), np.array(ends)
