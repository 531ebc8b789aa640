"""The run directory matches its one declaration (orbitfl/rundir/columns.py), the writer enforces
it, and docs/run-directory.md is what the declaration generates."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orbitfl.cli import main
from orbitfl.engine.targets import THRESHOLDS, flat_columns
from orbitfl.rundir.columns import (
    CONTACT_REPORT,
    REGENERATE,
    TABLES,
    check_columns,
    columns_match,
    declared_column,
    expand,
    markdown,
)
from orbitfl.rundir.reader import read_manifest, read_table
from orbitfl.rundir.writer import StagedRunDirectory, write_manifest, write_table
from orbitfl.sweeps.runner import Point, _write_results, headline

ROOT = Path(__file__).resolve().parents[1]
SWEEP_TABLES = ("sweep.parquet", "sweep_summary.parquet")
PARQUET = [name for name in TABLES if name.endswith(".parquet")
           and name not in (*SWEEP_TABLES, *CONTACT_REPORT)]


# The README's quickstart (SAFE on geo-synthetic imagery, batteries, four stations), cut
# short: one round of one local epoch on smaller image sets. Its tables have every
# column family (each SAFE payload kind, land-cover classes, tracks, power).
SHORT = {"fl.rounds": 1, "fl.local_epochs": 1, "data.test_per_class": 10,
         "data.ses_per_class": 4, "data.acquisition.window": "2h"}


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("doc") / "quickstart"
    overrides = [arg for path, value in SHORT.items() for arg in ("--set", f"{path}={value}")]
    assert main(["run", str(ROOT / "scenarios" / "quickstart.yaml"), *overrides,
                 "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", PARQUET)
def test_every_table_of_a_real_run_matches_the_declaration(quickstart_run, name):
    columns = list(pd.read_parquet(quickstart_run / name).columns)
    assert columns_match(name, columns), (name, columns, TABLES[name].names)


def test_pattern_columns_of_a_quickstart_run_are_present(quickstart_run):
    manifest = json.loads((quickstart_run / "manifest.json").read_text())
    assert manifest["scenario"]["name"] == "quickstart" and manifest["status"] == "complete"
    rounds = pd.read_parquet(quickstart_run / "rounds.parquet").columns
    assert {"bytes_up_weights", "raw_bytes_down_embedding", "bytes_down_ses_images"} \
        <= set(rounds)
    assert "class_3" in pd.read_parquet(quickstart_run / "partition.parquet").columns


def test_manifest_keys_match_the_declaration(quickstart_run):
    manifest = json.loads((quickstart_run / "manifest.json").read_text())
    assert sorted(manifest) == sorted(TABLES["manifest.json"].names)


def test_an_undeclared_column_is_refused_by_the_writer(tmp_path):
    frame = pd.DataFrame({"satellite": ["a"], "class_0": [1], "colour": ["red"]})
    with pytest.raises(RuntimeError, match="partition.parquet.*colour"):
        write_table(tmp_path / "partition.parquet", frame)
    assert not (tmp_path / "partition.parquet").exists()
    with pytest.raises(RuntimeError, match="not declared"):
        write_table(tmp_path / "mystery.parquet", frame)


def test_a_value_of_the_wrong_type_is_refused_by_the_writer(tmp_path):
    """The writer checks the frame in memory with the reader's own check (issue 24): a run
    never publishes a table its reader refuses, and nothing half written is left."""
    frame = pd.DataFrame({"satellite": ["a", "b"], "class_0": ["many", "few"]})
    with pytest.raises(RuntimeError) as refused:
        write_table(tmp_path / "partition.parquet", frame)
    message = str(refused.value)
    assert "\n" not in message and "partition.parquet: column 'class_0'" in message
    assert "declared int" in message
    assert not any(tmp_path.iterdir())


def test_nullable_numbers_in_memory_pass_as_the_file_will(tmp_path):
    """Python numbers with None (how a frame holds a nullable column before parquet makes
    it numeric) are what the reader accepts once written: no refusal the file would not
    earn."""
    frame = pd.DataFrame({"satellite": ["a", "b"], "class_0": [3, None]}, dtype=object)
    write_table(tmp_path / "partition.parquet", frame)
    assert read_table(tmp_path, "partition.parquet")["class_0"].iloc[0] == 3
    with pytest.raises(RuntimeError, match="class_0"):  # but not a fraction of an image
        write_table(tmp_path / "partition.parquet",
                    pd.DataFrame({"satellite": ["a"], "class_0": [0.5]}, dtype=object))


def test_a_manifest_the_reader_refuses_is_never_written(tmp_path):
    good = {"status": "complete", "summary": {"rounds_completed": 1, "final_accuracy": 0.5},
            "scenario_file": tmp_path / "s.yaml"}  # a path: text once written
    write_manifest(tmp_path / "manifest.json", good)
    assert read_manifest(tmp_path)["scenario_file"] == str(tmp_path / "s.yaml")
    for bad in ({**good, "summary": {"rounds_completed": "3", "final_accuracy": 0.5}},
                {**good, "class_names": "abc"}, {"status": "complete"}):
        with pytest.raises(RuntimeError) as refused:
            write_manifest(tmp_path / "other" / "manifest.json", bad)
        assert "\n" not in str(refused.value) and "manifest.json" in str(refused.value)
    assert not (tmp_path / "other").exists()


def test_a_refused_table_leaves_no_run_directory(tmp_path):
    """Inside a staged run directory (as the runner writes), the refusal removes the
    staging folder: the run directory never appears, half written or whole."""
    target = tmp_path / "run"
    with pytest.raises(RuntimeError, match="declared int"):
        with StagedRunDirectory(target) as staging:
            write_table(staging / "partition.parquet",
                        pd.DataFrame({"satellite": ["a"], "class_0": [4]}))
            write_table(staging / "partition.parquet",
                        pd.DataFrame({"satellite": ["a"], "class_0": ["many"]}))
    assert not target.exists() and not any(tmp_path.iterdir())


@pytest.mark.parametrize("columns, ok", [
    (["satellite", "class_0", "class_1"], True),
    (["satellite"], True),
    (["class_0", "satellite"], False),          # order counts
    (["satellite", "class_x"], False),
])
def test_patterns_expand_in_order(columns, ok):
    assert columns_match("partition.parquet", columns) is ok


def test_a_repeated_placeholder_takes_one_value_per_group():
    base = TABLES["rounds.parquet"].names[:-2]
    good = base + ["bytes_up_weights", "raw_bytes_up_weights"]
    assert columns_match("rounds.parquet", good)
    assert not columns_match("rounds.parquet", base + ["bytes_up_weights",
                                                       "raw_bytes_down_weights"])


def test_sweep_columns_expand_to_what_the_check_accepts():
    columns = expand("sweep.parquet", {"parameter": ["fl.strategy", "fl.rounds"],
                                       "acc": ["0.5", "0.9"]})
    assert columns[:6] == ["group", "replicate", "seed", "point", "fl.strategy", "fl.rounds"]
    assert "to_0.9_bytes_down" in columns
    check_columns("sweep.parquet", columns)
    summary = expand("sweep_summary.parquet", {"parameter": ["fl.strategy"]})
    assert summary[:3] == ["group", "fl.strategy", "metric"]
    check_columns("sweep_summary.parquet", summary)


def test_the_documentation_is_generated_from_the_declaration():
    doc = ROOT / "docs" / "run-directory.md"
    assert doc.is_file() and doc.read_text(encoding="utf-8") == markdown(), \
        f"docs/run-directory.md is out of date: run {REGENERATE}"


def _sweep_table(tmp_path: Path, outcomes: list[dict]) -> pd.DataFrame:
    points = [Point(i, f"p{i}", {"seed": i}, tmp_path / f"p{i}.yaml", tmp_path / f"p{i}")
              for i in range(len(outcomes))]
    _write_results(points, dict(enumerate(outcomes)), tmp_path, wall_s=1.0)
    return pd.read_parquet(tmp_path / "sweep.parquet")


def test_sweep_table_has_the_declared_columns_whatever_the_outcomes(tmp_path):
    """They depended on the points: no `error` when all completed, no accuracy when none
    did, and the first point's outcome set the order."""
    complete = {"status": "complete", "wall_s": 2.0, "final_accuracy": 0.5,
                "balanced_accuracy": 0.5, "few_shot_accuracy": 0.4, "rounds": 2,
                "sim_time_h": 1.0, "bytes_up": 10, "bytes_down": 20, "energy_j": 3.0,
                "train_imbalance_factor": 4.0,
                **flat_columns({f"{t:g}": None for t in THRESHOLDS}), "reused": False}
    failed = {"status": "failed", "error": "worker killed", "wall_s": 1.0, "reused": False}
    expected = expand("sweep.parquet", {"parameter": [],  # a swept seed is the seed column
                                        "acc": [f"{t:g}" for t in THRESHOLDS]})
    for outcomes in ([complete], [failed], [failed, complete]):
        assert list(_sweep_table(tmp_path, outcomes).columns) == expected, outcomes
    table = _sweep_table(tmp_path, [failed, complete])
    assert list(table["seed"]) == [0, 1] and list(table["group"]) == ["base", "base"]
    _assert_declared_types("sweep.parquet", table)
    _assert_declared_types("sweep_summary.parquet",
                           pd.read_parquet(tmp_path / "sweep_summary.parquet"))


def test_a_sweep_row_of_the_real_run_has_the_declared_columns(quickstart_run, tmp_path):
    """sweep.parquet from the quickstart run's own headline (what a sweep point returns)."""
    table = _sweep_table(tmp_path, [{**headline(quickstart_run), "reused": False}])
    assert list(table.columns) == expand("sweep.parquet", {
        "parameter": [], "acc": [f"{t:g}" for t in THRESHOLDS]})
    assert table["status"].tolist() == ["complete"] and table["final_accuracy"].notna().all()
    _assert_declared_types("sweep.parquet", table)


def _fits(value, dtype: str) -> bool:
    """Whether one non-null cell is of the declared type (parquet may widen a nullable
    int column to float)."""
    base, nullable = dtype.removesuffix(" or null"), dtype.endswith(" or null")
    if base.startswith("list of "):
        return isinstance(value, (list, np.ndarray)) and \
            all(_fits(v, base.removeprefix("list of ")) for v in value)
    checks = {
        "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
        or (nullable and isinstance(v, (float, np.floating)) and float(v).is_integer()),
        "float": lambda v: isinstance(v, (float, np.floating)),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, (bool, np.bool_)),
        "datetime (UTC)": lambda v: isinstance(v, pd.Timestamp) and str(v.tz) == "UTC",
        "object": lambda v: isinstance(v, dict),
        "as swept": lambda v: True,
    }
    return checks[base](value)


@pytest.mark.parametrize("name", PARQUET)
def test_every_column_has_its_declared_type(quickstart_run, name):
    _assert_declared_types(name, pd.read_parquet(quickstart_run / name))


def _assert_declared_types(name: str, table: pd.DataFrame) -> None:
    for column in table.columns:
        declared = declared_column(name, column)
        wrong = [v for v in table[column] if v is not None and not (
            isinstance(v, float) and np.isnan(v)) and not _fits(v, declared.dtype)]
        assert not wrong, (name, column, declared.dtype, wrong[:3])


def test_manifest_values_have_their_declared_types(quickstart_run):
    manifest = json.loads((quickstart_run / "manifest.json").read_text())
    for column in TABLES["manifest.json"].columns:
        value = manifest[column.name]
        assert (value is None and column.dtype.endswith("or null")) or \
            _fits(value, column.dtype), (column.name, column.dtype, value)
