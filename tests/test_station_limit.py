"""``ground_stations.limit``: the first N stations of the networks and sites, in the order
listed, so that a sweep over it asks how many stations a mission needs."""

import pytest

from orbitfl.constellation.stations import NETWORKS
from orbitfl.core.errors import InputError
from orbitfl.engine.prepare import prepare
from orbitfl.scenario import load_scenario

from conftest import SCENARIOS

QUICKSTART = SCENARIOS / "quickstart.yaml"
POLAR = [("ground_stations.network", ["polar"]), ("ground_stations.sites", ["wallops"])]


@pytest.mark.parametrize("limit", [1, 3, 6])
def test_limit_keeps_the_first_stations_in_order(limit):
    ids = [s.id for s in prepare(QUICKSTART, [*POLAR, ("ground_stations.limit", limit)]).stations]
    assert ids == [*NETWORKS["polar"], "wallops"][:limit]


def test_limit_above_the_stations_listed_is_one_line():
    with pytest.raises(InputError, match=r"ground_stations.limit: 7 exceeds the 6 stations"):
        prepare(QUICKSTART, [*POLAR, ("ground_stations.limit", 7)])


@pytest.mark.parametrize("bad", [0, -1, 2.5, "two", 10_001, float("nan")])
def test_absurd_limits_are_refused_by_the_schema(bad):
    with pytest.raises(InputError, match="ground_stations.limit"):
        load_scenario(QUICKSTART, [("ground_stations.limit", bad)])


def test_limit_enters_the_content_hash_only_when_set():
    base = load_scenario(QUICKSTART)
    assert load_scenario(QUICKSTART, [("ground_stations.limit", 4)]).content_hash() != \
        base.content_hash()
    assert load_scenario(QUICKSTART, [("ground_stations.limit", None)]).content_hash() == \
        base.content_hash()
