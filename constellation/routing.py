"""Earliest-arrival store-and-forward routes over the time-varying network.

Each hop is one link (inter-satellite, ground-to-satellite or satellite-to-ground) whose
capacity exists only inside its windows. Finishing a hop of B bytes started at t is a
non-decreasing function of t (waiting never helps you arrive earlier), so a
time-dependent Dijkstra (label = the time the whole payload is on a node) gives the
earliest arrival, and the direct route is always among the candidates: a relay route is
never later than the direct one it replaces. Contention is not known in advance; routes
are planned on free links and the network then executes each hop as a real transfer.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


class LinkSchedule:
    """Capacity of one directed link over time, from possibly overlapping intervals (several
    stations at once: the best rate counts), as cumulative bits on elementary segments."""

    def __init__(self, start, end, rate):
        start, end, rate = (np.asarray(x, dtype=float) for x in (start, end, rate))
        keep = (rate > 0) & (end > start)
        start, end, rate = start[keep], end[keep], rate[keep]
        self.cuts = np.unique(np.concatenate([start, end]))
        best = np.zeros(max(len(self.cuts) - 1, 0))
        for a, b, r in zip(np.searchsorted(self.cuts, start), np.searchsorted(self.cuts, end),
                           rate):
            best[a:b] = np.maximum(best[a:b], r)
        self.rate = best
        self.bits = np.concatenate([[0.0], np.cumsum(best * np.diff(self.cuts))])

    def __len__(self) -> int:
        return len(self.rate)

    def bits_before(self, t: float) -> float:
        """Bits the link could have carried from the beginning until ``t``."""
        j = int(np.searchsorted(self.cuts, t, side="right")) - 1
        if j < 0:
            return 0.0
        if j >= len(self.rate):
            return float(self.bits[-1])
        return float(self.bits[j] + self.rate[j] * (t - self.cuts[j]))

    def finish(self, t: float, nbytes: float) -> float:
        """When ``nbytes`` started at ``t`` are across (inf if the link runs out)."""
        target = self.bits_before(t) + nbytes * 8.0
        if len(self.rate) == 0 or target > self.bits[-1] + 1e-9:
            return float("inf")
        k = int(np.searchsorted(self.bits, target, side="left")) - 1
        k = min(max(k, 0), len(self.rate) - 1)
        while self.rate[k] == 0.0:  # target sits exactly at a gap's start: finish earlier
            k -= 1
        return max(t, float(self.cuts[k] + (target - self.bits[k]) / self.rate[k]))


@dataclass
class Route:
    nodes: list[str]
    hop_finish: list[float] = field(default_factory=list)

    @property
    def arrival(self) -> float:
        return self.hop_finish[-1] if self.hop_finish else float("nan")


class Router:
    """Links are directed: ``add(u, v, schedule)``."""

    def __init__(self) -> None:
        self.links: dict[str, dict[str, LinkSchedule]] = defaultdict(dict)

    def add(self, u: str, v: str, schedule: LinkSchedule) -> None:
        if len(schedule):
            self.links[u][v] = schedule

    def earliest_arrival(self, src: str, dst: str, t0: float, nbytes: float,
                         max_hops: int = 8) -> Route | None:
        best = {src: t0}
        parent: dict[str, str] = {}
        hops = {src: 0}
        queue = [(t0, src)]
        while queue:
            t, node = heapq.heappop(queue)
            if node == dst:
                break
            if t > best.get(node, float("inf")) or hops[node] >= max_hops:
                continue
            for neighbour, schedule in self.links[node].items():
                arrival = schedule.finish(t, nbytes)
                if arrival < best.get(neighbour, float("inf")):
                    best[neighbour], parent[neighbour] = arrival, node
                    hops[neighbour] = hops[node] + 1
                    heapq.heappush(queue, (arrival, neighbour))
        if dst not in best:
            return None
        nodes = [dst]
        while nodes[-1] != src:
            nodes.append(parent[nodes[-1]])
        nodes.reverse()
        return Route(nodes, [best[n] for n in nodes[1:]])
