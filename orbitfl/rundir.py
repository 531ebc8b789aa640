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
    """Context manager: ``with StagedRunDirectory(target) as staging: ...``."""

    def __init__(self, target: Path):
        self.target = Path(target)
        if self.target.exists() and any(self.target.iterdir()):
            raise InputError(f"{self.target}: run directory already exists and is not empty")
        self.staging = self.target.parent / f".{self.target.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir()
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        if self.target.exists():
            self.target.rmdir()  # empty, checked on entry
        os.replace(self.staging, self.target)


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def write_table(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)
