"""Which code computed a result: the SHA-256 of orbitfl's own Python sources as installed.

A run's manifest and checkpoint carry it beside the scenario's content hash, because the
same scenario computed by other code is another result: a sweep reuses a finished point,
and a run resumes from a checkpoint, only when both match (docs/run-directory.md)."""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

# The folders setup.py installs as code under the orbitfl namespace, each walked from its
# own folder; tle and scenarios are data, which a scenario's content hash already covers
# where a run reads it. ``orbitfl.studies`` holds applications that drive runs (which
# settings to run, how to report them) and is never imported by one: a study's driver
# may change without making the runs it already has another code's results.
CODE_PACKAGES = ("orbitfl", "orbitfl.constellation", "orbitfl.fl", "orbitfl.analysis")
MAPPED = {"constellation", "fl", "analysis", "tle", "scenarios"}  # setup.py's other roots
APPLICATIONS = {"studies"}


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """SHA-256 over the dotted name and bytes of every module of ``code_modules``, in name
    order: a wheel, an editable install and a checkout of the same sources give the same
    hash."""
    modules = code_modules()
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + modules[name].read_bytes() + b"\0")
    return digest.hexdigest()


def code_modules() -> dict[str, Path]:
    """Dotted name -> source file of every module of the installed ``orbitfl`` package that
    a run can execute: physics, learning and analysis layers included, the study
    applications not."""
    modules: dict[str, Path] = {}
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(list(spec.submodule_search_locations)[0])  # its own folder first
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder).with_suffix("")
            elsewhere = package == "orbitfl" and relative.parts[0] in MAPPED | APPLICATIONS
            if "__pycache__" not in relative.parts and not elsewhere:
                modules[".".join((package, *relative.parts))] = path
    return modules
