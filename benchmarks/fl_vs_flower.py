"""The same FedAvg workload through orbitfl's strategy layer and Flower's simulation engine
(Ray), at equal parallelism (two clients training at once on each side): start-up, first
round and per-round steady state reported apart, for 10 and 30 rounds.

    .venv/bin/python benchmarks/fl_vs_flower.py                       # 10 and 30 rounds
    .venv/bin/python benchmarks/fl_vs_flower.py --rounds 10 \
        --flower-python /tmp/flowervenv/bin/python

Workload: 10 clients, the synthetic long-tail task (IF 10, Dirichlet 0.5, 16 px), the small
CNN, 1 local epoch, batch 32, SGD 0.01 with momentum 0.9, every client every round, the
global model evaluated on the balanced test set after the last round. Both sides train with
orbitfl's ``LocalTrainer`` and one torch thread per client, so any difference is the
framework's.

- orbitfl: ``Strategy.to_client`` / ``run_fit`` / ``aggregate`` with the fits submitted to
  the executor of ``execution.backend: local, workers: 2`` (``orbitfl.fl.executors``); where
  that module is absent the fits run one after another and the table says "serial". The
  serial loop is always reported as well. Start-up: building the executor (its pool
  processes start at the first submission, so they fall in the first round).
- Flower: ``flwr.simulation.start_simulation`` with ``ray_init_args={"num_cpus": 2}`` and
  ``client_resources={"num_cpus": 1}``, so two clients train at once. Start-up: from the
  call to the server's first evaluation (Ray's start, the actor pool); a round: between two
  of the server's evaluation callbacks.

Installing Flower's simulation engine. ``pip install 'flwr[simulation]'`` pins Ray to an
older release (flwr 1.42 requires ray==2.55.1, the project venv has 2.60) and changes
protobuf and packaging, which would change the Ray that orbitfl's own sweeps and executors
use; so Flower lives in a separate virtual environment, without the system site packages,
with the same torch (2.13.0, CPU) and orbitfl made importable by the project venv's editable
finder (copied, it maps ``orbitfl.*`` to this checkout):

    python3.11 -m venv /tmp/flowervenv
    /tmp/flowervenv/bin/pip install torch==2.13.0 'flwr[simulation]' simpy sgp4 skyfield \\
        skyfield-data networkx numpy pandas pyarrow matplotlib PyYAML pydantic plotly Pillow rich
    cp .venv/lib/python3.11/site-packages/__editable__*orbitfl* \\
        /tmp/flowervenv/lib/python3.11/site-packages/

The Flower side then runs as a subprocess of that interpreter (``--flower-python``, found at
/tmp/flowervenv/bin/python by default); with Flower importable here it runs in-process.
Figures only, no assertions; both sides run in one invocation on the same machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from orbitfl.fl.extensions import strategy_named
from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.metrics import classification_report
from orbitfl.fl.models import build_model
from orbitfl.fl.strategy import FLConfig
from orbitfl.fl.training import LocalTrainer, TrainConfig, predict

CLIENTS = 10
CONCURRENT = 2
TRAIN = TrainConfig(epochs=1, batch_size=32, lr=0.01)
FLOWER_VENV = Path("/tmp/flowervenv/bin/python")


def workload():
    spec = DataSpec(dataset="synthetic", image_size=16, classes=10, samples_per_class_max=500,
                    imbalance_ratio=10.0, partition="dirichlet", dirichlet_alpha=0.5,
                    ses_per_class=10, test_per_class=100)
    return build_federation(spec, CLIENTS, seed=0)


def accuracy(model, data) -> float:
    return classification_report(predict(model, data.test), data.test.labels.numpy(),
                                 data.classes)["accuracy"]


def timing(start: float, marks: list[float], end: float, startup_end: float) -> dict:
    """Start-up, first round and steady state from the wall-clock marks of round ends."""
    rounds = [b - a for a, b in zip([startup_end, *marks], marks)]
    return {"startup_s": startup_end - start, "first_round_s": rounds[0],
            "steady_round_s": float(np.mean(rounds[1:])) if len(rounds) > 1 else float("nan"),
            "total_s": end - start}


# -- orbitfl -----------------------------------------------------------------------------
def run_orbitfl(data, rounds: int, parallel: bool) -> dict:
    """FedAvg rounds through the strategy layer; ``parallel``: fits on a local pool of
    ``CONCURRENT`` workers when the executors exist."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    strategy = strategy_named("fedavg", build_model("small-cnn", 10),
                             FLConfig(rounds=rounds, train=TRAIN, seed=0))
    start = time.perf_counter()
    executor, mode = None, "serial"
    if parallel:
        try:
            from orbitfl.fl.executors import Execution, FitJob, make_executor
        except ImportError:
            pass
        else:
            executor = make_executor(Execution("local", CONCURRENT), strategy, data.clients)
            mode = f"local, {CONCURRENT} workers"
    ready = time.perf_counter()
    states: list[dict] = [{} for _ in range(CLIENTS)]
    marks, job = [], 0
    try:
        for r in range(1, rounds + 1):
            if executor is None:
                results = [strategy.run_fit(r, c, strategy.to_client(r, c), data.clients[c],
                                            states[c]) for c in range(CLIENTS)]
            else:
                pending = []
                for c in range(CLIENTS):
                    job += 1
                    pending.append(executor.submit(FitJob(job, r, c, strategy.to_client(r, c),
                                                          states[c])))
                results = [p.result() for p in pending]
            states = [state for _, state in results]
            strategy.aggregate(r, [update for update, _ in results])
            marks.append(time.perf_counter())
    finally:
        if executor is not None:
            executor.close()
    final = accuracy(strategy.global_model, data)
    return {"mode": mode, "accuracy": final, **timing(start, marks, time.perf_counter(), ready)}


# -- Flower ------------------------------------------------------------------------------
def run_flower(data, rounds: int) -> dict:
    import flwr as fl
    from flwr.simulation import start_simulation

    torch.manual_seed(0)
    model = build_model("small-cnn", 10)
    keys = list(model.state_dict())

    def to_state(arrays):
        return OrderedDict((k, torch.as_tensor(np.asarray(a))) for k, a in zip(keys, arrays))

    class Client(fl.client.NumPyClient):
        def __init__(self, cid: int):
            torch.set_num_threads(1)
            self.cid = cid
            self.trainer = LocalTrainer(build_model("small-cnn", 10), TRAIN)

        def get_parameters(self, config):
            return [v.numpy() for v in self.trainer.model.state_dict().values()]

        def fit(self, parameters, config):
            self.trainer.model.load_state_dict(to_state(parameters))
            loss = self.trainer.train(data.clients[self.cid],
                                      torch.Generator().manual_seed(self.cid))
            return self.get_parameters({}), len(data.clients[self.cid]), {"loss": loss}

    def client_fn(context):
        return Client(int(context.node_config["partition-id"])).to_client()

    marks: dict[int, float] = {}
    final = {}

    def evaluate(server_round, parameters, config):
        marks[server_round] = time.perf_counter()
        if server_round == rounds:
            model.load_state_dict(to_state(parameters))
            final["accuracy"] = accuracy(model, data)
        return 0.0, {}

    strategy = fl.server.strategy.FedAvg(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=CLIENTS,
        min_available_clients=CLIENTS, evaluate_fn=evaluate,
        initial_parameters=fl.common.ndarrays_to_parameters(
            [v.numpy() for v in model.state_dict().values()]))
    start = time.perf_counter()
    start_simulation(client_fn=client_fn, num_clients=CLIENTS,
                     config=fl.server.ServerConfig(num_rounds=rounds), strategy=strategy,
                     client_resources={"num_cpus": 1, "num_gpus": 0.0},
                     ray_init_args={"num_cpus": CONCURRENT, "include_dashboard": False,
                                    "log_to_driver": False})
    end = time.perf_counter()
    ends = [marks[r] for r in range(1, rounds + 1)]
    return {"mode": f"Ray, {CONCURRENT} clients at once", "version": fl.__version__,
            "accuracy": final["accuracy"], **timing(start, ends, end, marks[0])}


def flower(rounds: int, python: Path) -> dict:
    """Flower's figures: in this process when it is installed here, else from ``python``."""
    if importlib.util.find_spec("flwr") is not None:
        return run_flower(workload(), rounds)
    if not python.is_file():
        return {"error": f"n/a (Flower is not installed here and {python} does not exist; "
                         "see this file's docstring)"}
    done = subprocess.run([str(python), __file__, "--flower-child", str(rounds)],
                          capture_output=True, text=True, env={**os.environ,
                                                               "RAY_DEDUP_LOGS": "0"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed ({tail[:120]})"}
    return json.loads(lines[-1][len("RESULT "):])


def row(name: str, r: dict) -> str:
    if "error" in r:
        return f"{name:26} {r['error']}"
    return (f"{name:26} {r['startup_s']:8.2f} {r['first_round_s']:8.2f} "
            f"{r['steady_round_s']:8.3f} {r['total_s']:8.1f} {r['accuracy']:6.3f}  {r['mode']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--flower-python", type=Path, default=FLOWER_VENV,
                        help="interpreter with flwr[simulation] (when not installed here)")
    parser.add_argument("--flower-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flower_child:
        print("RESULT " + json.dumps(run_flower(workload(), args.flower_child)))
        return 0
    data = workload()
    print(f"FedAvg, {CLIENTS} clients, small CNN, 16 px; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    for rounds in args.rounds:
        results = {"orbitfl, 2 at once": run_orbitfl(data, rounds, parallel=True),
                   "orbitfl, one at a time": run_orbitfl(data, rounds, parallel=False),
                   "Flower, 2 at once": flower(rounds, args.flower_python)}
        print(f"\n== {rounds} rounds ==")
        print(f"{'':26} {'start-up':>8} {'first':>8} {'steady':>8} {'total':>8} {'acc':>6}  "
              "(seconds; steady = mean round after the first)")
        for name, r in results.items():
            print(row(name, r))
        ours, theirs = results["orbitfl, 2 at once"], results["Flower, 2 at once"]
        if "error" not in theirs:
            print(f"steady state: orbitfl {theirs['steady_round_s'] / ours['steady_round_s']:.2f}x"
                  f" faster per round ({ours['mode']} vs Flower {theirs.get('version', '?')}); "
                  f"start-up {theirs['startup_s']:.1f} s vs {ours['startup_s']:.2f} s; "
                  f"whole run {theirs['total_s'] / ours['total_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
