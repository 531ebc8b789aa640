"""One FedAvg mission at constellation scale: wall time, peak memory and where the time
goes, for 100, 300 and 1,000 satellites of a Walker shell (Starlink shell 1's altitude and
inclination, fewer planes), each run on 1 core (serial), a pool of 2 local workers and Ray
with 2 workers, and with batched training (``+batched``: ``execution.batched``, the clients
waiting at once trained together with torch.func.vmap) serially and on the pool.

    .venv/bin/python benchmarks/mission_scale.py                 # 100, 300, 1000 x 3 rounds
    .venv/bin/python benchmarks/mission_scale.py --sizes 300 --rounds 5 --configs local/2
    .venv/bin/python benchmarks/mission_scale.py --quick         # smoke run (a few seconds)
    .venv/bin/python benchmarks/mission_scale.py --eager ...     # data built all at once
                                                                 # (as before lazy client data)

Every (size, configuration) runs in a fresh subprocess with its own empty cache folder
(contact plan and tiles computed cold), so peak RSS is that run's alone: "main" is the
mission process (getrusage), "tree" the sampled sum over it and every process it started
(pool workers, Ray's raylet and actors; /proc every 0.2 s, forked pages counted in each
process). The scenario goes through ``orbitfl.api.load_scenario(mapping, overrides)`` with
``execution.backend`` and ``execution.workers``; where the scenario has no ``execution``
section the parallel configurations print "n/a".

Time is split by timers wrapped around the runner's stages (each second counted once, in the
innermost stage): contacts (world: propagation, contact windows, network), data (the
federation's index, and tiles rendered or read in this process), training (fits in this
process, or waiting on workers' results), evaluation (predictions on the test set), output
(tables, figures, dashboard) and the rest (the discrete-event mission and network, model
set-up). "start-up" is building the executor (Ray's start and actors); "first" is the first
round's wall time and "steady" the mean of the following rounds; "CPU main" and "CPU all"
are a steady round's CPU seconds in the mission process and in all its processes together
(on a loaded machine these say more than wall time: a round cannot take less wall time than
CPU all / cores, nor less than CPU main). Figures only, no
assertions: ratios are measured in one invocation on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

SIZES = {12: (3, 4), 100: (10, 10), 300: (20, 15), 1000: (40, 25)}
CONFIGS = ("serial/1", "local/2", "ray/2", "serial/1+batched", "local/2+batched")
STAGES = ("contacts", "data", "training", "evaluation", "output", "rest")


def scenario_mapping(satellites: int, rounds: int) -> dict:
    """A FedAvg mission sized to fit 2 cores: 16-px tiles along a 3 h acquisition window
    (about 45 sunlit tiles a satellite), the small CNN, 1 local epoch, every idle satellite
    selected each round, rounds closing at a 2 h deadline; 13 stations with ample antennas
    so that the radio, not antenna contention, paces the rounds."""
    planes, per_plane = SIZES[satellites]
    return {
        "name": f"scale-{satellites}", "seed": 1, "epoch": "2024-07-16T06:00:00Z",
        "duration": f"{2 * rounds + 2}h",
        "constellation": {"walker": {"preset": "starlink-shell1", "planes": planes,
                                     "per_plane": per_plane}},
        "ground_stations": {"network": ["estrack", "nasa-nen", "polar"],
                            "min_elevation_deg": 10, "antennas": 100},
        "links": {"downlink": {"band": "Ka", "eirp_dbw": 20, "gt_dbk": 30,
                               "bandwidth_mhz": 250},
                  "uplink": {"rate_mbps": 10}},
        "onboard": {"compute": "jetson-orin-nx"},
        "data": {"dataset": "geo-synthetic", "image_size": 16, "partition": "orbit",
                 "acquisition": {"window": "3h", "interval_s": 120}, "test_per_class": 20},
        "model": {"name": "small-cnn"},
        "fl": {"strategy": "fedavg", "rounds": rounds, "local_epochs": 1, "batch_size": 32,
               "schedule": {"mode": "sync", "deadline": "2h", "min_clients": satellites}},
    }


# -- the child: one mission --------------------------------------------------------------
class Stages:
    """Exclusive wall time per stage: a stage entered inside another pauses the outer."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._stack: list[tuple[str, float]] = []

    @contextmanager
    def stage(self, name: str):
        now = time.perf_counter()
        if self._stack:
            outer, since = self._stack[-1]
            self.seconds[outer] += now - since
        self._stack.append((name, now))
        try:
            yield
        finally:
            end = time.perf_counter()
            _, since = self._stack.pop()
            self.seconds[name] += end - since
            if self._stack:
                self._stack[-1] = (self._stack[-1][0], end)

    def wrap(self, owner, attribute: str, name: str) -> bool:
        """Time every call of ``owner.attribute`` as stage ``name`` (False if absent)."""
        original = getattr(owner, attribute, None)
        if original is None:
            return False

        def timed(*args, **kwargs):
            with self.stage(name):
                return original(*args, **kwargs)
        setattr(owner, attribute, timed)
        return True


def _tree(root: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system, with reaped children's) of ``root``
    and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / tick
    total, seconds, todo = 0, 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        seconds += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total, seconds


class TreeSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, _tree(os.getpid())[0])
            except OSError:
                pass


def child(satellites: int, rounds: int, backend: str, workers: int, eager: bool,
          batched: bool = False) -> dict:
    import orbitfl.api as api
    from orbitfl.core.errors import InputError
    from orbitfl.engine import runner
    from orbitfl.fl import federation, training

    overrides = {} if backend == "serial" else {"execution.backend": backend,
                                                "execution.workers": workers}
    if batched:
        overrides["execution.batched"] = True
    try:
        scenario = api.load_scenario(scenario_mapping(satellites, rounds), overrides=overrides)
    except InputError as err:
        return {"error": f"n/a ({err})"}
    import importlib

    homes = [runner]   # the runner's stages, wherever this version of orbitfl keeps them
    try:
        homes.insert(0, importlib.import_module("orbitfl.engine.assemble"))
    except ImportError:
        pass
    stages = Stages()
    for home in homes:
        stages.wrap(home, "build_world", "contacts")
        stages.wrap(home, "build_federation", "data")
        stages.wrap(home, "write_report", "output")
        stages.wrap(home, "write_table", "output")
    if hasattr(federation, "TileRecipe"):
        stages.wrap(federation.TileRecipe, "__call__", "data")
    stages.wrap(federation, "cached_render", "data")
    from orbitfl.fl import strategy as strategy_module
    stages.wrap(strategy_module.Strategy, "run_fit", "training")
    try:
        from orbitfl.fl import executors
        for waiting in ("_Sent", "_Wrapped"):   # a batch's reply (a job's, before batches)
            if hasattr(executors, waiting):
                stages.wrap(getattr(executors, waiting),
                            "get" if waiting == "_Sent" else "result", "training")
    except (ImportError, AttributeError):
        pass
    from orbitfl.engine import mission
    stages.wrap(mission, "predict", "evaluation")
    stages.wrap(training, "predict", "evaluation")
    startup = {"s": 0.0}
    for home in homes:
        original_build = getattr(home, "build_executor", None)
        if original_build is not None:
            def build_executor(*args, _build=original_build, **kwargs):
                start = time.perf_counter()
                executor = _build(*args, **kwargs)
                startup["s"] += time.perf_counter() - start
                return executor
            home.build_executor = build_executor
    if eager:
        for home in homes:
            if hasattr(home, "build_federation"):
                build = home.build_federation
                home.build_federation = (lambda *a, _build=build, **k:
                                         _build(*a, **{**k, "lazy": False}))
    ticks: list[tuple[float, float, float]] = []   # wall, this process's CPU, tree's CPU
    original_print = runner._print_round
    runner._print_round = lambda *a, **k: (
        ticks.append((time.perf_counter(), time.process_time(), _tree(os.getpid())[1])),
        original_print(*a, **k))
    sampler = TreeSampler()
    sampler.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, stages.stage("rest"):
        result = api.run(scenario, out=Path(out) / "run", progress=False)
        accuracy = float(result.rounds["accuracy"].iloc[-1])
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    rounds_wall, main_cpu, tree_cpu = ([b[i] - a[i] for a, b in zip(ticks, ticks[1:])]
                                       for i in range(3))
    return {
        "wall_s": wall, "startup_s": startup["s"],
        "first_round_s": rounds_wall[0] if rounds_wall else float("nan"),
        "steady_round_s": (sum(rounds_wall[1:]) / len(rounds_wall[1:])
                           if len(rounds_wall) > 1 else float("nan")),
        "rounds": len(rounds_wall),
        # CPU seconds of a steady round: this process's, and all processes' together
        "steady_main_cpu_s": _mean(main_cpu[1:]), "steady_tree_cpu_s": _mean(tree_cpu[1:]),
        "accuracy": accuracy,
        "main_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tree_rss_mib": max(sampler.peak, _tree(os.getpid())[0]) / 2**20,
        "stages": stages.seconds,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# -- the parent: every configuration in its own process -----------------------------------
def run_one(satellites: int, rounds: int, config: str, eager: bool) -> dict:
    where, _, batched = config.partition("+")
    backend, workers = where.split("/")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ORBITFL_CACHE_DIR": cache}
        done = subprocess.run([sys.executable, __file__, "--child",
                               json.dumps([satellites, rounds, backend, int(workers), eager,
                                           batched == "batched"])],
                              capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed ({tail[:100]})"}
    return json.loads(lines[-1][len("RESULT "):])


def report(satellites: int, results: dict[str, dict]) -> None:
    print(f"\n== {satellites} satellites ==")
    print(f"{'config':16} {'wall s':>7} {'start-up':>8} {'first':>6} {'steady':>7} "
          f"{'CPU main':>8} {'CPU all':>8} "
          f"{'main MiB':>8} {'tree MiB':>8} {'acc':>5}   " + " ".join(f"{s:>10}" for s in STAGES))
    for config, r in results.items():
        if "error" in r:
            print(f"{config:16} {r['error']}")
            continue
        print(f"{config:16} {r['wall_s']:7.1f} {r['startup_s']:8.1f} {r['first_round_s']:6.1f} "
              f"{r['steady_round_s']:7.2f} {r.get('steady_main_cpu_s', float('nan')):8.2f} "
              f"{r.get('steady_tree_cpu_s', float('nan')):8.2f} "
              f"{r['main_rss_mib']:8.0f} {r['tree_rss_mib']:8.0f} "
              f"{r['accuracy']:5.3f}   " +
              " ".join(f"{r['stages'][s]:10.1f}" for s in STAGES))
    base = results.get("serial/1", {})
    for config, r in results.items():
        if config == "serial/1" or "error" in r or "error" in base or not base:
            continue
        print(f"speed-up {config} over serial/1: wall {base['wall_s'] / r['wall_s']:.2f}x, "
              f"steady round {base['steady_round_s'] / r['steady_round_s']:.2f}x")
    local, ray = results.get("local/2", {}), results.get("ray/2", {})
    if local and ray and "error" not in local and "error" not in ray:
        ratio = ray["steady_round_s"] / local["steady_round_s"]
        print(f"ray/2 against local/2: steady round {ratio:.2f}x the time, "
              f"wall {ray['wall_s'] / local['wall_s']:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000],
                        choices=sorted(SIZES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--eager", action="store_true",
                        help="render every client's tiles up front (the data path before "
                             "lazy client data), for a before/after memory comparison")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 12 satellites, 2 rounds, serial only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(*json.loads(args.child))
        print("RESULT " + json.dumps(result))
        return 0
    if args.quick:
        args.sizes, args.rounds, args.configs = [12], 2, ["serial/1"]
    print(f"FedAvg over a Walker shell (550 km, 53 deg), {args.rounds} rounds, 16-px tiles, "
          f"small CNN; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
          f"{', data eager' if args.eager else ''}")
    for satellites in args.sizes:
        results = {c: run_one(satellites, args.rounds, c, args.eager) for c in args.configs}
        report(satellites, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
