"""One assembly point: a validated scenario becomes everything its run needs.

``assemble`` builds, in this order and from the scenario's one seed, the world (orbits,
contact plan, link rates, faults, sunlight: ``orbitfl/engine/world.py``), every client's data
(``fl/federation.py``), the model and the strategy, the mission's schedule and each
client job's training FLOPs. The parts that live in a simulation's clock (the onboard
computers and batteries, the network, built here from the world's parts) are made by
``Assembly.simulation`` for a given simpy environment, and ``Assembly.mission`` hands them,
the learning side (live, or replaying a resumed run's past), the evaluator, the schedule
and the random streams to a ``Mission``. The runner, and through it the API, the sweeps
and the study, use this and nothing else; tests that need the pieces of a run take them
from here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import simpy
import torch

from orbitfl.constellation.compute import CHIPS
from orbitfl.constellation.ideal_network import IdealNetwork
from orbitfl.constellation.links import link_band, look_angles
from orbitfl.constellation.network import GroundPlan, Network, RelayNetwork
from orbitfl.constellation.onboard import Onboard
from orbitfl.core.errors import InputError
from orbitfl.core.progress import NO_BARS, Bars
from orbitfl.core.random_streams import RandomStreams
from orbitfl.engine.evaluation import Evaluator
from orbitfl.engine.learning import Learning, LearningSide
from orbitfl.engine.mission import Mission, MissionHooks, Schedule
from orbitfl.engine.plugin_check import where_plugin
from orbitfl.engine.prepare import Prepared, prepare
from orbitfl.engine.replay import Replay
from orbitfl.engine.world import World, build_world
from orbitfl.fl.config import GEO_DATASETS
from orbitfl.fl.executors import BatchingError, Executor, make_executor, resolve_device
from orbitfl.fl.extensions import make_model, strategy_class, strategy_options
from orbitfl.fl.federation import FederatedData, build_federation
from orbitfl.fl.flops import TRAINING_TO_FORWARD, forward_flops
from orbitfl.fl.models import build_model
from orbitfl.fl.registry import PluginError
from orbitfl.fl.strategy import FLConfig, Strategy
from orbitfl.scenario import FederatedConfig, Scenario

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

    @property
    def streams(self) -> RandomStreams:
        return RandomStreams(self.scenario.seed)

    def replay_strategy(self) -> Strategy:
        """A second strategy from the same initial model: a resumed run replays the
        timeline's payload sizes with it (it trains nothing)."""
        torch.manual_seed(self.model_seed)
        return build_learning(self.scenario, self.data)[1]

    def simulation(self, env: simpy.Environment) -> Simulation:
        """The onboard computers and the network in ``env``, radios gated by charge."""
        onboard = build_onboard(self.world)
        network = build_network(env, self.world)
        network.gate_radios(onboard.radio_power(env))
        return Simulation(env, onboard, network)

    def executor(self) -> Executor:
        return build_executor(self.scenario, self.strategy, self.data.clients)

    def mission(self, env: simpy.Environment, hooks: MissionHooks | None = None,
                checkpointer: Callable[[dict], None] | None = None,
                resume: dict | None = None) -> Mission:
        """The mission in ``env``: ``checkpointer`` receives a checkpoint after every round;
        with ``resume`` (such a checkpoint) the timeline up to it is replayed (sizes only,
        no training) by a fresh strategy, then the saved state goes on."""
        replay = None if resume is None else (self.replay_strategy(), resume)
        sim = self.simulation(env)
        d = self.data
        live = Learning(self.strategy, d.clients, self.executor(), checkpointer, self.flops)
        learning: LearningSide = live if replay is None else Replay(replay[0], live, replay[1])
        evaluator = Evaluator(d.test, d.validation, d.clients, d.classes,
                              d.train_class_counts(), self.strategy, self.schedule.fine_tune)
        return Mission(env, sim.network, sim.onboard, learning, evaluator, self.schedule,
                       self.streams, hooks)


@dataclass(frozen=True)
class Simulation:
    """The parts of a run that live in one simpy environment's clock."""

    env: simpy.Environment
    onboard: Onboard
    network: RelayNetwork


def assemble(source: Prepared | Scenario | str | Path,
             overrides: Sequence[tuple[str, Any]] = (),
             progress: Bars | None = None) -> Assembly:
    """The parts of a run of ``source`` (a scenario file, a validated scenario, or one
    already prepared); ``progress`` draws the contact and data stages' bars."""
    bars = progress or NO_BARS
    prepared = source if isinstance(source, Prepared) else prepare(source, overrides)
    scenario = prepared.scenario
    model_seed = RandomStreams(scenario.seed).model_seed
    world = build_world(prepared, bars.task("contacts"))
    d = scenario.data
    logger.info(f"data: {d.source}, {d.partition} partition")
    data = build_federation(d, len(prepared.fleet), scenario.seed,
                            world.acquisition_tracks() if d.source in GEO_DATASETS
                            else None, progress=bars.task("data"))
    torch.manual_seed(model_seed)
    model, strategy = build_learning(scenario, data)
    forward = forward_flops(model, (3, d.image_size, d.image_size))
    flops = [TRAINING_TO_FORWARD * forward * len(c) * federated(scenario).local_epochs
             for c in data.clients]
    return Assembly(prepared, world, data, model, strategy, schedule(scenario), flops,
                    model_seed)


def schedule(scenario: Scenario) -> Schedule:
    """The mission's timing of rounds: ``fl.schedule``'s options by name, and what the
    mission adds (the rounds, the horizon, FedBuff's buffer)."""
    fl = federated(scenario)
    options = fl.schedule.model_dump()
    return Schedule(rounds=fl.rounds, deadline_s=options.pop("deadline"),
                    horizon_s=scenario.duration, buffer_size=fl.fedbuff.buffer_size,
                    target_metric=target_metric(scenario), **options)


def target_metric(scenario: Scenario) -> str:
    """The rounds column a run's targets read: top-1 accuracy, or mIoU for segmentation
    (an all-background map has 0.95 pixel accuracy at a 5 % object share)."""
    segmentation = scenario.data is not None and scenario.data.task == "segmentation"
    return "miou" if segmentation else "accuracy"


def federated(scenario: Scenario) -> FederatedConfig:
    """The scenario's ``fl`` section, which every run needs (``prepare`` refuses a run
    without it before any work)."""
    if scenario.fl is None:
        raise InputError(f"scenario {scenario.name}: no fl: section; a run needs one")
    return scenario.fl


def build_learning(scenario: Scenario, data) -> tuple[torch.nn.Module, Strategy]:
    """The model (with the extras its strategy asks for, such as SAFE's ACE) and the
    strategy, from the scenario: built-in names, installed plugins or references alike
    (``fl/registry.py``). The training options sit flat in the ``fl`` section of a scenario
    file; the learning layer takes them as one ``TrainConfig`` (``FederatedConfig.train``)."""
    fl = federated(scenario)
    config = FLConfig(rounds=fl.rounds, seed=scenario.seed, safe=fl.safe, fedprox=fl.fedprox,
                      fedbuff=fl.fedbuff, compression=fl.compression, train=fl.train())
    try:
        cls = strategy_class(fl.strategy_entry)
        options = strategy_options(cls, fl.strategy_entry, fl.strategy_options)
        model = _model(scenario, data.classes, cls.model_extras(config, data)).to(
            _device(scenario.execution.device))
        return model, cls.create(model, config, data, options)
    except PluginError as err:
        raise InputError(f"{where_plugin(err)}: {err}") from None


def _model(scenario: Scenario, classes: int, extras: dict) -> torch.nn.Module:
    entry = scenario.model.entry
    if entry.built_in:
        return build_model(scenario.model.name, classes, **extras)
    if extras:
        raise PluginError(f"model {entry.name!r}: the strategy builds extras into the model "
                          f"({', '.join(extras)}), which only the built-in models take (SAFE: "
                          "set fl.safe.ace: false)")
    return make_model(entry, classes, scenario.model.options)


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


def build_network(env: simpy.Environment, world: World) -> RelayNetwork:
    """The scenario's network over the world's usable windows (or ideal links)."""
    config = world.prepared.scenario.network
    if config.mode == "ideal":
        return IdealNetwork(env, world.satellite_names, events=world.events)
    stations = world.prepared.stations

    def elevation(sat: int, station: int, t: float) -> float:
        return float(look_angles(world.propagator, np.array([sat]), stations[station],
                                 np.array([t]))[1][0])

    ground = GroundPlan(world.faults.windows, [(s.id, s.antennas) for s in stations],
                        world.usable_down, world.usable_up, policy=config.antenna_policy,
                        resume=config.transfer_policy == "resume", backhaul=config.backhaul,
                        elevation=elevation,
                        bands={d: [link_band(m) for m in world.prepared.links(d)]
                               for d in ("down", "up")})
    return Network(env, world.satellite_names, ground, isl=world.faults.isl,
                   packet_error_rate=world.fault_spec.packet_error_rate, events=world.events)
