"""The physical world of a scenario, computed once: orbits, contact plan, link rates, faults
and sunlight. A value: the network that runs over it lives in a simulation's clock and is
built by ``orbitfl/engine/assemble.py``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from orbitfl.constellation.atmosphere import Weather
from orbitfl.constellation.contacts import ContactPlan, compute_contacts, highest_point
from orbitfl.constellation.events import EventLog
from orbitfl.constellation.faults import Failure, FaultPlan, FaultSpec, apply_faults
from orbitfl.constellation.groundtrack import ground_tracks
from orbitfl.constellation.isl import isl_windows
from orbitfl.constellation.links import Attenuation, RateProfiles, rate_profiles
from orbitfl.constellation.plan_cache import cached_contacts
from orbitfl.constellation.power import sunlit_intervals
from orbitfl.constellation.propagation import Clock, Propagator, geodetic
from orbitfl.constellation.stations import GroundStation
from orbitfl.core.limits import SUNLIGHT_GRID_S
from orbitfl.core.random_streams import RandomStreams
from orbitfl.engine.prepare import Prepared
from orbitfl.fl.geo.acquisition import GroundTrack


@dataclass
class World:
    """``plan``, ``down`` and ``up`` describe the geometry; ``usable`` (the windows left
    after faults) with ``usable_down``/``usable_up`` is what the network may use."""

    prepared: Prepared
    clock: Clock
    propagator: Propagator
    plan: ContactPlan
    down: RateProfiles
    up: RateProfiles
    faults: FaultPlan
    usable_down: RateProfiles
    usable_up: RateProfiles
    sunlight: list[tuple[np.ndarray, np.ndarray]]
    events: EventLog
    isl: pd.DataFrame | None = None
    attenuation: Attenuation | None = None  # links.weather (None: the clear-sky estimate)

    @property
    def satellite_names(self) -> list[str]:
        return [e.name for e in self.prepared.fleet]

    def acquisition_tracks(self) -> list[GroundTrack]:
        """Each satellite's ground track over the acquisition window, one sample per
        imaging interval, with the Sun's elevation at nadir."""
        acquisition = self.prepared.scenario.data.acquisition
        times = np.arange(0.0, acquisition.window, acquisition.interval_s)
        lat, lon, sun = ground_tracks(self.propagator, times)
        tracks = []
        for i in range(len(lat)):
            orbiting = np.isfinite(lat[i])  # a decayed satellite images nothing more
            tracks.append(GroundTrack(times[orbiting], lat[i][orbiting], lon[i][orbiting],
                                      sun[i][orbiting]))
        return tracks

    def ground_track_table(self, step_s: float = 60.0, max_satellites: int = 30,
                           max_hours: float = 12.0) -> pd.DataFrame:
        """Sub-satellite points of the first satellites (enough for a legible map)."""
        span = min(self.prepared.scenario.duration, max_hours * 3600.0)
        times = np.arange(0.0, span + step_s, step_s)
        sats = np.arange(min(len(self.propagator), max_satellites))
        lat, lon, _ = geodetic(self.propagator.ecef_grid(times, sats))
        names = np.repeat([self.satellite_names[i] for i in sats], len(times))
        table = pd.DataFrame({"satellite": names, "t_s": np.tile(times, len(sats)),
                              "lat_deg": lat.ravel(), "lon_deg": lon.ravel()})
        return table[np.isfinite(table["lat_deg"])].reset_index(drop=True)  # none after decay

    def stations_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"id": s.id, "name": s.name, "lat_deg": s.lat_deg,
                              "lon_deg": s.lon_deg, "alt_m": s.alt_m,
                              "min_elevation_deg": s.min_elevation_deg, "antennas": s.antennas,
                              "bands": "/".join(s.bands)}
                             for s in self.prepared.stations])

    @property
    def fault_spec(self) -> FaultSpec:
        return self.prepared.scenario.faults

    def contact_events(self) -> list[dict]:
        """Contact start and end rows of the usable windows, for the event log."""
        w = self.faults.windows
        names = self.satellite_names
        starts = [{"t_s": a, "kind": "contact_start", "node": names[s], "detail": st}
                  for s, st, a in zip(w["sat_index"], w["station"], w["start_s"])]
        ends = [{"t_s": b, "kind": "contact_end", "node": names[s], "detail": st}
                for s, st, b in zip(w["sat_index"], w["station"], w["end_s"])]
        return starts + ends

    def utc(self, t_s: np.ndarray) -> pd.DatetimeIndex:
        """UTC labels of simulation (SI) seconds: a leap second inside the run counts."""
        utc_s = np.asarray(t_s, dtype=float) - self.clock.inserted_leap_seconds(t_s)
        return pd.Timestamp(self.clock.epoch) + pd.to_timedelta(utc_s, unit="s")

    def contacts_table(self) -> pd.DataFrame:
        """One row per window, with UTC times, station coordinates and capacities."""
        frame = self.plan.windows.drop(columns=["sat_index"]).copy()
        frame.insert(3, "start", self.utc(frame["start_s"].to_numpy()))
        frame.insert(4, "end", self.utc(frame["end_s"].to_numpy()))
        sites = {s.id: s for s in self.prepared.stations}
        for column, attribute in (("station_lat_deg", "lat_deg"), ("station_lon_deg", "lon_deg"),
                                  ("station_alt_m", "alt_m"),
                                  ("min_elevation_deg", "min_elevation_deg")):
            frame[column] = frame["station"].map(lambda sid: getattr(sites[sid], attribute))
        frame["downlink_bytes"] = self.down.capacity_bytes()
        frame["uplink_bytes"] = self.up.capacity_bytes()
        return frame


def build_world(prepared: Prepared,
                progress: Callable[[int, int], None] | None = None) -> World:
    """The world of a prepared scenario; ``progress(done, total)`` follows the contact
    search, chunk by chunk of satellites."""
    scenario = prepared.scenario
    clock = Clock(scenario.epoch)
    propagator = Propagator(prepared.fleet, clock)
    logger.info(f"contacts: {len(prepared.fleet)} satellites x {len(prepared.stations)} "
                f"stations over {scenario.duration / 3600:.1f} h")
    step, refraction = scenario.contacts.grid_step_s, scenario.contacts.refraction

    def chunk_done(done: int, total: int) -> None:
        if total > 1:
            logger.info(f"contacts: {done}/{total} chunks of satellites done")
        if progress is not None:
            progress(done, total)

    if scenario.contacts.cache:
        plan, cached = cached_contacts(propagator, prepared.stations, scenario.duration, step,
                                       progress=chunk_done, refraction=refraction)
    else:
        plan, cached = compute_contacts(propagator, prepared.stations, scenario.duration,
                                        step, progress=chunk_done, refraction=refraction), False
    decays = _decays(propagator, prepared, scenario.duration)
    plan = _before_decay(plan, decays, propagator, prepared.stations)
    logger.info(f"contacts: {len(plan.windows)} windows{' (cached)' if cached else ''}")
    attenuation = _weather(prepared, len(plan.windows))
    down = rate_profiles(plan, propagator, prepared.stations, prepared.links("down"),
                         scenario.links.sample_s, attenuation)
    up = rate_profiles(plan, propagator, prepared.stations, prepared.links("up"),
                       scenario.links.sample_s, attenuation)
    isl = None
    config = scenario.links.isl
    if config.enabled:
        isl = isl_windows(propagator, scenario.duration, config, config.grid_step_s,
                          sample_s=scenario.links.sample_s)
        logger.info(f"inter-satellite links: {isl['window'].nunique()} windows")
    names = [e.name for e in prepared.fleet]
    rng = RandomStreams(scenario.seed).faults()
    windows = plan.windows.assign(window_id=np.arange(len(plan.windows)))
    spec = scenario.faults
    decayed = tuple(Failure(name, t) for name, t in decays)
    faults = apply_faults(windows, names, replace(spec, failures=spec.failures + decayed),
                          scenario.duration, rng, isl)
    _mark_decays(faults, decays)
    source = faults.windows["window_id"].to_numpy()
    usable = [p.restrict(source, faults.windows["start_s"].to_numpy(),
                         faults.windows["end_s"].to_numpy()) for p in (down, up)]
    events = EventLog()
    events.extend(faults.events)
    sunlight = sunlit_intervals(propagator, scenario.duration, SUNLIGHT_GRID_S)
    return World(prepared, clock, propagator, plan, down, up, faults, usable[0], usable[1],
                 sunlight, events, isl, attenuation)


def _weather(prepared: Prepared, n_windows: int) -> Attenuation | None:
    """``links.weather``'s attenuation for ``rate_profiles`` (None: the clear-sky estimate);
    a per-pass draw takes one percentage per window from its own seed sub-stream."""
    spec = prepared.scenario.links.weather
    if spec is None:
        return None
    draw = None
    if spec.per_pass_draw:
        seed = RandomStreams(prepared.scenario.seed).weather()
        draw = Weather.draw(n_windows, np.random.default_rng(seed))
    return Weather(spec, prepared.stations, draw).attenuation_db


def _decays(propagator: Propagator, prepared: Prepared,
            horizon_s: float) -> tuple[tuple[str, float], ...]:
    """(satellite, time) of every decay inside the run, unless a scheduled failure of that
    satellite comes first: a decayed satellite is a failed one from then on."""
    failures = {f.satellite: f.at for f in prepared.scenario.faults.failures}
    out = []
    for element, t in zip(prepared.fleet,
                          propagator.decay_times(horizon_s, tolerance_s=DECAY_TOLERANCE_S)):
        if np.isfinite(t) and failures.get(element.name, np.inf) > t:
            logger.info(f"decay: {element.name} (NORAD {element.catalog_number}) decays "
                        f"{t / 3600:.2f} h into the run (SGP4); it leaves the fleet then")
            out.append((element.name, float(t)))
    return tuple(out)


def _before_decay(plan: ContactPlan, decays: tuple[tuple[str, float], ...],
                  propagator: Propagator, stations: Sequence[GroundStation]) -> ContactPlan:
    """The windows of decayed satellites cut at the decay (no orbit exists afterwards).

    A window whose peak lies after the cut gets the highest point of what is left of it, up
    to the last instant SGP4 still answers (the decay time less its bisection's tolerance).
    """
    if not decays:
        return plan
    w = plan.windows
    end = w["satellite"].map(dict(decays)).fillna(np.inf).to_numpy()
    cut = w[w["start_s"] < end].assign(end_s=lambda f: np.minimum(f["end_s"], end[f.index]))
    cut = cut.assign(duration_s=cut["end_s"] - cut["start_s"]).reset_index(drop=True)
    sites = {s.id: s for s in stations}
    for row in np.flatnonzero(~(cut["max_elevation_s"] <= cut["end_s"]).to_numpy()):
        window = cut.iloc[row]
        last = max(window.end_s - DECAY_TOLERANCE_S, window.start_s)
        cut.loc[row, ["max_elevation_s", "max_elevation_deg"]] = highest_point(
            propagator, sites[window.station], int(window.sat_index), window.start_s, last)
    return ContactPlan(cut, plan.horizon_s)


def _mark_decays(faults: FaultPlan, decays: tuple[tuple[str, float], ...]) -> None:
    """The failure events of decays say what happened."""
    decayed = set(decays)
    for event in faults.events:
        if event["kind"] == "satellite_failure" and (event["node"], event["t_s"]) in decayed:
            event.update(kind="decayed", detail="SGP4 reports the orbit decayed")


DECAY_TOLERANCE_S = 1e-3  # decay times are bisected to this
logger = logging.getLogger(__name__)
