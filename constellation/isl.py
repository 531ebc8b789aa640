"""Inter-satellite links: visibility windows, rates, topology snapshots, time-expanded graphs.

Two satellites can link while the straight line between them clears the Earth plus an
atmosphere margin (default 80 km: below it refraction and absorption make a link useless)
and their range is at most ``max_range_km``. Windows come from a grid scan refined by
bisection; within a window the rate follows the range through the same rate models as
ground links (a fixed rate for optical terminals, or a DVB-S2 budget for RF).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from orbitfl.core.options import STRICT, option

from .constants import EARTH_RADIUS_KM
from .contacts import ContactPlan, _pair_events
from .links import FixedRate, LinkBudget, LinkSpec
from .propagation import Propagator
from .rate_model import RateModel

_PAIR_POINTS = 4_000_000  # satellite pairs x grid points examined at once


@dataclass(frozen=True)
class IslModel:
    """Who may link and at what rate: the scenario's ``links.isl`` section
    (``orbitfl/core/options.py``)."""

    __pydantic_config__ = STRICT

    enabled: bool = option(False, "relay payloads over inter-satellite links")
    max_range_km: float = option(5000.0, "longest usable inter-satellite range [km]", gt=0)
    grazing_altitude_km: float = option(
        80.0, "the line of sight must clear this altitude above the Earth [km]", ge=0)
    link: LinkSpec = option(
        LinkSpec(rate_mbps=100.0), "rate model of an inter-satellite link (a budget is taken "
                                   "in vacuum)")
    grid_step_s: float = option(
        30.0, "sampling step of the ISL visibility search [s]", ge=1, le=300)

    @property
    def rate(self) -> RateModel:
        return self.link.model()

    def rate_bps(self, range_km: np.ndarray) -> np.ndarray:
        """The link's rate at these ranges, in vacuum: no atmosphere lies between two
        satellites whose line clears the grazing altitude."""
        rate = self.rate
        if isinstance(rate, LinkBudget):
            rate = replace(rate, zenith_atmospheric_loss_db=0.0)
        return rate.rate_bps(range_km, np.full(np.shape(range_km), 90.0))


def clear_line_of_sight(r1: np.ndarray, r2: np.ndarray, grazing_km: float) -> np.ndarray:
    """Whether the segment r1-r2 stays above Earth radius + ``grazing_km`` (..., 3 arrays)."""
    d = r2 - r1
    dd = np.einsum("...k,...k->...", d, d)
    # Closest point of the segment to the Earth's centre.
    s = np.clip(-np.einsum("...k,...k->...", r1, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    closest = r1 + s[..., None] * d
    return np.linalg.norm(closest, axis=-1) >= EARTH_RADIUS_KM + grazing_km


def isl_windows(propagator: Propagator, horizon_s: float, model: IslModel,
                grid_step_s: float = 30.0, tolerance_s: float = 0.01,
                sample_s: float = 5.0) -> pd.DataFrame:
    """Links (sat_a < sat_b) as pieces of constant rate; columns ``sat_a, sat_b, window,
    start_s, end_s, mean_range_km, rate_bps``. ``window`` numbers the visibility windows;
    a window is cut where its rate changes (every ``sample_s``, as ground passes are) and
    loses the spans where no rate closes, so the pieces integrate rate(range(t)).

    The grid step must be shorter than the shortest window that matters: ISL geometry
    changes over minutes (neighbours in a shell keep their link for whole orbits).
    """
    grid = np.arange(int(np.ceil(horizon_s / grid_step_s)) + 1) * grid_step_s
    r = propagator.ecef_grid(grid)
    a, b = np.triu_indices(len(propagator), k=1)
    found: list[np.ndarray] = []
    at_start: list[np.ndarray] = []
    chunk = max(1, _PAIR_POINTS // len(grid))
    for first in range(0, len(a), chunk):
        pairs = np.arange(first, min(first + chunk, len(a)))
        ok = _linkable(r[a[pairs]], r[b[pairs]], model)  # (pairs, T)
        p, k = np.nonzero(ok[:, 1:] != ok[:, :-1])
        found.append(np.column_stack([pairs[p], k, ok[p, k + 1]]))
        at_start.append(pairs[ok[:, 0]])
    changes = np.concatenate(found) if found else np.empty((0, 3), dtype=np.int64)
    pair, k, rise = changes[:, 0], changes[:, 1], changes[:, 2].astype(bool)
    lo, hi = grid[k], grid[k + 1]
    while len(lo) and np.max(hi - lo) > tolerance_s:  # bisection on exact positions
        mid = 0.5 * (lo + hi)
        after = _linkable(propagator.ecef_at(a[pair], mid), propagator.ecef_at(b[pair], mid),
                          model) == rise  # the change happened before mid
        hi, lo = np.where(after, mid, hi), np.where(after, lo, mid)
    start_pairs = np.concatenate(at_start)
    events = pd.DataFrame({
        "sat_index": np.concatenate([pair, start_pairs]),
        "station_index": 0,
        "t": np.concatenate([0.5 * (lo + hi), np.zeros(len(start_pairs))]),
        "rise": np.concatenate([rise, np.ones(len(start_pairs), dtype=bool)])})
    windows = _pair_events(events, horizon_s)
    p = windows["sat_index"].to_numpy()
    # A fixed rate needs samples only for the mean range: the grid step is fine enough.
    step = grid_step_s if isinstance(model.rate, FixedRate) else sample_s
    pieces = _rate_pieces(propagator, model, a[p], b[p], windows["start_s"].to_numpy(),
                          np.minimum(windows["end_s"].to_numpy(), horizon_s), step)
    return pieces.sort_values(["start_s", "sat_a", "sat_b"], ignore_index=True)


def _rate_pieces(propagator: Propagator, model: IslModel, sat_a: np.ndarray,
                 sat_b: np.ndarray, start: np.ndarray, end: np.ndarray,
                 sample_s: float) -> pd.DataFrame:
    """Each window sampled every ``sample_s`` (and at both ends); an interval runs at the
    lower rate of its two ends, like a ground pass; equal neighbours merge, zeros go."""
    count = np.maximum(1, np.ceil((end - start) / sample_s)).astype(int)
    window = np.repeat(np.arange(len(start)), count + 1)
    t = np.concatenate([np.linspace(s, e, n + 1) for s, e, n in zip(start, end, count)]
                       ) if len(start) else np.empty(0)
    distance = np.linalg.norm(propagator.ecef_at(sat_a[window], t)
                              - propagator.ecef_at(sat_b[window], t), axis=1)
    rate = model.rate_bps(distance)
    left = np.flatnonzero(np.append(window[1:] == window[:-1], False))  # opens an interval
    intervals = pd.DataFrame({"window": window[left], "start_s": t[left],
                              "end_s": t[left + 1],
                              "rate_bps": np.minimum(rate[left], rate[left + 1]),
                              "range_s": 0.5 * (distance[left] + distance[left + 1])
                              * (t[left + 1] - t[left])})
    new_piece = np.ones(len(intervals), dtype=bool)
    same = (intervals["window"].to_numpy()[1:] == intervals["window"].to_numpy()[:-1]) & (
        intervals["rate_bps"].to_numpy()[1:] == intervals["rate_bps"].to_numpy()[:-1])
    new_piece[1:] = ~same
    pieces = intervals.groupby(np.cumsum(new_piece)).agg(
        window=("window", "first"), start_s=("start_s", "first"), end_s=("end_s", "last"),
        rate_bps=("rate_bps", "first"), range_s=("range_s", "sum"))
    pieces = pieces[(pieces["rate_bps"] > 0.0) & (pieces["end_s"] > pieces["start_s"])]
    w = pieces["window"].to_numpy()
    return pd.DataFrame({
        "sat_a": sat_a[w], "sat_b": sat_b[w], "window": w,
        "start_s": pieces["start_s"].to_numpy(), "end_s": pieces["end_s"].to_numpy(),
        "mean_range_km": (pieces["range_s"] / (pieces["end_s"] - pieces["start_s"])).to_numpy(),
        "rate_bps": pieces["rate_bps"].to_numpy()})


def _linkable(r1: np.ndarray, r2: np.ndarray, model: IslModel) -> np.ndarray:
    distance = np.linalg.norm(r2 - r1, axis=-1)
    return (distance <= model.max_range_km) & clear_line_of_sight(r1, r2,
                                                                  model.grazing_altitude_km)


def topology_at(t_s: float, satellites: Sequence[str], isl: pd.DataFrame,
                ground: ContactPlan | None = None) -> nx.Graph:
    """The network at one instant: satellites and stations as nodes, live links as edges
    (``rate_bps`` on ISLs; ground edges carry ``kind='ground'``)."""
    graph = nx.Graph()
    graph.add_nodes_from(satellites, kind="satellite")
    live = isl[(isl["start_s"] <= t_s) & (isl["end_s"] > t_s)]
    for row in live.itertuples():
        graph.add_edge(satellites[row.sat_a], satellites[row.sat_b], kind="isl",
                       rate_bps=row.rate_bps, range_km=row.mean_range_km)
    if ground is not None:
        w = ground.windows
        for row in w[(w["start_s"] <= t_s) & (w["end_s"] > t_s)].itertuples():
            graph.add_node(row.station, kind="station")
            graph.add_edge(satellites[row.sat_index], row.station, kind="ground")
    return graph


def time_expanded(times: Sequence[float], satellites: Sequence[str], isl: pd.DataFrame,
                  ground: ContactPlan | None = None) -> nx.DiGraph:
    """Store-and-forward view: node (name, k) per instant; 'hold' edges keep data on board
    from k to k + 1, link edges move it within instant k."""
    graph = nx.DiGraph()
    for k, t in enumerate(times):
        snapshot = topology_at(t, satellites, isl, ground)
        for u, v, data in snapshot.edges(data=True):
            graph.add_edge((u, k), (v, k), **data)
            graph.add_edge((v, k), (u, k), **data)
        for node in snapshot.nodes:
            graph.add_node((node, k), t_s=t)
            if k + 1 < len(times):
                graph.add_edge((node, k), (node, k + 1), kind="hold")
    return graph
