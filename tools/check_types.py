"""mypy with a ratchet: the kernel, physics and learning layers must type-check cleanly;
every other module may keep at most the errors counted in tools/mypy-ratchet.txt, a count
that may only shrink (``--update`` rewrites it after a fix; it refuses to let one grow).

mypy reads the package through the strict editable install's link tree (the ``orbitfl.*``
shape that setup.py maps the folders into), so it runs from outside the checkout, where the
bare ``orbitfl/`` folder would otherwise shadow the installed package.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RATCHET = REPO / "tools" / "mypy-ratchet.txt"
# Held at zero errors (issue 24): physics, learning and the kernel (tests/test_layering.py).
STRICT = ("orbitfl.constellation", "orbitfl.fl", "orbitfl.core")
ERROR = re.compile(r"^(?P<path>[^:]+\.py):\d+: error:")


def module_of(path: str) -> str:
    """``.../orbitfl/fl/models.py`` -> ``orbitfl.fl.models``."""
    parts = Path(path).with_suffix("").parts
    tail = parts[len(parts) - 1 - parts[::-1].index("orbitfl"):]
    return ".".join(tail).removesuffix(".__init__")


def mypy_errors() -> tuple[Counter[str], str]:
    """Errors per module, and mypy's whole output."""
    with tempfile.TemporaryDirectory() as outside:
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
             "--python-executable", sys.executable, "-p", "orbitfl"],
            cwd=outside, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode not in (0, 1) or "error: " not in output and done.returncode:
        raise SystemExit(f"mypy did not run:\n{output}")
    counts: Counter[str] = Counter()
    for line in output.splitlines():
        if found := ERROR.match(line):
            counts[module_of(found["path"])] += 1
    return counts, output


def in_strict_layer(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in STRICT)


def read_ratchet() -> dict[str, int]:
    if not RATCHET.exists():
        return {}
    pairs = (line.split() for line in RATCHET.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {name: int(count) for name, count in pairs}


def write_ratchet(counts: Counter[str]) -> None:
    lines = ["# mypy errors allowed per module (tools/check_types.py); may only shrink."]
    lines += [f"{name} {counts[name]}" for name in sorted(counts)]
    RATCHET.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true",
                        help="rewrite the ratchet with today's counts (none may grow)")
    args = parser.parse_args()
    counts, output = mypy_errors()
    # The first --update (no ratchet yet) records today's counts; later ones may only shrink.
    allowed = dict(counts) if args.update and not RATCHET.exists() else read_ratchet()
    strict = sorted(m for m in counts if in_strict_layer(m))
    grown = sorted(m for m in counts
                   if not in_strict_layer(m) and counts[m] > allowed.get(m, 0))
    if strict or grown:
        print(output, end="")
        for module in strict:
            print(f"error: {module} has {counts[module]} mypy error(s); its layer must have none")
        for module in grown:
            print(f"error: {module} has {counts[module]} mypy error(s), the ratchet allows "
                  f"{allowed.get(module, 0)} (tools/mypy-ratchet.txt)")
        return 1
    if args.update:
        write_ratchet(counts)
    total = sum(counts.values())
    print(f"mypy: {total} error(s) left in {len(counts)} module(s), none above the ratchet; "
          f"{', '.join(STRICT)} clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
