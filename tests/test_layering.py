"""The import contracts (docs/architecture.md): inside ``orbitfl`` the subpackages are
layers (front doors > engine > scenario | analysis > physics | learning | run directories >
core), and a layer imports only the layers below it; learning never imports simpy;
analysis reads run directories only (no simpy, no torch); no two siblings import each
other around a cycle. Checked with import-linter, so a change that breaks the layering
fails CI.

The repository's folders install under one ``orbitfl`` namespace (``constellation/`` is
``orbitfl.constellation``), which import-linter cannot read from the source tree; the test
lays the installed shape out with symbolic links and lints that.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"orbitfl": "orbitfl", "orbitfl/constellation": "constellation", "orbitfl/fl": "fl",
         "orbitfl/analysis": "analysis", "orbitfl/tle": "tle", "orbitfl/scenarios": "scenarios"}

# Highest first; ``a | b`` are independent (neither imports the other). Exhaustive: a new
# subpackage or top-level module of orbitfl must be given its place here.
LAYERS = (
    "studies | __main__",
    "cli | api",
    "commands | sweeps",
    "engine",
    "scenario | analysis",
    "constellation | fl | rundir",
    "core",
    "tle | scenarios",
)
LAYERS_CONTRACT = "orbitfl's layers, highest first (LAYERS)"
FORBIDDEN = {
    "fl (learning) imports no simpy": (["orbitfl.fl"], ["simpy"]),
    "analysis reads run directories only (no simpy, no torch)":
        (["orbitfl.analysis"], ["simpy", "torch"]),
}
ACYCLIC = "no two sibling modules or packages import each other, directly or around a cycle"


def _config() -> str:
    lines = ["[importlinter]", "root_package = orbitfl", "include_external_packages = True", "",
             "[importlinter:contract:layers]", f"name = {LAYERS_CONTRACT}", "type = layers",
             "containers =", "    orbitfl", "exhaustive = true", "layers =",
             *(f"    {layer}" for layer in LAYERS),
             # ``orbitfl.run`` and the rest of the API are attributes of the root package,
             # imported when first used (orbitfl/__init__.py): the root is no layer.
             "ignore_imports =", "    orbitfl -> orbitfl.api", ""]
    for i, (name, (sources, forbidden)) in enumerate(FORBIDDEN.items()):
        lines += [f"[importlinter:contract:{i}]", f"name = {name}", "type = forbidden",
                  "source_modules =", *(f"    {m}" for m in sources),
                  "forbidden_modules =", *(f"    {m}" for m in forbidden), ""]
    lines += ["[importlinter:contract:acyclic]", f"name = {ACYCLIC}", "type = acyclic_siblings",
              "ancestors =", "    orbitfl", ""]
    return "\n".join(lines)


def _installed_shape(into: Path) -> Path:
    """The package as a wheel installs it, one symbolic link per source file."""
    for target, folder in ROOTS.items():
        for source in (REPO / folder).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            link = into / target / source.relative_to(REPO / folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return into


def _lint(tree: Path) -> subprocess.CompletedProcess:
    (tree / ".importlinter").write_text(_config())
    env = {**os.environ, "PYTHONPATH": str(tree)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tree(tmp_path):
    return _installed_shape(tmp_path / "site")


def test_the_layers_keep_their_contract(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"Contracts: {len(FORBIDDEN) + 2} kept, 0 broken" in result.stdout


@pytest.mark.parametrize("layer, forbidden, contract", [
    ("constellation", "from orbitfl.fl.models import build_model", "orbitfl's layers"),
    ("fl", "import simpy", "fl (learning)"),
    ("analysis", "import torch", "analysis reads"),
    ("analysis", "from orbitfl.engine.runner import run", "orbitfl's layers"),
    ("core", "from orbitfl.scenario import Scenario", "orbitfl's layers"),
    ("rundir", "from orbitfl.analysis.run_model import load_run", "orbitfl's layers"),
    ("scenario", "from orbitfl.engine.prepare import prepare", "orbitfl's layers"),
    ("engine", "from orbitfl.sweeps.runner import run_sweep", "orbitfl's layers"),
    ("sweeps", "from orbitfl.cli import main", "orbitfl's layers"),
])
def test_a_forbidden_import_breaks_the_contract(tree, layer, forbidden, contract):
    """Each layer's own probe: an import its contract refuses must fail the lint."""
    (tree / "orbitfl" / layer / "_probe.py").write_text(f"{forbidden}\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "_probe" in result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), broken


@pytest.mark.parametrize("folder", ["constellation", "fl", "analysis"])
def test_a_folder_imports_only_under_the_orbitfl_namespace(folder):
    """From the repository root a folder's bare name is on the path; importing it must fail
    in one line instead of loading a second copy of the physics (issue 24), while the
    namespaced name imports the same module objects the package uses."""
    bare = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=REPO,
                          capture_output=True, text=True)
    assert bare.returncode != 0
    assert f"import orbitfl.{folder}, not {folder}" in bare.stderr
    namespaced = subprocess.run(
        [sys.executable, "-c", f"import sys, orbitfl.{folder}; "
         f"print(sorted(m for m in sys.modules if m.split('.')[0] == '{folder}'))"],
        cwd=REPO, capture_output=True, text=True)
    assert namespaced.returncode == 0, namespaced.stderr
    assert namespaced.stdout.strip() == "[]"


def test_no_module_imports_a_folder_by_its_bare_name():
    """The lint rule behind the test above: no source, test, benchmark or example imports
    ``constellation``, ``fl``, ``analysis`` or ``scenarios`` other than as ``orbitfl.*``
    (relative imports inside a package are fine: they resolve under the namespace)."""
    bare = {"constellation", "fl", "analysis", "scenarios"}
    offenders = []
    for path in sorted(REPO.glob("**/*.py")):
        if any(part.startswith(".") or part in ("build", "__pycache__")
               for part in path.relative_to(REPO).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: import {name}"
                          for name in names if name.split(".")[0] in bare]
    assert not offenders, "import these as orbitfl.*:\n" + "\n".join(offenders)
