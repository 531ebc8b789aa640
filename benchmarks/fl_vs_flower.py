"""The same FedAvg workload through orbitfl's strategy layer and through Flower's simulation
engine (Ray): wall time and final accuracy side by side.

    .venv/bin/pip install -e '.[flower]'     # benchmark-only extra: flwr[simulation]
    .venv/bin/python benchmarks/fl_vs_flower.py [--rounds 10]

Workload: 10 clients, the synthetic long-tail task (IF 10, Dirichlet 0.5, 16 px), the small
CNN, 1 local epoch, batch 32, SGD 0.01 with momentum 0.9, every client every round,
evaluation of the global model on the balanced test set after the last round. Both sides
train with the same ``LocalTrainer`` so any difference is the framework's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict

import numpy as np
import torch

from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.metrics import classification_report
from orbitfl.fl.models import build_model
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.strategy import FLConfig
from orbitfl.fl.training import LocalTrainer, TrainConfig, predict
from orbitfl.study import full_round

CLIENTS = 10
TRAIN = TrainConfig(epochs=1, batch_size=32, lr=0.01)


def workload():
    spec = DataSpec(dataset="synthetic", image_size=16, classes=10, samples_per_class_max=500,
                    imbalance_ratio=10.0, partition="dirichlet", dirichlet_alpha=0.5,
                    ses_per_class=10, test_per_class=100)
    return build_federation(spec, CLIENTS, seed=0)


def accuracy(model, data) -> float:
    return classification_report(predict(model, data.test), data.test.labels.numpy(),
                                 data.classes)["accuracy"]


def run_orbitfl(data, rounds: int) -> tuple[float, float]:
    torch.manual_seed(0)
    strategy = make_strategy("fedavg", build_model("small-cnn", 10),
                             FLConfig(rounds=rounds, train=TRAIN, seed=0))
    start = time.perf_counter()
    for r in range(1, rounds + 1):
        full_round(strategy, r, data.clients)
    return time.perf_counter() - start, accuracy(strategy.global_model, data)


def run_flower(data, rounds: int) -> tuple[float, float]:
    import flwr as fl
    from flwr.simulation import start_simulation

    torch.manual_seed(0)
    model = build_model("small-cnn", 10)
    keys = list(model.state_dict())

    def to_state(arrays):
        return OrderedDict((k, torch.as_tensor(np.asarray(a))) for k, a in zip(keys, arrays))

    class Client(fl.client.NumPyClient):
        def __init__(self, cid: int):
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

    final = {}

    def evaluate(server_round, parameters, config):
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
                     ray_init_args={"include_dashboard": False, "log_to_driver": False})
    return time.perf_counter() - start, final["accuracy"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    data = workload()
    ours, our_accuracy = run_orbitfl(data, args.rounds)
    theirs, their_accuracy = run_flower(data, args.rounds)
    print(f"== FedAvg, {CLIENTS} clients, {args.rounds} rounds, small CNN ==")
    print(f"orbitfl strategy layer: {ours:.1f} s, final accuracy {our_accuracy:.3f}")
    print(f"Flower simulation (Ray): {theirs:.1f} s, final accuracy {their_accuracy:.3f}")
    print(f"orbitfl is {theirs / ours:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
