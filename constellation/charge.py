"""A battery's charge as a simpy resource: waiting for a level is a request, the way a
station's antennas are one (``ground_link.AntennaPool``).

A :class:`LevelWait` (``ChargeLevels.reach``) fires at the exact simulated instant the
charge falls or rises to its level, or never if it does not before the horizon. Loads set
the slope of the charge, so every new wait and every change of load (``set_load``,
``predict``) predicts every pending wait anew from the battery's piecewise-linear model
(``power.Battery``); the alarms of an earlier prediction no longer ring. A waiter that gives
up cancels its wait (``LevelWait.cancel``, as with any simpy request): it is predicted no
more, though an alarm of the present prediction still marks the level reached.
"""

from __future__ import annotations

from typing import Any

import simpy
from simpy.resources.base import BaseResource, Get

from .power import Battery


class LevelWait(Get):
    """Fires when the charge reaches ``soc`` (``falling``: from above; else from below)."""

    def __init__(self, levels: ChargeLevels, soc: float, falling: bool):
        self.soc, self.falling = soc, falling
        super().__init__(levels)


class ChargeLevels(BaseResource):
    """One battery's charge levels in ``env``; the gets of this resource are level waits
    (nothing is put: the loads move the level)."""

    def __init__(self, env: simpy.Environment, battery: Battery):
        self.battery = battery
        self._prediction = 0  # alarms of older predictions do not ring
        super().__init__(env, capacity=float("inf"))

    def reach(self, soc: float, falling: bool) -> LevelWait:
        """The get of this resource: a wait for the charge to reach ``soc``."""
        return LevelWait(self, soc, falling)

    def set_load(self, name: str, watts: float) -> None:
        """A load of the battery changes now; the pending waits are predicted anew."""
        self.battery.set_load(self._env.now, name, watts)
        self.predict()

    def predict(self) -> None:
        """Set every pending wait's alarm under the present loads."""
        self._trigger_get(None)

    def _trigger_get(self, put_event: Any) -> None:
        self.battery.advance(self._env.now)
        self._prediction += 1
        super()._trigger_get(put_event)

    def _do_get(self, event: Any) -> bool:
        """Set the alarm of ``event`` (a pending ``LevelWait``) to the instant its level is
        reached; waits are granted by their alarms, in simulated time, never here."""
        wait: LevelWait = event
        battery = self.battery
        at = battery.time_to_fall_to(wait.soc) if wait.falling \
            else battery.time_to_rise_to(wait.soc)
        if at < float("inf"):
            alarm = self._env.timeout(max(at - self._env.now, 0.0))
            prediction = self._prediction
            alarm.callbacks.append(lambda _: self._ring(wait, prediction))
        return True  # on to the next wait

    def _ring(self, wait: LevelWait, prediction: int) -> None:
        if prediction != self._prediction or wait.triggered:
            return
        if wait in self.get_queue:  # not if its waiter gave up (cancelled it) already
            self.get_queue.remove(wait)
        wait.succeed()
