"""Data options a dataset would ignore are refused: a study that sets an imbalance factor
must get one (geo-synthetic's class mix comes from what the orbits image)."""

import pytest
import yaml

from orbitfl.core.errors import InputError
from orbitfl.scenario import load_scenario

from conftest import SCENARIOS


@pytest.mark.parametrize("scenario, key, value, message", [
    ("quickstart.yaml", "imbalance_ratio", 100, "'imbalance_ratio' applies to synthetic"),
    ("quickstart.yaml", "classes", 20, "'classes' applies to the synthetic dataset"),
])
def test_options_the_dataset_ignores_are_one_line(tmp_path, scenario, key, value, message):
    document = yaml.safe_load((SCENARIOS / scenario).read_text())
    document["data"][key] = value
    document["constellation"]["tle"] = str((SCENARIOS / document["constellation"]["tle"])
                                           .resolve())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError, match=f"data: {message}"):
        load_scenario(path)


def test_the_synthetic_dataset_takes_both(tmp_path):
    document = yaml.safe_load((SCENARIOS / "imbalance-base.yaml").read_text())
    document["constellation"]["tle"] = str((SCENARIOS / document["constellation"]["tle"])
                                           .resolve())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    data = load_scenario(path).data
    assert data.classes == 10 and data.imbalance_ratio == 100
