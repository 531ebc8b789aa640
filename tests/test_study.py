"""The SAFE study's driver (choice on the validation split) and its report generator,
on small hand-made sweep tables whose means, sds and intervals are computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orbitfl.errors import InputError
from orbitfl.study import choose, load_methods
from orbitfl.study_report import differences, mean_sd, verdict, write_report


def tune_table(values: list[float], lrs=(0.01, 0.03, 0.1)) -> pd.DataFrame:
    return pd.DataFrame({"point": [f"p{i}" for i in range(len(lrs))], "fl.lr": list(lrs),
                         "status": "complete", "val_balanced_accuracy": values,
                         "final_accuracy": [0.99, 0.0, 0.0]})


def test_the_choice_reads_the_validation_accuracy_never_the_test_accuracy():
    # the test accuracy (final_accuracy) favours lr 0.01; validation favours 0.03
    assert choose(tune_table([0.5, 0.7, 0.6])) == {"fl.lr": 0.03}


def test_a_tie_keeps_the_first_listed_setting_and_failures_are_skipped():
    assert choose(tune_table([0.7, 0.7, 0.6])) == {"fl.lr": 0.01}
    table = tune_table([0.9, 0.7, 0.6])
    table.loc[0, "status"] = "failed"
    assert choose(table) == {"fl.lr": 0.03}
    table["val_balanced_accuracy"] = np.nan
    with pytest.raises(InputError):
        choose(table)


def test_fedprox_chooses_lr_and_mu_together():
    table = pd.DataFrame({"fl.lr": [0.01, 0.01, 0.1], "fl.fedprox.mu": [0.001, 0.1, 0.1],
                          "status": "complete", "val_balanced_accuracy": [0.1, 0.8, 0.3]})
    assert choose(table) == {"fl.lr": 0.01, "fl.fedprox.mu": 0.1}


def test_the_shipped_methods_file_is_complete():
    methods = load_methods()
    assert {"fedavg", "fedprox", "fedla", "safe", "cro-only", "fau-only", "ace-only",
            "central"} <= set(methods)
    assert all(Path(m["tune"]).is_file() and Path(m["final"]).is_file()
               and Path(m.get("more", m["final"])).is_file() for m in methods.values())


def test_mean_sd_and_the_t_interval_by_hand():
    mean, sd, n = mean_sd(pd.Series([0.2, 0.4, 0.6]))
    assert (n, mean) == (3, pytest.approx(0.4)) and sd == pytest.approx(0.2)
    factor = {"data.imbalance_ratio": 100.0}
    method = pd.DataFrame({"seed": [1, 2, 3], "m": [0.5, 0.7, 0.9], **factor})
    base = pd.DataFrame({"seed": [3, 2, 1], "m": [0.6, 0.6, 0.3], **factor})  # by seed
    # differences 0.2, 0.1, 0.3: mean 0.2, sd 0.1, half-width t(0.975, 2) * 0.1 / sqrt(3)
    d = differences({"fedavg": base, "safe": method}, 100.0, "m").loc["safe"]
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.2)
    assert (d["lo"], d["hi"]) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))


def sweep(values: dict[float, list[float]], few: dict[float, list[float]]) -> pd.DataFrame:
    rows = []
    for factor, accs in values.items():
        for seed, (acc, f) in enumerate(zip(accs, few[factor]), start=1):
            rows.append({"point": f"p{len(rows)}", "data.imbalance_ratio": factor,
                         "seed": seed, "status": "complete", "final_accuracy": acc,
                         "balanced_accuracy": acc, "few_shot_accuracy": f,
                         "personalised_own_mix_accuracy": np.nan, "bytes_up": 1e6 * 10,
                         "bytes_down": 2e6 * 10, "rounds": 10, "wall_s": 30.0,
                         "val_balanced_accuracy": acc})
    return pd.DataFrame(rows)


def test_the_report_from_a_tiny_study(tmp_path):
    study = tmp_path / "study"
    fedavg = sweep({100.0: [0.5, 0.6, 0.7]}, {100.0: [0.1, 0.2, 0.3]})
    safe = sweep({100.0: [0.6, 0.6, 0.8]}, {100.0: [0.3, 0.3, 0.6]})
    for kind in ("final", "tune"):
        for name, table in (("fedavg", fedavg), ("safe", safe)):
            (study / kind / name).mkdir(parents=True)
            table.to_parquet(study / kind / name / "sweep.parquet")
    (study / "tune" / "fedavg" / "sweep.parquet").unlink()
    tune_table([0.5, 0.7, 0.6]).to_parquet(study / "tune" / "fedavg" / "sweep.parquet")
    record = {"methods": {"fedavg": {"label": "FedAvg"}, "safe": {"label": "SAFE"}},
              "choices": {"fedavg": {"fl.lr": 0.03}, "safe": {"fl.lr": 0.1}},
              "selection": "val_balanced_accuracy", "overrides": []}
    (study / "study.json").write_text(json.dumps(record))
    out = tmp_path / "docs" / "safe-study.md"
    text = write_report(study, out)
    assert out.read_text() == text
    # FedAvg at IF 100: accuracy 0.6 +- 0.1; SAFE - FedAvg few-shot: 0.2, 0.1, 0.3
    assert "| FedAvg | 3 | 0.600 ± 0.100 |" in text
    half = 4.303 * 0.1 / math.sqrt(3)
    assert f"+0.200 [{0.2 - half:+.3f}, {0.2 + half:+.3f}]" in text
    assert "| 3.00 | 30 |" in text                       # (1 + 2) MB x 10 / 10 rounds
    assert "| FedAvg | lr 0.03 | 0.700 | **yes** |" in text
    # CI [-0.048, +0.448] holds zero: no gain is claimed; with differences 0.19, 0.2, 0.21
    # it does not
    assert "includes zero, so no few-shot gain" in verdict(record, {"fedavg": fedavg,
                                                                     "safe": safe})
    tight = sweep({100.0: [0.6, 0.6, 0.8]}, {100.0: [0.29, 0.4, 0.51]})
    assert "the gain survives" in verdict(record, {"fedavg": fedavg, "safe": tight})
    assert (tmp_path / "docs" / "figures" / "safe-study-few-shot.png").is_file()
    assert "python -m orbitfl.study_report" in text
