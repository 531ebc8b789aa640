"""Time to target against hand-made round records."""

import math

import pandas as pd
import pytest

from orbitfl.engine.targets import flat_columns, time_to_target


def _rounds(accuracies):
    n = len(accuracies)
    return pd.DataFrame({"round": range(n), "sim_time_s": [3600.0 * r for r in range(n)],
                         "accuracy": accuracies, "bytes_up": [100 * r for r in range(n)],
                         "bytes_down": [10 * r for r in range(n)],
                         "energy_j": [5.0 * r for r in range(n)]})


def test_first_round_reaching_each_threshold_and_unreached_ones():
    rounds = _rounds([0.1, 0.55, float("nan"), 0.72, 0.69, 0.81])
    found = time_to_target(rounds, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], (0.5, 0.7, 0.8, 0.9))
    assert found["0.5"] == {"round": 1, "sim_time_s": 3600.0, "wall_time_s": 1.0,
                            "bytes_up": 100, "bytes_down": 10, "energy_j": 5.0}
    assert found["0.7"]["round"] == 3          # the later dip to 0.69 does not matter
    assert found["0.8"]["sim_time_s"] == 5 * 3600.0
    assert found["0.9"] is None
    columns = flat_columns(found)
    assert columns["to_0.7_round"] == 3 and columns["to_0.7_bytes_up"] == 300
    assert math.isnan(columns["to_0.9_sim_time_s"])


def test_wall_times_must_match_the_rounds():
    with pytest.raises(ValueError):
        time_to_target(_rounds([0.1, 0.2]), [0.0])
