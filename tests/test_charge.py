"""A battery's levels as a simpy resource (constellation/charge.py), against hand-computed
instants: 1 Wh (3600 J) at half charge, in shadow, no idle load."""

import numpy as np
import simpy

from orbitfl.constellation.charge import ChargeLevels
from orbitfl.constellation.power import Battery, PowerSpec

SPEC = PowerSpec(battery_wh=1.0, initial_soc=0.5, solar_w=0.0, idle_w=0.0)


def _levels() -> tuple[simpy.Environment, ChargeLevels]:
    env = simpy.Environment()
    battery = Battery(SPEC, np.array([]), np.array([]), 1000.0)
    return env, ChargeLevels(env, battery)


def _when(env: simpy.Environment, event: simpy.Event, fired: list[float]) -> None:
    event.callbacks.append(lambda _: fired.append(env.now))


def test_a_wait_fires_when_the_load_brings_the_charge_down_to_its_level():
    env, levels = _levels()
    levels.set_load("compute", 36.0)        # 1800 J -> 900 J at 36 W: 25 s
    fired: list[float] = []
    _when(env, levels.reach(0.25, falling=True), fired)
    env.run()
    assert fired == [25.0]


def test_a_change_of_load_predicts_the_wait_anew():
    env, levels = _levels()
    levels.set_load("compute", 36.0)
    fired: list[float] = []
    _when(env, levels.reach(0.25, falling=True), fired)

    def halve():
        yield env.timeout(10.0)             # 1440 J left; 540 J more at 18 W: 30 s
        levels.set_load("compute", 18.0)

    env.process(halve())
    env.run()
    assert fired == [40.0]                  # not 25 s: the first alarm no longer rings


def test_a_level_already_reached_fires_now_and_one_never_reached_never():
    env, levels = _levels()
    fired: list[float] = []
    _when(env, levels.reach(0.6, falling=False), fired)   # no Sun: never
    _when(env, levels.reach(0.5, falling=True), fired)    # there already
    env.run()
    assert fired == [0.0]
    assert len(levels.get_queue) == 1


def test_a_cancelled_wait_is_predicted_no_more():
    env, levels = _levels()
    levels.set_load("compute", 36.0)
    fired: list[float] = []
    wait = levels.reach(0.25, falling=True)
    _when(env, wait, fired)
    wait.cancel()
    levels.set_load("compute", 72.0)        # a new prediction, without the cancelled wait
    env.run()
    assert fired == [] and not levels.get_queue
