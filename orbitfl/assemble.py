"""One assembly point: a validated scenario becomes everything its run needs.

``assemble`` builds, in this order and from the scenario's one seed, the world (orbits,
contact plan, link rates, faults, sunlight: ``orbitfl/world.py``), every client's data
(``fl/federation.py``), the model and the strategy, the mission's schedule and each
client job's training FLOPs. The parts that live in a simulation's clock (the onboard
computers and batteries, the network) are made by ``Assembly.simulation`` for a given
simpy environment. The runner, and through it the API, the sweeps and the study, use
this and nothing else; tests that need the pieces of a run take them from here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import simpy
import torch

from orbitfl.constellation.compute import CHIPS
from orbitfl.errors import InputError
from orbitfl.fl.config import GEO_DATASETS
from orbitfl.fl.executors import BatchingError, Executor, make_executor, resolve_device
from orbitfl.fl.federation import FederatedData, build_federation
from orbitfl.fl.flops import TRAINING_TO_FORWARD, forward_flops
from orbitfl.fl.models import ace_options, build_model
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.strategy import FLConfig, Strategy
from orbitfl.mission import Schedule
from orbitfl.onboard import Onboard
from orbitfl.prepare import Prepared, prepare
from orbitfl.progress import NO_BARS, Bars
from orbitfl.scenario import Scenario
from orbitfl.world import World, build_world

SELECTION_STREAM = 3  # the seed sub-stream of client selection (faults use 2)
logger = logging.getLogger(__name__)


@dataclass
class Assembly:
    """Everything a run of ``prepared.scenario`` needs, built once."""

    prepared: Prepared
    world: World
    data: FederatedData
    model: torch.nn.Module
    strategy: Strategy
    schedule: Schedule
    flops: list[float]   # training FLOPs of one job of each client
    model_seed: int

    @property
    def scenario(self) -> Scenario:
        return self.prepared.scenario

    def replay_strategy(self) -> Strategy:
        """A second strategy from the same initial model: a resumed run replays the
        timeline's payload sizes with it (it trains nothing)."""
        torch.manual_seed(self.model_seed)
        return build_learning(self.scenario, self.data)[1]

    def simulation(self, env: simpy.Environment):
        """The onboard computers and the network in ``env``, radios gated by charge."""
        onboard = build_onboard(self.world)
        network = self.world.network(env)
        network.gate_radios(onboard.radio_power(env))
        return onboard, network

    def selection_rng(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.scenario.seed,
                                                             SELECTION_STREAM]))

    def executor(self) -> Executor:
        return build_executor(self.scenario, self.strategy, self.data.clients)


def assemble(source: Prepared | Scenario | str | Path,
             overrides: Sequence[tuple[str, Any]] = (),
             progress: Bars | None = None) -> Assembly:
    """The parts of a run of ``source`` (a scenario file, a validated scenario, or one
    already prepared); ``progress`` draws the contact and data stages' bars."""
    bars = progress or NO_BARS
    prepared = source if isinstance(source, Prepared) else prepare(source, overrides)
    scenario = prepared.scenario
    _, model_seed = np.random.SeedSequence(scenario.seed).generate_state(2)
    world = build_world(prepared, bars.task("contacts"))
    d = scenario.data
    logger.info(f"data: {d.dataset}, {d.partition} partition")
    data = build_federation(d, len(prepared.fleet), scenario.seed,
                            world.acquisition_tracks() if d.dataset in GEO_DATASETS
                            else None, progress=bars.task("data"))
    torch.manual_seed(int(model_seed))
    model, strategy = build_learning(scenario, data)
    forward = forward_flops(model, (3, d.image_size, d.image_size))
    flops = [TRAINING_TO_FORWARD * forward * len(c) * scenario.fl.local_epochs
             for c in data.clients]
    return Assembly(prepared, world, data, model, strategy, schedule(scenario), flops,
                    int(model_seed))


def schedule(scenario: Scenario) -> Schedule:
    """The mission's timing of rounds: ``fl.schedule``'s options by name, and what the
    mission adds (the rounds, the horizon, FedBuff's buffer)."""
    options = scenario.fl.schedule.model_dump()
    return Schedule(rounds=scenario.fl.rounds, deadline_s=options.pop("deadline"),
                    horizon_s=scenario.duration,
                    buffer_size=scenario.fl.fedbuff.buffer_size, **options)


def build_learning(scenario: Scenario, data) -> tuple[torch.nn.Module, Strategy]:
    """The model (with ACE when SAFE uses it) and the strategy, from the scenario. The
    training options sit flat in the ``fl`` section of a scenario file; the learning
    layer takes them as one ``TrainConfig`` (``FederatedConfig.train``)."""
    fl = scenario.fl
    safe = fl.safe
    ace = None
    if fl.strategy == "safe" and safe.ace:
        ace = ace_options(safe, len(data.clients))
    model = build_model(scenario.model.name, data.classes, ace).to(
        _device(scenario.execution.device))
    config = FLConfig(rounds=fl.rounds, seed=scenario.seed, safe=safe, fedprox=fl.fedprox,
                      fedbuff=fl.fedbuff, compression=fl.compression, train=fl.train())
    return model, make_strategy(fl.strategy, model, config, data.ses)


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except ValueError as err:
        raise InputError(f"execution.device: {err}") from None


def build_executor(scenario: Scenario, strategy: Strategy, client_data) -> Executor:
    """Where the clients' fits run (the scenario's execution section)."""
    e = scenario.execution
    try:
        return make_executor(e, strategy, client_data)
    except BatchingError as err:
        raise InputError(f"execution.batched: {err}") from None
    except ValueError as err:
        raise InputError(f"execution.backend {e.backend}: {err}") from None


def build_onboard(world: World) -> Onboard:
    """Chip, batteries (charging only in sunlight) and failure times of every satellite."""
    from orbitfl.constellation.power import Battery

    scenario = world.prepared.scenario
    chip = CHIPS[scenario.onboard.compute]
    if scenario.onboard.utilisation is not None:
        chip = replace(chip, utilisation=scenario.onboard.utilisation)
    names = world.satellite_names
    events = world.events

    def crossing(name: str):
        return lambda t, level, direction: events.record(t, f"battery_{level}_{direction}",
                                                         name)

    batteries = [Battery(scenario.onboard.power, starts, ends, scenario.duration,
                         on_cross=crossing(name))
                 for name, (starts, ends) in zip(names, world.sunlight)]
    failed = {names.index(s): t for s, t in world.faults.failed_at.items()}
    return Onboard(chip, batteries, names, events, failed)
