"""The simpy network: one facade over the ground links and the inter-satellite relay.

The parts, each with one job: ``airtime.py`` (the transfer log; sending through a window
at its time-varying rate, with bit errors and radios gated by power), ``ground_link.py``
(contact windows, station antennas as a simpy resource, backhaul) and ``isl_relay.py``
(earliest-arrival routes, inter-satellite hops). :class:`Network` wires them over one
contact plan and keeps the interface the mission uses, written down as
:class:`RelayNetwork` so that another network (an ideal one, say) can stand in for it.
Payloads are opaque: a kind and a size.

With a ``RadioPower`` (``gate_radios``), a radio runs only while its satellite's power
system allows: a transfer waits for charge before it sends, and when the battery falls to
its floor mid-pass the transfer pauses exactly as at the end of a pass (keeping or, under
``restart``, discarding its progress) and goes on in the same or a later pass once charged.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd
import simpy

from .airtime import Airtime, RadioPower, Segment, TransferRecord
from .events import EventLog
from .ground_link import GROUND, POLICIES, AntennaPool, Backhaul, GroundLinks, GroundPlan
from .isl_relay import IslRelay
from .routing import Route, Router

__all__ = ["GROUND", "POLICIES", "AntennaPool", "Backhaul", "GroundPlan", "Network",
           "RadioPower", "RelayNetwork", "Segment", "TransferRecord"]


class RelayNetwork(Protocol):
    """What the mission and the tables need from a network."""

    satellites: list[str]

    @property
    def records(self) -> list[TransferRecord]:
        """Every transfer (every hop of a relay), in request order."""

    @property
    def air_bytes(self) -> float:
        """Everything put on the air, retransmissions included."""

    def relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
              **tag: Any) -> simpy.Process:
        """Move a payload from ``src`` to ``dst`` (``GROUND`` or a satellite name); the
        process's value is the list of hop records, the last one delivered at ``dst``."""

    def next_contact_start(self, satellite: str, after_s: float, direction: str) -> float:
        """When the satellite can next send ``direction`` ('up' or 'down'): ``after_s`` if
        it can now, inf if never."""

    def gate_radios(self, power: RadioPower) -> None:
        """Run every radio under ``power`` (before the simulation starts)."""


class Network:
    """Ground <-> satellite transfers over a contact plan with per-window rate profiles,
    and relays over inter-satellite links.

    ``ground`` is what the ground links work over (:class:`GroundPlan`); ``isl`` holds the
    inter-satellite windows.
    """

    def __init__(self, env: simpy.Environment, satellites: Sequence[str], ground: GroundPlan,
                 isl: pd.DataFrame | None = None, packet_error_rate: float = 0.0,
                 radio_listener: Callable[[int, str, bool], None] | None = None,
                 events: EventLog | None = None):
        self.env, self.satellites = env, list(satellites)
        self.airtime = Airtime(env, events, packet_error_rate, radio_listener)
        self.ground = GroundLinks(self.airtime, self.satellites, ground)
        self.isl = IslRelay(self.airtime, self.ground, self.satellites, isl)

    @property
    def records(self) -> list[TransferRecord]:
        return self.airtime.records

    @property
    def air_bytes(self) -> float:
        return self.airtime.air_bytes

    @property
    def events(self) -> EventLog:
        return self.airtime.events

    @property
    def pools(self) -> list[AntennaPool]:
        return self.ground.pools

    @property
    def router(self) -> Router:
        return self.isl.router

    @property
    def backhaul(self) -> Backhaul:
        return self.ground.backhaul

    @property
    def resume(self) -> bool:
        return self.ground.resume

    def gate_radios(self, power: RadioPower) -> None:
        """Run every radio under ``power`` (before the simulation starts)."""
        self.airtime.power = power

    def transfer(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
                 **tag: Any) -> simpy.Process:
        """One ground link transfer (see ``GroundLinks.transfer``)."""
        return self.ground.transfer(kind, nbytes, src, dst, priority, **tag)

    def relay(self, kind: str, nbytes: int, src: str, dst: str, priority: float = 0.0,
              **tag: Any) -> simpy.Process:
        """Move a payload along the earliest-arrival route (inter-satellite hops allowed),
        store-and-forward, each hop its own transfer. The value is the list of hop records;
        without inter-satellite links this is the direct transfer."""
        return self.isl.relay(kind, nbytes, src, dst, priority, **tag)

    def plan_route(self, src: str, dst: str, nbytes: int) -> Route | None:
        return self.isl.plan_route(src, dst, nbytes)

    def windows_of(self, satellite: str) -> np.ndarray:
        return self.ground.windows_of(satellite)

    def next_contact_start(self, satellite: str, after_s: float, direction: str) -> float:
        return self.ground.next_contact_start(satellite, after_s, direction)
