"""Run directories appear whole or not at all, only where the user can write them.

Everything is written into a hidden staging directory beside the target, which is renamed
onto the target only when the run has finished; an interrupted or failed run leaves nothing
behind (the staging directory is removed) unless it saved a checkpoint to resume from.
A lock file inside the staging directory keeps a second process out while a run is live.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from orbitfl.atomic import atomic_write, atomic_write_text
from orbitfl.columns import check_columns
from orbitfl.errors import InputError

MAX_COMPONENT = 80
_UNSAFE = re.compile(r"[^\w.-]+")  # letters and digits of any script, '_', '.', '-'


def safe_path_component(name: str) -> str:
    """``name`` as one file or folder name that stays inside its parent folder.

    Separators, NUL, '$', spaces and other punctuation become '_'; leading '.' and '-'
    (hidden files, '..', option-like names) are dropped; a name longer than
    ``MAX_COMPONENT`` is cut and given a short hash of the whole name, so long names that
    differ only at the end stay apart. An empty result becomes 'run'.
    """
    clean = _UNSAFE.sub("_", name).lstrip(".-_") or "run"
    if len(clean) > MAX_COMPONENT:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        clean = f"{clean[:MAX_COMPONENT - 11]}-{digest}"
    return clean


def check_output_dir(path: Path, what: str) -> None:
    """An ``InputError`` unless ``path`` is, or can be created as, a folder to write into:
    not a symbolic link, file or device, and under a writable folder."""
    path = Path(path)
    _refuse_link(path, what)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: {what} exists and is not a folder")
    _check_writable(path, path, what)


def check_output_file(path: Path, what: str) -> None:
    """An ``InputError`` unless ``path`` is, or can be created as, a regular file: not a
    symbolic link, folder or device, and in a writable folder."""
    path = Path(path)
    _refuse_link(path, what)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: {what} exists and is not a regular file")
    _check_writable(path, path.parent, what)


def _refuse_link(path: Path, what: str) -> None:
    if path.is_symlink():
        raise InputError(f"{path}: {what} is a symbolic link; give the real path")


def _check_writable(path: Path, folder: Path, what: str) -> None:
    """``folder`` (where ``path`` goes) exists and is writable, or its nearest existing
    ancestor is, so that it can be created."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{path}: cannot create the {what} there: {existing} is not a "
                         "folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot create the {what} there: {existing} is not "
                         "writable")


class StagedRunDirectory:
    """Context manager: ``with StagedRunDirectory(target) as staging: ...``.

    The staging folder is ``.<name>.partial`` beside the target. If the run stops early
    (an interrupt or a crash) after writing a checkpoint, the folder is kept so that
    ``orbitfl run --resume`` can continue it; otherwise it is removed. A staging folder
    without a checkpoint that no live process holds (a run killed before its first round)
    is stale and removed by the next run to the same target.
    """

    CHECKPOINT = "checkpoint.pt"
    LOCK = ".lock"

    def __init__(self, target: Path, resume: bool = False):
        self.target = Path(target)
        self.staging = self.target.parent / f".{self.target.name}.partial"
        check_output_dir(self.target, "run directory")
        if self.target.exists() and any(self.target.iterdir()):
            raise InputError(f"{self.target}: run directory already exists and is not empty")
        if self.staging.exists() and _held(self.staging / self.LOCK):
            raise InputError(f"{self.target}: a run into this directory is already running "
                             f"(it holds {self.staging / self.LOCK})")
        has_checkpoint = self.checkpoint.is_file()
        if resume and not has_checkpoint:
            raise InputError(f"{self.target}: nothing to resume (no checkpoint in "
                             f"{self.staging}); run the scenario again without --resume")
        if not resume and has_checkpoint:
            raise InputError(f"{self.target}: an earlier run to this directory stopped early; "
                             f"continue it with --resume {self.target}, or delete "
                             f"{self.staging}")
        if not resume and self.staging.exists():
            shutil.rmtree(self.staging)  # stale: stopped before its first checkpoint
        self.resume = resume
        self._lock: int | None = None

    @property
    def checkpoint(self) -> Path:
        return self.staging / self.CHECKPOINT

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(exist_ok=True)
        self._lock = os.open(self.staging / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._release()
            raise InputError(f"{self.target}: a run into this directory is already running "
                             f"(it holds {self.staging / self.LOCK})") from None
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                if self.checkpoint.is_file():
                    exc.orbitfl_resume_dir = self.target  # read by resume_dir_of
                else:
                    shutil.rmtree(self.staging, ignore_errors=True)
                return
            self.checkpoint.unlink(missing_ok=True)
            if self.target.exists():
                self.target.rmdir()  # empty, checked on entry
            os.replace(self.staging, self.target)  # still locked: never taken for stale
            (self.target / self.LOCK).unlink()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = None


def _held(lock: Path) -> bool:
    """Whether a live process holds ``lock`` (a process that died released it)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def resume_dir_of(interrupt: BaseException) -> Path | None:
    """The run directory an interrupted run can be resumed into (it left a checkpoint)."""
    return getattr(interrupt, "orbitfl_resume_dir", None)


def atomic_save(obj: Any, path: Path, save) -> None:
    """``save(obj, file)`` into a temporary file, then rename over ``path``."""
    atomic_write(path, lambda partial: save(obj, partial))


def write_json(path: Path, document: Any) -> None:
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Only tables whose columns are declared (and so documented) in ``orbitfl.columns``:
    anything else is a programming error, raised before a byte is written."""
    check_columns(Path(path).name, list(frame.columns))
    atomic_write(path, lambda partial: frame.to_parquet(partial, index=False))
