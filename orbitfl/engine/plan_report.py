"""``orbitfl contacts --report DIR``: a contact-plan report for a planner (tables as parquet
and CSV, figures as PNG and PDF, a markdown summary), written whole or not at all.

This module gathers what only the world knows (the contact table, the stations' antennas,
the link's rate intervals, the link budget sampled over one pass per station); the
numbers come from ``analysis/contact_plan.py`` and the figures and summary from
``analysis/contact_views.py``, both of which read tables only.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from orbitfl.analysis import contact_plan as plan
from orbitfl.analysis import contact_views as views
from orbitfl.constellation.links import LinkBudget, RateProfiles, look_angles
from orbitfl.core.atomic import atomic_write
from orbitfl.engine.world import World
from orbitfl.rundir.writer import check_report_dir, write_table

SUMMARY = "contact-report.md"  # also the marker of a folder that holds a contact report
FORMATS = ("png", "pdf")
logger = logging.getLogger(__name__)


def check_contact_report_dir(path: Path) -> None:
    """An ``InputError`` unless ``path`` can become the report folder: absent, empty, or
    an earlier contact report (which the new one replaces whole)."""
    check_report_dir(path, "contact report folder", lambda p: (p / SUMMARY).is_file())


def write_report(world: World, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Every table, figure and the summary into a staging folder beside ``out``, then
    renamed into place (an earlier report there is replaced only once the new one is
    complete). Returns the files, under ``out``."""
    check_contact_report_dir(out)
    scenario = world.prepared.scenario
    contacts = world.contacts_table()
    satellites, stations = world.satellite_names, [s.id for s in world.prepared.stations]
    horizon = scenario.duration
    gaps = plan.revisit_gaps(contacts, satellites, horizon)
    steps, load = antenna_load(world, contacts)
    tables = {
        "contacts": contacts,
        "pass_durations": plan.pass_durations(contacts, satellites),
        "revisit_gaps": gaps,
        "revisit_summary": plan.gap_summary(gaps, satellites),
        "concurrency": steps,
        "station_load": load,
        "station_volume": plan.daily_volume(rate_table(world), stations,
                                            pd.Timestamp(scenario.epoch), horizon),
        "pass_profiles": pass_profiles(world),
    }
    warn_over_antennas(load, str(out / SUMMARY))
    staging = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name, frame in tables.items():
            _write_both(staging, name, frame)
        figures = views.draw_all(tables, staging, formats)
        text = views.summary_markdown(tables, scenario.name, str(scenario.epoch), horizon,
                                      [p.name for p in figures])
        atomic_write(staging / SUMMARY, lambda p: p.write_text(text, encoding="utf-8"))
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(out.iterdir())


def antenna_load(world: World, contacts: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The passes in view of each station over time (``concurrency``) and each station's
    passes against its antennas (``station_load``), from the world's contact table."""
    contacts = world.contacts_table() if contacts is None else contacts
    stations = world.prepared.stations
    steps = plan.concurrency(contacts, [s.id for s in stations])
    load = plan.station_load(contacts, steps, {s.id: s.antennas for s in stations},
                             world.prepared.scenario.duration)
    return steps, load


def warn_over_antennas(load: pd.DataFrame, see: str) -> None:
    """One warning line (contact report and run alike) when passes exceed the antennas of
    any station: which, by how much, and where the details are."""
    lines = plan.over_capacity_lines(load)
    if lines:
        logger.warning(f"passes exceed the antennas at {len(lines)} station(s): "
                       f"{'; '.join(lines)}; see {see}")


def _write_both(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """``name.parquet`` (checked against ``orbitfl/rundir/columns.py``) and ``name.csv`` (UTC
    times in ISO form)."""
    write_table(folder / f"{name}.parquet", frame)
    text = frame.assign(**{c: frame[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                           for c in frame.columns if isinstance(frame[c].dtype,
                                                                pd.DatetimeTZDtype)})
    atomic_write(folder / f"{name}.csv",
                 lambda p: text.to_csv(p, index=False, float_format="%.6f"))


def _publish(staging: Path, out: Path) -> None:
    """Rename the complete staging folder to ``out``; an empty folder or an earlier
    report there is set aside first and removed only after the rename."""
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if old.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def rate_table(world: World) -> pd.DataFrame:
    """Every piecewise-constant rate interval of every window, both directions (the
    geometric plan, before faults): ``direction``, ``station``, ``start_s``, ``end_s``,
    ``rate_bps``."""
    stations = world.plan.windows["station"].to_numpy()
    parts = [_intervals(direction, profile, stations)
             for direction, profile in (("down", world.down), ("up", world.up))]
    return pd.concat(parts, ignore_index=True)


def _intervals(direction: str, profile: RateProfiles, stations: np.ndarray) -> pd.DataFrame:
    owner = np.repeat(np.arange(len(profile.offsets) - 1), np.diff(profile.offsets))
    return pd.DataFrame({"direction": direction, "station": stations[owner],
                         "start_s": profile.start, "end_s": profile.end,
                         "rate_bps": profile.rate})


def pass_profiles(world: World) -> pd.DataFrame:
    """Each station's downlink over its highest pass, sampled every
    ``links.sample_s``: elevation, slant range, Es/N0, the MODCOD that adaptive coding
    picks (``fixed`` for a fixed-rate link, ``none`` when none closes) and the rate."""
    scenario = world.prepared.scenario
    windows = world.plan.windows
    frames = []
    for index, (station, model) in enumerate(zip(world.prepared.stations,
                                                  world.prepared.links("down"))):
        mine = windows[windows["station"] == station.id]
        if mine.empty:
            continue
        best = mine.loc[mine["max_elevation_deg"].idxmax()]
        steps = max(1, int(np.ceil(best["duration_s"] / scenario.links.sample_s)))
        t = np.linspace(best["start_s"], best["end_s"], steps + 1)
        sat = np.full(len(t), int(best["sat_index"]))
        range_km, elevation = look_angles(world.propagator, sat, station, t)
        loss = None  # links.weather's attenuation, as the run's rate profiles have it
        if isinstance(model, LinkBudget):
            row = np.full(len(t), windows.index.get_loc(best.name))
            loss = (model.atmosphere_db(elevation) if world.attenuation is None else
                    world.attenuation(model.frequency_ghz, index, row, elevation))
        es_n0, modcod = _modcods(model, range_km, elevation, loss)
        frames.append(pd.DataFrame({
            "station": station.id, "satellite": best["satellite"], "t_s": t,
            "since_start_s": t - best["start_s"], "elevation_deg": elevation,
            "range_km": range_km,
            "atmosphere_db": np.full(len(t), np.nan) if loss is None else loss,
            "es_n0_db": es_n0, "modcod": modcod,
            "rate_bps": model.rate_bps(range_km, elevation, loss)}))
    columns = ["station", "satellite", "t_s", "since_start_s", "elevation_deg", "range_km",
               "atmosphere_db", "es_n0_db", "modcod", "rate_bps"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _modcods(model, range_km: np.ndarray, elevation: np.ndarray,
             loss: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Es/N0 (NaN for a fixed rate) and the MODCOD names the link budget picks."""
    if not isinstance(model, LinkBudget):
        return np.full(len(range_km), np.nan), np.full(len(range_km), "fixed", dtype=object)
    es_n0 = model.es_n0_db(range_km, elevation, loss)
    return es_n0, model.modcod_names(model.select_modcod(es_n0))

