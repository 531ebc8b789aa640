"""Strategies, models and datasets of one's own (issue 25): a strategy from a temporary
package, named by reference and by entry point, gives identical tables on the serial,
local-pool and Ray executors and resumes after an interrupt to the uninterrupted tables; a
broken plugin is one error line before anything is simulated; a custom model and a custom
dataset (the docs' examples, examples/extending/) run end to end; the scenario hash names
the plugin's version."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import orbitfl.engine.assemble as assemble
import orbitfl.engine.runner as runner
from orbitfl.api import load_scenario
from orbitfl.cli import main
from orbitfl.fl import registry

from conftest import SCENARIOS, interrupt_and_resume

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "extending"
PACKAGE = "orbitfl_test_plugin"
TABLES = ("rounds", "clients", "transfers")
SMALL = {  # the quickstart, tiny: 6 satellites, 2 rounds, >= 3 updates per aggregation
    "duration": "1d", "fl.rounds": 2, "fl.local_epochs": 1, "constellation.select.limit": 6,
    "data.dataset": "synthetic", "data.partition": "dirichlet", "data.classes": 4,
    "data.image_size": 16, "data.samples_per_class_max": 40, "data.imbalance_ratio": 4,
    "data.test_per_class": 10, "data.ses_per_class": 2, "fl.schedule.min_clients": 3,
    "fl.schedule.deadline": "6h", "report.figures": False,
}
BY_REFERENCE = {"class": f"{PACKAGE}.median:FedMedian", "options": {"server_lr": 0.5}}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """A package made in a temporary folder (the docs' median strategy, renamed), on
    sys.path and PYTHONPATH (where spawned workers look), with a dist-info that registers
    it under the ``orbitfl.strategies`` entry-point group as ``fedmedian-test``."""
    root = tmp_path_factory.mktemp("plugin")
    (root / PACKAGE).mkdir()
    (root / PACKAGE / "__init__.py").write_text("")
    shutil.copy(EXAMPLES / "median_strategy.py", root / PACKAGE / "median.py")
    dist = root / f"{PACKAGE}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n")
    (dist / "top_level.txt").write_text(f"{PACKAGE}\n")
    (dist / "entry_points.txt").write_text(
        f"[orbitfl.strategies]\nfedmedian-test = {PACKAGE}.median:FedMedian\n")
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(root))
    patch.syspath_prepend(str(EXAMPLES))
    registry.installed.cache_clear()
    yield root
    patch.undo()
    registry.installed.cache_clear()


def scenario(strategy, **more):
    return load_scenario(SCENARIOS / "quickstart.yaml",
                         {**SMALL, "fl.strategy": strategy, **more})


def same_tables(a: Path, b: Path) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"),
                                      pd.read_parquet(b / f"{name}.parquet"), obj=name,
                                      check_exact=True)


@pytest.fixture(scope="module")
def serial_run(plugin, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "serial"
    runner.run(scenario(BY_REFERENCE), out)
    return out


def test_the_plugin_strategy_runs_its_rounds(serial_run):
    rounds = pd.read_parquet(serial_run / "rounds.parquet")
    assert len(rounds) == 3 and (rounds["received"].iloc[1:] >= 3).all()
    assert rounds.accuracy.notna().all()


def test_fedmedian_aggregates_the_coordinate_wise_median(plugin):
    from orbitfl_test_plugin.median import FedMedian, MedianOptions

    from orbitfl.fl.strategy import ClientUpdate, FLConfig
    from orbitfl.fl.uploads import model_payloads

    model = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)
    strategy = FedMedian(model, FLConfig(rounds=1), MedianOptions(server_lr=0.5))
    codec = FLConfig(rounds=1).codec_up
    updates = [ClientUpdate(i, 0, 10, model_payloads({"weight": torch.tensor([[w, -w]]),
                                                      "bias": torch.tensor([b])}, codec), 0.0)
               for i, (w, b) in enumerate([(1.0, 5.0), (3.0, -1.0), (100.0, 2.0)])]
    strategy.aggregate(0, updates)
    # medians (3, -3) and 2, half-way from zero
    assert model.weight.tolist() == [[1.5, -1.5]] and model.bias.tolist() == [1.0]


@pytest.mark.parametrize("executor", [{"execution.backend": "local", "execution.workers": 2},
                                      {"execution.backend": "ray", "execution.workers": 2}],
                         ids=["local-2", "ray-2"])
def test_plugin_strategy_gives_identical_tables_on_every_executor(serial_run, tmp_path,
                                                                   executor):
    if executor["execution.backend"] == "ray":
        pytest.importorskip("ray")
    runner.run(scenario(BY_REFERENCE, **executor), tmp_path / "run")
    same_tables(serial_run, tmp_path / "run")


def test_plugin_strategy_resumes_after_an_interrupt(serial_run, tmp_path, monkeypatch):
    interrupt_and_resume(scenario(BY_REFERENCE), tmp_path / "cut", monkeypatch, after_round=1)
    same_tables(serial_run, tmp_path / "cut")


def test_entry_point_strategy_is_listed_with_its_origin_and_runs(plugin, serial_run, tmp_path,
                                                                 capsys):
    assert main(["list", "strategies"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "fedmedian-test" in line]
    assert len(listed) == 1 and f"entry point of {PACKAGE} 1.0" in listed[0]
    by_name = scenario("fedmedian-test")
    assert by_name.plugin_versions() == {"fl.strategy": {"name": "fedmedian-test",
                                                         "version": "1.0"}}
    runner.run(by_name, tmp_path / "named")
    rounds = pd.read_parquet(tmp_path / "named" / "rounds.parquet")
    assert len(rounds) == 3 and rounds.accuracy.notna().all()


def test_the_hash_names_the_plugin_version_and_builtins_keep_theirs(plugin, tmp_path,
                                                                    monkeypatch):
    first = scenario(BY_REFERENCE).content_hash()
    assert scenario(BY_REFERENCE).plugin_versions()["fl.strategy"]["version"] == \
        f"{PACKAGE}==1.0"
    loose = scenario({"class": "median_strategy:FedMedian"})  # a module, no distribution
    digest = hashlib.sha256((EXAMPLES / "median_strategy.py").read_bytes()).hexdigest()
    assert loose.plugin_versions()["fl.strategy"]["version"] == f"sha256:{digest}"
    monkeypatch.setattr(registry, "version", lambda entry: "2.0")
    assert scenario(BY_REFERENCE).content_hash() != first
    assert "plugins" not in scenario("fedavg").model_dump()  # built-ins: nothing added


def _write(tmp_path: Path, **sections) -> Path:
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"]["tle"] = str((SCENARIOS / document["constellation"]["tle"])
                                           .resolve())
    for path, value in sections.items():
        section, key = path.split("__")
        if key == "factory":  # a factory replaces the built-in name the quickstart gives
            document.get(section, {}).pop("name", None)
        document.setdefault(section, {})[key] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("sections, message", [
    ({"fl__strategy": {"class": "no_such_module_x:Strategy"}},
     "fl.strategy: strategy 'no_such_module_x:Strategy': cannot import module "
     "'no_such_module_x': ModuleNotFoundError"),
    ({"fl__strategy": {"class": f"{PACKAGE}.median:MedianOptions"}},
     "not a subclass of orbitfl.fl.strategy.Strategy"),
    ({"fl__strategy": {"class": f"{PACKAGE}.median:FedMedian", "options": {"server_lr": 2}}},
     "refuses its options: server_lr must be in (0, 1]"),
    ({"fl__strategy": {"class": f"{PACKAGE}.median:FedMedian", "options": {"lr": 2}}},
     "refuses its options: unknown lr; known: server_lr"),
    ({"fl__strategy": {"class": "orbitfl.fl.fedbuff:FedBuff"}},
     "runs with schedule.mode async"),
    ({"model__factory": "tiny_model:build", "model__options": {"depth": 3}},
     "model: model 'tiny_model:build': its signature (classes: int, width: int = 8)"),
    ({"fl__strategy": {"class": "not a reference"}},
     "is not a reference of the form 'package.module:Name'"),
])
def test_a_broken_plugin_is_one_line_before_any_simulation(plugin, tmp_path, capsys,
                                                            monkeypatch, sections, message):
    monkeypatch.setattr(assemble, "build_world", lambda *a, **k: pytest.fail("simulated"))
    path = _write(tmp_path, **sections)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "r")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: "), err
        assert message in err, err


def test_custom_model_and_dataset_run_end_to_end(plugin, tmp_path):
    """The docs' tiny model and stripes dataset: orbitfl carves 3 x (10 + 2) test and SES
    images out of the 3 x 60 and splits the other 144 among the 6 satellites."""
    sc = scenario(BY_REFERENCE, **{
        "data.dataset": "geo-synthetic", "data.classes": 10, "data.imbalance_ratio": 1,
        "data.samples_per_class_max": 500,
        "data.factory": "stripes_data:load", "data.options": {"per_class": 60},
        "model": {"factory": "tiny_model:build", "options": {"width": 4}}})
    assert set(sc.plugin_entries()) == {"model", "data", "fl.strategy"}
    parts = assemble.assemble(sc)
    assert sum(len(c) for c in parts.data.clients) == 3 * (60 - 12)
    assert len(parts.data.test) == 30 and parts.data.classes == 3
    assert sum(p.numel() for p in parts.model.parameters()) == (27 * 4 + 4) + 8 + (4 * 3 + 3)
    runner.run(sc, tmp_path / "run")
    rounds = pd.read_parquet(tmp_path / "run" / "rounds.parquet")
    assert len(rounds) == 3 and rounds.accuracy.notna().all()
    clients = pd.read_parquet(tmp_path / "run" / "clients.parquet")
    assert np.isfinite(clients.select_dtypes("number").to_numpy(dtype=float)).any()


def test_documented_examples_are_the_files_the_tests_run():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text()
    for name in ("median_strategy.py", "tiny_model.py", "stripes_data.py"):
        assert (EXAMPLES / name).read_text().strip() in doc, name


def test_a_class_per_folder_dataset_is_the_folder_dataset(tmp_path):
    """Three class folders of 8 x 8 PNGs, each class its own colour: 3 x 12 images, of which
    3 x (2 + 1) are the test set and SES; the rest split among 4 clients."""
    from PIL import Image

    from orbitfl.fl.config import DataSpec
    from orbitfl.fl.federation import build_federation

    colours = {"clay": (200, 80, 40), "grass": (40, 180, 60), "water": (30, 60, 200)}
    for name, colour in colours.items():
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.new("RGB", (8, 8), colour).save(tmp_path / name / f"{i}.png")
    spec = DataSpec(dataset="folder", path=tmp_path, partition="iid", image_size=16,
                    test_per_class=2, ses_per_class=1, cache=False)
    data = build_federation(spec, 4, seed=1)
    assert data.classes == 3 and data.class_names == ("clay", "grass", "water")
    assert sum(len(c) for c in data.clients) == 3 * 9 and len(data.test) == 6
    for c in range(3):  # a class's images are its colour, whatever the split
        mine = data.test.images[data.test.labels == c]
        assert torch.allclose(mine, mine[0].expand_as(mine))


def test_batched_training_follows_fit_many_not_class_names():
    """A FedAvg subclass that changes only the loss keeps batched training; one that
    replaces fit, or a Strategy without fit_many, is refused in one line."""
    from orbitfl.fl.batched import BatchedFits
    from orbitfl.fl.fedavg import FedAvg
    from orbitfl.fl.models import build_model
    from orbitfl.fl.strategy import FLConfig

    class Shifted(FedAvg):
        def local_loss(self, data):
            return {"logit_adjustment": torch.zeros(3)}

    class OwnFit(FedAvg):
        def fit(self, *args):
            return super().fit(*args)

    assert Shifted.fits_many() and not OwnFit.fits_many()
    BatchedFits(Shifted(build_model("small-cnn", 3), FLConfig(rounds=1)), [])
    with pytest.raises(ValueError, match="needs per-client code .it implements no fit_many"):
        BatchedFits(OwnFit(build_model("small-cnn", 3), FLConfig(rounds=1)), [])
