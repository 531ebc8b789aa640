"""The physical world of a scenario: orbits, contact plan, link rates, and the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

import numpy as np
import pandas as pd
import simpy

from orbitfl.constellation.contacts import ContactPlan, compute_contacts
from orbitfl.constellation.isl import IslModel, isl_windows
from orbitfl.constellation.links import RateProfiles, look_angles, rate_profiles
from orbitfl.constellation.network import Backhaul, Network
from orbitfl.constellation.plan_cache import cached_contacts
from orbitfl.constellation.propagation import Clock, Propagator
from orbitfl.prepare import Prepared


@dataclass
class World:
    prepared: Prepared
    clock: Clock
    propagator: Propagator
    plan: ContactPlan
    down: RateProfiles
    up: RateProfiles
    isl: pd.DataFrame | None = None

    @property
    def satellite_names(self) -> list[str]:
        return [e.name for e in self.prepared.fleet]

    def network(self, env: simpy.Environment) -> Network:
        config = self.prepared.scenario.network
        stations = self.prepared.stations

        def elevation(sat: int, station: int, t: float) -> float:
            return float(look_angles(self.propagator, np.array([sat]), stations[station],
                                     np.array([t]))[1][0])

        return Network(env, self.plan.windows, self.satellite_names,
                       [(s.id, s.antennas) for s in stations], self.down, self.up,
                       policy=config.antenna_policy,
                       resume=config.transfer_policy == "resume",
                       backhaul=Backhaul(config.backhaul.latency_ms / 1e3,
                                         config.backhaul.rate_mbps * 1e6),
                       elevation=elevation, isl=self.isl)

    def contacts_table(self) -> pd.DataFrame:
        """One row per window, with UTC times, station coordinates and capacities."""
        frame = self.plan.windows.drop(columns=["sat_index"]).copy()
        base = pd.Timestamp(self.clock.epoch)
        frame.insert(3, "start", base + pd.to_timedelta(frame["start_s"], unit="s"))
        frame.insert(4, "end", base + pd.to_timedelta(frame["end_s"], unit="s"))
        sites = {s.id: s for s in self.prepared.stations}
        for column, attribute in (("station_lat_deg", "lat_deg"), ("station_lon_deg", "lon_deg"),
                                  ("station_alt_m", "alt_m"),
                                  ("min_elevation_deg", "min_elevation_deg")):
            frame[column] = frame["station"].map(lambda sid: getattr(sites[sid], attribute))
        frame["downlink_bytes"] = self.down.capacity_bytes()
        frame["uplink_bytes"] = self.up.capacity_bytes()
        return frame


def build_world(prepared: Prepared, log: TextIO) -> World:
    scenario = prepared.scenario
    clock = Clock(scenario.epoch)
    propagator = Propagator(prepared.fleet, clock)
    log.write(f"contacts: {len(prepared.fleet)} satellites x {len(prepared.stations)} stations "
              f"over {scenario.duration / 3600:.1f} h\n")
    step = scenario.contacts.grid_step_s
    if scenario.contacts.cache:
        plan, cached = cached_contacts(propagator, prepared.stations, scenario.duration, step)
    else:
        plan, cached = compute_contacts(propagator, prepared.stations, scenario.duration,
                                        step), False
    log.write(f"contacts: {len(plan.windows)} windows{' (cached)' if cached else ''}\n")
    down = rate_profiles(plan, propagator, prepared.stations, scenario.links.downlink.model(),
                         scenario.links.sample_s)
    up = rate_profiles(plan, propagator, prepared.stations, scenario.links.uplink.model(),
                       scenario.links.sample_s)
    isl = None
    config = scenario.links.isl
    if config.enabled:
        model = IslModel(config.max_range_km, config.grazing_altitude_km, config.link.model())
        isl = isl_windows(propagator, scenario.duration, model, config.grid_step_s)
        log.write(f"inter-satellite links: {len(isl)} windows\n")
    return World(prepared, clock, propagator, plan, down, up, isl)

