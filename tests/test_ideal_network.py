"""Ideal links (network.mode: ideal): every payload crosses at the instant it is sent,
every client takes part in every round, and every byte is still counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy
import torch
import yaml

from orbitfl.constellation.ideal_network import IdealNetwork
from orbitfl.constellation.network import GROUND
from orbitfl.fl.datasets import FederatedData, ImageSet
from orbitfl.fl.federation import hold_out_validation

ROOT = Path(__file__).resolve().parent.parent


def test_relay_delivers_at_once_and_counts_every_byte():
    env = simpy.Environment()
    network = IdealNetwork(env, ["A", "B"])
    done = []

    def job():
        yield env.timeout(5.0)
        down = yield network.relay("weights", 1234, GROUND, "B", round=1, client=1)
        up = yield network.relay("weights", 999, "A", GROUND, round=1, client=0)
        done.append((env.now, down, up))

    env.process(job())
    env.run()
    now, down, up = done[0]
    assert now == 5.0
    assert [r.nbytes for r in down + up] == [1234, 999]
    assert all(r.status == "delivered" and r.start_s == r.end_s == 5.0 for r in down + up)
    assert network.air_bytes == 1234 + 999
    assert [r.bytes_sent for r in network.records] == [1234.0, 999.0]
    assert network.next_contact_start("A", 7.0, "up") == 7.0


def test_a_transfer_between_two_satellites_or_to_an_unknown_one_is_refused():
    network = IdealNetwork(simpy.Environment(), ["A"])
    with pytest.raises(ValueError):
        network.relay("weights", 1, "A", "A")
    with pytest.raises(ValueError):
        network.relay("weights", 1, GROUND, "Z")


def test_validation_is_held_out_of_each_client_and_never_trained_on():
    clients = [ImageSet(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 1, 1),
                        torch.arange(n) % 3) for n in (10, 25, 1)]
    data = FederatedData(clients, clients[0], 3)
    split = hold_out_validation(data, 0.2, np.random.default_rng(0))
    assert [len(c) for c in split.clients] == [8, 20, 1]   # floor(0.2 n); one always kept
    assert len(split.validation) == 2 + 5
    for before, after in zip(clients, split.clients):
        kept = set(after.images[:, 0, 0, 0].tolist())
        assert kept <= set(before.images[:, 0, 0, 0].tolist())
    # what was held out of client 1 is not in its training set
    held_1 = set(split.validation.images[2:, 0, 0, 0].tolist())
    assert not held_1 & set(split.clients[1].images[:, 0, 0, 0].tolist())


def test_a_run_with_ideal_links_has_every_client_in_every_round(tmp_path):
    """Through the real engine: 3 satellites, 2 rounds of FedAvg."""
    scenario = yaml.safe_load((ROOT / "scenarios/study/base.yaml").read_text())
    scenario["constellation"]["tle"] = str(ROOT / "tle/planet_2024-07-16.tle")
    scenario["constellation"]["select"]["limit"] = 3
    scenario["data"].update(samples_per_class_max=20, imbalance_ratio=2, test_per_class=5,
                            validation_per_class=2, min_per_client=5)
    scenario["fl"].update(rounds=2, local_epochs=1)
    scenario["fl"]["schedule"].update(min_clients=3, evaluate_every=1)
    path = tmp_path / "ideal.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "orbitfl", "run", str(path), "--out", str(out)],
                   check=True, capture_output=True, cwd=tmp_path)
    rounds = pd.read_parquet(out / "rounds.parquet")
    assert rounds["received"].tolist()[1:] == [3, 3]
    assert rounds["val_accuracy"].iloc[1:].notna().all()
    transfers = pd.read_parquet(out / "transfers.parquet")
    assert (transfers["start_s"] == transfers["requested_s"]).all()
    assert (transfers["end_s"] == transfers["requested_s"]).all()
    up = transfers[transfers["src"] == "ground"]
    # exact accounting: the table's cumulative bytes are the sum of the payloads
    assert rounds["bytes_up"].iloc[-1] == up["bytes"].sum()
    assert (up.groupby("round")["client"].nunique() == 3).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["validation_images"] > 0
    assert not (out / "dashboard.html").exists()   # report.figures: false
