"""The shape the next engineer can read (issue 24): no constructor takes more than 8
arguments and no function is longer than 60 lines, in the package's source folders.

Declarative tables are not functions and are not counted: a dataclass's fields (a record
such as ``RoundRecord`` or ``Schedule`` is a table of named values, not a constructor that
wires objects), a dict of options. The allowlist names the functions not yet split, each
with why; it may only shrink: a listed function that now fits, or no longer exists, fails
the test until it is taken off the list.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("orbitfl", "constellation", "fl", "analysis")
MAX_ARGUMENTS = 8   # of a constructor, ``self`` not counted
MAX_LINES = 60      # of a function, decorators and docstring included

# "path:qualified name" -> why it is still long. Only ever remove entries.
ALLOWED_LONG: dict[str, str] = {}
ALLOWED_WIDE: dict[str, str] = {}


def _functions(path: Path):
    """(qualified name, node) of every function and method in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")

    yield from walk(tree, "")


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def _measure(paths: list[Path] | None = None,
             root: Path = REPO) -> tuple[dict[str, int], dict[str, int]]:
    """Functions over the length limit (-> lines) and constructors over the argument
    limit (-> arguments), keyed "path:qualified name"."""
    long, wide = {}, {}
    for path in _sources() if paths is None else paths:
        where = path.relative_to(root).as_posix()
        for name, node in _functions(path):
            key = f"{where}:{name}"
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES:
                long[key] = lines
            if node.name == "__init__":
                a = node.args
                count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - 1  # self
                if count > MAX_ARGUMENTS:
                    wide[key] = count
    return long, wide


def test_no_function_is_longer_than_sixty_lines():
    long, _ = _measure()
    over = {k: v for k, v in long.items() if k not in ALLOWED_LONG}
    assert not over, f"split these functions (lines): {over}"


def test_no_constructor_takes_more_than_eight_arguments():
    _, wide = _measure()
    over = {k: v for k, v in wide.items() if k not in ALLOWED_WIDE}
    assert not over, f"group these constructors' arguments (count): {over}"


def test_the_allowlists_only_shrink():
    """An entry that fits now (or whose function is gone) must leave the list."""
    long, wide = _measure()
    stale = [k for k in ALLOWED_LONG if k not in long] + [k for k in ALLOWED_WIDE
                                                          if k not in wide]
    assert not stale, f"take these off the allowlist: {stale}"


@pytest.mark.parametrize("body_lines, arguments", [(58, 8), (59, 9)])
def test_the_measure_counts_lines_and_arguments(tmp_path, body_lines, arguments):
    """The rule itself, on hand-made code: ``f`` is a def line, the body and a return line
    (60 lines with 58 body lines); the constructor takes ``arguments`` besides self, one
    of them keyword-only."""
    body = "".join("    x = 1\n" for _ in range(body_lines))
    params = ", ".join(f"a{i}" for i in range(arguments - 1))
    path = tmp_path / "probe.py"
    path.write_text(f"class C:\n    def __init__(self, {params}, *, last=0):\n        pass\n"
                    f"\n\ndef f():\n{body}    return x\n")
    long, wide = _measure([path], tmp_path)
    over = body_lines + 2 > MAX_LINES
    assert long == ({"probe.py:f": body_lines + 2} if over else {})
    assert wide == ({"probe.py:C.__init__": arguments} if arguments > MAX_ARGUMENTS else {})
