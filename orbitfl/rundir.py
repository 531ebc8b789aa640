"""Run directories appear whole or not at all.

Everything is written into a hidden staging directory beside the target, which is renamed
onto the target only when the run has finished; an interrupted or failed run leaves nothing
behind (the staging directory is removed).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from orbitfl.errors import InputError


class StagedRunDirectory:
    """Context manager: ``with StagedRunDirectory(target) as staging: ...``.

    The staging folder is ``.<name>.partial`` beside the target. If the run stops early
    (an interrupt or a crash) after writing a checkpoint, the folder is kept so that
    ``orbitfl run --resume`` can continue it; otherwise it is removed.
    """

    CHECKPOINT = "checkpoint.pt"

    def __init__(self, target: Path, resume: bool = False):
        self.target = Path(target)
        self.staging = self.target.parent / f".{self.target.name}.partial"
        if self.target.exists() and any(self.target.iterdir()):
            raise InputError(f"{self.target}: run directory already exists and is not empty")
        if resume and not (self.staging / self.CHECKPOINT).is_file():
            raise InputError(f"{self.target}: nothing to resume (no checkpoint in "
                             f"{self.staging})")
        if not resume and self.staging.exists():
            raise InputError(f"{self.target}: an earlier run to this directory stopped early; "
                             f"continue it with --resume {self.target}, or delete "
                             f"{self.staging}")
        self.resume = resume

    @property
    def checkpoint(self) -> Path:
        return self.staging / self.CHECKPOINT

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(exist_ok=True)
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            if not self.checkpoint.is_file():
                shutil.rmtree(self.staging, ignore_errors=True)
            return
        self.checkpoint.unlink(missing_ok=True)
        if self.target.exists():
            self.target.rmdir()  # empty, checked on entry
        os.replace(self.staging, self.target)


def atomic_save(obj: Any, path: Path, save) -> None:
    """``save(obj, file)`` into a temporary file, then rename over ``path``."""
    partial = path.with_name(path.name + ".partial")
    save(obj, partial)
    os.replace(partial, path)


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def write_table(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)
