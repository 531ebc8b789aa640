"""Each satellite's onboard computer and battery, as the mission sees them.

Training takes ``FLOPs / effective FLOP/s`` of the chip and draws its power; it starts only
when the battery is at or above the training threshold and pauses before the charge would
fall below the floor (resuming once recharged). Radios draw power while they transmit or
receive. A failed satellite does nothing after its failure time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from orbitfl.constellation.compute import ChipProfile
from orbitfl.constellation.events import EventLog
from orbitfl.constellation.power import Battery


@dataclass
class Onboard:
    chip: ChipProfile
    batteries: list[Battery]
    names: list[str]
    events: EventLog
    failed_at: dict[int, float] = field(default_factory=dict)
    _radios_on: dict[tuple[int, str], int] = field(default_factory=dict)

    def mission_energy_j(self, t: float) -> float:
        """Energy all satellites spent on training and radios up to ``t`` (the bus's idle
        load is not the federated workload's)."""
        total = 0.0
        for battery in self.batteries:
            battery.advance(t)
            total += sum(j for name, j in battery.consumed_j.items() if name != "idle")
        return total

    def failed(self, sat: int, t: float) -> bool:
        return t >= self.failed_at.get(sat, float("inf"))

    def radio(self, env: simpy.Environment, sat: int, role: str, active: bool) -> None:
        """Network callback: a radio of ``sat`` starts or stops transmitting/receiving."""
        key = (sat, role)
        self._radios_on[key] = self._radios_on.get(key, 0) + (1 if active else -1)
        spec = self.batteries[sat].spec
        watts = spec.transmit_w if role == "tx" else spec.receive_w
        self.batteries[sat].set_load(env.now, f"radio_{role}",
                                     watts * self._radios_on[key])

    def train(self, env: simpy.Environment, sat: int, flops: float, horizon_s: float):
        """Simulated compute of ``flops``; the process's value is True when it completed
        (False: the satellite failed or the horizon came first)."""
        battery = self.batteries[sat]
        spec = battery.spec
        name = self.names[sat]
        remaining = self.chip.training_time_s(flops)
        started = False
        while remaining > 1e-9:
            if self.failed(sat, env.now):
                return False
            battery.advance(env.now)
            if battery.soc < spec.train_threshold_soc - 1e-9:
                ready = battery.time_to_rise_to(spec.train_threshold_soc)
                self.events.record(env.now, "training_wait_battery", name,
                                   f"soc {battery.soc:.2f}", battery.soc)
                if ready >= horizon_s:
                    return False
                yield env.timeout(max(ready - env.now, 1e-6))
                continue
            battery.set_load(env.now, "compute", self.chip.power_w)
            self.events.record(env.now, "training_resume" if started else "training_start",
                               name, self.chip.name, battery.soc)
            started = True
            run = min(remaining, battery.time_to_fall_to(spec.floor_soc) - env.now,
                      self.failed_at.get(sat, float("inf")) - env.now,
                      horizon_s - env.now)
            yield env.timeout(max(run, 0.0))
            battery.set_load(env.now, "compute", 0.0)
            remaining -= run
            if remaining > 1e-9:
                if env.now >= horizon_s:
                    return False
                self.events.record(env.now, "training_pause", name, "battery floor",
                                   battery.soc)
        self.events.record(env.now, "training_end", name, self.chip.name, battery.soc)
        return True
