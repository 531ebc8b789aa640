"""The sweep report's figures: accuracy bands against cost per group, time to target
against each swept parameter (censoring marked), and where the time goes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .curves import AXES, KINDS, Band, band, common_grid, curve
from .figures import FACTOR_COLOURS, empty_note, literal, plt, run_colours
from .run_data import FACTORS
from .stats import MeanInterval, mean_interval
from .sweep_data import Sweep
from .time_split import network_hours
from .time_to_target import group_time_to_target

POINT_DODGE = 0.012  # of the x range, between end points drawn at one cost
DODGE = 0.08  # horizontal offset between series at one x, in units of the x spacing


def group_colours(sweep: Sweep) -> dict[str, str]:
    labels = run_colours([sweep.label(g) for g in sweep.groups])
    return {g: labels[sweep.label(g)] for g in sweep.groups}


def group_bands(sweep: Sweep, axis: str, kind: str) -> dict[str, Band]:
    """Each group's band of ``kind`` against ``axis`` from its complete replicates' runs
    (groups with nothing to draw left out); worked out once per sweep (figures and page)."""
    key = ("bands", axis, kind)
    if key in sweep.derived:
        return sweep.derived[key]
    out = sweep.derived[key] = {}
    for group in sweep.groups:
        curves = group_curves(sweep, group, axis, kind)
        grid = common_grid(curves)
        if len(grid) and any(len(x) > 1 for x, _ in curves):
            out[group] = band(curves, grid)
    return out


def group_curves(sweep: Sweep, group: str, axis: str,
                 kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y) of ``kind`` against ``axis`` of each complete replicate of ``group``."""
    runs = [sweep.run(p) for p in sweep.complete(group)["point"]]
    return [curve(r.rounds, axis, kind) for r in runs if r is not None]


def group_end_points(sweep: Sweep, axis: str,
                     kind: str) -> dict[str, tuple[MeanInterval, MeanInterval]]:
    """Per group whose replicates scored ``kind`` once each (personalised models scored at
    the last round only): the mean x and the mean y with its 95 % interval. Such a score is
    a point, not a curve: as a band it would be an empty panel."""
    out = {}
    for group in sweep.groups:
        curves = [(x, y) for x, y in group_curves(sweep, group, axis, kind) if len(x)]
        if curves and all(len(x) == 1 for x, _ in curves):
            out[group] = (mean_interval(x[0] for x, _ in curves),
                          mean_interval(y[0] for _, y in curves))
    return out


def bands_figure(sweep: Sweep, axis: str):
    """Accuracy of every kind measured (a panel each) against ``axis``: per group the mean
    line with its 95 % band where every replicate's run reaches, then the replicates that
    go on as thin lines of their own (the others had stopped: nothing is extrapolated)."""
    xlabel = AXES[axis][0]
    drawn = {k: group_bands(sweep, axis, k) for k in KINDS}
    points = {k: group_end_points(sweep, axis, k) for k in KINDS}
    kinds = {k: v for k, v in KINDS.items() if drawn[k] or points[k]} or \
        {"accuracy": KINDS["accuracy"]}
    cols = 2 if len(kinds) > 1 else 1
    rows = -(-len(kinds) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows + 0.4), sharex=True,
                             layout="constrained", squeeze=False)
    for ax in axes.flat[len(kinds):]:
        ax.set_visible(False)
    for ax in axes.flat:  # one x scale for every panel, labelled on each
        ax.tick_params(labelbottom=True)
    colours = group_colours(sweep)
    for ax, (kind, name) in zip(axes.flat, kinds.items()):
        same = coinciding_bands(drawn[kind])
        for group, b in drawn[kind].items():
            note = f", on {sweep.label(same[group])}'s curve" if group in same else ""
            _draw_band(ax, b, colours[group], f"{sweep.label(group)} (n={b.replicates}"
                       f"{note})", dashed=group in same)
        spread = POINT_DODGE * max([b.grid[-1] for b in drawn[kind].values()] +
                                   [x.mean for x, _ in points[kind].values()] + [1e-12])
        for i, (group, (x, y)) in enumerate(points[kind].items()):
            # side by side, so that runs ending at the same cost do not hide each other
            ax.errorbar([x.mean + spread * (i - (len(points[kind]) - 1) / 2)],
                        [100 * y.mean], yerr=[[100 * (y.mean - y.lo)],
                                                        [100 * (y.hi - y.mean)]],
                        color=colours[group], marker="o",
                        capsize=3, ls="none", label=literal(
                            f"{sweep.label(group)} (n={y.n}, last round only)", 90))
        ax.set(xlabel=xlabel, ylabel=f"{name} accuracy (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=6)
        else:
            empty_note(ax, f"no {name} accuracy in the replicates' run directories")
    fig.suptitle("mean and 95 % interval over replicates while every run goes on; thin: "
                 "single replicates after the others had stopped", fontsize=9)
    return fig


SAME = 0.005  # curves closer than this (of the x span; accuracy as a fraction) coincide


def _same(a: Band, b: Band) -> bool:
    span = max(np.ptp(a.grid), np.ptp(b.grid), 1e-12)
    return a.values.shape == b.values.shape and \
        np.allclose(a.grid, b.grid, rtol=0, atol=SAME * span) and \
        np.allclose(a.values, b.values, rtol=0, atol=SAME, equal_nan=True)


def coinciding_bands(bands: dict[str, Band]) -> dict[str, str]:
    """Groups whose replicates' curves lie on an earlier group's (the swept value changed
    nothing visible), each mapped to that group: drawn dashed and named, so that neither
    hides the other."""
    same: dict[str, str] = {}
    seen: list[str] = []
    for group, b in bands.items():
        match = next((g for g in seen if _same(bands[g], b)), None)
        if match is None:
            seen.append(group)
        else:
            same[group] = match
    return same


def _draw_band(ax, b: Band, colour, label: str, dashed: bool = False) -> None:
    full = b.full
    ax.plot(b.grid, np.where(full, 100 * b.mean, np.nan), color=colour,
            ls="--" if dashed else "-", label=literal(label, 90))
    for values in b.beyond():
        ax.plot(b.grid, 100 * values, color=colour, lw=0.7, alpha=0.6)
    ax.fill_between(b.grid, np.clip(100 * b.low, 0, 100), np.clip(100 * b.high, 0, 100),
                    where=full & np.isfinite(b.low), color=colour, alpha=0.2, lw=0)


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """x positions of a parameter's values: the values when numeric, else their order
    (with tick labels)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return numeric.to_numpy(dtype=float), None
    order = sorted(values.astype(str).unique())
    return np.array([order.index(v) for v in values.astype(str)], dtype=float), order


def ttt_figure(sweep: Sweep, threshold: float | None):
    """Time to ``threshold`` against each swept parameter (a panel each; series: the
    other parameters' values): the Kaplan-Meier median with its interval, filled where
    every replicate reached, open where some never did, with the fraction reached written;
    an arrow up where fewer than half reached (the median lies beyond the last time seen).
    Series at the same x are set apart slightly, so none hides another."""
    parameters = sweep.parameters or ["group"]
    fig, axes = plt.subplots(1, len(parameters), figsize=(5.2 * len(parameters), 3.8),
                             layout="constrained", squeeze=False)
    for ax, parameter in zip(axes.flat, parameters):
        if threshold is None:
            empty_note(ax, "no replicate reached any recorded accuracy threshold")
            continue
        _ttt_panel(ax, sweep, threshold, parameter)
    if threshold is not None:
        fig.suptitle(f"time to {100 * threshold:g} % accuracy: Kaplan-Meier median, 95 % "
                     "interval\nopen: some replicates never reached (k/n reached); arrow: "
                     "fewer than half did", fontsize=8)
    return fig


def _ttt_panel(ax, sweep: Sweep, threshold: float, parameter: str) -> None:
    values = pd.Series([sweep.values[g].get(parameter, g) for g in sweep.groups])
    x, ticks = _positions(values)
    others = [p for p in sweep.parameters if p != parameter]
    series = [", ".join(f"{p}={sweep.values[g][p]}" for p in others) or "all"
              for g in sweep.groups]
    names = list(dict.fromkeys(series))
    colours = run_colours(names)
    spacing = np.min(np.diff(np.unique(x))) if len(np.unique(x)) > 1 else 1.0
    top = 0.0
    for group, at, name in zip(sweep.groups, x, series):
        km = group_time_to_target(sweep.rows(group), threshold, "sim_time")
        at = at + (names.index(name) - (len(names) - 1) / 2) * DODGE * spacing
        colour = colours[name]
        if km.n == 0:
            continue
        if not np.isfinite(km.median):  # fewer than half reached: a lower bound only
            bound = _last_time(sweep, group)
            ax.annotate("", (at, bound * 1.15), (at, bound),
                        arrowprops={"arrowstyle": "->", "color": colour})
            ax.plot([at], [bound], marker="_", ms=10, color=colour)
            ax.annotate(f"{km.reached}/{km.n}", (at, bound), xytext=(4, 0),
                        textcoords="offset points", fontsize=7, color=colour, gid="censored")
            top = max(top, bound * 1.2)
            continue
        hi = km.hi if np.isfinite(km.hi) else _last_time(sweep, group)
        lo = km.lo if np.isfinite(km.lo) else km.median
        censored = km.reached < km.n
        ax.errorbar([at], [km.median], yerr=[[km.median - lo], [max(0.0, hi - km.median)]],
                    marker="o", ms=6, capsize=3, color=colour,
                    mfc="white" if censored else colour,
                    label=literal(name) if name not in ax.get_legend_handles_labels()[1]
                    else None)
        if censored:
            ax.annotate(f"{km.reached}/{km.n}", (at, km.median), xytext=(5, 2),
                        textcoords="offset points", fontsize=7, color=colour, gid="censored")
        top = max(top, hi)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), [literal(t, 20) for t in ticks])
    ax.set(xlabel=literal(parameter), ylabel=f"time to {100 * threshold:g} % (h)",
           ylim=(0, top * 1.1 if top > 0 else 1))
    ax.grid(alpha=0.3)
    if len(names) > 1 and ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=6)


def _last_time(sweep: Sweep, group: str) -> float:
    """The longest simulated time (h) a complete replicate of the group ran."""
    return float(pd.to_numeric(sweep.complete(group)["sim_time_h"], errors="coerce").max())


def time_split_figure(sweep: Sweep, split: pd.DataFrame):
    """Two panels per group: rounds needed to the target (learning) and simulated hours per
    round split by what the rounds waited for (network)."""
    labels = [literal(sweep.label(g), 40) for g in split["group"]]
    y = np.arange(len(split))
    fig, (learn, net) = plt.subplots(1, 2, figsize=(10, 0.45 * len(split) + 1.8),
                                     layout="constrained", sharey=True)
    median = split["rounds_needed"].to_numpy(dtype=float)
    lo = np.where(np.isfinite(split["rounds_lo"]), split["rounds_lo"], median)
    hi = np.where(np.isfinite(split["rounds_hi"]), split["rounds_hi"], median)
    learn.errorbar(median, y, xerr=[median - lo, hi - median], fmt="o", color="k",
                   capsize=3)
    for row, m in zip(y, median):
        if not np.isfinite(m):
            learn.annotate("not reached by half", (0, row), xytext=(2, 0),
                           textcoords="offset points", fontsize=7, va="center")
    learn.set(yticks=y, yticklabels=labels, xlabel="rounds needed (learning)")
    learn.set_xlim(left=0)
    learn.invert_yaxis()
    learn.grid(alpha=0.3, axis="x")
    hours = network_hours(split)
    left = np.zeros(len(split))
    for factor in (*FACTORS, "round"):
        if hours[factor].any():
            net.barh(y, hours[factor], left=left, color=FACTOR_COLOURS.get(factor, "0.6"),
                     label=factor if factor != "round" else "round (no breakdown recorded)")
            left += hours[factor].to_numpy()
    mean = split["hours_per_round"].to_numpy(dtype=float)
    lo, hi = (np.where(np.isfinite(split[c]), split[c], mean)
              for c in ("hours_per_round_lo", "hours_per_round_hi"))
    net.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="none", ecolor="k", capsize=3)
    net.set(xlabel="simulated hours per round, mean and 95 % interval (network)")
    net.grid(alpha=0.3, axis="x")
    if net.has_data():
        net.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("time to target = rounds needed x hours per round", fontsize=9)
    return fig
