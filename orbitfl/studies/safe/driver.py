"""The SAFE study (docs/safe-study.md) as a driver of ``orbitfl sweep``, with a protocol that
its edges cannot move:

- **Tuning never measures.** Each method's setting is chosen on tuning seeds
  (``Protocol.tuning_seeds``) that no measured run uses, per imbalance factor, by the
  balanced validation accuracy (mean of the last ``selection_rounds`` evaluations, so one
  noisy round decides nothing); the test set is never read.
- **A headline that one round cannot carry.** The headline is the balanced test accuracy
  of the last evaluated round (``headline_rounds`` 1) or, as a study declares before it
  runs, its mean over the last ``headline_rounds`` evaluated rounds: at a large learning
  rate a run's accuracy swings by +-0.1 from round to round, and that noise, not the
  methods, would otherwise set the number of seeds. A segmentation study (``data.task``)
  reads mIoU instead, on both sets (``Score``): its accuracy counts pixels, mostly
  background.
- **Interior choices.** A learning rate (or FedProx's mu) chosen at an end of its grid
  extends the grid by a factor of 3 in that direction, and again, until the choice is
  interior (or ``max_extensions`` is spent, which the record and the report say).
- **Seeds from a power target.** Every method runs ``min_seeds`` seeds (never fewer than
  5); the paired SAFE - FedAvg differences of those seeds (an internal pilot) give the sd
  from which the number of seeds for a simultaneous (Bonferroni over the comparisons with
  FedAvg) interval half-width of ``half_width`` follows. Up to ``max_seeds`` (the budget)
  are run; where that is too few, the minimal detectable effect at 80 % power is recorded.
  A confirmation instead measures the count its written plan fixed (``--seeds N``), from a
  seed no earlier page measured (``--first-seed``).
- **Two networks.** Every method on ideal links (the learning alone) and on the Dove
  scenario's real contact plan and links (``network.mode: links``). Ideal links are always
  measured at the full seed count: the pilot and the headline are read there, and a
  real-link page pairs its runs with them by seed.
- **Settings taken, not tuned** (``--settings-from STUDY``): each method runs at the setting
  another study folder chose, e.g. to measure a study's choices at a longer round budget
  (``--set fl.rounds=200``) without tuning again; its tuning seeds stay unmeasured here.
- **A span for real links** (``--links-duration 13d``): a real-link round takes simulated
  time, so 400 rounds need about 12 days of contact plan; only the links runs get it, and
  the ideal runs stay the same scenarios (and are reused).
- **Ablations at SAFE's setting** (``--variants-at-safe``): each SAFE variant runs at the
  setting chosen for full SAFE, so that a row differs from SAFE by one switch; tuning each
  variant again would mix the part's effect with a change of learning rate (and costs a
  grid of runs a variant).

Every run is an ordinary scenario run; this module only decides which sweeps to run with
which ``--set``. The study folder holds ``tune/if<F>/<method>/<setting>/`` and
``measure/<network>/if<F>/<method>/`` (sweep folders) and ``study.json`` (protocol, methods,
tuning history and choices, the power computation, wall times). Running the same command
again reuses every complete point, so a study spans as many sittings as its budget needs. A
sitting on a machine that lacks the folder (a fresh clone) resumes from the study's shipped
tables instead (``--carry DATA``, ``carry.py``): a point of the same scenario and code found
there is not run again, and the export ships it beside the new runs. The methods measured
at one setting (the pilot's FedAvg and SAFE, then every method on a network) share one
pool of workers (``run_specs``), so a sweep with an odd number of runs left never idles a
core while the next one waits.

    .venv/bin/python -m orbitfl.studies.safe.driver --out runs/safe-study --workers 2
    .venv/bin/python -m orbitfl.studies.safe.export runs/safe-study --out docs/safe-study-data
    .venv/bin/python -m orbitfl.studies.safe.report docs/safe-study-data --out docs/safe-study.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from orbitfl.core.errors import InputError
from orbitfl.core.progress import configure_logging
from orbitfl.rundir.reader import read_table
from orbitfl.scenario.overrides import parse_override
from orbitfl.studies.safe.carry import NO_CARRY, Carry
from orbitfl.studies.safe.command import command_status
from orbitfl.studies.safe.record import load_record

# by name: run as ``python -m``, this module's __name__ is __main__, outside orbitfl's logger
logger = logging.getLogger("orbitfl.studies.safe.driver")
BASE = Path(__file__).resolve().parents[3] / "scenarios" / "study" / "base.yaml"
LINKS = {"ideal": {"network.mode": "ideal"}, "links": {"network.mode": "links"}}
BASELINE, HEADLINE = "fedavg", "safe"
HEADLINE_METRIC = "final_accuracy"   # the balanced test set's top-1 accuracy, last round
LATE_METRIC = "late_accuracy"        # its mean over the last ``headline_rounds`` rounds
SELECTION = "val_balanced_accuracy"  # on the balanced validation set, never the test set


@dataclasses.dataclass(frozen=True)
class Score:
    """What a study scores a model by. Classification: top-1 accuracy on the balanced sets.
    Segmentation: mIoU, since its accuracy counts pixels and the background (95 % of each
    tile at a 5 % object share) would set it (``data.task``)."""

    curve: str       # the rounds column of the test set
    selection: str   # the rounds column of the validation set that tuning reads
    final: str       # the sweep column of the last round
    late: str        # the runs column of the mean over the last ``headline_rounds``
    name: str        # in the page's words: the headline's
    short: str       # in a table's head
    heading: str     # at the start of a heading
    validation: str  # what tuning reads
    target: str      # what a time-to-target's target is a share of
    title: str       # the section of the scores
    few_shot: str    # what ``few_shot_accuracy`` measures, in the page's words


SCORES = {
    "classification": Score(
        curve="accuracy", selection=SELECTION, final=HEADLINE_METRIC, late=LATE_METRIC,
        name="balanced test accuracy", short="accuracy", heading="Accuracy",
        validation="balanced validation accuracy", target="balanced accuracy",
        title="Accuracy", few_shot="few-shot accuracy"),
    "segmentation": Score(
        curve="miou", selection="val_miou", final="miou", late="late_miou",
        name="test mIoU", short="mIoU", heading="mIoU", validation="validation mIoU",
        target="test mIoU", title="mIoU, pixel accuracy and few-shot pixel recall",
        few_shot="few-shot pixel recall")}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The study's rules, recorded in ``study.json`` with its results."""

    factors: tuple[float, ...] = (100.0,)          # IF 100 is the question
    tuning_seeds: tuple[int, ...] = (1001,)        # never among the measured seeds
    first_seed: int = 1
    min_seeds: int = 5
    max_seeds: int = 5                             # the budget's cap
    half_width: float = 0.05                       # of the headline simultaneous interval
    level: float = 0.95
    power: float = 0.8
    lr_grid: tuple[float, ...] = (0.01, 0.03, 0.1)
    lr_step: float = 3.0
    max_extensions: int = 3
    selection_rounds: int = 3
    headline_rounds: int = 1                       # 1: the last round's accuracy
    networks: tuple[str, ...] = ("ideal", "links")
    variants_at_headline: bool = False             # SAFE's variants take SAFE's setting
    links_duration: str | None = None              # real-link runs' span; None: the base's
    fixed_seeds: int | None = None                 # a written plan's count; None: the pilot's
    task: str = "classification"                   # the base's data.task: what is scored

    def network_set(self, network: str) -> dict[str, Any]:
        """The ``--set`` changes that make a run one of ``network``'s: real-link rounds take
        simulated time (about 40 min each on the Dove plan), so a long budget needs a longer
        span there, while ideal runs keep the base's and stay reusable."""
        span = {"duration": self.links_duration} if network == "links" and \
            self.links_duration else {}
        return {**LINKS[network], **span}

    def __post_init__(self) -> None:
        if self.task not in SCORES:
            raise InputError(f"protocol task {self.task!r}: expected one of "
                             f"{', '.join(SCORES)}")

    @property
    def score(self) -> Score:
        return SCORES[self.task]

    @property
    def headline_metric(self) -> str:
        """The runs' column that the headline reads."""
        return self.score.final if self.headline_rounds == 1 else self.score.late

    def measured_seeds(self, n: int) -> list[int]:
        seeds = list(range(self.first_seed, self.first_seed + n))
        overlap = set(seeds) & set(self.tuning_seeds)
        if overlap:
            raise InputError(f"tuning seed {min(overlap)} is also a measured seed")
        return seeds


SAFE = {"fl.strategy": "safe"}
# name -> label, --set overrides of scenarios/study/base.yaml, extra tuning grid (tuned at
# the chosen learning rate) and the networks it is measured on; in the order they run (the
# question first: FedAvg, SAFE, the personalised baseline, then the rest).
METHODS: dict[str, dict] = {
    "fedavg": {"label": "FedAvg", "set": {"fl.strategy": "fedavg"}},
    "safe": {"label": "SAFE", "set": SAFE},
    "fedavg-ft": {"label": "FedAvg + local fine-tuning",
                  "set": {"fl.strategy": "fedavg", "fl.schedule.fine_tune": True},
                  "same_as": "fedavg"},  # the same training: FedAvg's tuning is its tuning
    "central": {"label": "Centralised (ceiling on optimisation steps)",
                "set": {"constellation.select.limit": 1, "data.partition": "iid",
                        "fl.schedule.min_clients": 1}},
    "fedprox": {"label": "FedProx", "set": {"fl.strategy": "fedprox"},
                "extra": {"fl.fedprox.mu": [0.01, 0.1, 1.0]}},
    "fedla": {"label": "FedLA (logit adjustment)", "set": {"fl.strategy": "fedla"}},
    "safe-cro": {"label": "SAFE - CRO", "set": {**SAFE, "fl.safe.cro": False}},
    "safe-fau": {"label": "SAFE - FAU", "set": {**SAFE, "fl.safe.fau": False}},
    "safe-ace": {"label": "SAFE - ACE", "set": {**SAFE, "fl.safe.ace": False}},
    "safe-fixed-mu": {"label": "SAFE, fixed mu", "set": {**SAFE, "fl.safe.fau_cka": False}},
    "safe-dmr-off": {"label": "SAFE, DMR off", "set": {**SAFE, "fl.safe.dmr": False}},
}
TUNED = ("fl.lr", "fl.fedprox.mu")
# SAFE with one part changed: an ablation row each, read against full SAFE
VARIANTS = ("safe-cro", "safe-fau", "safe-ace", "safe-fixed-mu", "safe-dmr-off")


def links_text(network: str) -> str:
    """A network in words: "ideal links" or "real links" (not "links links")."""
    return "real links" if network == "links" else f"{network} links"


def setting_name(setting: dict[str, Any]) -> str:
    """A tuning setting as a folder name: ``lr-0.1``, ``lr-0.1_mu-0.01`` or
    ``lr-grid-0.01-0.03-0.1``."""
    return "_".join(f"{k.split('.')[-1]}-{v if isinstance(v, str) else f'{v:g}'}"
                    for k, v in setting.items())


def factor_name(factor: float) -> str:
    return f"if{factor:g}"


def point_hash(folder: Path, point: str) -> str:
    """The content hash of a sweep point's scenario (as its sweep wrote it): what a carried
    run is matched by."""
    from orbitfl.sweeps.runner import point_scenario

    return point_scenario(folder / "points" / f"{point}.json").content_hash()


def carried_value(table: dict[str, Any], folder: Path, point: str) -> Any:
    """``table``'s entry (a carried score, curve or diagnostics) for a point its sweep lists
    complete without a run folder; a one-line ``InputError`` when it has none."""
    scenario = point_hash(folder, point)
    if scenario not in table:
        raise InputError(f"{folder / 'runs' / point}: listed complete, but neither its run "
                         "folder nor a carried run of its scenario is here; rerun the driver "
                         "(with --carry DATA where the study's runs are shipped)")
    return table[scenario]


# -- choosing ------------------------------------------------------------------------------
def last_mean(rounds: pd.DataFrame, column: str, last: int) -> float:
    """Mean of ``column`` over a run's last ``last`` evaluated (finite) rounds."""
    values = pd.to_numeric(rounds.get(column, pd.Series(dtype=float)), errors="coerce")
    values = values[np.isfinite(values)]
    return float(values.iloc[-last:].mean()) if len(values) else math.nan


def selection_score(rounds: pd.DataFrame, last: int, column: str = SELECTION) -> float:
    """Mean validation score (balanced accuracy, or mIoU) over a run's last ``last``
    evaluated rounds."""
    return last_mean(rounds, column, last)


def late_accuracy(rounds: pd.DataFrame, last: int, column: str = "accuracy") -> float:
    """Mean test score (balanced accuracy, or mIoU) over a run's last ``last`` evaluated
    rounds."""
    return last_mean(rounds, column, last)


def best(scores: dict[float, float]) -> float:
    """The value with the highest score (NaN scores never win; the smaller value wins a
    tie); an ``InputError`` when none has a score."""
    finite = {v: s for v, s in scores.items() if np.isfinite(s)}
    if not finite:
        raise InputError("no tuning point completed with a validation accuracy (does the "
                         "data section hold a validation set?)")
    top = max(finite.values())
    return min(v for v, s in finite.items() if s == top)


def extension(grid: Sequence[float], chosen: float, step: float) -> float | None:
    """The next value to try when ``chosen`` is an end of ``grid`` (x step above the top,
    / step below the bottom); None when it is interior."""
    if chosen >= max(grid):
        return max(grid) * step
    if chosen <= min(grid):
        return min(grid) / step
    return None


def seeds_needed(sd: float, protocol: Protocol, comparisons: int) -> int:
    """The fewest seeds n >= ``min_seeds`` whose simultaneous (Bonferroni over
    ``comparisons``) t-interval of a paired mean difference with this ``sd`` has a
    half-width <= ``half_width``; capped at 1000 (returned as such)."""
    alpha = (1 - protocol.level) / max(comparisons, 1)
    from scipy import stats

    for n in range(protocol.min_seeds, 1001):
        if stats.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n) <= protocol.half_width:
            return n
    return 1000


def minimal_detectable_effect(sd: float, n: int, protocol: Protocol,
                              comparisons: int) -> float:
    """The smallest true paired difference that a two-sided simultaneous test at this n
    detects with ``power``: (t_{1 - alpha/2m} + t_{power}) sd / sqrt(n), df = n - 1."""
    from scipy import stats

    alpha = (1 - protocol.level) / max(comparisons, 1)
    t = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(protocol.power, n - 1)
    return float(t * sd / math.sqrt(n))


def pilot_power(differences: pd.Series, protocol: Protocol, comparisons: int) -> dict:
    """The power computation from the pilot's paired headline differences: their sd, the
    seeds the half-width target needs over ``comparisons`` simultaneous intervals, the
    seeds the budget runs, and the minimal detectable effect at that number."""
    d = pd.to_numeric(differences, errors="coerce").dropna()
    sd = float(d.std(ddof=1)) if len(d) >= 2 else math.nan
    needed = seeds_needed(sd, protocol, comparisons) if np.isfinite(sd) else protocol.min_seeds
    run = max(protocol.min_seeds, min(needed, protocol.max_seeds))
    return {"pilot_seeds": int(len(d)), "pilot_sd": sd, "comparisons": comparisons,
            "half_width": protocol.half_width, "seeds_needed": needed, "seeds_run": run,
            "mde": minimal_detectable_effect(sd, run, protocol, comparisons)
            if np.isfinite(sd) else math.nan}


# -- running -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Sweep:
    """One sweep of a study: seeded runs of the base with ``setting`` into ``folder``, one
    group per value of ``swept`` (the imbalance factor alone when None)."""

    folder: Path
    setting: dict[str, Any]
    seeds: list[int]
    swept: dict[str, list] | None = None


class Study:
    """One study folder: runs sweeps into it and keeps ``study.json`` up to date."""

    def __init__(self, out: Path, protocol: Protocol, backend: str = "local",
                 workers: int | None = 1, overrides: Sequence[tuple[str, Any]] = (),
                 source: Source | None = None, carry: Carry = NO_CARRY):
        self.out, self.protocol, self.source, self.carry = Path(out), protocol, source, carry
        self.backend, self.workers, self.overrides = backend, workers, list(overrides)
        self.record = load_record(self.out)
        self.record.pop("settings_from", None)   # this invocation's source, or none
        if source is not None:
            self.record["settings_from"] = source.summary()
        self.record.pop("carried_from", None)    # likewise this invocation's
        if carry.path is not None:
            self.record["carried_from"] = carry.summary()
        self.record["protocol"] = dataclasses.asdict(protocol)
        self.record["overrides"] = [[k, v] for k, v in overrides]
        self.record["methods"] = {m: {"label": s["label"], "set": s["set"]}
                                  for m, s in METHODS.items()}
        self._chosen: dict[tuple[str, str], dict[str, Any]] = {}
        from orbitfl.scenario import load_scenario

        scenario = load_scenario(BASE, self.overrides).model_dump(mode="json")
        self.record["data"] = scenario["data"]

    def sweep(self, folder: Path, setting: dict[str, Any], seeds: list[int],
              swept: dict[str, list] | None = None) -> pd.DataFrame:
        """Seeded runs of the base with ``setting``, one group per value of ``swept``
        (resumed if begun)."""
        return self.sweeps([Sweep(folder, setting, seeds, swept)])[0]

    def sweeps(self, sweeps: Sequence[Sweep]) -> list[pd.DataFrame]:
        """Several sweeps on one pool of workers (no core idles while one of them has a run
        left), each into its own folder."""
        from orbitfl.scenario import load_scenario
        from orbitfl.sweeps.runner import run_specs, sweep_spec

        specs = []
        for sweep in sweeps:
            base = load_scenario(BASE, self.overrides + list(sweep.setting.items()))
            document = {"parameters": sweep.swept or {"data.imbalance_ratio": [
                sweep.setting.get("data.imbalance_ratio", base.data.imbalance_ratio)]},
                "seeds": sweep.seeds}
            specs.append((sweep_spec(base, document, str(sweep.folder), BASE.parent, "run"),
                          sweep.folder))
        started = time.perf_counter()
        tables = run_specs(specs, self.backend, self.workers, carried=self.carry.rows,
                           blind=True)
        walls = self.record.setdefault("run_wall_s", {})
        for sweep, table in zip(sweeps, tables):
            walls[str(sweep.folder.relative_to(self.out))] = float(table["wall_s"].sum())
        self.record["elapsed_s"] = self.record.get("elapsed_s", 0.0) + \
            time.perf_counter() - started
        self.save()
        return tables

    def scores(self, folder: Path, table: pd.DataFrame) -> float:
        """A tuning group's selection score: the mean over its tuning seeds."""
        values = []
        for point in table.loc[table["status"] == "complete", "point"]:
            run_dir = folder / "runs" / str(point)
            values.append(carried_value(self.carry.scores, folder, str(point))
                          if not run_dir.is_dir() else selection_score(
                              read_table(run_dir, "rounds.parquet", ("round",)),
                              self.protocol.selection_rounds, self.protocol.score.selection))
        return float(np.mean(values)) if values else math.nan

    def rounds(self, folder: Path, point: str) -> pd.DataFrame:
        """A measured point's evaluated rounds: its run folder's, or its carried curve."""
        run_dir = folder / "runs" / point
        if run_dir.is_dir():
            return read_table(run_dir, "rounds.parquet", ("round",))
        return carried_value(self.carry.curves, folder, point)

    def tune(self, method: str, factor: float) -> dict[str, Any]:
        """The method's setting at this imbalance factor: the learning rate, then any extra
        key at that rate, each grid extended until its choice is interior; the history is
        recorded."""
        spec = METHODS[method]
        key = factor_name(factor)
        if (method, key) in self._chosen:
            return self._chosen[method, key]
        tuning = self.record.setdefault("tuning", {}).setdefault(key, {})
        same_as = spec.get("same_as") or (
            HEADLINE if self.protocol.variants_at_headline and method in VARIANTS else None)
        if same_as is not None:
            tuning[method] = {"same_as": same_as}
            return self.tune(same_as, factor)
        if self.source is not None:
            tuning[method] = self.source.entry(method, key)
            self._chosen[method, key] = dict(tuning[method]["chosen"])
            self.save()
            return self._chosen[method, key]
        base = {**spec["set"], "data.imbalance_ratio": factor}
        history: list[dict] = []
        chosen: dict[str, Any] = {}
        interior: dict[str, bool] = {}
        extensions = 0
        for name, grid in {"fl.lr": self.protocol.lr_grid, **spec.get("extra", {})}.items():
            value, inside, more = self._tune_key(method, key, base, name, grid, dict(chosen),
                                                 history)
            chosen[name], interior[name] = value, inside
            extensions += more
        tuning[method] = {"history": history, "chosen": chosen, "interior": interior,
                          "extensions": extensions}
        logger.info(f"tuned {method} at {key}: {setting_name(chosen)}" + (
            "" if all(interior.values()) else " (at an end of its grid after the extensions "
                                              "allowed)"))
        self._chosen[method, key] = chosen
        self.save()
        return chosen

    def _tune_key(self, method: str, key: str, base: dict, swept: str, grid: Sequence[float],
                  fixed: dict, history: list) -> tuple[float, bool, int]:
        """One tuned key at the ``fixed`` values of those tuned before it: its grid, then
        a value x ``lr_step`` beyond an end choice, until the choice is interior or
        ``max_extensions`` are spent. Returns the choice, whether it is interior and the
        number of extensions."""
        values = sorted(grid)
        tried = self._scored_before(base, swept, values, fixed, history)
        rest = [v for v in values if v not in tried]
        if rest:
            tried.update(self._scores(method, key, base, swept, rest, fixed, history))
        extensions = 0
        while True:
            choice = best(tried)
            more = extension(values, choice, self.protocol.lr_step)
            if more is None or extensions >= self.protocol.max_extensions:
                return choice, more is None, extensions
            more = float(f"{more:.6g}")
            values = sorted([*values, more])
            tried.update(self._scores(method, key, base, swept, [more], fixed, history))
            extensions += 1

    def _scored_before(self, base: dict, swept: str, values: Sequence[float], fixed: dict,
                       history: list) -> dict[float, float]:
        """The value of ``values`` that an earlier grid of this method already ran: the
        base's own value of ``swept`` at the ``fixed`` setting (FedProx's mu grid at the
        chosen rate holds the rate grid's point at the default mu, the same runs under
        other point names). Its score is taken and its history entry repeated (marked
        ``reused``) instead of running its tuning seeds again."""
        from orbitfl.scenario import load_scenario

        earlier = [entry for entry in history if swept not in entry and fixed == {
            k: v for k, v in entry.items() if k not in ("score", "runs", "reused")}]
        if not earlier:             # the first grid: nothing ran before it
            return {}
        default: Any = load_scenario(BASE, self.overrides + list(base.items()))
        for part in swept.split("."):
            default = getattr(default, part)
        same = [v for v in values if math.isclose(v, float(default), rel_tol=1e-9)]
        if not same:
            return {}
        entry = earlier[0]
        history.append({**fixed, swept: same[0], "score": entry["score"],
                        "runs": entry.get("runs"), "reused": True})
        return {same[0]: float(entry["score"])}

    def _scores(self, method: str, key: str, base: dict, swept: str, values: list,
                fixed: dict, history: list) -> dict[float, float]:
        """One tuning sweep over ``swept`` (its points run side by side on the workers),
        each value scored by the mean over the tuning seeds; appended to ``history``."""
        setting = {**fixed, swept: values[0]} if len(values) == 1 else {
            **fixed, swept: "grid-" + "-".join(f"{v:g}" for v in values)}
        folder = self.out / "tune" / key / method / setting_name(setting)
        logger.info(f"tune {method} at {key}: {setting_name(setting)} on tuning seeds "
                    f"{', '.join(map(str, self.protocol.tuning_seeds))}")
        table = self.sweep(folder, {**base, **fixed}, list(self.protocol.tuning_seeds),
                           {swept: list(values)})
        scores = {}
        for value in values:
            rows = table[np.isclose(table[swept].astype(float), value)]
            scores[value] = self.scores(folder, rows)
            history.append({**fixed, swept: value, "score": scores[value], "runs": int(
                (rows["status"] == "complete").sum())})
        return scores

    def measure(self, methods: Sequence[str], factor: float, network: str,
                seeds: int) -> list[pd.DataFrame]:
        """The methods' measured runs at their tuned settings, on one pool of workers."""
        measured = self.protocol.measured_seeds(seeds)
        sweeps = []
        for method in methods:
            setting = self.tune(method, factor)
            logger.info(f"measure {method} at {factor_name(factor)} on {links_text(network)}: "
                        f"seeds {measured[0]}-{measured[-1]}")
            sweeps.append(Sweep(
                self.out / "measure" / network / factor_name(factor) / method,
                {**METHODS[method]["set"], "data.imbalance_ratio": factor,
                 **self.protocol.network_set(network), **setting}, measured))
        return self.sweeps(sweeps)

    def headline(self, methods: Sequence[str], factor: float,
                 seeds: int) -> list[pd.DataFrame]:
        """The methods' measured runs on ideal links with the headline column (the late
        mean read from each complete run's rounds where the protocol asks for it)."""
        tables = self.measure(methods, factor, "ideal", seeds)
        last, score = self.protocol.headline_rounds, self.protocol.score
        if last == 1:
            return tables
        return [table.assign(**{score.late: [
            late_accuracy(self.rounds(self.out / "measure" / "ideal" / factor_name(factor) /
                                      method, str(point)), last, score.curve)
            if status == "complete" else math.nan
            for point, status in zip(table["point"], table["status"])]})
            for method, table in zip(methods, tables)]

    def power(self, factor: float, methods: Sequence[str]) -> int:
        """Seeds for every method from the internal pilot (the first ``min_seeds`` paired
        SAFE - FedAvg differences on ideal links), with one comparison with FedAvg per
        other measured method; recorded with the minimal detectable effect where the
        budget's cap binds."""
        p = self.protocol
        tables = self.headline((BASELINE, HEADLINE), factor, p.min_seeds)
        joined = tables[0].merge(tables[1], on="seed", suffixes=("_base", ""))
        d = joined[p.headline_metric] - joined[f"{p.headline_metric}_base"]
        power = pilot_power(d, p, max(len(set(methods) - {BASELINE}), 1))
        self.record.setdefault("power", {})[factor_name(factor)] = power
        self.save()
        logger.info(f"seeds at {factor_name(factor)}: {power['seeds_run']} (the pilot asks for "
                    f"{power['seeds_needed']}, the budget allows {p.max_seeds})")
        return int(power["seeds_run"])

    def run(self, methods: Sequence[str], networks: Sequence[str]) -> dict:
        for factor in self.protocol.factors:
            for method in methods:          # every tuning first: it decides the rest
                self.tune(method, factor)
            seeds = self.protocol.fixed_seeds or self.power(factor, methods)
            # ideal links carry the pilot and the headline, and every page reads real links
            # beside them by seed: measured at the full count always, so that a links-only
            # call never leaves the ideal sweep at the pilot's seeds
            for network in dict.fromkeys(("ideal", *networks)):
                self.measure(methods, factor, network, seeds)
        return self.record

    def save(self) -> None:
        from orbitfl.core.atomic import atomic_write_text

        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "study.json",
                          json.dumps(self.record, indent=1, sort_keys=True, default=_plain))


@dataclasses.dataclass(frozen=True)
class Source:
    """Another study folder whose tuned settings a study runs at, untuned (``--settings-from``):
    its path as given, and its record, read back and checked before any run."""

    path: Path
    record: dict

    @classmethod
    def read(cls, path: Path) -> Source:
        record = load_record(path)
        if not record.get("tuning"):
            raise InputError(f"--settings-from {path}: no tuned settings there (no study.json "
                             "with a tuning section)")
        return cls(Path(path), record)

    @property
    def tuning_seeds(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.record.get("protocol", {}).get("tuning_seeds", ()))

    def summary(self) -> dict:
        """What the record keeps of its source: where, and how its settings were tuned."""
        return {"study": str(self.path), "overrides": self.record.get("overrides", []),
                "tuning_seeds": list(self.tuning_seeds)}

    def entry(self, method: str, key: str) -> dict:
        """The source's choice for ``method`` at factor ``key``, as this study records it;
        a one-line ``InputError`` when the source never tuned it."""
        entry = self.record["tuning"].get(key, {}).get(method)
        if not isinstance(entry, dict) or not isinstance(entry.get("chosen"), dict) or \
                not isinstance(entry.get("interior"), dict):   # no silent "interior"
            raise InputError(f"--settings-from {self.path}: no tuned setting for {method} at "
                             f"{key}")
        return {"taken_from": str(self.path), "chosen": entry["chosen"],
                "interior": entry["interior"], "history": [], "extensions": 0}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _start_ray(backend: str, workers: int | None) -> bool:
    """One Ray instance for every sweep of the study, so its workers are reused."""
    if backend != "ray":
        return False
    import os

    import ray
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_worker_niceness", "0")  # the driver's own priority
    ray.init(num_cpus=workers or 1, include_dashboard=False, log_to_driver=False)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="study folder")
    parser.add_argument("--only", default="", help="comma-separated method names (default: "
                        "all, in the study's order)")
    parser.add_argument("--networks", default="ideal,links",
                        help="comma-separated: ideal, links (default: both); ideal "
                        "links are measured in any case, at the same seeds: they carry "
                        "the pilot and the headline")
    parser.add_argument("--factors", default="100", help="imbalance factors (default: 100)")
    parser.add_argument("--max-seeds", type=int, default=Protocol.max_seeds,
                        help="the budget's cap on measured seeds (at least 5)")
    parser.add_argument("--tuning-seeds", default=None,
                        help="comma-separated seeds that tune and are never measured "
                        f"(default: {','.join(map(str, Protocol.tuning_seeds))}); a "
                        "setting's score is their mean")
    parser.add_argument("--lr-grid", default=None, help="comma-separated learning rates "
                        "tuning starts from (default: "
                        f"{','.join(f'{v:g}' for v in Protocol.lr_grid)}); extended until "
                        "the choice is interior")
    parser.add_argument("--selection-rounds", type=int, default=Protocol.selection_rounds,
                        help="tuning scores the mean validation accuracy of this many last "
                        "rounds")
    parser.add_argument("--headline-rounds", type=int, default=Protocol.headline_rounds,
                        help="the headline is the mean test accuracy of this many last "
                        "rounds (default 1: the last round's)")
    parser.add_argument("--settings-from", type=Path, default=None, metavar="STUDY",
                        help="run each method at the setting this study folder chose, "
                        "without tuning (e.g. at another --set fl.rounds)")
    parser.add_argument("--carry", type=Path, default=None, metavar="DATA",
                        help="the study's shipped tables (its export) from an earlier sitting "
                        "whose run folders this machine lacks: a run of the same scenario "
                        "and code found there is not run again")
    parser.add_argument("--variants-at-safe", action="store_true",
                        help="run SAFE's variants (a part left out, mu fixed, DMR off) at "
                        "SAFE's chosen setting instead of tuning each: the ablation then "
                        "changes one switch of SAFE as tuned")
    parser.add_argument("--first-seed", type=int, default=Protocol.first_seed,
                        metavar="N", help="the first measured seed (default: 1); e.g. to "
                        "confirm a finding on seeds no earlier page measured")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="measure exactly N seeds from --first-seed, a count a plan "
                        "fixed before the runs by its own power computation (no pilot, so "
                        "FedAvg need not run)")
    parser.add_argument("--links-duration", default=None, metavar="SPAN",
                        help="simulated span of the real-link runs only, e.g. 13d (default: "
                        "the base scenario's): enough for their rounds' contacts")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="PATH=VALUE", help="change the base scenario of every sweep")
    args = parser.parse_args(argv)
    configure_logging()   # hours of sweeps: each phase and run says where it stands
    return command_status(lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    """The study as the command line asks for it."""
    methods = [m for m in args.only.split(",") if m] or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"--only: unknown method {unknown[0]!r}; known: "
                         f"{', '.join(METHODS)}")
    networks = [n for n in args.networks.split(",") if n]
    if any(n not in LINKS for n in networks):
        raise InputError(f"--networks: expected ideal and/or links, got {args.networks}")
    try:
        factors = tuple(float(f) for f in args.factors.split(",") if f)
    except ValueError:
        raise InputError(f"--factors: expected numbers, got {args.factors}") from None
    source = Source.read(args.settings_from) if args.settings_from is not None else None
    if source is not None and args.tuning_seeds is not None:
        raise InputError(f"--tuning-seeds: the settings come from {args.settings_from}, "
                         "whose tuning seeds these are; give one or the other")
    tuning_seeds = source.tuning_seeds if source is not None else \
        _tuning_seeds(args.tuning_seeds)
    if args.max_seeds < Protocol.min_seeds:
        raise InputError(f"--max-seeds: at least {Protocol.min_seeds}, got "
                         f"{args.max_seeds}")
    for flag, value, least in (("--selection-rounds", args.selection_rounds, 1),
                               ("--headline-rounds", args.headline_rounds, 1),
                               ("--first-seed", args.first_seed, 0),
                               ("--seeds", args.seeds, Protocol.min_seeds)):
        if value is not None and value < least:
            raise InputError(f"{flag}: at least {least}, got {value}")
    overrides = [parse_override(s) for s in args.overrides]
    protocol = Protocol(factors=factors, max_seeds=args.max_seeds, networks=tuple(networks),
                        tuning_seeds=tuning_seeds, lr_grid=_lr_grid(args.lr_grid),
                        selection_rounds=args.selection_rounds,
                        headline_rounds=args.headline_rounds,
                        variants_at_headline=args.variants_at_safe,
                        links_duration=args.links_duration, first_seed=args.first_seed,
                        fixed_seeds=args.seeds, task=_task(overrides))
    protocol.measured_seeds(args.seeds or protocol.max_seeds)  # no tuning seed among them
    if args.links_duration is not None:          # a bad span fails now, not after tuning
        from orbitfl.core.options import parse_duration

        try:
            parse_duration(args.links_duration)
        except ValueError as error:
            raise InputError(f"--links-duration: {error}") from None
    carry = Carry.read(args.carry) if args.carry is not None else NO_CARRY
    carry.check_scores(protocol.selection_rounds, protocol.task)
    ray_started = _start_ray(args.backend, args.workers)
    try:
        Study(args.out, protocol, args.backend, args.workers, overrides, source,
              carry).run(methods, networks)
    finally:
        if ray_started:
            import ray
            ray.shutdown()


def _task(overrides: list[tuple[str, Any]]) -> str:
    """The study's ``data.task`` (the base's with the ``--set`` changes; a bad change is
    one line, before any run): classification, or segmentation (scored by mIoU, with
    ``--set model.name=seg-unet``)."""
    from orbitfl.scenario import load_scenario

    data = load_scenario(BASE, overrides).data
    return "classification" if data is None else data.task


def _numbers(text: str, flag: str, kind: type, expected: str) -> tuple:
    """A comma-separated option as distinct ``kind`` values (one-line errors naming it)."""
    try:
        values = tuple(kind(v) for v in text.split(",") if v)
    except ValueError:
        raise InputError(f"{flag}: expected {expected}, got {text}") from None
    if not values or len(set(values)) < len(values):
        raise InputError(f"{flag}: expected distinct values, got {text}")
    return values


def _lr_grid(text: str | None) -> tuple[float, ...]:
    """``--lr-grid`` as distinct positive finite numbers, sorted (the protocol's default
    when absent)."""
    if text is None:
        return Protocol.lr_grid
    grid = _numbers(text, "--lr-grid", float, "numbers")
    if not all(math.isfinite(v) and v > 0 for v in grid):
        raise InputError(f"--lr-grid: expected positive finite numbers, got {text}")
    return tuple(sorted(grid))


def _tuning_seeds(text: str | None) -> tuple[int, ...]:
    """``--tuning-seeds`` as distinct whole numbers (the protocol's default when absent)."""
    if text is None:
        return Protocol.tuning_seeds
    return _numbers(text, "--tuning-seeds", int, "whole numbers")


if __name__ == "__main__":
    sys.exit(main())
