"""The SAFE reproduction study (docs/safe-method.md): FedAvg, FedProx, SAFE and its ablations
on the synthetic long-tail protocol and on geo-synthetic data, written as one table.

    .venv/bin/python -m orbitfl.study --out study.csv [--rounds 15] [--quick]

This isolates the algorithms from orbital mechanics: every client takes part in every
round (the constellation's timing is what ``orbitfl run`` adds). Each row: method, data,
imbalance factor, final accuracy, balanced, many/medium/few-shot accuracy, mean accuracy
of the personalised models, bytes per round, wall time, and SAFE's diagnostics (CRO
weights' rank correlation with class frequency, mean CKA divergence, ACE foreground
fraction).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.geo.acquisition import GroundTrack
from orbitfl.fl.metrics import classification_report
from orbitfl.fl.models import build_model
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.strategy import FLConfig, SafeConfig
from orbitfl.fl.training import TrainConfig, predict


@dataclass(frozen=True)
class Method:
    name: str
    strategy: str
    safe: SafeConfig = SafeConfig()


OFF = SafeConfig(cro=False, fau=False, dmr=False, ace=False)
METHODS = [
    Method("FedAvg", "fedavg"),
    Method("FedProx", "fedprox"),
    Method("SAFE", "safe", SafeConfig(ace_dim=32)),
    # Named for what they switch: without DMR, CRO's weights act at full strength from the
    # first round and FAU's mu has no schedule.
    Method("CRO only, constant weights", "safe", replace(OFF, cro=True)),
    Method("FAU only, CKA mu, no schedule", "safe", replace(OFF, fau=True)),
    Method("FAU + DMR schedule, CKA mu", "safe", replace(OFF, fau=True, dmr=True)),
    Method("ACE only", "safe", replace(OFF, ace=True, ace_dim=32)),
    Method("SAFE, fixed mu", "safe", SafeConfig(ace_dim=32, fau_cka=False)),
]


def full_round(strategy, round_index: int, clients) -> int:
    """One round in which every client takes part, without a clock; returns the bytes
    exchanged (down and up)."""
    updates, sent = [], 0
    for c, client in enumerate(clients):
        payloads = strategy.to_client(round_index, c)
        update = strategy.run_fit(round_index, c, payloads, client)
        sent += sum(p.nbytes for p in payloads + update.payloads)
        updates.append(update)
    strategy.aggregate(round_index, updates)
    return sent


def run_method(method: Method, data, rounds: int, seed: int, epochs: int) -> dict:
    torch.manual_seed(seed)
    safe = method.safe
    ace = {"dim": safe.ace_dim} if method.strategy == "safe" and safe.ace else None
    model = build_model("small-cnn", data.classes, ace)
    config = FLConfig(rounds=rounds, seed=seed, safe=safe,
                      train=TrainConfig(epochs=epochs, lr=0.01))
    strategy = make_strategy(method.strategy, model, config, data.ses)
    start = time.perf_counter()
    sent = sum(full_round(strategy, r, data.clients) for r in range(1, rounds + 1))
    counts = data.train_class_counts()
    labels = data.test.labels.numpy()
    report = classification_report(predict(strategy.global_model, data.test), labels,
                                   data.classes, counts)
    row = {"method": method.name, "accuracy": report["accuracy"],
           "balanced": report["balanced_accuracy"], "many": report["many_shot_accuracy"],
           "medium": report["medium_shot_accuracy"], "few": report["few_shot_accuracy"],
           "MB_per_round": sent / rounds / 1e6, "wall_s": time.perf_counter() - start}
    personal = getattr(strategy, "personal", {})
    if personal:
        scores = []
        for state in personal.values():
            strategy.worker.load_state_dict(state)
            scores.append((predict(strategy.worker, data.test) == labels).mean())
        row["personalised"] = float(np.mean(scores))
    if method.strategy == "safe":
        diagnostics = strategy.diagnostics
        if safe.cro:
            weights = strategy.class_weights.numpy()
            row["cro_vs_frequency_rho"] = float(np.corrcoef(
                np.argsort(np.argsort(weights)), np.argsort(np.argsort(counts)))[0, 1])
        divergences = [d["cka_divergence"] for d in diagnostics
                       if not np.isnan(d.get("cka_divergence", np.nan))]
        if divergences:
            row["mean_cka_divergence"] = float(np.mean(divergences))
        if safe.ace:
            row["ace_foreground"] = strategy.ace_foreground_fraction()
    return row


def geo_tracks(clients: int, seed: int) -> list[GroundTrack]:
    """Ground tracks of real Planet Doves for the geo-synthetic part of the study."""
    from datetime import datetime, timezone
    from importlib.resources import as_file, files

    from orbitfl.constellation.fleet import load_element_file
    from orbitfl.constellation.groundtrack import ground_tracks
    from orbitfl.constellation.propagation import Clock, Propagator
    from orbitfl.constellation.tle import select

    # The packaged element files (orbitfl.tle), wherever orbitfl is installed.
    with as_file(files("orbitfl.tle") / "planet_2024-07-16.tle") as tle:
        fleet = select(load_element_file(tle), name="FLOCK 4*", limit=clients)
    propagator = Propagator(fleet, Clock(datetime(2024, 7, 16, 6, tzinfo=timezone.utc)))
    times = np.arange(0.0, 6 * 3600.0, 60.0)
    lat, lon, sun = ground_tracks(propagator, times)
    return [GroundTrack(times, lat[i], lon[i], sun[i]) for i in range(clients)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="IF = 100 only, fewer methods")
    args = parser.parse_args(argv)
    settings = [("synthetic", f) for f in ((100.0,) if args.quick else (10.0, 50.0, 100.0))]
    if not args.quick:
        settings.append(("geo-synthetic", 1.0))
    methods = METHODS[:3] if args.quick else METHODS
    rows = []
    for dataset, factor in settings:
        spec = DataSpec(dataset=dataset, image_size=16 if dataset == "synthetic" else 32,
                        classes=10, samples_per_class_max=500, imbalance_ratio=factor,
                        partition="dirichlet" if dataset == "synthetic" else "orbit",
                        dirichlet_alpha=0.5, ses_per_class=10, test_per_class=100)
        tracks = geo_tracks(args.clients, args.seed) if dataset == "geo-synthetic" else None
        data = build_federation(spec, args.clients, args.seed, tracks)
        for method in methods:
            row = {"data": dataset, "imbalance_factor": factor,
                   **run_method(method, data, args.rounds, args.seed, args.epochs)}
            rows.append(row)
            print(f"{dataset:13s} IF={factor:5.0f} {row['method']:14s} "
                  f"acc {row['accuracy']:.3f} few {row['few']:.3f} "
                  f"({row['wall_s']:.0f} s)", file=sys.stderr, flush=True)
            pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
