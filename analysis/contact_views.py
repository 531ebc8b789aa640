"""The contact-plan report's figures and markdown summary: views of the tables that
``analysis/contact_plan.py`` computes (``orbitfl contacts --report DIR``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .contact_plan import ALL, over_capacity_lines
from .figures import empty_note, literal, run_colours, save_formats

MAX_ROWS = 40     # satellites drawn in a per-satellite figure
MAX_PANELS = 12   # stations drawn as small multiples


def _grid(count: int, width: float = 4.2, height: float = 2.6, cols: int = 3):
    """``count`` panels (at least one), spare ones hidden."""
    count = max(count, 1)
    cols = max(1, min(cols, count))
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.5),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _first(names: list[str], limit: int, what: str) -> tuple[list[str], str]:
    """The first ``limit`` names and a title suffix saying how many were left out."""
    if len(names) <= limit:
        return names, ""
    return names[:limit], f" (first {limit} of {len(names)} {what})"


def pass_duration_figure(contacts: pd.DataFrame):
    """All passes' durations as a histogram, and each satellite's as a box."""
    fig, (hist, boxes) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained",
                                      width_ratios=(1, 1.4))
    minutes = contacts["duration_s"] / 60.0
    if len(contacts):
        hist.hist(minutes, bins=min(30, max(5, len(contacts) // 3)), color="0.45")
    else:
        empty_note(hist, "no contact window in the scenario's duration")
    hist.set_xlabel("pass duration (min)")
    hist.set_ylabel("passes")
    hist.set_title(f"all {len(contacts)} passes")
    satellites, more = _first(list(dict.fromkeys(contacts["satellite"])), MAX_ROWS,
                              "satellites")
    data = [minutes[contacts["satellite"] == s].to_numpy() for s in satellites]
    if satellites:
        boxes.boxplot(data, orientation="horizontal", widths=0.6)
        boxes.set_yticks(range(1, len(satellites) + 1), [literal(s) for s in satellites],
                         fontsize=7)
        boxes.invert_yaxis()
    boxes.set_xlabel("pass duration (min)")
    boxes.set_title("per satellite" + more)
    return fig


def revisit_gap_figure(gaps: pd.DataFrame, summary: pd.DataFrame):
    """Every revisit gap of each satellite (hollow: censored by the horizon, a lower
    bound), the longest marked."""
    satellites, more = _first([s for s in summary["satellite"] if s != ALL], MAX_ROWS,
                              "satellites")
    fig, ax = plt.subplots(figsize=(9, 0.26 * len(satellites) + 2.2), layout="constrained")
    for row, satellite in enumerate(satellites):
        mine = gaps[gaps["satellite"] == satellite]
        hours = mine["gap_s"] / 3600.0
        closed = ~mine["censored"]
        ax.scatter(hours[closed], np.full(closed.sum(), row), s=14, color="C0")
        ax.scatter(hours[~closed], np.full((~closed).sum(), row), s=14, facecolors="none",
                   edgecolors="C0")
        if len(mine):
            ax.scatter(hours.max(), row, marker="*", s=80, color="C3", zorder=3)
    ax.set_yticks(range(len(satellites)), [literal(s) for s in satellites], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time without contact to any station (h)")
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], ls="", marker="o", color="C0", label="gap between passes"),
               plt.Line2D([], [], ls="", marker="o", mfc="none", color="C0",
                          label="before the first / after the last pass (lower bound)"),
               plt.Line2D([], [], ls="", marker="*", ms=10, color="C3", label="longest")]
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=3,
               frameon=False)
    ax.set_title("revisit gaps" + more)
    if not satellites:
        empty_note(ax, "no satellite")
    return fig


def concurrency_figure(steps: pd.DataFrame, load: pd.DataFrame):
    """Passes in view of each station over time against its antennas; time over capacity
    shaded."""
    stations, more = _first(list(load["station"]), MAX_PANELS, "stations")
    fig, axes = _grid(len(stations))
    for ax, station in zip(axes, stations):
        mine = steps[steps["station"] == station]
        antennas = int(load.loc[load["station"] == station, "antennas"].iloc[0])
        if len(mine):
            t = np.append(mine["start_s"].to_numpy(), mine["end_s"].iloc[-1]) / 3600.0
            n = np.append(mine["passes"].to_numpy(), 0)
            ax.step(t, n, where="post", color="C0", lw=0.9)
            over = mine[mine["passes"] > antennas]
            # a red line per over-capacity interval: visible however short it is
            ax.vlines((over["start_s"] + over["end_s"]) / 7200.0, antennas, over["passes"],
                      color="C3", lw=2.5, zorder=3)
        else:
            empty_note(ax, "no pass")
        ax.axhline(antennas, color="k", ls="--", lw=0.8)
        ax.set_ylim(0, max(antennas, int(mine["passes"].max()) if len(mine) else 0) + 0.8)
        ax.set_title(f"{literal(station, 30)} ({antennas} antenna{'s' * (antennas != 1)})",
                     fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hours since epoch")
        ax.set_ylabel("passes in view")
    fig.suptitle("simultaneous passes against antennas (dashed); red: over capacity" + more,
                 fontsize=10)
    return fig


def volume_figure(volume: pd.DataFrame):
    """Downlink volume each station's passes could carry, per UTC day."""
    stations = list(dict.fromkeys(volume["station"]))
    days = list(dict.fromkeys(volume["date"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(stations) * len(days) + 2), 4.4),
                           layout="constrained")
    colours = run_colours(days)
    width = 0.8 / max(len(days), 1)
    for k, day in enumerate(days):
        mine = volume[volume["date"] == day].set_index("station").reindex(stations)
        ax.bar(np.arange(len(stations)) + (k - (len(days) - 1) / 2) * width,
               mine["downlink_bytes"] / 1e9, width, color=colours[day], label=day)
    ax.set_xticks(range(len(stations)), [literal(s, 24) for s in stations], rotation=30,
                  ha="right", fontsize=8)
    ax.set_ylabel("downlink capacity of the passes (GB)")
    ax.set_title("data volume per station and UTC day\n(first and last day partial when the "
                 "horizon is; antenna limits not deducted)", fontsize=9)
    if days:
        ax.legend(title="UTC day", fontsize=7)
    return fig


def profile_figure(profiles: pd.DataFrame):
    """Downlink rate against elevation over each station's highest pass, rising (solid)
    and setting (dashed); the right axis names the MODCOD of each rate."""
    stations, more = _first(list(dict.fromkeys(profiles["station"])), MAX_PANELS, "stations")
    fig, axes = _grid(len(stations), width=4.6, height=3.2)
    for ax, station in zip(axes, stations):
        mine = profiles[profiles["station"] == station].reset_index(drop=True)
        peak = int(mine["elevation_deg"].idxmax())
        rising, setting = mine.iloc[:peak + 1], mine.iloc[peak:]
        ax.step(rising["elevation_deg"], rising["rate_bps"] / 1e6, where="post", color="C0",
                label="rising")
        ax.step(setting["elevation_deg"], setting["rate_bps"] / 1e6, where="post", color="C0",
                ls="--", label="setting")
        _modcod_axis(ax, mine)
        ax.set_title(f"{literal(station, 24)}: {literal(mine['satellite'].iloc[0], 24)}, "
                     f"peak {mine['elevation_deg'].max():.0f} deg", fontsize=9)
        ax.set_xlabel("elevation (deg)")
        ax.set_ylabel("downlink rate (Mbit/s)")
        ax.grid(alpha=0.3)
    if not stations:
        empty_note(axes[0], "no pass")
    else:
        axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("rate and MODCOD against elevation over the highest pass" + more,
                 fontsize=10)
    return fig


def _modcod_axis(ax, profile: pd.DataFrame) -> None:
    """A right-hand axis naming the MODCOD at each rate the pass used (each MODCOD has
    its own rate); names closer than a 20th of the axis to the previous one are left out
    so that none overlap."""
    used = profile.drop_duplicates("modcod").sort_values("rate_bps")
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    low, high = ax.get_ylim()
    ticks, names, last = [], [], -np.inf
    for _, row in used.iterrows():
        rate = row["rate_bps"] / 1e6
        if rate - last >= (high - low) / 20:
            ticks.append(rate)
            names.append(literal(row["modcod"]))
            last = rate
    twin.set_yticks(ticks, names, fontsize=6)
    twin.set_ylabel("MODCOD", fontsize=8)


def draw_all(tables: dict[str, pd.DataFrame], out: Path,
             formats: tuple[str, ...]) -> list[Path]:
    """Every figure of the report into ``out``, once per format."""
    figures = {
        "pass_durations": lambda: pass_duration_figure(tables["contacts"]),
        "revisit_gaps": lambda: revisit_gap_figure(tables["revisit_gaps"],
                                                   tables["revisit_summary"]),
        "concurrency": lambda: concurrency_figure(tables["concurrency"],
                                                  tables["station_load"]),
        "station_volume": lambda: volume_figure(tables["station_volume"]),
        "pass_profiles": lambda: profile_figure(tables["pass_profiles"]),
    }
    written: list[Path] = []
    for name, draw in figures.items():
        written += save_formats(draw(), out / f"{name}_figure", formats)
    return written


def _hours(seconds: float) -> str:
    return "-" if not np.isfinite(seconds) else f"{seconds / 3600:.2f} h"


def summary_markdown(tables: dict[str, pd.DataFrame], name: str, epoch: str,
                     horizon_s: float, figures: list[str]) -> str:
    """The report's front page: the headline numbers, a warning line per station whose
    passes exceed its antennas, and what each file holds."""
    durations = tables["pass_durations"].set_index("satellite")
    overall = durations.loc[ALL]
    gaps = tables["revisit_summary"].set_index("satellite")
    longest = gaps.loc[ALL]
    load, volume = tables["station_load"], tables["station_volume"]
    lines = [f"# Contact plan: {name}", "",
             f"From {epoch} over {horizon_s / 3600:.4g} h: {int(overall['count'])} passes of "
             f"{len(durations) - 1} satellites over {len(load)} stations.", ""]
    lines += [f"- Pass duration: median {overall['median_s'] / 60:.1f} min (10-90 %: "
              f"{overall['p10_s'] / 60:.1f}-{overall['p90_s'] / 60:.1f} min)."
              if overall["count"] else "- No pass in the scenario's duration."]
    if np.isfinite(longest["longest_gap_start_s"]):
        bound = " (a lower bound: it reaches the horizon)" if longest["longest_gap_censored"] \
            else ""
        lines.append(f"- Longest revisit gap: {_hours(longest['longest_gap_s'])}, "
                     f"{literal(longest['longest_gap_satellite'])}, from "
                     f"{longest['longest_gap_start_s'] / 3600:.2f} h after the epoch{bound}; "
                     + (f"median gap between passes {_hours(longest['median_s'])}."
                        if longest["count"] else "no gap between two passes."))
    days = horizon_s / 86400.0
    lines.append(f"- Downlink capacity of all passes: "
                 f"{volume['downlink_bytes'].sum() / 1e9 / days:.2f} GB per day "
                 f"(antenna limits not deducted; per UTC day in `station_volume`).")
    named = load.assign(station=load["station"].map(literal))
    lines += [f"- WARNING: {line}." for line in over_capacity_lines(named)]
    lines += ["", "| station | antennas | passes/day | peak passes | over capacity (min) | "
              "downlink GB/day |", "|---|---|---|---|---|---|"]
    per_day = volume.groupby("station")["downlink_bytes"].sum() / 1e9 / days
    lines += [f"| {literal(r['station'])} | {r['antennas']} | {r['passes_per_day']:.1f} | "
              f"{r['peak_passes']} | {r['time_over_capacity_s'] / 60:.1f} | "
              f"{per_day.get(r['station'], 0.0):.2f} |" for _, r in load.iterrows()]
    lines += ["", "Tables (each as .parquet and .csv; columns in docs/run-directory.md): "
              + ", ".join(f"`{t}`" for t in tables) + ".", "",
              "Figures (also as PDF):", ""]
    lines += [f"![{f}]({f})" for f in figures if f.endswith(".png")] + [""]
    return "\n".join(lines)
