"""``docs/safe-study.md`` from a study folder (``python -m orbitfl.study``): every method at
every imbalance factor, mean and standard deviation over seeds, the paired difference to
FedAvg with a 95 % t-interval over seeds and Holm-adjusted p-values, bytes per round, wall
time, the tuned settings, the centralised bound and the commands that regenerate it, with
figures beside it. The statistics are ``orbitfl.analysis.stats``', as in ``orbitfl report
SWEEP_DIR``; only what is SAFE-specific (methods, imbalance factors, tuning, the verdict)
lives here.

    .venv/bin/python -m orbitfl.study_report runs/safe-study --out docs/safe-study.md

Numbers come from the sweep tables only (``final/<method>/sweep.parquet``,
``tune/<method>/sweep.parquet``) and ``study.json``; nothing here trains or evaluates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from orbitfl.analysis.stats import mean_interval, paired_differences
from orbitfl.atomic import atomic_write_text
from orbitfl.errors import InputError, read_user_file
from orbitfl.scenario_yaml import load_yaml
from orbitfl.study import TUNED
from orbitfl.user_json import read_json_file

# metric column of sweep.parquet -> its name in the report
METRICS = {"final_accuracy": "accuracy", "balanced_accuracy": "balanced",
           "few_shot_accuracy": "few-shot", "personalised_own_mix_accuracy": "own-mix"}
BASELINE = "fedavg"
BOUND = "central"
IF_COLUMN = "data.imbalance_ratio"


def mean_sd(values: pd.Series) -> tuple[float, float, int]:
    """Mean, sample standard deviation and n of the finite values (``stats.mean_interval``)."""
    s = mean_interval(pd.to_numeric(values, errors="coerce"))
    return s.mean, s.sd, s.n


def differences(finals: dict[str, pd.DataFrame], factor: float, metric: str) -> pd.DataFrame:
    """Every method minus FedAvg at one imbalance factor, paired by seed
    (``stats.paired_differences``): n, mean, the 95 % t-interval of that one comparison
    (``lo``, ``hi``) and the Holm-adjusted p-value over the methods compared, by method."""
    rows = pd.concat([frame.loc[frame[IF_COLUMN] == factor, ["seed", metric]].assign(
        method=name) for name, frame in finals.items()], ignore_index=True)
    return paired_differences(rows, metric, BASELINE, group="method",
                              replicate="seed").set_index("group")


def load_study(study_dir: Path) -> tuple[dict, dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """study.json, and the final and tuning tables of every method (complete points)."""
    record_file = study_dir / "study.json"
    if not record_file.is_file():
        raise InputError(f"{study_dir}: no study.json (run python -m orbitfl.study first)")
    record = read_json_file(record_file, "study record")
    if not isinstance(record, dict) or not isinstance(record.get("methods"), dict):
        raise InputError(f"{record_file}: not a study record (no mapping of methods)")
    finals, tunes = {}, {}
    for name in record["methods"]:
        for kind, into in (("final", finals), ("more", finals), ("tune", tunes)):
            table = study_dir / kind / name / "sweep.parquet"
            if table.is_file():
                frame = pd.read_parquet(table)
                frame = frame[frame["status"] == "complete"]
                into[name] = pd.concat([into[name], frame]) if name in into else frame
        for into in (finals, tunes):
            if name in into:
                into[name] = into[name].reset_index(drop=True)
    if BASELINE not in finals:
        raise InputError(f"{study_dir}: the study has no finished {BASELINE} runs to compare with")
    return record, _in_study_order(finals), _in_study_order(tunes)


def _in_study_order(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """FedAvg first, then the study's own order of methods (others after, by name)."""
    from orbitfl.study import METHODS

    order = [BASELINE] + [m for m in METHODS if m != BASELINE]
    rank = {name: i for i, name in enumerate(order)}
    return {name: tables[name] for name in
            sorted(tables, key=lambda n: (rank.get(n, len(order)), n))}


def cell(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{mean:.3f}"


def interval(mean: float, low: float, high: float, p_holm: float = np.nan) -> str:
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(low):
        return f"{mean:+.3f}"
    holm = f" (Holm p {p_holm:.2g})" if np.isfinite(p_holm) else ""
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]{holm}"


def results_table(record: dict, finals: dict[str, pd.DataFrame], factor: float) -> list[str]:
    """One Markdown table: every method at one imbalance factor."""
    head = ["method", "n"] + [f"{name}" for name in METRICS.values()] + \
        ["Δ accuracy vs FedAvg [95 % CI]", "Δ few-shot vs FedAvg [95 % CI]",
         "MB / round", "wall s / run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    compared = {m: differences(finals, factor, m) for m in ("final_accuracy",
                                                            "few_shot_accuracy")}
    for name, frame in finals.items():
        rows = frame[frame[IF_COLUMN] == factor]
        if rows.empty:
            continue
        cells = [record["methods"][name]["label"], str(len(rows))]
        cells += [cell(*mean_sd(rows[m])[:2]) for m in METRICS]
        if name == BASELINE:
            cells += ["(baseline)", "(baseline)"]
        else:
            cells += [interval(*compared[m].loc[name, ["mean", "lo", "hi", "p_holm"]])
                      if name in compared[m].index else "-" for m in compared]
        per_round = (rows["bytes_up"] + rows["bytes_down"]) / rows["rounds"] / 1e6
        cells += [f"{mean_sd(per_round)[0]:.2f}", f"{mean_sd(rows['wall_s'])[0]:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def tuning_table(record: dict, tunes: dict[str, pd.DataFrame]) -> list[str]:
    """Each method's tuning points (validation accuracy only) and the chosen setting."""
    lines = ["| method | setting | final balanced validation accuracy | chosen |",
             "|---|---|---|---|"]
    for name, frame in tunes.items():
        chosen = record["choices"].get(name, {})
        keys = [k for k in ("fl.lr", "fl.fedprox.mu") if k in frame.columns]
        for _, row in frame.iterrows():
            setting = ", ".join(f"{k.split('.')[-1]} {row[k]:g}" for k in keys)
            is_chosen = all(np.isclose(row[k], chosen.get(k, np.nan)) for k in keys)
            lines.append(f"| {record['methods'][name]['label']} | {setting} | "
                         f"{row['val_balanced_accuracy']:.3f} | {'**yes**' if is_chosen else ''} |")
    return lines


def verdict(record: dict, finals: dict[str, pd.DataFrame], method: str = "safe",
            factor: float = 100.0) -> str:
    """One plain sentence on the question the study asks: does SAFE's few-shot gain at
    IF 100 survive the tuned FedAvg?"""
    if method not in finals:
        return f"No finished {method} runs: the question is not answered."
    pair = {name: finals[name] for name in (BASELINE, method)}  # the one question asked
    mean, low, high, n = differences(pair, factor, "few_shot_accuracy").loc[
        method, ["mean", "lo", "hi", "n"]]
    if n < 2:
        return f"Too few paired seeds ({n}) at IF {factor:g} for an interval."
    label = record["methods"][method]["label"]
    if low > 0:
        outcome = "the gain survives: the interval lies above zero"
    elif high < 0:
        outcome = f"{label} is worse: the interval lies below zero"
    else:
        outcome = "the interval includes zero, so no few-shot gain is shown"
    return (f"At IF {factor:g}, {label}'s few-shot accuracy minus tuned FedAvg's, paired by "
            f"seed over {n} seeds, is {mean:+.3f} (95 % CI [{low:+.3f}, {high:+.3f}]): "
            f"{outcome}.")


def budget(study_dir: Path, finals: dict[str, pd.DataFrame]) -> str:
    """The round budget and data size, read from a measured point's scenario file."""
    name = BASELINE if BASELINE in finals else next(iter(finals))
    points = sorted((study_dir / "final" / name / "points").glob("*.yaml"))
    if not points:
        return ""
    doc = load_yaml(read_user_file(points[0], "point scenario"), points[0])
    doc = doc if isinstance(doc, dict) else {}
    fl, data = doc.get("fl", {}), doc.get("data", {})
    return (f"Budget: {fl.get('rounds')} rounds of {fl.get('local_epochs', 1)} local "
            f"epoch(s), batch {fl.get('batch_size', 32)}, every client in every round; "
            f"{data.get('samples_per_class_max')} training images in the largest class "
            f"(before the validation split), {data.get('image_size')} x "
            f"{data.get('image_size')} pixels, {data.get('test_per_class')} test images per "
            "class.")


def edge_choices(record: dict, tunes: dict[str, pd.DataFrame]) -> str:
    """Methods whose tuned learning rate is the largest of their grid (the optimum may lie
    beyond it)."""
    edge = [record["methods"][m]["label"] for m, t in tunes.items()
            if "fl.lr" in t and m in record["choices"]
            and np.isclose(record["choices"][m]["fl.lr"], t["fl.lr"].max())]
    if not edge:
        return ""
    return (f"The tuned learning rate is the largest of the grid for {', '.join(edge)}: "
            "with this budget a larger one might do better still.")


def figures(finals: dict[str, pd.DataFrame], record: dict, folder: Path) -> list[Path]:
    """Accuracy and few-shot accuracy against the imbalance factor, mean +- sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in ("final_accuracy", "few_shot_accuracy"):
        fig, ax = plt.subplots(figsize=(6.0, 3.6))
        for i, (name, frame) in enumerate(finals.items()):
            stats = frame.groupby(IF_COLUMN)[metric].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index + (i - len(finals) / 2) * 0.6, stats["mean"],
                        yerr=stats["std"], marker="o", ms=3, capsize=2, lw=1,
                        label=record["methods"][name]["label"],
                        ls="--" if name == BOUND else "-")
        ax.set_xlabel("imbalance factor (largest / smallest class)")
        ax.set_ylabel(METRICS[metric] + " accuracy" if metric != "final_accuracy"
                      else "accuracy")
        ax.set_xticks(sorted({f for t in finals.values() for f in t[IF_COLUMN]}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = folder / f"safe-study-{METRICS[metric]}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_report(study_dir: Path, out: Path, figure_dir: Path | None = None,
                 notes: Path | None = None) -> str:
    record, finals, tunes = load_study(study_dir)
    figure_dir = figure_dir or out.parent / "figures"
    pictures = figures(finals, record, figure_dir)
    factors = sorted({f for t in finals.values() for f in t[IF_COLUMN]})
    seeds = sorted({s for t in finals.values() for s in t["seed"]})
    lines = [
        "# The SAFE study: tuned baselines, three seeds, the mission engine",
        "",
        "Generated by `python -m orbitfl.study_report` from the sweep tables of one study "
        "folder; do not edit by hand (regenerate it with the commands at the end).",
        "",
        "Every run is an ordinary `orbitfl` scenario run (`scenarios/study/base.yaml`) with "
        "ideal links (`network.mode: ideal`: every satellite takes part in every round and "
        "payloads cross at once, bytes counted exactly), so the numbers measure the learning "
        "alone. Synthetic long-tail textures, 16 x 16 pixels, 10 classes, "
        "`small-cnn`, 10 clients (Dirichlet 0.5); a tenth of each client's images is held "
        "out as the validation split. Accuracies are on the balanced test set, which "
        "chose nothing (being balanced, its top-1 accuracy equals the balanced accuracy); "
        "few-shot is the mean accuracy of the three rarest training classes; "
        "own-mix is the clients' personalised models weighted to their own class mix "
        "(methods that keep personalised models only).",
        "",
        f"Seeds {', '.join(str(int(s)) for s in seeds)}; imbalance factors "
        f"{', '.join(f'{f:g}' for f in factors)}. Cells are mean ± sample sd over seeds; "
        "Δ is the method minus FedAvg paired by seed, with a 95 % t-interval over seeds "
        "and the Holm-adjusted p-value over the methods compared at that factor. "
        "Wall times were measured one run at a time on a 2-core machine shared with other "
        "work: they rank methods roughly, no more.",
        "",
        budget(study_dir, finals),
        "",
        "## Verdict",
        "",
        verdict(record, finals),
        "",
    ]
    if notes is not None and notes.is_file():
        lines += [notes.read_text().strip(), ""]
    for factor in factors:
        lines += [f"## Imbalance factor {factor:g}", ""] + \
            results_table(record, finals, factor) + [""]
    if BOUND in finals:
        lines += [f"The {record['methods'][BOUND]['label']} row is the centralised upper "
                  "bound: one client holding every training image, through the same engine "
                  "and round budget.", ""]
    chosen = [f"{record['methods'][m]['label']}: " + ", ".join(
        f"{k.split('.')[-1]} {record['choices'][m][k]:g}" for k in TUNED
        if k in record["choices"][m])
        for m in tunes if m in record["choices"]]
    lines += ["## Tuning (validation split; IF 100, seed 1)", "",
              f"Selection: the highest final `{record.get('selection', 'val_balanced_accuracy')}`"
              "; the test set is never read. Chosen: " + "; ".join(chosen) + ". " +
              edge_choices(record, tunes), ""] + tuning_table(record, tunes) + [""]
    lines += ["## Figures", ""] + \
        [f"![{p.stem}]({Path('figures') / p.name if figure_dir == out.parent / 'figures' else p})"
         for p in pictures] + [""]
    lines += ["## Regenerate", "", "```",
              f"nice -n 5 .venv/bin/python -m orbitfl.study --out {study_dir} "
              "--backend ray --workers 1" +
              "".join(f" --set {k}={v}" for k, v in record.get("overrides", [])),
              f".venv/bin/python -m orbitfl.study_report {study_dir} --out {out}"
              + (f" --notes {notes}" if notes is not None else ""),
              "```", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="study folder (python -m orbitfl.study --out)")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--figures", type=Path, default=None,
                        help="figure folder (default: figures/ beside --out)")
    parser.add_argument("--notes", type=Path, default=None,
                        help="hand-written reading of the numbers, placed after the verdict")
    args = parser.parse_args(argv)
    try:
        write_report(args.study, args.out, args.figures, args.notes)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
