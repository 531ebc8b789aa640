"""Electrical power: solar generation in sunlight, loads, and a battery that never goes
negative and never supplies energy it does not have.

Between events (entering or leaving the Earth's shadow, a load switching on or off) the net
power is constant, so the stored energy is piecewise linear between 0 and the capacity.
The books balance at every instant: energy supplied to the loads = initial store +
harvested - stored now - wasted (sunlight that found the battery full). An empty battery
can supply only what the Sun delivers: the demand beyond it is not served (a brown-out: the
satellite is off until the net power turns positive), and it is counted as unserved, never
as supplied. ``time_to_fall_to`` and ``time_to_rise_to`` predict, under the present loads,
when a level will be crossed, which lets loads wait for charge (or stop before the battery
runs flat) without any fixed-step loop.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from orbitfl.core.options import STRICT, option

from .eclipse import is_sunlit, sun_ecef_km
from .propagation import Propagator

WH = 3600.0  # joules per watt-hour


@dataclass(frozen=True)
class PowerSpec:
    """Defaults describe a 3U Earth-observation cubesat (estimates, not a datasheet). The
    scenario's ``onboard.power`` section is this class (``orbitfl/core/options.py``)."""

    __pydantic_config__ = STRICT

    battery_wh: float = option(80.0, "battery capacity [Wh]", gt=0, le=1e6)
    initial_soc: float = option(
        0.9, "state of charge at the epoch (fraction of capacity)", ge=0, le=1)
    # orbit-average pointing; the idle load is the bus, ADCS and payload standby
    solar_w: float = option(20.0, "solar array output in sunlight [W]", ge=0, le=1e6)
    idle_w: float = option(6.0, "bus power drawn all the time [W]", ge=0, le=1e6)
    transmit_w: float = option(15.0, "extra power while transmitting [W]", ge=0, le=1e6)
    receive_w: float = option(2.0, "extra power while receiving [W]", ge=0, le=1e6)
    train_threshold_soc: float = option(
        0.4, "training starts only at or above this state of charge (fraction)", ge=0, le=1)
    floor_soc: float = option(
        0.15, "radios and training stop at this state of charge (fraction)", ge=0, le=1)

    def __post_init__(self) -> None:
        if self.floor_soc >= self.train_threshold_soc:
            raise ValueError("floor_soc must be below train_threshold_soc")


class PowerSample(NamedTuple):
    """The battery's state and cumulative energy books (J) at one instant."""

    t_s: float
    soc: float
    harvested_j: float  # solar output while the satellite was in sunlight
    wasted_j: float     # solar output the full battery could not take
    supplied_j: float   # energy delivered to all loads
    mission_j: float    # of which to training and radios (everything but the idle bus)
    unserved_j: float   # demand an empty battery could not meet (brown-out)


class Battery:
    """One satellite's energy store; times are simulation seconds."""

    def __init__(self, spec: PowerSpec, sun_starts: np.ndarray, sun_ends: np.ndarray,
                 horizon_s: float, on_cross: Callable[[float, str, str], None] | None = None):
        self.spec = spec
        self.capacity_j = spec.battery_wh * WH
        self.level_j = spec.initial_soc * self.capacity_j
        self.time_s = 0.0
        self.horizon_s = horizon_s
        self.loads: dict[str, float] = {"idle": spec.idle_w}
        # Boundaries where sunlight switches, and whether each following span is sunlit.
        edges = np.unique(np.concatenate([[0.0], sun_starts, sun_ends, [horizon_s]]))
        mid = 0.5 * (edges[:-1] + edges[1:])
        inside = np.zeros(len(mid), dtype=bool)
        for a, b in zip(sun_starts, sun_ends):
            inside |= (mid >= a) & (mid < b)
        # plain Python lists: the mission asks about one instant at a time, thousands of
        # times a round, where NumPy's per-call cost outweighs its work
        self._edges, self._sunlit = edges.tolist(), inside.tolist()
        self.consumed_j: dict[str, float] = {}  # energy supplied per load since t = 0
        self.harvested_j = self.wasted_j = self.unserved_j = 0.0
        self.brownout_s = 0.0                   # time spent with loads unserved
        self._browned_out = False
        # Levels whose crossings are reported: on_cross(t, name, "up" | "down"); brown-outs
        # as on_cross(t, "brownout", "start" | "end").
        self._watched = {"empty": 0.0, "floor": spec.floor_soc,
                         "train_threshold": spec.train_threshold_soc, "full": 1.0}
        self._on_cross = on_cross
        self.trace: list[PowerSample] = [self._sample(0.0)]

    @property
    def soc(self) -> float:
        return self.level_j / self.capacity_j

    def sunlit(self, t: float) -> bool:
        k = bisect_right(self._edges, t) - 1
        return bool(self._sunlit[min(max(k, 0), len(self._sunlit) - 1)])

    @property
    def supplied_j(self) -> float:
        return sum(self.consumed_j.values())

    def _sample(self, t: float) -> PowerSample:
        supplied = self.supplied_j
        return PowerSample(t, self.soc, self.harvested_j, self.wasted_j, supplied,
                           supplied - self.consumed_j.get("idle", 0.0), self.unserved_j)

    def _segments(self, start: float, horizon: float = float("inf")):
        """(from, to, solar watts, net watts) spans of constant power from ``start`` to the
        horizon (and on, in the light or shadow of the last span)."""
        load = sum(self.loads.values())
        k = min(max(bisect_right(self._edges, start) - 1, 0), len(self._sunlit) - 1)
        t = start
        for k in range(k, len(self._sunlit)):
            end = self._edges[k + 1] if k + 1 < len(self._sunlit) else max(horizon, start)
            if end > t:
                solar = self.spec.solar_w if self._sunlit[k] else 0.0
                yield t, end, solar, solar - load
                t = end

    def advance(self, t: float) -> None:
        """Integrate up to ``t`` under the present loads, sampling every change of slope."""
        if t <= self.time_s:
            return
        for a, b, solar, power in self._segments(self.time_s, t):
            end = min(b, t)
            self._integrate(a, end, solar, power)
            if end >= t:
                break
        self.time_s = t

    def _integrate(self, a: float, b: float, solar: float, power: float) -> None:
        """One span of constant solar and load power: the level moves at ``power`` until
        the battery is empty (then the loads get only the Sun's output) or full (then the
        surplus is wasted)."""
        before = self.level_j
        if self._browned_out and power >= 0.0:
            self._browned_out = False
            self._cross(a, "brownout", "end")
        limit = before if power < 0 else self.capacity_j - before
        bound = a + limit / abs(power) if power != 0.0 else float("inf")  # empty or full
        corner = min(bound, b)
        self.level_j = _clip(before + power * (corner - a), self.capacity_j)
        self._serve(corner - a, 1.0)
        self.harvested_j += solar * (corner - a)
        self._report_crossings(a, power, before, self.level_j)
        if corner < b:
            if corner > a:
                self.trace.append(self._sample(corner))
            self.level_j = 0.0 if power < 0 else self.capacity_j
            self.harvested_j += solar * (b - corner)
            if power > 0:
                self._serve(b - corner, 1.0)
                self.wasted_j += power * (b - corner)
            else:
                if not self._browned_out:
                    self._browned_out = True
                    self._cross(corner, "brownout", "start")
                load = solar - power
                self._serve(b - corner, solar / load)
                self.unserved_j += -power * (b - corner)
                self.brownout_s += b - corner
        self.trace.append(self._sample(b))

    def _serve(self, seconds: float, fraction: float) -> None:
        """Credit each load with ``fraction`` of its demand over ``seconds``."""
        for name, watts in self.loads.items():
            self.consumed_j[name] = self.consumed_j.get(name, 0.0) + watts * fraction * seconds

    def _cross(self, t: float, name: str, direction: str) -> None:
        if self._on_cross is not None:
            self._on_cross(t, name, direction)

    def _report_crossings(self, t0: float, power: float, before: float, after: float) -> None:
        if power == 0.0:
            return
        for name, soc in self._watched.items():
            level = soc * self.capacity_j
            if power < 0 and after <= level < before:
                self._cross(t0 + (level - before) / power, name, "down")
            elif power > 0 and before < level <= after:
                self._cross(t0 + (level - before) / power, name, "up")

    def set_load(self, t: float, name: str, watts: float) -> None:
        self.advance(t)
        if watts:
            self.loads[name] = watts
        else:
            self.loads.pop(name, None)

    def time_to_fall_to(self, soc: float) -> float:
        """When the charge will be down to ``soc`` under the present loads (now if it already
        is; inf if it stays above until the horizon)."""
        return self._first_time(soc, falling=True)

    def time_to_rise_to(self, soc: float) -> float:
        """When the charge will be up to ``soc`` under the present loads (now if it already
        is; inf if it stays below until the horizon)."""
        return self._first_time(soc, falling=False)

    def _first_time(self, soc: float, falling: bool) -> float:
        target = soc * self.capacity_j
        level = self.level_j
        if (level <= target) if falling else (level >= target):
            return self.time_s
        for a, b, _, power in self._segments(self.time_s, self.horizon_s):
            if (power < 0) if falling else (power > 0):
                reach = a + (target - level) / power
                if reach <= b:
                    return reach
            level = _clip(level + power * (b - a), self.capacity_j)
        return float("inf")


def _clip(level: float, capacity: float) -> float:
    """``level`` within [0, capacity] (``np.clip`` of one number, without its call cost)."""
    return 0.0 if level < 0.0 else capacity if level > capacity else float(level)


def sunlit_intervals(propagator: Propagator, horizon_s: float, step_s: float = 30.0,
                     tolerance_s: float = 0.05) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per satellite, the (starts, ends) of its sunlit spans in [0, horizon_s].

    Shadow entries and exits are bracketed on a grid and bisected on exact positions.
    Eclipses last tens of minutes in LEO, far longer than any sensible step.
    """
    clock = propagator.clock
    grid = np.append(np.arange(0.0, horizon_s, step_s), horizon_s)
    lit = is_sunlit(propagator.ecef_grid(grid), sun_ecef_km(clock, grid)[None])
    sat, k = np.nonzero(lit[:, 1:] != lit[:, :-1])
    lo, hi = grid[k], grid[k + 1]
    entering_light = lit[sat, k + 1]
    while len(lo) and np.max(hi - lo) > tolerance_s:
        mid = 0.5 * (lo + hi)
        now_lit = is_sunlit(propagator.ecef_at(sat, mid), sun_ecef_km(clock, mid))
        changed = now_lit == entering_light
        hi, lo = np.where(changed, mid, hi), np.where(changed, lo, mid)
    switch = 0.5 * (lo + hi)
    out = []
    for i in range(len(propagator)):
        times = np.concatenate([[0.0], switch[sat == i], [horizon_s]])
        states = np.concatenate([[lit[i, 0]], entering_light[sat == i]])
        starts = times[:-1][states]
        ends = times[1:][states]
        out.append((starts, ends))
    return out
