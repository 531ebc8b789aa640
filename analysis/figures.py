"""Figures drawn from a run directory's tables (analysis reads only run directories)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MB = 1e6


def accuracy_vs_bytes(run_dir: Path, out: Path) -> Path:
    """Global test accuracy against cumulative bytes moved (uplink + downlink)."""
    rounds = pd.read_parquet(Path(run_dir) / "rounds.parquet")
    total = (rounds["bytes_up"] + rounds["bytes_down"]) / MB
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    ax.plot(total, 100 * rounds["accuracy"], marker="o", label="global model")
    for _, row in rounds.iloc[[-1]].iterrows():
        ax.annotate(f"round {int(row['round'])}: {100 * row['accuracy']:.1f} %",
                    (total.iloc[-1], 100 * row["accuracy"]), textcoords="offset points",
                    xytext=(-10, -14), ha="right")
    ax.set_xlabel("cumulative bytes moved, up + down (MB)")
    ax.set_ylabel("top-1 test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
