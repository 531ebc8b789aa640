"""Time to target and a target that stops the run, on the tiny scenario; the manifest's
true imbalance factor; personalised accuracy on each client's own class mix."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from test_end_to_end import TINY

from orbitfl.cli import main
from orbitfl.engine.targets import time_to_target


def _run(tmp_path, name, document):
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(yaml.safe_dump(document))
    out = tmp_path / name
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    return pd.read_parquet(out / "rounds.parquet"), json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("full"), "full", TINY)


def test_manifest_records_when_each_threshold_was_first_reached(full):
    rounds, manifest = full
    found = manifest["time_to_target"]
    assert set(found) == {"0.5", "0.6", "0.7", "0.8", "0.9"}
    for threshold, hit in found.items():
        reached = rounds[rounds["accuracy"] >= float(threshold)]
        if reached.empty:
            assert hit is None
            continue
        first = reached.iloc[0]
        assert hit["round"] == first["round"] and hit["sim_time_s"] == first["sim_time_s"]
        assert hit["bytes_down"] == first["bytes_down"] and hit["wall_time_s"] > 0


def test_true_imbalance_factor_is_in_the_manifest(full):
    _, manifest = full
    # Long tail n_c = floor(120 * 4^(-r/3)) over a seeded class order: 120, 75, 47, 30.
    assert sorted(manifest["train_class_counts"], reverse=True) == [120, 75, 47, 30]
    assert manifest["train_imbalance_factor"] == 4.0


def test_a_target_accuracy_stops_the_run_at_the_first_round_reaching_it(full, tmp_path):
    rounds, _ = full
    target = float(rounds["accuracy"].iloc[1:3].max())
    stop = int(rounds.index[rounds["accuracy"] >= target][0])
    assert 1 <= stop < len(rounds) - 1            # the target stops the run early
    document = copy.deepcopy(TINY)
    document["fl"]["schedule"]["target_accuracy"] = target
    stopped, manifest = _run(tmp_path, "stopped", document)
    assert list(stopped["round"]) == list(range(stop + 1))
    pd.testing.assert_frame_equal(stopped, rounds.iloc[:stop + 1])
    assert time_to_target(stopped, [1.0] * len(stopped), [target])[f"{target:g}"]["round"] \
        == stop
    assert manifest["summary"]["rounds_completed"] == stop


def test_personalised_accuracy_on_the_clients_own_mix(tmp_path):
    document = copy.deepcopy(TINY)
    document["fl"]["strategy"] = "safe"
    document["fl"]["safe"] = {"ace": False}
    rounds, _ = _run(tmp_path, "safe", document)
    own = rounds["personalised_own_mix_accuracy"].to_numpy()
    assert np.isnan(own[0])                        # no personal model before training
    later = own[2:]
    assert np.all((later >= 0) & (later <= 1))
