"""Everything a scenario must pass before a run starts: the schema, then the checks that
need its data (the TLE file and selection, the quorum, the stations). Cheap: no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orbitfl.constellation.stations import GroundStation, from_catalog
from orbitfl.constellation.tle import ElementSet, load_tle_file, select
from orbitfl.errors import InputError
from orbitfl.scenario import Scenario, load_scenario

TLE_AGE_WARNING_DAYS = 7.0


@dataclass(frozen=True)
class Prepared:
    """A scenario that passed every check, with its fleet and stations."""

    path: Path
    scenario: Scenario
    fleet: list[ElementSet]
    stations: list[GroundStation]
    warnings: list[str]


def prepare(path: str | Path) -> Prepared:
    """Schema validation plus the checks that need the data: selection, quorum, stations."""
    path = Path(path)
    scenario = load_scenario(path)
    sel = scenario.constellation.select
    fleet = select(load_tle_file(scenario.constellation.tle), sel.name, sel.norad_ids, sel.limit)
    if not fleet:
        raise InputError(f"{path}: constellation.select: matches no satellite in "
                         f"{scenario.constellation.tle}")
    if scenario.fl.schedule.min_clients > len(fleet):
        raise InputError(f"{path}: fl.schedule.min_clients: {scenario.fl.schedule.min_clients} "
                         f"exceeds the {len(fleet)} selected satellites")
    gs = scenario.ground_stations
    stations = [
        from_catalog(site.id, gs.min_elevation_deg, gs.antennas) if site.lat_deg is None else
        GroundStation(site.id, site.id, site.lat_deg, site.lon_deg, site.alt_m,
                      gs.min_elevation_deg, gs.antennas)
        for site in gs.sites
    ]
    warnings = []
    ages = [abs((scenario.epoch - e.epoch).total_seconds()) / 86400.0 for e in fleet]
    if max(ages) > TLE_AGE_WARNING_DAYS:
        warnings.append(f"{path}: epoch: {sum(a > TLE_AGE_WARNING_DAYS for a in ages)} element "
                        f"sets are more than {TLE_AGE_WARNING_DAYS:g} days from the scenario "
                        f"epoch (up to {max(ages):.1f} d); SGP4 accuracy degrades")
    return Prepared(path, scenario, fleet, stations, warnings)
