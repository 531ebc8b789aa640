"""The router's earliest-arrival search, checked against a fresh textbook search per
destination: reusing one paused search for many destinations (a round's broadcast) must
give exactly the routes and times a new search would."""

from __future__ import annotations

import heapq

import numpy as np

from orbitfl.constellation.routing import LinkSchedule, Route, Router


def _fresh(links, src, dst, t0, nbytes, max_hops):
    """Time-dependent Dijkstra from scratch, stopping when ``dst`` leaves the queue."""
    best, parent, hops, queue = {src: t0}, {}, {src: 0}, [(t0, src)]
    while queue:
        t, node = heapq.heappop(queue)
        if node == dst:
            break
        if t > best.get(node, float("inf")) or hops[node] >= max_hops:
            continue
        for neighbour, schedule in links.get(node, {}).items():
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


def _random_router(rng, n):
    router, links = Router(), {}
    for u in range(n):
        for v in rng.choice(n, size=4, replace=False):
            if u == v:
                continue
            start = np.sort(rng.uniform(0, 5000, size=3))
            schedule = LinkSchedule(start, start + rng.uniform(50, 400, size=3),
                                    rng.choice([1e4, 2e4, 5e4], size=3))
            router.add(f"n{u}", f"n{v}", schedule)
            if len(schedule):
                links.setdefault(f"n{u}", {})[f"n{v}"] = schedule
    return router, links


def test_reused_search_matches_a_fresh_search_for_every_destination():
    rng = np.random.default_rng(3)
    router, links = _random_router(rng, 40)
    for max_hops in (2, 8):
        for src, t0, nbytes in (("n0", 0.0, 5e4), ("n7", 1200.0, 2e5), ("n0", 0.0, 5e4)):
            for dst in rng.permutation([f"n{i}" for i in range(40)]):
                got = router.earliest_arrival(src, str(dst), t0, nbytes, max_hops)
                want = _fresh(links, src, str(dst), t0, nbytes, max_hops)
                assert (got is None) == (want is None)
                if want is not None:
                    assert got.nodes == want.nodes and got.hop_finish == want.hop_finish


def test_adding_a_link_forgets_paused_searches():
    router = Router()
    router.add("a", "b", LinkSchedule([0], [1000], [8000]))
    router.add("b", "c", LinkSchedule([0], [1000], [8000]))
    assert router.earliest_arrival("a", "c", 0.0, 100).nodes == ["a", "b", "c"]
    router.add("a", "c", LinkSchedule([0], [1000], [80000]))
    route = router.earliest_arrival("a", "c", 0.0, 100)
    assert route.nodes == ["a", "c"] and route.arrival == 100 * 8 / 80000


def test_a_node_reached_from_one_node_only_gets_the_search_s_route():
    """A ground hub with up- and downlinks to every satellite, inter-satellite links
    between a few: satellites without them are reached from the ground only (the direct
    hop's shortcut), the others by a search; both must give what a fresh search gives,
    including links that run out before the payload is across, and hop limits."""
    rng = np.random.default_rng(11)
    router, links = Router(), {}

    def add(u, v, schedule):
        router.add(u, v, schedule)
        links.setdefault(u, {})[v] = schedule

    sats = [f"s{i}" for i in range(12)]
    for sat in sats:
        for u, v in (("g", sat), (sat, "g")):
            start = np.sort(rng.uniform(0, 3000, size=2))
            add(u, v, LinkSchedule(start, start + rng.uniform(20, 300, size=2),
                                   rng.choice([1e4, 5e4], size=2)))
    for a, b in (("s0", "s1"), ("s1", "s2"), ("s5", "s0")):
        schedule = LinkSchedule([0.0], [4000.0], [2e5])
        add(a, b, schedule)
        add(b, a, schedule)
    assert router._into["s7"] == {"g"} and router._into["s1"] == {"g", "s0", "s2"}
    for max_hops in (0, 1, 8):
        for t0, nbytes in ((0.0, 4e4), (900.0, 3e5), (2900.0, 1e6)):
            for src in ["g"] + sats:
                for dst in ["g"] + sats:
                    got = router.earliest_arrival(src, dst, t0, nbytes, max_hops)
                    want = _fresh(links, src, dst, t0, nbytes, max_hops)
                    assert (got is None) == (want is None), (src, dst, t0, max_hops)
                    if want is not None:
                        assert got.nodes == want.nodes and got.hop_finish == want.hop_finish


def test_link_schedule_takes_the_best_rate_where_intervals_overlap():
    """Overlapping windows of two stations: each elementary segment carries the best
    rate among the intervals covering it (hand-computed cumulative bits)."""
    schedule = LinkSchedule([0.0, 5.0, 20.0, 30.0], [10.0, 15.0, 25.0, 30.0],
                            [100.0, 300.0, 50.0, 999.0])  # the last is empty: dropped
    assert schedule.cuts.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert schedule.rate.tolist() == [100.0, 300.0, 300.0, 0.0, 50.0]
    assert schedule.bits.tolist() == [0.0, 500.0, 2000.0, 3500.0, 3500.0, 3750.0]
    assert schedule.bits_before(12.0) == 2000.0 + 300.0 * 2.0
    assert schedule.finish(12.0, 600 / 8) == 14.0           # 300 bit/s to 15 s
    assert schedule.finish(14.0, 400 / 8) == 20.0 + 100 / 50.0  # gap 15-20 s, then 50
    assert schedule.finish(0.0, 4000 / 8) == float("inf")          # more than it can carry
