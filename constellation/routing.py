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
from bisect import bisect_left, bisect_right
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
        # each interval's best rate onto every elementary segment it covers, at once
        first, last = np.searchsorted(self.cuts, start), np.searchsorted(self.cuts, end)
        covered = last - first
        segment = np.repeat(first - np.cumsum(covered) + covered, covered) + \
            np.arange(covered.sum())
        np.maximum.at(best, segment, np.repeat(rate, covered))
        self.rate = best
        self.bits = np.concatenate([[0.0], np.cumsum(best * np.diff(self.cuts))])
        # the same numbers as Python floats: a route search asks hundreds of thousands of
        # single-time questions, where bisect on a list beats numpy's per-call overhead
        self._cuts, self._rate, self._bits = (self.cuts.tolist(), self.rate.tolist(),
                                              self.bits.tolist())

    def __len__(self) -> int:
        return len(self.rate)

    def bits_before(self, t: float) -> float:
        """Bits the link could have carried from the beginning until ``t``."""
        cuts, rate, bits = self._cuts, self._rate, self._bits
        j = bisect_right(cuts, t) - 1
        if j < 0:
            return 0.0
        if j >= len(rate):
            return bits[-1]
        return bits[j] + rate[j] * (t - cuts[j])

    def finish(self, t: float, nbytes: float) -> float:
        """When ``nbytes`` started at ``t`` are across (inf if the link runs out)."""
        cuts, rate, bits = self._cuts, self._rate, self._bits
        j = bisect_right(cuts, t) - 1  # bits_before(t), inlined: the search's inner loop
        before = 0.0 if j < 0 else bits[-1] if j >= len(rate) else \
            bits[j] + rate[j] * (t - cuts[j])
        target = before + nbytes * 8.0
        if not rate or target > bits[-1] + 1e-9:
            return float("inf")
        k = bisect_left(bits, target) - 1
        k = min(max(k, 0), len(rate) - 1)
        while rate[k] == 0.0:  # target sits exactly at a gap's start: finish earlier
            k -= 1
        return max(t, cuts[k] + (target - bits[k]) / rate[k])


@dataclass
class Route:
    nodes: list[str]
    hop_finish: list[float] = field(default_factory=list)

    @property
    def arrival(self) -> float:
        return self.hop_finish[-1] if self.hop_finish else float("nan")


class _Search:
    """An earliest-arrival search from one (source, start time, size), paused where it
    last stopped: at the moment a destination left the queue, exactly as a fresh search
    for that destination would have stopped. Going on from there is the fresh search for
    the next destination (it pops the same nodes in the same order, a popped node's label
    and parent never change again), so a round's broadcast (one source, one start time,
    one size, hundreds of destinations) costs one search instead of hundreds."""

    def __init__(self, src: str, t0: float):
        self.best = {src: t0}
        self.parent: dict[str, str] = {}
        self.hops = {src: 0}
        self.queue = [(t0, src)]
        self.popped: set[str] = set()
        self.held: tuple[float, str] | None = None  # popped as a destination, not expanded


class Router:
    """Links are directed: ``add(u, v, schedule)``."""

    _KEPT_SEARCHES = 8

    def __init__(self) -> None:
        self.links: dict[str, dict[str, LinkSchedule]] = defaultdict(dict)
        self._into: dict[str, set[str]] = defaultdict(set)  # node -> nodes linking to it
        self._searches: dict[tuple, _Search] = {}

    def add(self, u: str, v: str, schedule: LinkSchedule) -> None:
        if len(schedule):
            self.links[u][v] = schedule
            self._into[v].add(u)
            self._searches.clear()

    def earliest_arrival(self, src: str, dst: str, t0: float, nbytes: float,
                         max_hops: int = 8) -> Route | None:
        if dst != src and max_hops >= 1 and self._into.get(dst) == {src}:
            return self._direct(src, dst, t0, nbytes)
        key = (src, t0, nbytes, max_hops)
        search = self._searches.get(key)
        if search is None:
            if len(self._searches) >= self._KEPT_SEARCHES:
                del self._searches[next(iter(self._searches))]
            search = self._searches[key] = _Search(src, t0)
        self._advance(search, dst, nbytes, max_hops)
        best, parent = search.best, search.parent
        if dst not in best:
            return None
        nodes = [dst]
        while nodes[-1] != src:
            nodes.append(parent[nodes[-1]])
        nodes.reverse()
        return Route(nodes, [best[n] for n in nodes[1:]])

    def _direct(self, src: str, dst: str, t0: float, nbytes: float) -> Route | None:
        """The route when ``src`` is the only node with a link into ``dst`` (a satellite
        without inter-satellite links, from the ground): the search would expand ``src``
        once, at ``t0`` (no arrival can beat its label), and label ``dst`` from that link
        alone, so its answer is the direct hop's; a command to one satellite then costs one
        link's arithmetic instead of a search over every satellite the ground reaches."""
        arrival = self.links[src][dst].finish(t0, nbytes)
        return Route([src, dst], [arrival]) if arrival < float("inf") else None

    def _advance(self, search: _Search, dst: str, nbytes: float, max_hops: int) -> None:
        """Go on until ``dst`` leaves the queue (or the queue runs out)."""
        if dst in search.popped:
            return
        best, parent, hops, queue = search.best, search.parent, search.hops, search.queue
        links = self.links

        def expand(t: float, node: str) -> None:
            if t > best.get(node, float("inf")) or hops[node] >= max_hops:
                return
            for neighbour, schedule in links[node].items():
                arrival = schedule.finish(t, nbytes)
                if arrival < best.get(neighbour, float("inf")):
                    best[neighbour], parent[neighbour] = arrival, node
                    hops[neighbour] = hops[node] + 1
                    heapq.heappush(queue, (arrival, neighbour))

        if search.held is not None:
            held, search.held = search.held, None
            expand(*held)
        while queue:
            t, node = heapq.heappop(queue)
            search.popped.add(node)
            if node == dst:
                search.held = (t, node)
                return
            expand(t, node)
