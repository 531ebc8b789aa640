"""The contact-plan cache answers only for identical inputs, names included."""

from dataclasses import replace
from datetime import datetime, timezone

from orbitfl.constellation.fleet import load_element_file
from orbitfl.constellation.plan_cache import cached_contacts
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.constellation.stations import from_catalog
from orbitfl.constellation.tle import select

from conftest import TLE_DIR

EPOCH = datetime(2024, 7, 16, 6, tzinfo=timezone.utc)


def test_renamed_satellites_get_their_new_names_from_the_cache(tmp_path):
    fleet = select(load_element_file(TLE_DIR / "planet_2024-07-16.tle"), name="FLOCK 4X*",
                   limit=2)
    stations = [from_catalog("svalsat")]
    first, cached = cached_contacts(Propagator(fleet, Clock(EPOCH)), stations, 6 * 3600,
                                    cache_dir=tmp_path)
    assert not cached and len(first.windows)
    renamed = [replace(e, name=f"RENAMED-{i}") for i, e in enumerate(fleet)]
    second, _ = cached_contacts(Propagator(renamed, Clock(EPOCH)), stations, 6 * 3600,
                                cache_dir=tmp_path)
    assert set(second.windows["satellite"]) <= {"RENAMED-0", "RENAMED-1"}
    again, cached = cached_contacts(Propagator(fleet, Clock(EPOCH)), stations, 6 * 3600,
                                    cache_dir=tmp_path)
    assert cached and list(again.windows["satellite"]) == list(first.windows["satellite"])
