"""``orbitfl contacts``: a scenario's contact plan as a table, summaries, figures and (with
``--report``) the planner's report of ``orbitfl/engine/plan_report.py``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from orbitfl.analysis.figures import contact_gantt, ground_tracks, land_outline
from orbitfl.analysis.style import figure_style, resolve
from orbitfl.core.atomic import atomic_write
from orbitfl.core.errors import InputError
from orbitfl.core.landmask import MISSING
from orbitfl.core.progress import NO_BARS, Bars
from orbitfl.engine.plan_report import check_contact_report_dir, write_report
from orbitfl.engine.prepare import prepare
from orbitfl.engine.world import build_world

COLUMNS = ["satellite", "norad_id", "station", "station_lat_deg", "station_lon_deg",
           "station_alt_m", "min_elevation_deg", "start", "end", "duration_s",
           "max_elevation_deg", "downlink_bytes", "uplink_bytes", "start_s", "end_s",
           "max_elevation_s"]
FORMATS = (".csv", ".parquet")
logger = logging.getLogger(__name__)


def write_contacts(scenario: Path, out: Path | None, gantt: Path | None = None,
                   ground_track: Path | None = None,
                   overrides: Sequence[tuple[str, Any]] = (),
                   progress: Bars | None = None, report: Path | None = None,
                   style: str = "screen") -> pd.DataFrame:
    """Write the plan to ``out`` (CSV or parquet by extension) and/or the contact-plan
    report into the folder ``report``; returns per-station stats. ``progress`` draws the
    contact search's bar; ``style`` is the figures' medium (``analysis/style.py``). The
    scenario needs no ``fl`` section and no imagery."""
    bars = progress or NO_BARS
    resolve(style)  # an unknown style is refused before any work
    if out is not None and out.suffix.lower() not in FORMATS:
        raise InputError(f"{out}: the contact table must end in .csv or .parquet")
    if report is not None:
        check_contact_report_dir(report)
    prepared = prepare(scenario, overrides, purpose="contacts")
    prepared.log_warnings()
    with bars:
        world = build_world(prepared, bars.task("contacts"))
    table = world.contacts_table()[COLUMNS]
    if out is not None:
        _write_table(table, out)
    if report is not None:
        logger.info(f"contact report: tables and figures into {report}")
        with figure_style(style):
            write_report(world, report)
    if gantt is not None:
        contact_gantt(table, gantt, style=style)
    if ground_track is not None:
        if land_outline() is None:  # the map is still drawn, on a blank background
            logger.warning("%s: %s", ground_track, MISSING)
        ground_tracks(world.ground_track_table(30.0, 30, 6.0), world.stations_table(),
                      ground_track, epoch=world.prepared.scenario.epoch, style=style)
    return station_summary(table, world.prepared.scenario.duration)


def station_summary(table: pd.DataFrame, horizon_s: float) -> pd.DataFrame:
    days = horizon_s / 86400.0
    grouped = table.groupby("station")
    return pd.DataFrame({
        "passes_per_day": grouped.size() / days,
        "mean_duration_s": grouped["duration_s"].mean(),
        "mean_downlink_MB": grouped["downlink_bytes"].mean() / 1e6,
        "mean_uplink_MB": grouped["uplink_bytes"].mean() / 1e6,
    }).round(2)


def _write_table(table: pd.DataFrame, out: Path) -> None:
    """CSV (ISO times in UTC) or parquet, by extension; written atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        iso = {c: table[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for c in ("start", "end")}
        atomic_write(out, lambda p: table.assign(**iso).to_csv(p, index=False,
                                                              float_format="%.6f"))
    else:
        atomic_write(out, lambda p: table.to_parquet(p, index=False))
