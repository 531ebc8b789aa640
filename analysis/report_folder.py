"""The marker file that makes a folder a report: what it lists may be written over by a
later report, and nothing else in the folder is ours (``rundir.check_report_dir``)."""

from __future__ import annotations

import json
from pathlib import Path

from orbitfl.core.atomic import atomic_write_text

MARKER = "orbitfl-report.json"


def marked(out: Path, sources: list[Path], written: list[Path]) -> list[Path]:
    """``written`` plus the ``MARKER`` file that lists it (what a later report may replace)."""
    return written + [atomic_write_text(out / MARKER, json.dumps(
        {"runs": [str(p) for p in sources],
         "files": sorted(p.name for p in written if p.parent == out)}, indent=1))]


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier report (so writing into it loses nothing else)."""
    return (Path(folder) / MARKER).is_file()
