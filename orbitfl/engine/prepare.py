"""Everything a scenario must pass before a run starts: the schema, then the checks that
need its data (the TLE file and selection, the quorum, the stations). Cheap: no torch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from orbitfl.constellation.atmosphere import require_itur
from orbitfl.constellation.eclipse import SUN_NODE_MARGIN_S, ephemeris_span
from orbitfl.constellation.fleet import check_unique_names, deduplicate, load_element_file
from orbitfl.constellation.horizon import HorizonMask
from orbitfl.constellation.links import LinkBudget, link_band, station_links
from orbitfl.constellation.rate_model import RateModel
from orbitfl.constellation.stations import NETWORKS, GroundStation, from_catalog
from orbitfl.constellation.tle import ElementSet, select
from orbitfl.constellation.walker import walker_elements
from orbitfl.core.errors import InputError
from orbitfl.core.limits import (
    MAX_CONTACT_PAIR_DAYS,
    MAX_SATELLITE_STEPS,
    SUNLIGHT_GRID_S,
    contact_pair_days,
    workers_problem,
)
from orbitfl.engine.plugin_check import check_plugins
from orbitfl.fl.config import GEO_DATASETS
from orbitfl.fl.geo import landcover
from orbitfl.scenario import IN_MEMORY, Scenario, load_scenario

TLE_AGE_WARNING_DAYS = 7.0


@dataclass(frozen=True)
class Prepared:
    """A scenario that passed every check, with its fleet and stations."""

    path: Path
    scenario: Scenario
    fleet: list[ElementSet]
    stations: list[GroundStation]
    warnings: list[str]

    def links(self, direction: str) -> list[RateModel]:
        """The link of each station in ``direction`` ('down' or 'up'), in station order:
        the site's own or the scenario's, with the station's G/T or EIRP."""
        spec = self.scenario.links.downlink if direction == "down" else self.scenario.links.uplink
        return station_links(spec.model(), self.stations, direction)

    def log_warnings(self) -> None:
        """Every command that prepares a scenario shows the same warnings, one per line."""
        for warning in self.warnings:
            logging.getLogger(__name__).warning(warning)


Purpose = Literal["run", "validate", "contacts"]


def prepare(source: str | Path | Scenario,
            overrides: Sequence[tuple[str, Any]] = (),
            purpose: Purpose = "run") -> Prepared:
    """Schema validation of a scenario file (after the ``--set`` ``overrides``), or a
    scenario already validated in Python, plus the checks that need the data: selection,
    quorum, stations. The learning's checks (quorum, data packages) apply where the
    ``purpose`` learns: a run (which refuses a scenario without ``fl``), a validation of a
    scenario with ``fl``; never a contact plan, which needs no imagery."""
    if isinstance(source, Scenario):
        path, scenario = IN_MEMORY, source.with_overrides(dict(overrides)) if overrides \
            else source
    else:
        path = Path(source)
        scenario = load_scenario(path, overrides)
    if purpose == "run" and not scenario.learns:
        raise InputError(f"{path}: the scenario has no fl: section; a run needs one; use "
                         "orbitfl contacts for its contact plan")
    fl = scenario.fl if purpose != "contacts" else None  # the learning, when it is checked
    learning = fl is not None
    _check_ephemeris_span(scenario, path)
    _check_workers(scenario, path)
    skipped: list[str] = []
    warnings: list[str] = []
    fleet = _fleet(scenario, path, skipped, warnings)
    if fl is not None and fl.schedule.min_clients > len(fleet):
        raise InputError(f"{path}: fl.schedule.min_clients: {fl.schedule.min_clients} "
                         f"exceeds the {len(fleet)} selected satellites")
    stations = _stations(scenario, path)
    warnings.extend(band_mismatches(scenario, path, stations))
    _check_fault_targets(scenario, path, fleet, stations)
    _check_orbit_grid_fits(scenario, path, len(fleet))
    _check_contact_search_fits(scenario, path, len(fleet), len(stations))
    if learning:
        _check_data_packages(scenario, path)
        try:
            check_plugins(scenario)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
    if skipped:
        warnings.append(f"{path}: constellation.skip_bad_records: skipped {len(skipped)} bad "
                        f"records, first: {skipped[0]}")
    ages = [abs((scenario.epoch - e.epoch).total_seconds()) / 86400.0 for e in fleet]
    if max(ages) > TLE_AGE_WARNING_DAYS:
        warnings.append(f"{path}: epoch: {sum(a > TLE_AGE_WARNING_DAYS for a in ages)} element "
                        f"sets are more than {TLE_AGE_WARNING_DAYS:g} days from the scenario "
                        f"epoch (up to {max(ages):.1f} d); SGP4 accuracy degrades")
    links = scenario.links
    if links.weather is not None:
        try:
            require_itur()
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
    if links.weather is not None and not any(
            isinstance(k.model(), LinkBudget) for k in (links.downlink, links.uplink)):
        warnings.append(f"{path}: links.weather: no effect, neither link is a DVB-S2 budget "
                        f"(fixed rates carry the same in any weather)")
    return Prepared(path, scenario, fleet, stations, warnings)


def band_mismatches(scenario: Scenario, path: Path,
                    stations: Sequence[GroundStation]) -> list[str]:
    """A line per station whose link runs in a band its antennas do not serve (as the
    catalog or the scenario gives them; a station without bands is not checked)."""
    lines = []
    for direction, spec in (("down", scenario.links.downlink), ("up", scenario.links.uplink)):
        for station, link in zip(stations, station_links(spec.model(), stations, direction)):
            band = link_band(link)
            if station.bands and band and band not in station.bands:
                lines.append(f"{path}: ground_stations: {station.id} has {'/'.join(station.bands)}"
                             f" antennas; its {direction}link is {band}-band")
    return lines


def _check_orbit_grid_fits(scenario: Scenario, path: Path, satellites: int) -> None:
    """Every satellite's orbit on the sunlight grid is held at once: the fleet times the
    duration must fit the machine class (``limits.MAX_SATELLITE_STEPS``)."""
    steps = satellites * (scenario.duration / SUNLIGHT_GRID_S + 1)
    if steps > MAX_SATELLITE_STEPS:
        days = MAX_SATELLITE_STEPS / satellites * SUNLIGHT_GRID_S / 86400
        raise InputError(f"{path}: duration: {satellites} satellites over "
                         f"{scenario.duration / 86400:g} d need {steps:.3g} orbit steps of "
                         f"{SUNLIGHT_GRID_S:g} s, above the {MAX_SATELLITE_STEPS:.3g} this "
                         f"machine class holds (limits.MAX_SATELLITE_STEPS): at most "
                         f"{days:.1f} d for this fleet, or select fewer satellites")


def _check_contact_search_fits(scenario: Scenario, path: Path, satellites: int,
                               stations: int) -> None:
    """The contact search looks at every satellite-station pair over the whole duration:
    their product must fit the machine class (``limits.MAX_CONTACT_PAIR_DAYS``), checked
    before any orbit is propagated."""
    size = contact_pair_days(satellites, stations, scenario.duration)
    if size > MAX_CONTACT_PAIR_DAYS:
        days = MAX_CONTACT_PAIR_DAYS / (satellites * stations)
        raise InputError(f"{path}: duration: {satellites} satellites x {stations} stations "
                         f"over {scenario.duration / 86400:g} d is {size:.3g} satellite-station"
                         f"-days of contact search, above the {MAX_CONTACT_PAIR_DAYS:.3g} "
                         f"this machine class holds (limits.MAX_CONTACT_PAIR_DAYS); select "
                         f"fewer satellites or stations, or at most {days:.2g} d")


def _check_workers(scenario: Scenario, path: Path) -> None:
    """No more workers than this machine holds (``limits.max_workers``), whatever the
    backend (a number this large is a mistake even where serial ignores it); a cluster at
    ``execution.address`` is its own. The default, a worker per core, always fits."""
    execution = scenario.execution
    remote = execution.backend == "ray" and execution.address not in (None, "local")
    if execution.workers is None or remote:
        return
    problem = workers_problem(execution.workers)
    if problem is not None:
        raise InputError(f"{path}: execution.workers (--workers): {problem}")


def _check_ephemeris_span(scenario: Scenario, path: Path) -> None:
    """The Sun comes from DE421 on nodes around the run: both must lie inside its dates.
    Compared as POSIX seconds, so that no date near year 1 or 9999 overflows."""
    first, last = ephemeris_span()
    start = scenario.epoch.timestamp()
    if (start - SUN_NODE_MARGIN_S < first.timestamp()
            or start + scenario.duration + SUN_NODE_MARGIN_S > last.timestamp()):
        raise InputError(f"{path}: epoch, duration: the run ({scenario.epoch:%Y-%m-%d} plus "
                         f"{scenario.duration / 86400:g} d) leaves DE421, the Sun ephemeris "
                         f"orbitfl ships ({first:%Y-%m-%d} to {last:%Y-%m-%d})")


def _fleet(scenario: Scenario, path: Path, skipped: list[str],
           warnings: list[str]) -> list[ElementSet]:
    config = scenario.constellation
    if config.walker is not None:
        try:
            shell = config.walker.shell()
            elements, source = walker_elements(shell, scenario.epoch), "the Walker shell"
        except ValueError as err:
            raise InputError(f"{path}: constellation.walker: {err}") from None
    else:
        elements = load_element_file(config.tle, skipped if config.skip_bad_records else None)
        source = str(config.tle)
    elements, duplicates = deduplicate(elements, scenario.epoch)
    sel = config.select
    fleet = select(elements, sel.name, sel.norad_ids, sel.limit)
    if not fleet:
        raise InputError(f"{path}: constellation.select: matches no satellite in {source}")
    check_unique_names(fleet)
    chosen = {id(e) for e in fleet}
    warnings.extend(f"{dropped.origin}: ignored: NORAD {kept.catalog_number} is also at "
                    f"{kept.origin}, whose epoch is as near the scenario epoch or nearer"
                    for kept, dropped in duplicates if id(kept) in chosen)
    return fleet


def _stations(scenario: Scenario, path: Path) -> list[GroundStation]:
    """Network members, then listed sites (a listed site replaces a member of the same id),
    the first ``limit`` of them when it is set (a limit above the count is a mistake, say in
    a sweep over it, so it is refused rather than quietly giving the same run twice). A
    site's own antennas (count, bands, G/T, EIRP) and links override the catalog's."""
    gs = scenario.ground_stations
    common = {"min_elevation_deg": gs.min_elevation_deg, "antennas": gs.antennas}
    stations = {sid: from_catalog(sid, **common) for net in gs.network for sid in NETWORKS[net]}
    for site in gs.sites:
        own = {"min_elevation_deg": site.min_elevation_deg, "antennas": site.antennas}
        merged = {k: own[k] if own[k] is not None else common[k] for k in own}
        merged.update(bands=tuple(site.bands) if site.bands is not None else None,
                      gt_dbk=site.gt_dbk, eirp_dbw=site.eirp_dbw,
                      downlink=site.downlink.model() if site.downlink else None,
                      uplink=site.uplink.model() if site.uplink else None)
        mask = None if site.horizon_mask is None else HorizonMask.from_pairs(site.horizon_mask)
        if mask is not None:
            merged["min_elevation_deg"] = mask.lowest_deg
        if site.lat_deg is None:
            stations[site.id] = from_catalog(site.id, **merged, horizon_mask=mask)
        else:
            elevation = merged.pop("min_elevation_deg")
            stations[site.id] = GroundStation(
                site.id, site.id, site.lat_deg, site.lon_deg, site.alt_m,
                elevation if elevation is not None else 10.0, merged.pop("antennas") or 1,
                horizon_mask=mask, **{k: v for k, v in merged.items() if v is not None})
    if gs.limit is not None and gs.limit > len(stations):
        raise InputError(f"{path}: ground_stations.limit: {gs.limit} exceeds the "
                         f"{len(stations)} stations of the networks and sites listed")
    return list(stations.values())[:gs.limit]


def _check_data_packages(scenario: Scenario, path: Path) -> None:
    """Geo-synthetic tiles are labelled by the MODIS land cover, a separate data package:
    refuse the scenario now rather than fail after the contact plan."""
    if scenario.data.source in GEO_DATASETS:
        try:
            landcover.data_file()
        except InputError as err:
            raise InputError(f"{path}: data.dataset: {scenario.data.dataset}: {err}") from None


def _check_fault_targets(scenario: Scenario, path: Path, fleet: list[ElementSet],
                         stations: list[GroundStation]) -> None:
    names = {e.name for e in fleet}
    for i, failure in enumerate(scenario.faults.failures):
        if failure.satellite not in names:
            raise InputError(f"{path}: faults.failures.{i}.satellite: {failure.satellite!r} "
                             "is not in the selected fleet")
    ids = {s.id for s in stations}
    for i, outage in enumerate(scenario.faults.station_outages):
        if outage.station not in ids:
            raise InputError(f"{path}: faults.station_outages.{i}.station: {outage.station!r} "
                             "is not one of the scenario's stations")

