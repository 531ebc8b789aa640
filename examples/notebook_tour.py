"""Two strategies on one constellation, from Python: SAFE against FedAvg on the quickstart.

    .venv/bin/python examples/notebook_tour.py [SCENARIO] [--set fl.rounds=2 ...]
"""

import sys

import orbitfl
from orbitfl.scenario.overrides import parse_override

path = sys.argv[1] if len(sys.argv) > 1 else "scenarios/quickstart.yaml"
changes = dict(parse_override(a) for a in sys.argv[2:] if a != "--set")
scenario = orbitfl.load_scenario(path, overrides=changes)
print(f"{len(orbitfl.contacts(scenario))} contact windows")
runs = {name: orbitfl.run(scenario.with_overrides({"fl.strategy": name,
                                                   "name": f"tour-{name}"}), progress=False)
        for name in ("fedavg", "safe")}
for name, run in runs.items():
    last = run.rounds.iloc[-1]
    print(f"{name:7s} accuracy {last.accuracy:.3f} after {last.sim_time_s / 3600:.1f} h, "
          f"{(last.bytes_up + last.bytes_down) / 1e6:.1f} MB, run in {run.path}")
