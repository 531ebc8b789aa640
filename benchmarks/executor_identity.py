"""Where clients train never changes a mission's results, checked at constellation scale:
the same FedAvg Walker-shell mission as ``mission_scale.py`` run serially, on a local pool
of 2 workers and on 2 Ray actors, every table of the run directories compared exactly
(tests/test_executors.py checks the same on tiny missions, weights and states included).

    .venv/bin/python benchmarks/executor_identity.py              # 300 satellites, 2 rounds
    .venv/bin/python benchmarks/executor_identity.py --sizes 12   # smoke run

Prints one line per backend; exits non-zero when a table differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from mission_scale import SIZES, scenario_mapping

BACKENDS = {"serial": {}, "local/2": {"execution.backend": "local", "execution.workers": 2},
            "ray/2": {"execution.backend": "ray", "execution.workers": 2}}


def differences(a: Path, b: Path) -> list[str]:
    """Names of the tables of run ``a`` that are not exactly those of run ``b``."""
    differing = []
    for table in sorted(a.glob("*.parquet")):
        try:
            pd.testing.assert_frame_equal(pd.read_parquet(table),
                                          pd.read_parquet(b / table.name), check_exact=True)
        except (AssertionError, FileNotFoundError):
            differing.append(table.stem)
    return differing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[300], choices=sorted(SIZES))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("ORBITFL_CACHE_DIR", tempfile.mkdtemp())
    import orbitfl.api as api

    failed = False
    for satellites in args.sizes:
        mapping = {**scenario_mapping(satellites, args.rounds), "report": {"figures": False}}
        out = Path(tempfile.mkdtemp())
        for name, overrides in BACKENDS.items():
            api.run(api.load_scenario(mapping, overrides=overrides),
                    out=out / name.replace("/", "-"), progress=False)
        tables = len(list((out / "serial").glob("*.parquet")))
        for name in list(BACKENDS)[1:]:
            differing = differences(out / "serial", out / name.replace("/", "-"))
            failed |= bool(differing)
            print(f"{satellites} satellites, {args.rounds} rounds: serial vs {name}: " +
                  (f"all {tables} tables identical" if not differing
                   else f"DIFFERENT: {', '.join(differing)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
