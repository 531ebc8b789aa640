"""Each satellite's onboard computer and battery, as the mission sees them.

Training takes ``FLOPs / effective FLOP/s`` of the chip and draws its power; it starts only
when the battery is at or above the training threshold and pauses when the charge falls
to the floor (resuming once recharged). Radios draw power while they transmit or receive,
and are gated by charge the same way: a satellite whose charge has fallen to the floor
stops its radios there (the network pauses the transfer, as at the end of a pass) and
uses them again once the battery is back at the training threshold. The idle bus keeps
drawing below the floor; an empty battery browns it out (the battery records it). Waiting
for a level is a request to the battery's charge as a simpy resource (``charge.py``, as
the antennas are one): exact in simulated time and predicted anew at every change of load,
so a load that starts while another runs cannot carry the battery past the floor. A
failed satellite does nothing after its failure time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from .charge import ChargeLevels, LevelWait
from .compute import ChipProfile
from .events import EventLog
from .power import Battery


@dataclass
class Onboard:
    chip: ChipProfile
    batteries: list[Battery]
    names: list[str]
    events: EventLog
    failed_at: dict[int, float] = field(default_factory=dict)
    _radios_on: dict[int, dict[str, int]] = field(default_factory=dict)  # sat -> role -> on
    _levels: dict[int, ChargeLevels] = field(default_factory=dict)  # sat -> its charge
    _radios_shed: set[int] = field(default_factory=set)  # fell to the floor, not recharged
    _radio_floor: dict[int, LevelWait] = field(default_factory=dict)

    def mission_energy_j(self, t: float) -> float:
        """Energy supplied to training and radios on all satellites up to ``t`` (the bus's
        idle load is not the federated workload's)."""
        total = 0.0
        for battery in self.batteries:
            battery.advance(t)
            total += sum(j for name, j in battery.consumed_j.items() if name != "idle")
        return total

    def failed(self, sat: int, t: float) -> bool:
        return t >= self.failed_at.get(sat, float("inf"))

    def charge(self, env: simpy.Environment, sat: int) -> ChargeLevels:
        """``sat``'s charge levels as a simpy resource in ``env`` (made on first use)."""
        if sat not in self._levels:
            self._levels[sat] = ChargeLevels(env, self.batteries[sat])
        return self._levels[sat]

    # -- radios (the network's RadioPower) --------------------------------------------
    def radio_power(self, env: simpy.Environment) -> "_RadioPower":
        return _RadioPower(self, env)

    def radio_allowed(self, env: simpy.Environment, sat: int) -> bool:
        """Radios run above the floor, and after falling to it, from the threshold on."""
        battery, spec = self.batteries[sat], self.batteries[sat].spec
        battery.advance(env.now)
        if sat in self._radios_shed and battery.soc >= spec.train_threshold_soc - 1e-9:
            self._radios_shed.discard(sat)
        if battery.soc <= spec.floor_soc + 1e-9:
            self._radios_shed.add(sat)
        return sat not in self._radios_shed

    def radio_recharged(self, env: simpy.Environment, sat: int) -> simpy.Event:
        battery = self.batteries[sat]
        self.events.record(env.now, "radio_wait_battery", self.names[sat],
                           f"soc {battery.soc:.2f}", battery.soc)
        return self.charge(env, sat).reach(battery.spec.train_threshold_soc, falling=False)

    def radio(self, env: simpy.Environment, sat: int, role: str, active: bool) -> simpy.Event:
        """A radio of ``sat`` starts or stops transmitting/receiving. The value: the event
        that fires when the charge falls to the floor (every radio of ``sat`` must then
        stop); one per satellite, shared by its radios while any is on."""
        radios = self._radios_on.setdefault(sat, {})
        radios[role] = radios.get(role, 0) + (1 if active else -1)
        battery, charge = self.batteries[sat], self.charge(env, sat)
        spec = battery.spec
        watts = spec.transmit_w if role == "tx" else spec.receive_w
        battery.set_load(env.now, f"radio_{role}", watts * radios[role])  # predicted below
        floor = self._radio_floor.get(sat)
        if not any(radios.values()):
            charge.predict()
            if floor is not None:
                self._radio_floor.pop(sat).cancel()
            return floor or env.event()
        if floor is None or floor.triggered:
            # a new wait predicts every wait, itself included: the one prediction the
            # load change needs
            floor = self._radio_floor[sat] = charge.reach(spec.floor_soc, falling=True)
            floor.callbacks.append(lambda _: self._radios_shed.add(sat))
        else:
            charge.predict()
        return floor

    def train(self, env: simpy.Environment, sat: int, flops: float, horizon_s: float):
        """Simulated compute of ``flops``; the process's value is True when it completed
        (False: the satellite failed or the horizon came first)."""
        battery, charge = self.batteries[sat], self.charge(env, sat)
        spec = battery.spec
        name = self.names[sat]
        remaining = self.chip.training_time_s(flops)
        started = False
        while remaining > 1e-9:
            stop = min(self.failed_at.get(sat, float("inf")), horizon_s)
            if env.now >= stop:
                return False
            battery.advance(env.now)
            if battery.soc < spec.train_threshold_soc - 1e-9:
                self.events.record(env.now, "training_wait_battery", name,
                                   f"soc {battery.soc:.2f}", battery.soc)
                ready = charge.reach(spec.train_threshold_soc, falling=False)
                yield ready | env.timeout(stop - env.now)
                ready.cancel()
                continue
            charge.set_load("compute", self.chip.power_w)
            self.events.record(env.now, "training_resume" if started else "training_start",
                               name, self.chip.name, battery.soc)
            started = True
            began = env.now
            floor = charge.reach(spec.floor_soc, falling=True)
            yield floor | env.timeout(min(remaining, stop - env.now))
            floor.cancel()
            charge.set_load("compute", 0.0)
            remaining -= env.now - began
            if remaining > 1e-9:
                if env.now >= horizon_s:
                    return False
                self.events.record(env.now, "training_pause", name, "battery floor",
                                   battery.soc)
        self.events.record(env.now, "training_end", name, self.chip.name, battery.soc)
        return True


@dataclass
class _RadioPower:
    """The network's view of the onboard power system (``network.RadioPower``)."""

    onboard: Onboard
    env: simpy.Environment

    def allowed(self, sat: int) -> bool:
        return self.onboard.radio_allowed(self.env, sat)

    def recharged(self, sat: int) -> simpy.Event:
        return self.onboard.radio_recharged(self.env, sat)

    def start(self, sat: int, role: str) -> simpy.Event:
        return self.onboard.radio(self.env, sat, role, True)

    def stop(self, sat: int, role: str) -> None:
        self.onboard.radio(self.env, sat, role, False)
