"""The import contract (docs/architecture.md): physics never imports learning or the
runner; learning never imports simpy, physics or the runner; analysis reads run directories
only; the kernel (errors, limits, atomic writes, the column declaration, the cache folder)
imports nothing of ours. Checked with import-linter, so a change that breaks the layering
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
         "orbitfl/analysis": "analysis", "orbitfl/tle": "tle"}
KERNEL = ("errors", "limits", "atomic", "columns", "docgen", "cache_dir", "landmask",
          "random_streams", "options", "gc_freeze", "user_json")


def _runner_modules() -> list[str]:
    """Every module of the top layer: whatever in orbitfl/ is not the kernel (a new module
    is covered without editing this test)."""
    return sorted(f"orbitfl.{p.stem}" for p in (REPO / "orbitfl").glob("*.py")
                  if p.stem not in (*KERNEL, "__init__", "__main__"))


def _contracts() -> dict[str, tuple[list[str], list[str]]]:
    runner = _runner_modules()
    return {
        "constellation (physics) imports neither learning, analysis nor the runner":
            (["orbitfl.constellation"], ["orbitfl.fl", "orbitfl.analysis", *runner]),
        "fl (learning) imports neither simpy, physics, analysis nor the runner":
            (["orbitfl.fl"], ["simpy", "orbitfl.constellation", "orbitfl.analysis", *runner]),
        "analysis reads run directories only":
            (["orbitfl.analysis"], ["orbitfl.constellation", "orbitfl.fl", "simpy", "torch",
                                    *runner]),
        "the kernel imports nothing of ours":
            ([f"orbitfl.{m}" for m in KERNEL],
             ["orbitfl.constellation", "orbitfl.fl", "orbitfl.analysis", *runner]),
    }


ACYCLIC = "no two sibling modules or packages import each other, directly or around a cycle"


def _config() -> str:
    lines = ["[importlinter]", "root_package = orbitfl", "include_external_packages = True", ""]
    for i, (name, (sources, forbidden)) in enumerate(_contracts().items()):
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
    assert f"Contracts: {len(_contracts()) + 1} kept, 0 broken" in result.stdout


@pytest.mark.parametrize("layer, forbidden", [
    ("constellation", "from orbitfl.fl.models import build_model"),
    ("fl", "import simpy"),
    ("analysis", "from orbitfl.runner import run"),
])
def test_a_forbidden_import_breaks_the_contract(tree, layer, forbidden):
    (tree / "orbitfl" / layer / "_probe.py").write_text(f"{forbidden}\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "_probe" in result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(layer) for line in broken), broken


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
