"""``docs/safe-study.md`` from the study's compact tables (``docs/safe-study-data/``, written
by ``python -m orbitfl.studies.safe.export``): nothing here trains or evaluates, so anyone can
regenerate the page, and check any number of it, from the shipped files alone.

The general sweep report does the statistics and figures: each network's measured runs are
read as one sweep whose groups are the methods (``analysis.sweep_data.Sweep``), so
``analysis.comparisons.summary`` gives the means, the paired differences with Holm-adjusted
p-values and simultaneous (Bonferroni) intervals and the Kaplan-Meier times to target with
censoring, ``analysis.sweep_markdown`` its tables and ``analysis.sweep_figures`` the
accuracy bands against bytes and simulated time. Only what is SAFE-specific (the families
of comparisons, accuracy at equal bytes, the tuning, the power computation, the verdict)
lives here.

    .venv/bin/python -m orbitfl.studies.safe.report docs/safe-study-data --out docs/safe-study.md \
        --notes docs/safe-study-notes.md
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orbitfl.analysis.comparisons import METRICS as METRIC_NAMES
from orbitfl.analysis.comparisons import summary
from orbitfl.analysis.curves import curve, on_grid
from orbitfl.analysis.run_model import Run
from orbitfl.analysis.stats import (
    KaplanMeier,
    MeanInterval,
    kaplan_meier,
    mean_interval,
    paired_differences,
)
from orbitfl.analysis.sweep_data import Sweep, sweep_from_table
from orbitfl.analysis.sweep_markdown import differences_table, groups_table
from orbitfl.core.atomic import atomic_write_text
from orbitfl.core.errors import InputError, read_user_file
from orbitfl.rundir.reader import RunDirectoryError, read_table
from orbitfl.studies.safe.bytes import markdown as bytes_markdown
from orbitfl.studies.safe.bytes import table as bytes_table
from orbitfl.studies.safe.command import command_status
from orbitfl.studies.safe.driver import (
    BASELINE,
    HEADLINE,
    METHODS,
    VARIANTS,
    Protocol,
    factor_name,
    late_accuracy,
    links_text,
    minimal_detectable_effect,
    pilot_power,
)
from orbitfl.studies.safe.export import KEYS, seed_mismatch, span
from orbitfl.studies.safe.record import load_record

FT = "fedavg-ft"
CEILING = "central"
NETWORKS = {"ideal": "ideal links", "links": "real links (Dove contact plan, S-band uplink, "
                                               "X-band downlink)"}
ACCURACY = ("final_accuracy", "few_shot_accuracy", "global_own_mix_accuracy")
TABLES = ("runs", "curves", "tuning", "diagnostics")
# the columns every page reads from each shipped table (when the table has rows)
REQUIRED = {"runs": (*KEYS, "status", "wall_s", "final_accuracy", "few_shot_accuracy"),
            "curves": (*KEYS, "round", "accuracy", "bytes_up", "bytes_down"),
            "tuning": ("factor", "method", "lr", "seed", "score"),
            "diagnostics": (*KEYS, "round", "quantity", "value")}
PARTS = {"ace_foreground": "ACE: mean foreground probability of the mask (SES, evaluation)",
         "ace_foreground_hard": "ACE: share of positions the mask calls foreground",
         "ace_foreground_objects": "ACE: mean foreground probability on the objects' cells",
         "ace_foreground_background": "ACE: mean foreground probability on object-free cells",
         "ace_object_auc": "ACE: chance an object cell scores above a background cell (0.5: "
                           "blind)",
         "fau_divergence": "FAU: CKA divergence of a client's model (mean over clients)",
         "fau_mu": "FAU: mu, the share of its own model a client keeps (mean over clients)",
         "cro_weight": "CRO: class weight (mean over classes; the spread is below)"}


# -- reading -------------------------------------------------------------------------------
def load_data(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                     pd.DataFrame]:
    """study.json, runs, curves, tuning and diagnostics tables of a shipped data folder."""
    record = load_record(folder)
    files = {n: folder / f"{n}.parquet" for n in TABLES}
    if not record or not all(f.is_file() for f in files.values()):
        raise InputError(f"{folder}: expected study.json and "
                         f"{', '.join(f'{n}.parquet' for n in TABLES)} "
                         "(python -m orbitfl.studies.safe.export)")
    try:    # each table read and its columns checked: a damaged file is one line
        tables = [read_table(folder, f"{n}.parquet", REQUIRED[n]) for n in TABLES]
    except RunDirectoryError as err:
        raise InputError(f"{err}; export the study again") from None
    if tables[0].empty:
        raise InputError(f"{folder}: runs.parquet holds no run; export the study again")
    return (record, *tables)


def with_headline(record: dict, runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The runs with the headline column the protocol declares: where it is the mean test
    accuracy over each run's last ``headline_rounds`` evaluated rounds, that mean from the
    shipped curves (a run without a curve gets none)."""
    protocol = protocol_of(record)
    last, score = protocol.headline_rounds, protocol.score
    if last == 1:
        return runs
    keys = ["network", "factor", "method", "seed"]
    late = curves.sort_values([*keys, "round"]).groupby(keys)[[score.curve]].apply(
        late_accuracy, last, score.curve)
    return runs.drop(columns=[score.late], errors="ignore").merge(
        late.rename(score.late).reset_index(), on=keys, how="left")


def headline_text(record: dict) -> str:
    """What the headline measures, in words."""
    protocol = protocol_of(record)
    last = protocol.headline_rounds
    return protocol.score.name + ("" if last == 1 else f", mean of the last {last} rounds")


def label(record: dict, method: str) -> str:
    return record.get("methods", {}).get(method, {}).get("label", method)


class MethodSweep(Sweep):
    """A sweep whose groups are the study's methods, named by their labels alone, and whose
    runs' curves are read in the study's score (``score``: accuracy, or mIoU)."""

    score = "accuracy"

    def label(self, group: str) -> str:
        return str(self.values[group].get("method", group))


def as_sweep(record: dict, runs: pd.DataFrame, curves: pd.DataFrame, folder: Path,
             methods: list[str] | None = None) -> MethodSweep:
    """One network's and factor's runs as a sweep: a group per method (in the study's
    order), a replicate per seed, and each run's curve as its run directory's rounds."""
    order = [m for m in METHODS if m in set(runs["method"])]
    order = [m for m in order if methods is None or m in methods]
    rows = pd.concat([runs[runs["method"] == m] for m in order], ignore_index=True)
    table = pd.DataFrame({"group": [label(record, m) for m in rows["method"]],
                          "replicate": rows["seed"].astype(int),
                          "seed": rows["seed"].astype(int),
                          "point": [f"{m}-s{s}" for m, s in zip(rows["method"], rows["seed"])],
                          "method": [label(record, m) for m in rows["method"]],
                          "status": rows["status"]})
    rest = rows.drop(columns=["network", "factor", "method", "seed", "status"])
    read = sweep_from_table(folder, pd.concat([table, rest], axis=1))
    sweep = MethodSweep(read.path, read.table, read.parameters, read.groups, read.values)
    sweep.score = protocol_of(record).score.curve
    for (method, seed), rounds in curves.groupby(["method", "seed"]):
        if method in order:
            sweep._runs[f"{method}-s{seed}"] = Run(
                folder, {}, name=f"{method}-s{seed}", tables={
                    "rounds": rounds.reset_index(drop=True), "transfers": pd.DataFrame(),
                    "contacts": pd.DataFrame()})
    return sweep


# -- numbers -------------------------------------------------------------------------------
def family(sweep: Sweep, baseline: str, threshold: float | None = None) -> pd.DataFrame:
    """``comparisons.summary`` against the group ``baseline`` (a method's label)."""
    return summary(sweep, {"method": baseline}, threshold)


def difference(numbers: pd.DataFrame, group: str, metric: str) -> pd.Series | None:
    rows = numbers[(numbers["group"] == group) & (numbers["metric"] == metric)]
    return rows.iloc[0] if len(rows) and pd.notna(rows.iloc[0]["pairs"]) else None


def reading(d: pd.Series | None, what: str) -> str:
    """One sentence on a paired difference and its simultaneous interval: "shown" only
    where the interval excludes zero."""
    if d is None or not d["pairs"] or not np.isfinite(d["difference_lo"]):
        return f"{what}: no paired interval (too few runs)."
    n, m = int(d["pairs"]), int(d["comparisons"])
    span = (f"{d['difference']:+.3f} [{d['difference_lo']:+.3f}, {d['difference_hi']:+.3f}] "
            f"(simultaneous 95 % over {m} comparison{'s' if m > 1 else ''}, {n} seeds, "
            f"Holm p {d['p_holm']:.2g})")
    if d["difference_lo"] > 0:
        return f"{what}: {span}: a gain is shown."
    if d["difference_hi"] < 0:
        return f"{what}: {span}: a loss is shown."
    return f"{what}: {span}: {not_shown(d['p_holm'])}."


def not_shown(p_holm: float) -> str:
    """The reading of an interval that includes zero. Holm steps down, so its p can fall
    below 0.05 while the Bonferroni interval still spans zero; the page says so rather than
    print a small p beside "not shown" unexplained (the interval decides, as declared)."""
    if np.isfinite(p_holm) and p_holm < 0.05:
        return ("not shown (the interval includes zero; Holm's step-down p is below 0.05, "
                "but the declared reading is the simultaneous interval)")
    return "not shown (the interval includes zero)"


def equal_bytes(sweep: MethodSweep) -> tuple[float, pd.DataFrame]:
    """Each federated run's accuracy interpolated at the largest byte budget every such run
    reaches (MB, up + down; the centralised ceiling moves one client's bytes and is left
    out), and per method its mean and paired difference to FedAvg (simultaneous intervals
    over the methods compared)."""
    found = {p: sweep.run(p) for p in federated(
        sweep.table[sweep.table["status"] == "complete"])["point"]}
    curves = {p: curve(run.rounds, "bytes", sweep.score) for p, run in found.items()
              if run is not None}
    budget = min(x[-1] for x, _ in curves.values() if len(x))
    rows = sweep.table[sweep.table["point"].isin(curves)].copy()
    rows["at_budget"] = [float(on_grid(*curves[p], np.array([budget]))[0])
                         for p in rows["point"]]
    compared = paired_differences(rows, "at_budget", label_of(sweep, BASELINE),
                                  replicate="replicate").set_index("group")
    out = []
    for group in [g for g in sweep.groups if g in set(rows["group"])]:
        values = rows.loc[rows["group"] == group, "at_budget"]
        s = mean_interval(values)
        d = compared.loc[group] if group in compared.index else None
        out.append({"group": group, "n": s.n, "mean": s.mean, "sd": s.sd,
                    "difference": np.nan if d is None else d["mean"],
                    "lo": np.nan if d is None else d["lo_holm"],
                    "hi": np.nan if d is None else d["hi_holm"]})
    return budget, pd.DataFrame(out)


def personal_gain(runs: pd.DataFrame, methods: list[str]) -> dict[str, MeanInterval]:
    """Per method with personalised models: its personalised models' own-mix accuracy minus
    its own global model's own-mix accuracy, run by run (the same clients' mixes, so the
    same distribution), with simultaneous (Bonferroni) 95 % intervals over the methods."""
    level = 1 - 0.05 / max(len(methods), 1)
    out = {}
    for method in methods:
        rows = runs[(runs["method"] == method) & (runs["status"] == "complete")]
        d = rows["personalised_own_mix_accuracy"] - rows["global_own_mix_accuracy"]
        out[method] = mean_interval(d, level)
    return out


def label_of(sweep: Sweep, method: str) -> str:
    first = sweep.table.loc[sweep.table["point"].str.startswith(f"{method}-s"), "group"]
    return str(first.iloc[0]) if len(first) else method


TARGETS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 to 0.95
TO_TARGET = {"round": ("rounds", lambda r: r["round"]),
             "bytes": ("MB up + down", lambda r: (r["bytes_up"] + r["bytes_down"]) / 1e6),
             "time": ("simulated hours", lambda r: r["sim_time_s"] / 3600)}


def first_reach(run: Run, threshold: float, quantity: str,
                score: str = "accuracy") -> tuple[float, bool]:
    """The ``quantity`` (rounds, bytes, simulated time) at which a run's ``score`` (balanced
    test accuracy, or mIoU) first reaches ``threshold``, and whether it did; a run that
    never does gives its last value (censored there, never dropped)."""
    rounds = run.rounds.sort_values("round")
    x = TO_TARGET[quantity][1](rounds).to_numpy(dtype=float)
    hit = np.flatnonzero(rounds[score].to_numpy(dtype=float) >= threshold)
    return (float(x[hit[0]]), True) if len(hit) else (float(x[-1]), False)


def reaches(sweep: MethodSweep, threshold: float, quantity: str) -> pd.DataFrame:
    """One row per complete run with a curve: its point, group, replicate, the ``quantity``
    at which it first reached ``threshold`` and whether it did."""
    rows = []
    for _, row in sweep.table[sweep.table["status"] == "complete"].iterrows():
        run = sweep.run(row["point"])
        if run is None or run.rounds.empty:
            continue
        value, reached = first_reach(run, threshold, quantity, sweep.score)
        rows.append({"point": row["point"], "group": row["group"],
                     "replicate": row["replicate"], quantity: value, "reached": reached})
    return pd.DataFrame(rows, columns=["point", "group", "replicate", quantity, "reached"])


def to_target(sweep: MethodSweep, threshold: float, quantity: str) -> dict[str, KaplanMeier]:
    """Per group, the Kaplan-Meier median of ``quantity`` at which a run first reaches
    ``threshold`` (``reaches``): runs that never do are censored, never dropped."""
    found = reaches(sweep, threshold, quantity)
    return {group: kaplan_meier(found.loc[found["group"] == group, quantity].to_numpy(),
                                found.loc[found["group"] == group, "reached"].to_numpy())
            for group in sweep.groups}


def federated(found: pd.DataFrame) -> pd.DataFrame:
    """The rows of federated runs: the centralised ceiling moves one client's data and
    would set every target beyond the federated methods."""
    return found[~found["point"].str.startswith(f"{CEILING}-s")]


def study_target(sweep: MethodSweep) -> float | None:
    """The highest of ``TARGETS`` whose Kaplan-Meier median some federated method reaches
    (half of its runs or more)."""
    ceiling = label_of(sweep, CEILING)
    return next((t for t in reversed(TARGETS) if any(
        np.isfinite(km.median) for group, km in to_target(sweep, t, "round").items()
        if group != ceiling)), None)


def common_target(sweep: MethodSweep, groups: set[str]) -> float | None:
    """The highest of ``TARGETS`` that every complete run of the ``groups`` reaches: there
    no run is censored, so rounds and bytes to it pair by seed like any measurement."""
    for target in reversed(TARGETS):
        found = reaches(sweep, target, "round")
        found = found[found["group"].isin(groups)]
        if len(found) and found["reached"].all():
            return target
    return None


def all_reached(found: pd.DataFrame) -> pd.DataFrame:
    """The rows (of ``reaches``) of the groups whose every run reached the target: a group
    with a censored run has no mean to pair, and is read from the Kaplan-Meier table."""
    return found[found.groupby("group")["reached"].transform("all")]


def paired_to_target(sweep: MethodSweep, found: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Each federated method's ``quantity`` to a target every run reaches (``found``, from
    ``reaches``), minus FedAvg's, paired by seed, with simultaneous (Bonferroni) intervals
    and Holm p-values over the methods (``stats.paired_differences``)."""
    return paired_differences(federated(found), quantity, label_of(sweep, BASELINE))


def target_lines(sweep: MethodSweep, threshold: float, quantities: tuple[str, ...]) -> list[str]:
    head = " | ".join(TO_TARGET[q][0] for q in quantities)
    lines = [f"| method | reached | {head} |", "|---|---|" + "---|" * len(quantities)]
    found = {q: to_target(sweep, threshold, q) for q in quantities}
    for group in sweep.groups:
        first = found[quantities[0]][group]
        cells = []
        for q in quantities:
            km = found[q][group]
            cells.append("not reached by half" if not np.isfinite(km.median) else
                         f"{km.median:.3g} [{km.lo:.3g}, {km.hi:.3g}]")
        lines.append(f"| {sweep.label(group)} | {first.reached}/{first.n} | "
                     + " | ".join(cells) + " |")
    return lines


PLATEAU_TOLERANCE = 0.02  # a quarter-to-quarter gain this small is flat for the question


def plateau(curves: pd.DataFrame, record: dict) -> list[str]:
    """Per method: the mean accuracy over the third and over the last quarter of the rounds,
    and the gain between them run by run (each seed's own curve, so the seeds pair), with a
    95 % interval over the seeds: the curves' slope at the end of the budget, smoothed over
    the round-to-round noise. Read as rising (the interval above zero), flat (inside
    +-``PLATEAU_TOLERANCE``) or undecided."""
    score = protocol_of(record).score
    lines = [f"| method | rounds | seeds | mean {score.short}, 3rd quarter | last quarter | "
             "gain [95 % interval] | reading |", "|---|---|---|---|---|---|---|"]
    for method in [m for m in METHODS if m in set(curves["method"])]:
        mine = curves[curves["method"] == method]
        last = int(mine["round"].max())
        quarter = np.where(mine["round"] > 3 * last // 4, 4,
                           np.where(mine["round"] > last // 2, 3, 0))
        means = mine.assign(quarter=quarter)[quarter > 0].groupby(
            ["seed", "quarter"])[score.curve].mean().unstack("quarter")
        if not {3, 4} <= set(means.columns):   # too few rounds to have quarters
            continue
        gain = mean_interval(means[4] - means[3])
        lines.append(f"| {label(record, method)} | {last} | {gain.n} | {means[3].mean():.3f} "
                     f"| {means[4].mean():.3f} | {gain.mean:+.3f} [{gain.lo:+.3f}, "
                     f"{gain.hi:+.3f}] | {plateau_reading(gain)} |")
    return lines


def late_mean_lines(curves: pd.DataFrame, windows: tuple[int, ...] = (1, 5, 10),
                    score: str = "accuracy") -> list[str]:
    """SAFE - FedAvg on each seed's mean test ``score`` over its last k evaluated rounds,
    paired by seed, with a 95 % interval (one comparison): how much the headline, a single
    round's score, owes to that round's noise."""
    if not {BASELINE, HEADLINE} <= set(curves["method"]):
        return []   # no sentence either: a page without FedAvg has no such table
    lines = ["SAFE - FedAvg on each seed's mean over its last rounds (ideal links): how much "
             "of a difference one round's noise carries (1: the last round alone):", "",
             "| last rounds averaged | seeds | SAFE - FedAvg [95 % interval] | sd of the "
             "paired differences |", "|---|---|---|---|"]
    last = curves.groupby(["method", "seed"])["round"].transform("max")
    for k in windows:
        late = curves[curves["round"] > last - k].groupby(["method", "seed"])[
            score].mean().unstack("method")
        d = mean_interval(late[HEADLINE] - late[BASELINE])
        lines.append(f"| {k} | {d.n} | {d.mean:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] | "
                     f"{d.sd:.3f} |")
    return lines


def plateau_reading(gain: MeanInterval) -> str:
    if gain.lo > 0:
        return "still rising"
    if -PLATEAU_TOLERANCE <= gain.lo and gain.hi <= PLATEAU_TOLERANCE:
        return f"flat (within +-{PLATEAU_TOLERANCE:g})"
    return "undecided"


# -- the page ------------------------------------------------------------------------------
def data_line(record: dict) -> str:
    """What every table is measured on: synthetic data, declared as such."""
    data = record.get("data", {})
    return (f"*Data: synthetic ({data.get('dataset', '?')}, {data.get('image_size', '?')} px, "
            f"{data.get('classes', '?')} classes, imbalance factor "
            f"{data.get('imbalance_ratio', '?'):g}); not remote-sensing imagery.*"
            if isinstance(data.get("imbalance_ratio"), (int, float)) else
            "*Data: synthetic; not remote-sensing imagery.*")


def tuning_lines(record: dict, tuning: pd.DataFrame) -> list[str]:
    lines = [f"| method | setting | selection score (mean "
             f"{protocol_of(record).score.validation}, last rounds) | chosen | interior |",
             "|---|---|---|---|---|"]
    for factor, methods in sorted(record.get("tuning", {}).items()):
        for method, entry in methods.items():
            if "same_as" in entry:
                lines.append(f"| {label(record, method)} | "
                             f"{label(record, entry['same_as'])}'s ({factor}) | - | - | - |")
                continue
            if "taken_from" in entry:
                setting = setting_text(entry["chosen"])
                lines.append(f"| {label(record, method)} | {setting} | not tuned here: "
                             f"`{entry['taken_from']}`'s choice | **yes** | "
                             f"{'yes' if all(entry['interior'].values()) else ''} |")
                continue
            chosen = entry["chosen"]
            for step in sorted(entry["history"], key=lambda h: (
                    h.get("fl.lr", 0), h.get("fl.fedprox.mu", 0))):
                if step.get("reused"):      # an earlier grid's row, already listed
                    continue
                # a step tuned before a key ran at that key's value in the base
                step = {**{k: v for k, v in base_values(record).items()
                           if k in chosen and k not in step}, **step}
                setting = setting_text(step)
                is_chosen = all(np.isclose(step.get(k, np.nan), v) for k, v in chosen.items())
                lines.append(f"| {label(record, method)} | {setting} | {step['score']:.3f} | "
                             f"{'**yes**' if is_chosen else ''} | "
                             f"{'yes' if is_chosen and all(entry['interior'].values()) else ''}"
                             " |")
    return lines


def base_values(record: dict) -> dict[str, float]:
    """The values a tuned key other than the rate has before it is tuned: the base
    scenario's, or the study's ``--set``. FedProx's rate grid runs at the default mu, so
    its rows say so and are not its chosen setting unless mu 0.01 wins."""
    from orbitfl.fl.config import FedProxConfig

    given = dict(record.get("overrides", []))
    return {"fl.fedprox.mu": float(given.get("fl.fedprox.mu", FedProxConfig().mu))}


def setting_text(setting: dict) -> str:
    """A tuned setting's ``fl.*`` keys as a table cell, in the order of their paths:
    ``mu 0.01, lr 0.3``."""
    return ", ".join(f"{k.split('.')[-1]} {v:g}" for k, v in sorted(setting.items())
                     if k.startswith("fl."))


def edge_note(record: dict) -> str:
    at_edge = [f"{label(record, m)} ({factor}: "
               f"{', '.join(k for k, inside in e['interior'].items() if not inside)})"
               for factor, methods in record.get("tuning", {}).items()
               for m, e in methods.items() if "interior" in e and
               not all(e["interior"].values())]
    if not at_edge:
        return "Every chosen setting is interior to its grid."
    return ("Chosen at an end of the grid even after the extensions allowed (the optimum may "
            "lie beyond; read these rows with care): " + "; ".join(at_edge) + ".")


def seed_lines(record: dict, runs: pd.DataFrame) -> list[str]:
    """How many seeds were measured and why: the pilot's power rule, or a count a written
    plan fixed (a confirmation on new seeds)."""
    protocol = record.get("protocol", {})
    fixed, first = protocol.get("fixed_seeds"), protocol.get("first_seed")
    if fixed:
        return [f"- Seeds: {fixed}, seeds {first}-{first + fixed - 1}, a count fixed before "
                "the runs by the written plan's own power computation (in the notes below); "
                "no internal pilot."]
    return [f"- Seeds: at least {protocol.get('min_seeds')}; the number follows from a "
            f"half-width target of {protocol.get('half_width')} for the headline "
            f"simultaneous interval (SAFE - FedAvg, {headline_text(record)}), with the sd of "
            f"the first {protocol.get('min_seeds')} seeds' paired differences (an internal "
            f"pilot), capped at {protocol.get('max_seeds')} by the budget:",
            *power_lines(record, runs)]


def power_lines(record: dict, runs: pd.DataFrame) -> list[str]:
    """The power computation per factor, recomputed from the shipped runs (the pilot: the
    first ``min_seeds`` measured seeds' paired SAFE - FedAvg differences on ideal links;
    one comparison with FedAvg per other method on the page), so that it can be checked
    like every other number."""
    protocol = protocol_of(record)
    lines = []
    pilot_seeds = protocol.measured_seeds(protocol.min_seeds)
    for factor in sorted(runs["factor"].unique(), key=lambda f: -f):
        mine = runs[(runs["network"] == "ideal") & (runs["factor"] == factor)]
        accuracy = mine.pivot_table(index="seed", columns="method",
                                    values=protocol.headline_metric)
        if not {BASELINE, HEADLINE} <= set(accuracy.columns):
            continue
        others = set(runs.loc[runs["factor"] == factor, "method"]) - {BASELINE}
        comparisons = max(len(others), 1)
        d = accuracy[HEADLINE] - accuracy[BASELINE]
        p = pilot_power(d[d.index.isin(pilot_seeds)], protocol, comparisons)
        reached = p["seeds_needed"] <= p["seeds_run"]
        lines.append(
            f"- {factor_name(factor)}: the internal pilot's {p['pilot_seeds']} paired SAFE - "
            f"FedAvg {protocol.score.short} differences have sd {p['pilot_sd']:.4f}; a "
            "simultaneous 95 % "
            f"interval over {comparisons} comparison{'s' if comparisons != 1 else ''} with "
            f"half-width <= {p['half_width']:g} needs {p['seeds_needed']} seeds; "
            f"{p['seeds_run']} were run. " + ("The budget allows the pilot's count." if reached else
                       f"The budget does not reach it: the minimal detectable effect at 80 % "
                       f"power with {p['seeds_run']} seeds is {p['mde']:.3f}.") +
            realised_half_width(d, protocol, comparisons))
    return lines


def realised_half_width(d: pd.Series, protocol: Protocol, comparisons: int) -> str:
    """The half-width the headline interval has over every measured seed, beside the
    pilot's prediction (the pilot's sd is five seeds' and may be far from the whole's)."""
    d = d.dropna()
    if len(d) < 2:
        return ""
    level = 1 - (1 - protocol.level) / comparisons
    half = mean_interval(d, level)
    width = (half.hi - half.lo) / 2
    return (f" Over all {len(d)} paired seeds the sd is {half.sd:.4f}, so the interval's "
            f"realised half-width is {width:.3f}: " +
            ("within the target." if width <= protocol.half_width else "above the target."))


def protocol_of(record: dict) -> Protocol:
    """The study's protocol as its record states it (the driver's defaults where a field is
    missing or not one of the protocol's)."""
    fields = {f.name for f in dataclasses.fields(Protocol)}
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                             for k, v in record.get("protocol", {}).items() if k in fields}
    try:
        return Protocol(**given)
    except TypeError as error:
        raise InputError(f"study record: protocol is not the driver's ({error})") from None


def network_section(record: dict, runs: pd.DataFrame, curves: pd.DataFrame, folder: Path,
                    network: str, factor: float, figures: Path, doc: Path,
                    declared: float | None = None) -> tuple[list[str], dict]:
    """Tables and figures of one network at one factor; the numbers the verdict reads
    (``declared``: the accuracy a written plan fixed for the paired time-to-target
    reading)."""
    from orbitfl.analysis.figures import save_formats
    from orbitfl.analysis.sweep_figures import bands_figure

    mine = runs[(runs["network"] == network) & (runs["factor"] == factor)]
    sweep = as_sweep(record, mine, curves[(curves["network"] == network) &
                                          (curves["factor"] == factor)], folder)
    # time to target has its own section, at one target (the sweep table's 0.5 to 0.9 would
    # set another)
    numbers = family(sweep, label(record, BASELINE))
    caption = data_line(record)
    title = f"IF {factor:g}, {NETWORKS[network]}"
    score = protocol_of(record).score
    lines = [f"## {title}", "", caption, "", f"### {score.title} (mean ± sd [95 % t-interval])",
             "", *groups_table(sweep, numbers, None, tuple(dict.fromkeys((
                 score.final, score.late, "final_accuracy", "few_shot_accuracy",
                 "global_own_mix_accuracy", "personalised_accuracy",
                 "personalised_own_mix_accuracy")))), "",
             caption, "", "### Costs", "", *groups_table(sweep, numbers, None, (
                 "rounds", "sim_time_h", "bytes_up", "bytes_down")), ""]
    found = {"numbers": numbers, "sweep": sweep}
    if with_baseline(record, sweep):   # a confirmation of SAFE's parts runs no FedAvg
        lines += [caption, "", "### Every method minus FedAvg, paired by seed", "",
                  "Simultaneous 95 % (Bonferroni) intervals over the comparisons of each "
                  "metric, with Holm's adjusted p-values (Holm steps down, so its p can be "
                  "below 0.05 where the interval still includes zero; the interval "
                  "decides).", "", *differences_table(sweep, numbers), ""]
    lines += _personal_lines(record, mine, curves, folder, caption, found)
    lines += _ablation_lines(record, mine, curves, folder, caption, found)
    if with_baseline(record, sweep):
        lines += _equal_bytes_lines(record, sweep, caption, found)
    lines += _target_section(record, sweep, network, caption, found, declared)
    stem = f"{doc.stem}-if{factor:g}-{network}"
    present = set(mine["method"])
    # two figures, so that no two curves share a colour: the methods, then SAFE's variants
    for part, methods in (("methods", [m for m in METHODS if m not in VARIANTS]),
                          ("parts", [HEADLINE, *VARIANTS])):
        if not present & set(methods) or (part == "methods" and present & set(methods) ==
                                          {HEADLINE} and present & set(VARIANTS)):
            continue   # nothing to draw, or SAFE alone, which the parts figure draws
        shown = as_sweep(record, mine, curves[(curves["network"] == network) &
                                              (curves["factor"] == factor)], folder, methods)
        for axis in ("bytes", "time") if network == "links" else ("bytes",):
            name = f"{stem}-{part}-{axis}"
            written = save_formats(bands_figure(shown, axis), figures / name)
            lines += [f"![{name}]({_relative(written[0], doc)})", ""]
    return lines, found


def _personal_lines(record: dict, mine: pd.DataFrame, curves: pd.DataFrame, folder: Path,
                    caption: str, found: dict) -> list[str]:
    """Personalised models against FedAvg + local fine-tuning and against their own global
    model, where the runs scored any (``found`` gets their numbers)."""
    personal = [m for m in METHODS if m in set(mine["method"]) and
                mine.loc[mine["method"] == m, "personalised_own_mix_accuracy"].notna().any()]
    if FT in personal and len(personal) > 1:
        psweep = as_sweep(record, mine, curves.iloc[:0], folder, [FT] + [
            m for m in personal if m != FT])
        pnumbers = family(psweep, label(record, FT))
        found["personal"] = pnumbers
        gains = found["personal_gain"] = personal_gain(mine, personal)
        return [caption, "", "### Personalised models against FedAvg + local fine-tuning",
                  "", "Both scored alike at the last round, on the balanced test set and "
                  "on each client's own class mix; simultaneous 95 % intervals.", "",
                  *differences_table(psweep, pnumbers), "",
                  caption, "", "### Personalised models against their own global model, on "
                  "the clients' own mix", "",
                  "Each run's personalised own-mix accuracy minus its global model's own-mix "
                  f"accuracy (the same distribution); simultaneous 95 % over {len(gains)} "
                  "methods.", "", "| method | n | Δ own-mix [simultaneous 95 %] |",
                  "|---|---|---|"] + [
            f"| {label(record, m)} | {g.n} | {g.mean:+.3f} [{g.lo:+.3f}, {g.hi:+.3f}] |"
            for m, g in gains.items()] + [""]
    return []


def _ablation_lines(record: dict, mine: pd.DataFrame, curves: pd.DataFrame, folder: Path,
                    caption: str, found: dict) -> list[str]:
    """Each SAFE variant (a part left out, mu fixed, DMR off) minus full SAFE, paired by
    seed: what each part adds is the negative of its row (``found`` gets the numbers)."""
    variants = [m for m in VARIANTS if m in set(mine["method"])]
    if HEADLINE not in set(mine["method"]) or not variants:
        return []
    asweep = as_sweep(record, mine, curves.iloc[:0], folder, [HEADLINE, *variants])
    found["ablations"] = anumbers = family(asweep, label(record, HEADLINE))
    return [caption, "", "### SAFE's parts: each variant minus full SAFE, paired by seed", "",
            "A part helps where removing it loses accuracy (a negative difference whose "
            f"interval excludes zero); simultaneous 95 % over the {len(variants)} variants.",
            "", *differences_table(asweep, anumbers), "",
            "What these seeds can detect: the sd of each variant's paired differences and "
            "the minimal detectable effect (80 % power, two-sided, simultaneous over the "
            "variants): a true effect smaller than that may hide behind a \"not shown\".",
            "",
            *variant_power_lines(record, mine, variants), ""]


def variant_power_lines(record: dict, mine: pd.DataFrame, variants: list[str]) -> list[str]:
    """Per variant and reading (the headline, few-shot accuracy): the realised sd of its
    paired differences with SAFE and the minimal detectable effect at that sd and n."""
    protocol = protocol_of(record)
    readings = {protocol.headline_metric: headline_text(record),
                "few_shot_accuracy": protocol.score.few_shot}
    complete = mine[mine["status"] == "complete"]
    lines = ["| variant | pairs | " + " | ".join(
        f"sd, {what} | MDE, {what}" for what in readings.values()) + " |",
        "|---|---|" + "---|---|" * len(readings)]
    for variant in variants:
        cells, n = [], 0
        for column in readings:
            by_seed = complete.pivot_table(index="seed", columns="method", values=column)
            d = (by_seed.get(variant) - by_seed.get(HEADLINE)).dropna() \
                if {variant, HEADLINE} <= set(by_seed.columns) else pd.Series(dtype=float)
            n = len(d)
            sd = float(d.std(ddof=1)) if n >= 2 else math.nan
            mde = minimal_detectable_effect(sd, n, protocol, len(variants)) \
                if n >= 2 else math.nan
            cells += [f"{sd:.3f}", f"{mde:.3f}"]
        lines.append(f"| {label(record, variant)} | {n} | " + " | ".join(cells) + " |")
    return lines


def _equal_bytes_lines(record: dict, sweep: MethodSweep, caption: str,
                       found: dict) -> list[str]:
    """The score at the largest byte budget every federated run reaches."""
    budget, at_bytes = equal_bytes(sweep)
    found["equal_bytes"] = at_bytes
    score = protocol_of(record).score
    lines = [caption, "", f"### {score.heading} at equal bytes ({budget:.1f} MB up + down, "
              "the largest budget every federated run reaches)", "",
              f"| method | n | {score.short} | Δ vs FedAvg [simultaneous 95 %] |",
              "|---|---|---|---|"]
    for _, r in at_bytes.iterrows():
        delta = "(baseline)" if r["group"] == label(record, BASELINE) else (
            f"{r['difference']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]"
            if np.isfinite(r["lo"]) else "-")
        lines.append(f"| {r['group']} | {r['n']} | {r['mean']:.3f} ± {r['sd']:.3f} | "
                     f"{delta} |")
    lines.append("")
    return lines


def with_baseline(record: dict, sweep: Sweep) -> bool:
    """Whether FedAvg ran on this page (a confirmation of SAFE's parts need not run it)."""
    return label(record, BASELINE) in sweep.groups


def _target_section(record: dict, sweep: MethodSweep, network: str, caption: str,
                    found: dict, declared: float | None = None) -> list[str]:
    """Rounds, bytes (and, on real links, time) to two targets: the hardest that half of
    some method's runs reach (Kaplan-Meier, censored), and the hardest that every run
    reaches (or the one a written plan ``declared``), where the methods pair by seed
    (``found`` gets those differences)."""
    target = study_target(sweep)
    quantities = ("round", "bytes", "time") if network == "links" else ("round", "bytes")
    lines = [] if target is None else [
        caption, "", f"### Rounds, bytes and time to {100 * target:g} % "
        f"{protocol_of(record).score.target}", "",
        "Kaplan-Meier median [95 %] over seeds, from each run's "
        "curve; a run that never reached it is censored at its last round, never "
        "dropped. The target is the highest multiple of 5 % that half the runs of some "
        "federated method reach.", "", *target_lines(sweep, target, quantities), ""]
    question = {label(record, HEADLINE)} | (
        {label(record, BASELINE)} if with_baseline(record, sweep) else set())
    if not question <= set(sweep.groups):
        return lines
    common = declared if declared is not None else common_target(sweep, question)
    if common is None:
        return lines
    reached = {q: federated(reaches(sweep, common, q)) for q in quantities}
    first = reached[quantities[0]]
    if declared is not None and not first.loc[first["group"].isin(question), "reached"].all():
        return lines + [caption, "", f"Not every run of {' and '.join(sorted(question))} "
                        f"reaches the declared {100 * common:g} %, so the paired reading is "
                        "not made there; the Kaplan-Meier medians above are read instead.", ""]
    runs = {q: all_reached(found_q) for q, found_q in reached.items()}
    if not with_baseline(record, sweep):
        return lines + [caption, ""] + _variant_target_lines(record, runs, quantities, common,
                                                             found, declared is not None)
    paired = {q: paired_to_target(sweep, runs[q], q) for q in quantities}
    found["to_target"] = {"target": common, "paired": paired}
    left = [g for g in sweep.groups if g not in set(runs[quantities[0]]["group"]) and
            g != label(record, CEILING)]
    head = " | ".join(f"{TO_TARGET[q][0]} (mean ± sd) | Δ vs FedAvg [simultaneous 95 %]"
                      for q in quantities)
    what = "Rounds, bytes and time" if "time" in quantities else "Rounds and bytes"
    lines += [caption, "", f"### {what} to {100 * common:g} %, paired by seed", "",
              f"Every run of FedAvg and SAFE reaches {100 * common:g} % (the highest "
              "multiple of 5 % they all reach), so none is censored and the methods pair by "
              "seed: each method whose runs all reach it, minus FedAvg, simultaneous 95 % "
              "intervals over those methods (Bonferroni), Holm-adjusted p-values." + (
                  f" Not every run of {', '.join(left)} reaches it (censored: see the "
                  "Kaplan-Meier medians above)." if left else ""), "",
              f"| method | runs | {head} |", "|---|---|" + "---|---|" * len(quantities)]
    for group in [g for g in sweep.groups if g in set(runs[quantities[0]]["group"])]:
        cells = []
        for q in quantities:
            values = runs[q].loc[runs[q]["group"] == group, q]
            rows = paired[q][paired[q]["group"] == group]
            r = rows.iloc[0] if len(rows) else None
            cells += [f"{values.mean():.3g} ± {values.std(ddof=1):.2g}",
                      "(baseline)" if r is None else paired_cell(r)]
        lines.append(f"| {group} | {len(values)} | " + " | ".join(cells) + " |")
    return lines + [""] + _variant_target_lines(record, runs, quantities, common, found,
                                                declared is not None)


def paired_cell(r: pd.Series) -> str:
    """One row of ``stats.paired_differences`` as a table cell: mean [simultaneous], Holm p."""
    return (f"{r['mean']:+.3g} [{r['lo_holm']:+.3g}, {r['hi_holm']:+.3g}] "
            f"(Holm p {r['p_holm']:.2g})")


def _variant_target_lines(record: dict, runs: dict[str, pd.DataFrame],
                          quantities: tuple[str, ...], target: float,
                          found: dict | None = None, declared: bool = False) -> list[str]:
    """Each SAFE variant whose runs all reach ``target`` minus full SAFE, paired by seed
    (``runs``: per quantity, the rows of ``reaches`` of the methods that all reach it):
    which part SAFE's speed to the target rests on. A target a plan ``declared`` is a
    reading the verdict makes (``found`` gets it)."""
    safe = label(record, HEADLINE)
    variants = {label(record, m) for m in VARIANTS}
    mine = {q: r[r["group"].isin(variants | {safe})] for q, r in runs.items()}
    if safe not in set(mine[quantities[0]]["group"]) or \
            not variants & set(mine[quantities[0]]["group"]):
        return []
    paired = {q: paired_differences(mine[q], q, safe) for q in quantities}
    if declared and found is not None:
        found["declared_target"] = {"target": target, "paired": paired}
    head = " | ".join(f"Δ {TO_TARGET[q][0]} vs SAFE [simultaneous 95 %]" for q in quantities)
    lines = [f"Each SAFE variant minus full SAFE to {100 * target:g} %" + (
             " (the target the plan declared)" if declared else "") + ", paired by seed, "
             "simultaneous over the variants (a part SAFE's speed rests on is one whose "
             "removal costs rounds):", "", f"| variant | pairs | {head} |",
             "|---|---|" + "---|" * len(quantities)]
    for i, group in enumerate(paired[quantities[0]]["group"]):
        cells = [paired_cell(paired[q].iloc[i]) for q in quantities]
        lines.append(f"| {group} | {paired[quantities[0]].iloc[i]['n']} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def parts_lines(diagnostics: pd.DataFrame, record: dict) -> list[str]:
    """SAFE's parts at work: each diagnostic at the first, middle and last evaluated round,
    mean over seeds (and over clients or classes), per network."""
    if diagnostics.empty:
        return []
    lines = []
    for (network, factor, method), rows in diagnostics.groupby(["network", "factor",
                                                                  "method"]):
        rounds = sorted(rows["round"].dropna().unique())
        picks = sorted({rounds[0], rounds[len(rounds) // 2], rounds[-1]}) if rounds else []
        lines += [f"{label(record, method)}, IF {factor:g}, {NETWORKS[network]} "
                  f"({rows['seed'].nunique()} seeds):", "",
                  "| quantity | " + " | ".join(f"round {int(r)}" for r in picks) + " |",
                  "|---|" + "---|" * len(picks)]
        for quantity, name in PARTS.items():
            mine = rows[(rows["quantity"] == quantity) & np.isfinite(rows["value"])]
            if mine.empty:   # not measured by this variant (fixed mu computes no CKA)
                continue
            cells = []
            for r in picks:
                at = mine[mine["round"] == r]["value"]
                cells.append(f"{at.mean():.3f}" if len(at) else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        weights = rows[(rows["quantity"] == "cro_weight") & (rows["round"] == rounds[-1])]
        if len(weights):
            by_class = weights.groupby("index")["value"].mean()
            lines.append("| CRO: smallest and largest class weight (mean over seeds) |"
                         + " |" * (len(picks) - 1) +
                         f" {by_class.min():.2f} to {by_class.max():.2f} |")
        lines.append("")
    return lines


def resumed_runs(runs: pd.DataFrame) -> pd.Series:
    """Runs that resumed from a checkpoint. A run's ``wall_s`` is its last process's time
    alone, while its times to target count every process (the checkpoint keeps the round
    clock), so a run that reached a target later than its own wall time had an earlier
    process. A run resumed before its first target cannot be told apart this way."""
    clocks = [c for c in runs.columns if c.startswith("to_") and c.endswith("_wall_time_s")]
    if not clocks:
        return pd.Series(False, index=runs.index)
    return runs[clocks].max(axis=1).fillna(0.0) > runs["wall_s"]


def wall_lines(runs: pd.DataFrame, record: dict) -> list[str]:
    """Each method's wall time a run, where and how it was measured; runs resumed from a
    checkpoint are counted apart, since their wall time is only the last process's."""
    lines = ["| method | network | runs | wall s a run (mean, min to max) |",
             "|---|---|---|---|"]
    complete = runs[runs["status"] == "complete"]
    resumed = resumed_runs(complete)
    for (method, network), rows in complete.groupby(["method", "network"], sort=False):
        w = rows.loc[~resumed[rows.index], "wall_s"]
        apart = int(resumed[rows.index].sum())
        count = f"{len(w)}" + (f" ({apart} more resumed from a checkpoint, left out)"
                               if apart else "")
        times = f"{w.mean():.0f} ({w.min():.0f} to {w.max():.0f})" if len(w) else "-"
        lines.append(f"| {label(record, method)} | {network} | {count} | {times} |")
    return lines


def _relative(path: Path, doc: Path) -> str:
    try:
        return str(path.resolve().relative_to(doc.resolve().parent))
    except ValueError:
        return str(path)


# the baselines the verdict reads against FedAvg beside SAFE
AGAINST_FEDAVG = ("fedprox", "fedla")


def verdict(record: dict, found: dict) -> list[str]:
    """Plain sentences that read only the tables: "shown" only where an interval excludes
    zero."""
    lines = []
    protocol = protocol_of(record)
    metric, what = protocol.headline_metric, headline_text(record)
    few_shot = ("few_shot_accuracy", protocol.score.few_shot)
    for (network, factor), f in sorted(found.items()):
        where = f"IF {factor:g}, {network}"
        numbers, safe = f["numbers"], label(record, HEADLINE)
        if with_baseline(record, f["sweep"]):
            lines.append("- " + reading(difference(numbers, safe, metric),
                                        f"{where}: SAFE - FedAvg, {what}"))
            lines.append("- " + reading(difference(numbers, safe, few_shot[0]),
                                        f"{where}: SAFE - FedAvg, {few_shot[1]}"))
        for method in AGAINST_FEDAVG:           # each on both columns, as SAFE is
            for column, name in ((metric, what), few_shot):
                d = difference(numbers, label(record, method), column)
                if d is not None:
                    lines.append("- " + reading(d, f"{where}: {label(record, method)} - "
                                                   f"FedAvg, {name}"))
        if "personal" in f:
            lines.append("- " + reading(difference(
                f["personal"], safe, "personalised_own_mix_accuracy"),
                f"{where}: SAFE's personalised models - FedAvg + fine-tuning's, own mix"))
        for method in VARIANTS:
            for column, name in ((metric, what), few_shot):
                d = difference(f["ablations"], label(record, method), column) \
                    if "ablations" in f else None
                if d is not None:
                    lines.append("- " + reading(d, f"{where}: ({label(record, method)}) - SAFE, "
                                                   f"{name}"))
        lines += target_verdict(where, record, f.get("to_target"))
        lines += declared_target_verdict(where, f.get("declared_target"))
        for method, g in f.get("personal_gain", {}).items():
            shown = "not shown (the interval includes zero)" if g.lo <= 0 <= g.hi else \
                ("a gain is shown" if g.lo > 0 else "a loss is shown")
            lines.append(f"- {where}: {label(record, method)}'s personalised models - its "
                         f"own global model, own mix: {g.mean:+.3f} [{g.lo:+.3f}, "
                         f"{g.hi:+.3f}] ({g.n} seeds): {shown}.")
    return lines


def target_verdict(where: str, record: dict, to_target: dict | None) -> list[str]:
    """SAFE, FedProx and FedLA - FedAvg in rounds and bytes to the target every run
    reaches (the methods the verdict reads against FedAvg; SAFE's variants are read against
    SAFE): "fewer" or "more" only where the simultaneous interval excludes zero."""
    if not to_target:
        return []
    read = [label(record, m) for m in (HEADLINE, *AGAINST_FEDAVG)]
    lines = []
    for quantity, paired in to_target["paired"].items():
        rows = paired[np.isfinite(paired["lo_holm"].astype(float)) &
                      paired["group"].isin(read)]
        rows = rows.sort_values("group", key=lambda g: g.map(read.index))
        for _, r in rows.iterrows():
            group, unit = r["group"], TO_TARGET[quantity][0]
            shown = (f"{group} needs fewer" if r["hi_holm"] < 0 else f"{group} needs more"
                     if r["lo_holm"] > 0 else not_shown(r["p_holm"]))
            lines.append(
                f"- {where}: {group} - FedAvg, {unit} to {100 * to_target['target']:g} % "
                f"(reached by every run): {r['mean']:+.3g} [{r['lo_holm']:+.3g}, "
                f"{r['hi_holm']:+.3g}] (simultaneous 95 % over {len(paired)} "
                f"comparison{'s' if len(paired) > 1 else ''}, {int(r['n'])} seeds, Holm p "
                f"{r['p_holm']:.2g}): {shown}.")
    return lines


def declared_target_verdict(where: str, declared: dict | None) -> list[str]:
    """Each SAFE variant minus SAFE in each quantity to the target a plan declared: "more"
    or "fewer" only where the simultaneous interval excludes zero."""
    if not declared:
        return []
    lines = []
    for quantity, paired in declared["paired"].items():
        unit = TO_TARGET[quantity][0]
        for _, r in paired[np.isfinite(paired["lo_holm"])].iterrows():
            shown = (f"{r['group']} needs more" if r["lo_holm"] > 0 else
                     f"{r['group']} needs fewer" if r["hi_holm"] < 0 else
                     not_shown(r["p_holm"]))
            lines.append(
                f"- {where}: ({r['group']}) - SAFE, {unit} to {100 * declared['target']:g} % "
                f"(the declared target; reached by every run): {r['mean']:+.3g} "
                f"[{r['lo_holm']:+.3g}, {r['hi_holm']:+.3g}] (simultaneous 95 % over {len(paired)} "
                f"variant{'s' if len(paired) > 1 else ''}, {int(r['n'])} seeds, Holm p "
                f"{r['p_holm']:.2g}): {shown}.")
    return lines


def write_report(data: Path, out: Path, figures: Path | None = None,
                 notes: Path | None = None, declared: float | None = None) -> str:
    """The page ``out`` from the compact tables in ``data``: the protocol, the verdict, the
    hand-written ``notes``, one section a network and factor, then the appendices."""
    record, runs, curves, tuning, diagnostics = load_data(data)
    # read before anything is written; a notes file named but absent is a mistake, not
    # a page without notes
    written = read_user_file(notes, "notes file").strip() if notes is not None else ""
    # the protocol's rows only: a sensitivity run shipped beside them is the notes' to read
    runs, curves = runs[runs["method"].isin(METHODS)], curves[curves["method"].isin(METHODS)]
    check_finished(data, record, runs)
    runs = with_headline(record, runs, curves)
    figures = figures or out.parent / "figures"
    sections, found = [], {}
    for factor in sorted(runs["factor"].unique(), key=lambda f: -f):
        for network in [n for n in NETWORKS if n in set(runs["network"])]:
            if runs[(runs["network"] == network) & (runs["factor"] == factor)].empty:
                continue
            lines, numbers = network_section(record, runs, curves, data, network, factor,
                                             figures, out, declared)
            sections += lines
            found[network, factor] = numbers
    text = [f"# The SAFE study: a protocol its edges cannot move{budget_title(runs)}", "",
            "Generated by `python -m orbitfl.studies.safe.report` from the compact tables in "
            f"`{data}` (every measured run, every evaluated round, every tuning run); do not "
            "edit by hand. Every run is an ordinary `orbitfl` scenario run of "
            f"`scenarios/study/base.yaml`{overrides_note(record)}; the data are synthetic, "
            "with known ground truth, and every table says so.", "",
            *protocol_lines(record, runs), "", "## Verdict", "", *verdict(record, found), ""]
    if written:
        text += [written, ""]
    text += sections + appendix_lines(record, runs, curves, tuning, diagnostics)
    text += regenerate_lines(record, runs, data, out, notes, declared)
    page = "\n".join(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return page


def check_finished(data: Path, record: dict, runs: pd.DataFrame) -> None:
    """Refuse the tables of a study in progress (a sitting's carry): a method measured on
    fewer seeds than the record's count would be read beside the others as if the protocol
    the page states had been run. So would a run the driver was stopped in, which its
    sweep lists as ``interrupted``."""
    stopped = runs[runs["status"] == "interrupted"] if "status" in runs else runs.iloc[:0]
    if not stopped.empty:
        run = stopped.iloc[0]
        raise InputError(
            f"{data / 'runs.parquet'}: {run['method']} at {factor_name(run['factor'])} on "
            f"{links_text(run['network'])}: seed {int(run['seed'])} was interrupted; run the "
            "driver with the study's own flags until it finishes, then export again")
    mismatch = seed_mismatch(record, runs, in_progress=False)
    if mismatch is not None:
        (network, factor, method), seeds, recorded = mismatch
        recorded_text = "holds no seed count (its internal pilot is unfinished)" \
            if recorded is None else f"measured {span(recorded)}"
        raise InputError(
            f"{data / 'runs.parquet'}: {method} at {factor_name(factor)} on "
            f"{links_text(network)} was measured on seeds {span(seeds)}, but the study's "
            f"record {recorded_text}; "
            "run the driver with the study's own flags until it finishes, then export again")


def budget_title(runs: pd.DataFrame) -> str:
    """" (N rounds)": the runs' round budget, which the page's every number depends on."""
    rounds = pd.to_numeric(runs.get("rounds", pd.Series(dtype=float)), errors="coerce").max()
    return f" ({rounds:g} rounds)" if np.isfinite(rounds) else ""


def overrides_note(record: dict) -> str:
    """The driver's ``--set`` changes of the base scenario, as the page states them."""
    changes = [f"`{k}={v}`" for k, v in record.get("overrides", [])]
    return f" with {', '.join(changes)} in every run" if changes else ""


def protocol_lines(record: dict, runs: pd.DataFrame) -> list[str]:
    """The rules every number of the page was made under, from the record."""
    protocol = record.get("protocol", {})
    measured = set(runs["method"])
    return [
        "## Protocol",
        "",
        *settings_lines(record),
        *headline_lines(record),
        f"- Tuning seeds {protocol.get('tuning_seeds')} are never measured; measured seeds "
        f"start at {protocol.get('first_seed')}. Tuning is per imbalance factor, by the "
        f"mean {protocol_of(record).score.validation} of the last "
        f"{protocol.get('selection_rounds')} "
        "evaluations" + (", averaged over the tuning seeds" if len(
            protocol.get("tuning_seeds") or ()) > 1 else "") +
        "; the test set chooses nothing.",
        *(["- **SAFE's variants are not tuned:** each runs at full SAFE's chosen setting, so "
           "that a variant differs from SAFE by one switch (declared before the runs)."]
          if protocol.get("variants_at_headline") else []),
        *([f"- **Real-link runs simulate {protocol['links_duration']}** of contact plan "
           "(the base scenario's span elsewhere): a real-link round takes simulated time, and "
           "a run whose span ends before its rounds stops there (its rounds column says so)."]
          if protocol.get("links_duration") and "links" in set(runs["network"]) else []),
        f"- Learning-rate grid {protocol.get('lr_grid')}, extended by x"
        f"{protocol.get('lr_step')} in the direction of an end choice until the choice is "
        f"interior (at most {protocol.get('max_extensions')} extensions). " + edge_note(record),
        *seed_lines(record, runs),
        "- Intervals on differences are simultaneous over each family of comparisons "
        "(Bonferroni), with Holm-adjusted p-values; \"not shown\" wherever an interval "
        "includes zero (Holm steps down, so a Holm p below 0.05 beside an interval that "
        "includes zero can occur; the interval decides).",
        "- Every round is evaluated (global model); personalised models (SAFE's" + (
            ", and FedAvg's fine-tuned copies: one local job on each client's data from the "
            "final global model" if FT in measured else "") + ") at the last round, on the "
        "balanced test set and on each client's own class mix, beside the global model's "
        "own-mix score.",
        *(["- The centralised row is one client holding every training image, through the "
           "same engine and round budget: a ceiling on what the optimisation steps can "
           "reach, not a federated method."] if CEILING in measured else []),
        *([f"- Every run, tuning included, was computed by one orbitfl code, "
           f"`{record['code_sha256'][:12]}` (the SHA-256 of its sources), each run directory "
           "checked by the export against its point's scenario."]
          if record.get("code_sha256") else []),
    ]


def headline_lines(record: dict) -> list[str]:
    """The headline's definition where it is not the last round's accuracy."""
    protocol = protocol_of(record)
    last, score = protocol.headline_rounds, protocol.score
    if last == 1:
        return []
    return [f"- **The headline is a late mean**, declared before any run: each run's "
            f"{score.name} averaged over its last {last} evaluated rounds (\""
            f"{METRIC_NAMES[score.late]}\" in the tables), so that no one round's swing "
            f"decides it; the last round's {score.short} is shown beside it."]


def settings_lines(record: dict) -> list[str]:
    """Where the settings came from when this study did not tune them (``--settings-from``)."""
    source = record.get("settings_from")
    if not source:
        return []
    changes = ", ".join(f"`{k}={v}`" for k, v in source.get("overrides", [])) or "none"
    return [f"- **Settings taken, not tuned here.** Every method runs at the setting that the "
            f"study `{source.get('study')}` chose by the rules below (its changes of the base "
            f"scenario: {changes}); this page measures those choices under its own changes, "
            "on seeds that study's tuning never used."]


def appendix_lines(record: dict, runs: pd.DataFrame, curves: pd.DataFrame,
                   tuning: pd.DataFrame, diagnostics: pd.DataFrame) -> list[str]:
    """Plateau, SAFE's parts, tuning, wall time and the analytic bytes table."""
    ideal = curves[curves["network"] == "ideal"] if "ideal" in set(curves["network"]) \
        else curves
    return ["## Rounds: are the curves flat?", "", data_line(record), "",
            f"Each seed's mean test {protocol_of(record).score.short} over the last quarter "
            "of the rounds minus its "
            "mean over the third quarter (global model, ideal links), with a 95 % interval "
            "over the seeds: *still rising* when the interval lies above zero, *flat* when "
            f"it lies within +-{PLATEAU_TOLERANCE:g}, *undecided* otherwise.", "",
            *plateau(ideal, record), "",
            *late_mean_lines(ideal, tuple(sorted(
                {1, 5, 10, protocol_of(record).headline_rounds})),
                protocol_of(record).score.curve), "",
            "## SAFE's parts at work", "", data_line(record), "",
            *parts_lines(diagnostics, record),
            "## Tuning", "", data_line(record), "", *tuning_lines(record, tuning), "",
            "## Wall time", "",
            "Every run was measured on this project's shared 2-core machine (no GPU), two "
            "runs at a time (`--workers 2`) beside other engineers' work: these times rank "
            "the methods roughly, no more.", "", *wall_lines(runs, record), "",
            "## SAFE's extra bytes, from shapes", "",
            "Computed by `orbitfl/studies/safe/bytes.py` from the payloads' shapes (10 SES "
            "images per class, ACE with 8 contexts of width 32); 45 classes is "
            "NWPU-RESISC45's size. The SES travels once per client; the rest every round.",
            "", *bytes_markdown(bytes_table()), ""]


def regenerate_lines(record: dict, runs: pd.DataFrame, data: Path, out: Path,
                     notes: Path | None, declared: float | None = None) -> list[str]:
    """The three commands that rebuild the page: the driver as this study ran it (its
    methods, networks and base changes), the export, the report."""
    study = f"runs/{out.stem}"
    methods = [m for m in METHODS if m in set(runs["method"])]
    networks = [n for n in NETWORKS if n in set(runs["network"])]
    flags = "" if methods == list(METHODS) else f" --only {','.join(methods)}"
    flags += "" if networks == list(NETWORKS) else f" --networks {','.join(networks)}"
    protocol, default = record.get("protocol", {}), dataclasses.asdict(Protocol())
    if protocol.get("max_seeds", default["max_seeds"]) != default["max_seeds"]:
        flags += f" --max-seeds {protocol['max_seeds']}"
    if not record.get("settings_from") and \
            list(protocol.get("lr_grid", default["lr_grid"])) != list(default["lr_grid"]):
        flags += f" --lr-grid {','.join(f'{v:g}' for v in protocol['lr_grid'])}"
    for key in ("selection_rounds", "headline_rounds"):
        if protocol.get(key, default[key]) != default[key]:
            flags += f" --{key.replace('_', '-')} {protocol[key]}"
    if record.get("settings_from"):   # its tuning seeds come with it
        flags += f" --settings-from {record['settings_from']['study']}"
    elif list(protocol.get("tuning_seeds", default["tuning_seeds"])) != \
            list(default["tuning_seeds"]):
        flags += f" --tuning-seeds {','.join(map(str, protocol['tuning_seeds']))}"
    if protocol.get("variants_at_headline"):
        flags += " --variants-at-safe"
    if protocol.get("links_duration"):
        flags += f" --links-duration {protocol['links_duration']}"
    if protocol.get("first_seed", default["first_seed"]) != default["first_seed"]:
        flags += f" --first-seed {protocol['first_seed']}"
    if protocol.get("fixed_seeds"):
        flags += f" --seeds {protocol['fixed_seeds']}"
    flags += "".join(f" --set {k}={v}" for k, v in record.get("overrides", []))
    return ["## Regenerate", "", "```",
            f"python -m orbitfl.studies.safe.driver --out {study} --workers 2{flags}"
            "   # resumes",
            f"python -m orbitfl.studies.safe.export {study} --out {data}",
            f"python -m orbitfl.studies.safe.report {data} --out {out}" +
            (f" --notes {notes}" if notes is not None else "") +
            (f" --target {declared:g}" if declared is not None else ""), "```", ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the study's compact tables "
                                                "(python -m orbitfl.studies.safe.export --out)")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--figures", type=Path, default=None,
                        help="figure folder (default: figures/ beside --out)")
    parser.add_argument("--notes", type=Path, default=None,
                        help="the plan and a hand-written reading, placed after the verdict")
    parser.add_argument("--target", type=float, default=None, metavar="FRACTION",
                        help="the balanced accuracy a written plan declared for the paired "
                        "time-to-target reading of SAFE's variants (e.g. 0.6; default: the "
                        "highest multiple of 5 %% every run reaches, not read in the verdict)")
    args = parser.parse_args(argv)
    return command_status(lambda: write_report(args.data, args.out, args.figures, args.notes,
                                            _target(args.target)))


def _target(value: float | None) -> float | None:
    """``--target`` as an accuracy strictly between 0 and 1 (one-line error otherwise)."""
    if value is not None and not 0 < value < 1:
        raise InputError(f"--target: expected an accuracy between 0 and 1, got {value:g}")
    return value


if __name__ == "__main__":
    sys.exit(main())

