"""Network-engine benchmark.

    .venv/bin/python benchmarks/network.py [--mission-only] [--scenario FILE] [--out DIR]

1. A 100-satellite, 20-station, 7-day scenario with periodic 20 MB downlinks (and 1 MB
   uplinks) and no training: simulated events per second and wall time of the engine.
2. The engine's share of an end-to-end mission run (the quickstart scenario): wall time
   spent in the simulation outside the learning work of the strategy the scenario runs
   (local training, aggregation, what the server computes to broadcast, evaluation) and
   outside checkpoints, over the run's total wall time.

Printed figures from one run; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import simpy

from orbitfl.constellation.contacts import compute_contacts
from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.links import LINK_PRESETS, FixedRate, rate_profiles
from orbitfl.constellation.network import GROUND, GroundPlan, Network
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.stations import catalog

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
DAYS = 7


def engine_benchmark() -> None:
    fleet = [e for f in ("planet_2024-07-16.tle", "eo-core_2024-07-16.tle")
             for e in load_element_file(REPO / "tle" / f)][:100]
    stations = list(catalog().values())[:17]
    stations += [stations[0].__class__(f"extra-{i}", f"extra-{i}", lat, lon, 0.0, 10.0, 2)
                 for i, (lat, lon) in enumerate([(-33.9, 18.4), (1.3, 103.8), (-45.9, 170.5)])]
    horizon = DAYS * 86400.0
    propagator = Propagator(fleet, Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc)))
    start = time.perf_counter()
    plan = compute_contacts(propagator, stations, horizon)
    down = rate_profiles(plan, propagator, stations, LINK_PRESETS["dove-x"])
    up = rate_profiles(plan, propagator, stations, FixedRate(2e6))
    physics = time.perf_counter() - start

    env = simpy.Environment()
    names = [e.name for e in fleet]
    network = Network(env, names, GroundPlan(plan.windows,
                                             [(s.id, s.antennas) for s in stations], down, up))

    def periodic(name: str, phase: float):
        yield env.timeout(phase)
        while env.now < horizon:
            network.transfer("weights", 20_000_000, name, GROUND)
            network.transfer("weights", 1_000_000, GROUND, name)
            yield env.timeout(3 * 3600.0)

    rng = np.random.default_rng(0)
    for name in names:
        env.process(periodic(name, float(rng.uniform(0, 3 * 3600.0))))
    start = time.perf_counter()
    env.run(until=horizon)
    wall = time.perf_counter() - start
    events = next(env._eid)  # simpy's running event counter
    delivered = sum(r.status == "delivered" for r in network.records)
    print(f"== engine: {len(fleet)} satellites x {len(stations)} stations x {DAYS} days, "
          f"{len(plan.windows)} windows ==")
    print(f"contacts and rate profiles: {physics:.1f} s; simulation: {wall:.2f} s wall, "
          f"{events} events ({events / wall:,.0f} events/s), {len(network.records)} transfers "
          f"({delivered} delivered)")


def timed(owner: type, method: str, bucket: str, spent: dict[str, float]) -> None:
    """Replace ``owner.method`` by a wrapper that adds its wall time to ``spent[bucket]``."""
    function = getattr(owner, method)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[bucket] += time.perf_counter() - start

    setattr(owner, method, wrapper)


def mission_share(scenario: Path = QUICKSTART, out: Path | None = None) -> None:
    """Time the learning work of the strategy the scenario actually runs (its class, read
    from the scenario, not a fixed one) and the checkpoints; the engine is what is left of
    ``Mission.run``."""
    import orbitfl.engine.runner as runner
    from orbitfl.engine.mission import Mission
    from orbitfl.fl.extensions import strategy_class
    from orbitfl.scenario import load_scenario

    entry = load_scenario(scenario).fl.strategy_entry
    spent = {"learning": 0.0, "checkpoints": 0.0, "mission": 0.0}
    strategy = strategy_class(entry)
    for method in ("run_fit", "aggregate", "to_client"):  # training, aggregation, broadcast
        timed(strategy, method, "learning", spent)
    timed(Mission, "_record", "learning", spent)         # evaluation
    timed(Mission, "_round_done", "checkpoints", spent)
    timed(Mission, "run", "mission", spent)
    with tempfile.TemporaryDirectory() as tmp:  # status lines: logged, shown by no handler
        start = time.perf_counter()
        summary = runner.run(scenario, out or Path(tmp) / "run")
        total = time.perf_counter() - start
    engine = spent["mission"] - spent["learning"] - spent["checkpoints"]
    print(f"== engine share of the {scenario.stem} mission run ({strategy.__name__}) ==")
    print(f"total {total:.1f} s; learning (training, aggregation, broadcast, evaluation) "
          f"{spent['learning']:.1f} s; checkpoints {spent['checkpoints']:.1f} s; "
          f"discrete-event engine {engine:.2f} s = {100 * engine / total:.1f} % of the run")
    print(f"(the run: {summary.rounds_completed}/{summary.rounds_planned} rounds in "
          f"{summary.sim_time_s / 3600:.2f} h simulated, accuracy "
          f"{summary.initial_accuracy:.3f} -> {summary.final_accuracy:.3f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mission-only", action="store_true", help="skip part 1")
    parser.add_argument("--scenario", type=Path, default=QUICKSTART)
    parser.add_argument("--out", type=Path, help="keep part 2's run directory here")
    args = parser.parse_args()
    if not args.mission_only:
        engine_benchmark()
    mission_share(args.scenario, args.out)
    sys.exit(0)
