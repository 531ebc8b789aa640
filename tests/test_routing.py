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
