"""``orbitfl sweep``: one base scenario expanded over a grid (or zip) of values at YAML paths,
every point an independent seeded run, results in ``sweep.parquet`` and a Pareto figure.

Sweep file::

    base: imbalance-base.yaml          # relative to the sweep file
    mode: grid                         # or zip (all lists the same length)
    parameters:
      fl.strategy: [fedavg, safe]
      data.imbalance_ratio: [10, 100]
      seed: [1, 2, 3]

Points are written as scenario files under ``<out>/points/`` and run by a local process
pool (default) or by Ray (``--backend ray``, a local instance or ``--address``). A point
whose run directory is complete for the same scenario hash is not run again; a failing
point is reported and the others go on.
"""

from __future__ import annotations

import copy
import itertools
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np
import pandas as pd
import yaml

from orbitfl.errors import InputError
from orbitfl.scenario import load_scenario

SWEEP_KEYS = {"base", "mode", "parameters", "name"}


@dataclass(frozen=True)
class Point:
    index: int
    name: str
    values: dict[str, Any]
    scenario_file: Path
    run_dir: Path


def load_sweep(path: Path) -> tuple[dict, dict[str, list], str, str]:
    """(base scenario document, parameters, mode, name); one-line errors."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: sweep file not found") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: YAML syntax error: {getattr(err, 'problem', err)}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a mapping with base, mode and parameters")
    unknown = set(document) - SWEEP_KEYS
    if unknown:
        raise InputError(f"{path}: unknown key {sorted(unknown)[0]!r}; allowed: "
                         f"{', '.join(sorted(SWEEP_KEYS))}")
    if "base" not in document or "parameters" not in document:
        raise InputError(f"{path}: a sweep needs 'base' and 'parameters'")
    base_path = (path.parent / str(document["base"])).resolve()
    load_scenario(base_path)  # the base must be valid on its own
    base = _absolute_paths(yaml.safe_load(base_path.read_text(encoding="utf-8")),
                           base_path.parent)
    parameters = document["parameters"]
    if not isinstance(parameters, dict) or not parameters:
        raise InputError(f"{path}: parameters: expected a mapping of YAML paths to lists")
    for key, values in parameters.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{path}: parameters.{key}: expected a non-empty list")
    mode = document.get("mode", "grid")
    if mode not in ("grid", "zip"):
        raise InputError(f"{path}: mode: expected grid or zip, got {mode!r}")
    if mode == "zip" and len({len(v) for v in parameters.values()}) > 1:
        raise InputError(f"{path}: parameters: zip mode needs lists of equal length")
    return base, parameters, mode, str(document.get("name", path.stem))


def _absolute_paths(document: dict, base_dir: Path) -> dict:
    """Point files live elsewhere: make the base's file paths absolute."""
    document = copy.deepcopy(document)
    for section, key in (("constellation", "tle"), ("data", "path")):
        value = document.get(section, {}).get(key) if isinstance(document.get(section),
                                                                  dict) else None
        if value is not None:
            document[section][key] = str((base_dir / str(value)).resolve())
    return document


def expand(base: dict, parameters: dict[str, list], mode: str) -> list[dict[str, Any]]:
    keys = list(parameters)
    combos = itertools.product(*parameters.values()) if mode == "grid" \
        else zip(*parameters.values())
    return [dict(zip(keys, combo)) for combo in combos]


def apply(base: dict, values: dict[str, Any]) -> dict:
    """The base with each dotted YAML path set (intermediate mappings are created)."""
    document = copy.deepcopy(base)
    for dotted, value in values.items():
        node = document
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"parameters.{dotted}: {part!r} is not a mapping in the base")
        node[last] = value
    return document


def plan_points(sweep_file: Path, out: Path) -> tuple[list[Point], str]:
    base, parameters, mode, name = load_sweep(sweep_file)
    points = []
    for i, values in enumerate(expand(base, parameters, mode)):
        document = apply(base, values)
        document["name"] = f"{name}-{i:03d}"
        scenario_file = out / "points" / f"{document['name']}.yaml"
        scenario_file.parent.mkdir(parents=True, exist_ok=True)
        scenario_file.write_text(yaml.safe_dump(document, sort_keys=False))
        try:
            load_scenario(scenario_file)
        except InputError as err:
            raise InputError(f"{sweep_file}: point {i} {values}: {err}") from None
        points.append(Point(i, document["name"], values, scenario_file,
                            out / "runs" / document["name"]))
    return points, name


def is_complete(point: Point) -> bool:
    """A run directory counts when its manifest is complete and matches the scenario."""
    manifest = point.run_dir / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("status") == "complete" and \
        recorded.get("scenario_sha256") == load_scenario(point.scenario_file).content_hash()


def run_point(scenario_file: str, run_dir: str, threads: int) -> dict:
    """One point in its own process; returns the headline results or the error.

    ``threads`` caps torch's intra-op threads at this point's share of the cores: two
    points each using every core run slower together than one after the other."""
    import io

    import torch

    from orbitfl.runner import run

    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        run(Path(scenario_file), Path(run_dir), log=io.StringIO())
    except InputError as err:
        return {"status": "failed", "error": str(err), "wall_s": time.perf_counter() - start}
    except Exception as err:  # noqa: BLE001 - a failing point must not stop the sweep
        return {"status": "failed", "error": f"{type(err).__name__}: {err}",
                "wall_s": time.perf_counter() - start}
    return headline(Path(run_dir))


def headline(run_dir: Path) -> dict:
    """A complete run's headline results, from its manifest and the last round's metrics
    (the same row whether the point ran now or in an earlier sweep)."""
    summary = json.loads((run_dir / "manifest.json").read_text())["summary"]
    last = pd.read_parquet(run_dir / "rounds.parquet").iloc[-1]
    return {"status": "complete", "wall_s": summary["wall_time_s"],
            "final_accuracy": summary["final_accuracy"],
            "balanced_accuracy": float(last["balanced_accuracy"]),
            "few_shot_accuracy": float(last["few_shot_accuracy"]),
            "rounds": summary["rounds_completed"], "sim_time_h": summary["sim_time_s"] / 3600,
            "bytes_up": summary["bytes_up"], "bytes_down": summary["bytes_down"],
            "energy_j": float(last["energy_j"])}


def run_sweep(sweep_file: Path, out: Path | None = None, backend: str = "local",
              workers: int | None = None, address: str | None = None,
              log: TextIO | None = None) -> pd.DataFrame:
    log = log or sys.stderr
    sweep_file = Path(sweep_file)
    out = Path(out) if out is not None else Path("runs") / "sweeps" / sweep_file.stem
    points, name = plan_points(sweep_file, out)
    todo = [p for p in points if not is_complete(p)]
    results = {p.index: {**headline(p.run_dir), "reused": True} for p in points if p not in todo}
    log.write(f"sweep {name}: {len(points)} points, {len(points) - len(todo)} already done, "
              f"{len(todo)} to run on {backend}\n")
    started = time.perf_counter()

    def done(point: Point, result: dict) -> None:
        results[point.index] = result
        accuracy = result.get("final_accuracy")
        status = f"acc {accuracy:.3f}" if accuracy is not None else result["error"]
        log.write(f"[{len(results)}/{len(points)}] {point.name}: {status} "
                  f"({result['wall_s']:.0f} s)\n")
        log.flush()

    if todo:
        runner = _ray if backend == "ray" else _local
        runner(todo, done, workers, address)
    table = pd.concat([parameter_table(points),
                       pd.DataFrame([results[p.index] for p in points])], axis=1)
    table["wall_time_total_s"] = time.perf_counter() - started
    _write_table(table, out / "sweep.parquet")
    pareto_figure(table, out / "pareto.png", list(points[0].values) if points else [])
    return table


def _local(points: list[Point], done: Callable, workers: int | None,
           address: str | None) -> None:
    # "spawn": a fresh interpreter per worker, safe whatever this process has imported.
    context = multiprocessing.get_context("spawn")
    workers = workers or 1
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(run_point, str(p.scenario_file), str(p.run_dir), threads): p
                   for p in points}
        for future in as_completed(futures):
            done(futures[future], future.result())


def _ray(points: list[Point], done: Callable, workers: int | None,
         address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("the ray backend needs Ray: pip install 'orbitfl[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=workers if address is None else None,
                 include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_point)  # one core per point, as Ray schedules it
        pending = {remote.remote(str(p.scenario_file), str(p.run_dir), 1): p for p in points}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()


def parameter_table(points: list[Point]) -> pd.DataFrame:
    """One row per point: its name and swept values. Mappings and lists become one line of
    YAML, and a column mixing kinds of value (say 5 and "auto") becomes text, so that
    every column has one parquet type."""
    table = pd.DataFrame([{"point": p.name, **p.values} for p in points])
    for name in table.columns[1:]:
        table[name] = [_yaml_line(v) if isinstance(v, (dict, list)) else v
                       for v in table[name]]
        if len({type(v) for v in table[name] if v is not None}) > 1:
            table[name] = [v if v is None else str(v) for v in table[name]]
    return table


def _yaml_line(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1_000).strip()


def _write_table(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    table.to_parquet(partial, index=False)
    partial.replace(path)


def pareto_front(bytes_total: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both fewer bytes and higher accuracy."""
    order = np.lexsort((-accuracy, bytes_total))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, dtype=int)


def pareto_figure(table: pd.DataFrame, out: Path, parameters: list[str]) -> Path:
    """Accuracy against bytes for every complete point; the front is labelled with the
    swept values, which say more than point names."""
    from orbitfl.analysis.figures import plt, save_figure

    ok = table[table["status"] == "complete"]
    fig, ax = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    if len(ok):
        total = (ok["bytes_up"] + ok["bytes_down"]).to_numpy(dtype=float) / 1e6
        accuracy = 100 * ok["final_accuracy"].to_numpy(dtype=float)
        ax.scatter(total, accuracy, c="tab:gray", label="points")
        front = pareto_front(total, accuracy)
        ax.plot(total[front], accuracy[front], "o-", c="tab:red", label="Pareto front")
        for i in front:
            label = ", ".join(str(ok[name].iloc[i]) for name in parameters) or ok["point"].iloc[i]
            ax.annotate(label, (total[i], accuracy[i]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("bytes moved, up + down (MB)")
    ax.set_ylabel("final accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out)
