"""Local-training benchmark: orbitfl's training loop against a bare torch loop, and SAFE's
extra cost per round over FedAvg (time and bytes).

    .venv/bin/python benchmarks/local_training.py

Printed figures from one run (best of three for the loops); nothing here is a test.
"""

from __future__ import annotations

import sys
import time

import torch
from timing import best_of
from torch.nn import functional as F

from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.models import ace_options, build_model
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.strategy import FLConfig, SafeConfig
from orbitfl.fl.training import LocalTrainer, TrainConfig

EPOCHS, BATCH = 2, 32


def full_round(strategy, round_index: int, clients, states: dict) -> int:
    """One round in which every client takes part, without a clock or an executor (the
    clients' states, e.g. SAFE's personal models, carried in ``states``); returns the
    bytes exchanged (down and up)."""
    updates, sent = [], 0
    for c, client in enumerate(clients):
        payloads = strategy.to_client(round_index, c)
        update, states[c] = strategy.run_fit(round_index, c, payloads, client, states.get(c))
        sent += sum(p.nbytes for p in payloads + update.payloads)
        updates.append(update)
    strategy.aggregate(round_index, updates)
    return sent


def bare_loop(model, images, labels, generator) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), BATCH):
            batch = order[start:start + BATCH]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def main() -> int:
    torch.set_num_threads(torch.get_num_threads())
    spec = DataSpec(dataset="synthetic", image_size=32, classes=10, samples_per_class_max=200,
                    imbalance_ratio=10.0, partition="iid", ses_per_class=10,
                    test_per_class=20)
    data = build_federation(spec, 4, seed=0)
    client = data.clients[0]
    torch.manual_seed(0)
    model = build_model("small-cnn", 10)
    trainer = LocalTrainer(model, TrainConfig(epochs=EPOCHS, batch_size=BATCH))
    ours = best_of(3, lambda: trainer.train(client, torch.Generator().manual_seed(0)))
    bare = best_of(3, lambda: bare_loop(model, client.images, client.labels,
                                        torch.Generator().manual_seed(0)))
    samples = EPOCHS * len(client)
    print(f"== local training, small CNN, {len(client)} samples x {EPOCHS} epochs, 32 px, "
          f"{torch.get_num_threads()} threads ==")
    overhead = 100 * (ours / bare - 1)
    print(f"bare torch loop {bare:.2f} s ({samples / bare:.0f} samples/s); orbitfl "
          f"{ours:.2f} s ({samples / ours:.0f} samples/s); overhead {overhead:.1f} %")

    print("== SAFE's extra cost per round over FedAvg (4 clients, one round) ==")
    results = {}
    for name, safe in (("FedAvg", None), ("SAFE", SafeConfig(ace_dim=32)),
                       ("SAFE without ACE", SafeConfig(ace=False))):
        torch.manual_seed(0)
        ace = ace_options(safe, len(data.clients)) if safe is not None and safe.ace else None
        strategy = make_strategy("safe" if safe else "fedavg", build_model("small-cnn", 10, ace),
                                 FLConfig(rounds=2, safe=safe or SafeConfig(),
                                          train=TrainConfig(epochs=EPOCHS)), data.ses)
        states: dict = {}
        for r in (1, 2):  # round 2 includes FAU's CKA (round 1 adopts the global model)
            start = time.perf_counter()
            sent = full_round(strategy, r, data.clients, states)
            results[(name, r)] = (time.perf_counter() - start, sent)
    base_time, base_bytes = results[("FedAvg", 2)]
    for (name, r), (seconds, sent) in results.items():
        if r == 2:
            extra_time = 100 * (seconds / base_time - 1)
            extra_bytes = 100 * (sent / base_bytes - 1)
            print(f"{name:18s} round 2: {seconds:.2f} s ({extra_time:+.0f} %), "
                  f"{sent / 1e6:.2f} MB ({extra_bytes:+.0f} %); round 1: "
                  f"{results[(name, 1)][1] / 1e6:.2f} MB (includes the one-time SES)")
    from orbitfl.fl.flops import forward_flops
    plain = forward_flops(build_model("small-cnn", 10), (3, 32, 32))
    for dim in (32, 128):
        with_ace = forward_flops(build_model("small-cnn", 10, {"dim": dim}), (3, 32, 32))
        print(f"ACE FLOPs overhead (d = {dim}): {100 * (with_ace / plain - 1):.1f} % of the "
              f"small CNN's forward pass ({plain / 1e6:.1f} MFLOP)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
