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
from typing import Any, Callable

import pandas as pd

from orbitfl.core.atomic import atomic_write, atomic_write_text
from orbitfl.core.errors import InputError
from orbitfl.rundir.columns import check_columns
from orbitfl.rundir.reader import RunDirectoryError, check_table, parse_manifest

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


def check_report_dir(path: Path, what: str, holds_earlier: Callable[[Path], bool],
                     force: bool = False, how_to_force: str | None = None) -> None:
    """``check_output_dir`` for a report (``what``: "report folder", "contact report
    folder"): a folder that is not empty must hold an earlier report of its kind
    (``holds_earlier``), which the new one may overwrite, unless ``force``;
    ``how_to_force`` says how a caller asks for it (``--force``, ``force=True``)."""
    check_output_dir(path, what)
    if path.is_dir() and any(path.iterdir()) and not holds_earlier(path) and not force:
        hint = f" or give {how_to_force} to write into it" if how_to_force else ""
        raise InputError(f"{path}: {what} is not empty and holds no earlier "
                         f"{what.removesuffix(' folder')}; choose another folder{hint}")


def check_output_file(path: Path, what: str) -> None:
    """An ``InputError`` unless ``path`` is, or can be created as, a regular file: not a
    symbolic link, folder or device, and in a writable folder."""
    path = Path(path)
    _refuse_link(path, what)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: {what} exists and is not a regular file")
    _check_writable(path, path.parent, what)


def _refuse_link(path: Path, what: str) -> None:
    """A symbolic link, or a name that is not UTF-8 (it could not be written into the
    run's manifest at the end), is refused before any work."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{ascii(str(path))}: the {what}'s name is not UTF-8 text; choose "
                         "another name") from None
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
    is stale and cleared by the next run to the same target.

    Entering takes the lock first (``flock`` on ``.lock``, created if missing) and only then
    looks at what the folder holds, so two processes started at the same instant cannot
    both get in. The lock is this process's alone: a forked worker closes its copy
    (``_close_locks_in_child``) and a spawned one never inherits it, so the lock never
    outlives the process that took it. Construction makes the same checks without the
    lock, to refuse early.
    """

    CHECKPOINT = "checkpoint.pt"
    LOCK = ".lock"
    ATTEMPTS = 50  # the lock file removed under us this often in a row: give up

    def __init__(self, target: Path, resume: bool = False):
        self.target = Path(target)
        self.staging = self.target.parent / f".{self.target.name}.partial"
        check_output_dir(self.target, "run directory")
        self.resume = resume
        self._lock: int | None = None
        if self.staging.exists() and _held(self.staging / self.LOCK):
            raise InputError(self._running())
        self._check()

    @property
    def checkpoint(self) -> Path:
        return self.staging / self.CHECKPOINT

    def _running(self) -> str:
        return (f"{self.target}: a run into this directory is already running (it holds "
                f"{self.staging / self.LOCK})")

    def _check(self) -> None:
        """The target is empty; a checkpoint is there if and only if resuming."""
        if self.target.exists() and any(self.target.iterdir()):
            raise InputError(f"{self.target}: run directory already exists and is not empty")
        if self.staging.is_symlink() or (self.staging.exists() and not self.staging.is_dir()):
            raise InputError(f"{self.staging}: the run's staging folder is a symbolic link or "
                             "not a folder; remove it")
        has_checkpoint = self.checkpoint.is_file()
        if self.resume and not has_checkpoint:
            raise InputError(f"{self.target}: nothing to resume (no checkpoint in "
                             f"{self.staging}); run the scenario again without --resume")
        if not self.resume and has_checkpoint:
            raise InputError(f"{self.target}: an earlier run to this directory stopped early; "
                             f"continue it with --resume {self.target}, or delete "
                             f"{self.staging}")

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self._acquire()
        try:
            self._check()  # again, now that no other process can change the folder
            self._clear_stale()
        except BaseException:
            if not self.checkpoint.is_file():
                shutil.rmtree(self.staging, ignore_errors=True)
            self._release()
            raise
        return self.staging

    def _acquire(self) -> int:
        """The lock on ``.lock`` in the staging folder, as a descriptor. The folder may be
        created, cleared or renamed by another process meanwhile: the lock counts only if
        the file locked is still the one at the path."""
        lock = self.staging / self.LOCK
        for _ in range(self.ATTEMPTS):
            try:
                self.staging.mkdir(exist_ok=True)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644)
            except FileNotFoundError:
                continue  # the folder was removed between the two calls
            except OSError as err:
                raise InputError(f"{lock}: cannot create the run's lock file "
                                 f"({err.strerror or type(err).__name__})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InputError(self._running()) from None
            if _same_file(fd, lock):
                _HELD_LOCKS.add(fd)
                return fd
            os.close(fd)  # locked a file that was removed or moved away: try again
        raise InputError(self._running())

    def _clear_stale(self) -> None:
        """Under the lock: remove what a run killed before its first checkpoint left (the
        staging folder itself stays, holding the lock), unless it holds a checkpoint."""
        if self.checkpoint.is_file():
            return
        for entry in self.staging.iterdir():
            if entry.name == self.LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

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
            _HELD_LOCKS.discard(self._lock)
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = None


_HELD_LOCKS: set[int] = set()  # descriptors of the run locks this process holds


def _close_locks_in_child() -> None:
    """In a forked child (a pool worker): close the inherited run locks. ``flock`` belongs
    to the open file, shared by every copy of the descriptor, so a worker that kept its
    copy would hold the run's lock after the mission process died."""
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_locks_in_child)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        here, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _held(lock: Path) -> bool:
    """Whether a live process holds ``lock`` (a process that died released it)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # a link or something unreadable: not ours to take
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


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def write_json(path: Path, document: Any) -> None:
    atomic_write_text(path, _json_text(document))


def write_manifest(path: Path, document: dict) -> None:
    """A run's ``manifest.json``, its text checked first as the reader will read it back
    (``reader.parse_manifest``: the declared keys' types, after ``default=str`` has made
    paths and the like text): a manifest the reader refuses is a programming error, raised
    before a byte is written."""
    text = _json_text(document)
    _as_declared(lambda: parse_manifest(Path(path).parent, text))
    atomic_write_text(path, text)


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Only tables whose columns are declared (and so documented) in ``orbitfl.rundir.columns``
    and hold the declared types, by the reader's own check (``reader.check_table``) of the
    frame in memory (cheaper than reading the file back): anything else is a programming
    error, raised before a byte is written, so a run never publishes a table its reader
    refuses."""
    path = Path(path)
    check_columns(path.name, list(frame.columns))
    _as_declared(lambda: check_table(path.parent, path.name, frame, ()))
    atomic_write(path, lambda partial: frame.to_parquet(partial, index=False))


def _as_declared(check: Callable[[], object]) -> None:
    """``check()``, its ``RunDirectoryError`` (the reader's refusal) as the one-line
    ``RuntimeError`` of a writer that broke the declaration."""
    try:
        check()
    except RunDirectoryError as err:
        raise RuntimeError(f"{err} (refused before writing: orbitfl's writer broke the "
                           "declaration in orbitfl/rundir/columns.py)") from None
