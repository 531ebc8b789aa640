"""Documents generated from a declaration (the run directory's columns, the scenario
reference): one Markdown cell escape and one command shape, ``python -m MODULE [--write
PATH]``. A leaf module (standard library only), so the kernel's declarations may use it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def table_cell(text: str) -> str:
    """``text`` as one Markdown table cell: pipes escaped, '-' for nothing."""
    return text.replace("|", "\\|") or "-"


def generator_main(prog: str, description: str, render: Callable[[], str],
                   argv: list[str] | None = None) -> int:
    """Print the rendered Markdown, or write it to ``--write PATH``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", type=Path, metavar="PATH",
                        help="write the Markdown there (default: print it)")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render())
    else:
        args.write.write_text(render(), encoding="utf-8")
    return 0
