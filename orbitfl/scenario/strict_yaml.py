"""Reading a scenario's YAML strictly: PyYAML's safe loader lets the last of two equal keys
win silently, raises a bare ``ValueError`` on an impossible date, recurses without bound on
deep nesting, and expands aliases without limit (a few lines can stand for 9^9 values). Here
each is an ``InputError`` with ``file:line:column``, the YAML path and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.reader import ReaderError

from orbitfl.core.errors import InputError, short
from orbitfl.core.limits import MAX_YAML_DEPTH, MAX_YAML_VALUES

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Refused(ConstructorError):
    """A document PyYAML would accept that a scenario may not be (its message is final)."""


def load_yaml(text: str, path: Path) -> Any:
    """The document in ``text`` (read from ``path``), or an ``InputError`` on one line.

    Every error of the reader's family is caught, not a list of cases: PyYAML checks the
    characters as it builds the loader (a control character is a ``ReaderError`` before any
    parsing), and a deep document could still exhaust the stack below our depth bound."""
    loader = None
    try:
        loader = _StrictLoader(text)
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise InputError(_describe_yaml_error(err, text, path)) from None
    except (ValueError, RecursionError) as err:  # a scalar's own parser; a stack exhausted
        raise InputError(f"{path}: cannot read the YAML ({type(err).__name__}: "
                         f"{short(str(err))[1:-1]})") from None
    finally:
        if loader is not None:
            loader.dispose()


def _describe_yaml_error(err: yaml.YAMLError, text: str, path: Path) -> str:
    """``file:line:column: problem`` for any PyYAML error."""
    if isinstance(err, ReaderError):  # a character YAML does not allow: no mark, a position
        before = text[:err.position]
        line, column = before.count("\n") + 1, err.position - (before.rfind("\n") + 1) + 1
        return (f"{path}:{line}:{column}: YAML syntax error: character "
                f"U+{err.character:04X} is not allowed in YAML (a control or special character)")
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = getattr(err, "problem", None) or (str(err).splitlines() or ["unreadable"])[0]
    label = "" if isinstance(err, _Refused) else "YAML syntax error: "
    return f"{where}: {label}{problem[:200]}".replace("\n", " ")


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._paths: dict[int, str] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                           self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        self._paths = _check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # merged keys may be overridden; unhashable keys PyYAML refuses
            key = self.construct_object(key_node)
            if key in seen:
                raise _Refused(None, None, f"{self._where(node)}: duplicate key {short(key)} "
                               f"(first on line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as err:  # a scalar PyYAML resolved but cannot build
            if isinstance(err, yaml.YAMLError):
                raise
            raise _Refused(None, None, f"{self._where(node)}: {_scalar_problem(node, err)}",
                           node.start_mark) from None

    def _where(self, node: Node) -> str:
        return self._paths.get(id(node)) or "top level"


def _scalar_problem(node: Node, err: ValueError) -> str:
    value = short(node.value)[1:-1]
    if node.tag == _TIMESTAMP_TAG:
        match = yaml.SafeLoader.timestamp_regexp.match(node.value)
        if match and match.group("second") == "60":
            return (f"{value} is a leap second; a leap-second time is not accepted as an "
                    "epoch")
        return f"invalid date or time {value} ({err})"
    return f"cannot read {short(node.value)} as {node.tag.rsplit(':', 1)[-1]} " \
           f"({str(err).split(':')[0]})"


def _children(node: Node) -> list[tuple[str, Node]]:
    """(path step, node) of each key, value or item under ``node``."""
    if isinstance(node, SequenceNode):
        return [(str(i), child) for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        steps = []
        for key, value in node.value:
            name = str(key.value)[:60] if isinstance(key, yaml.ScalarNode) else "?"
            steps += [(name, key), (name, value)]
        return steps
    return []


def _check_expansion(root: Node) -> dict[int, str]:
    """Refuse a document whose aliases make it refer to itself, or expand it past
    ``MAX_YAML_VALUES`` values or ``MAX_YAML_DEPTH`` levels; each node is visited once
    however often it is referred to. Returns every node's YAML path (the first way in)."""
    paths = {id(root): ""}
    done: dict[int, tuple[int, int]] = {}  # node -> (values, depth) once expanded
    open_nodes: set[int] = set()           # the nodes on the current path from the root
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            below = [done[id(child)] for _, child in _children(node)]
            values = 1 + sum(v for v, _ in below)
            depth = 1 + max((d for _, d in below), default=0)
            if values > MAX_YAML_VALUES:
                raise _Refused(None, None, f"{paths[key] or 'top level'}: aliases expand to "
                               f"more than {MAX_YAML_VALUES} values", node.start_mark)
            if depth > MAX_YAML_DEPTH:
                raise _Refused(None, None, f"{paths[key] or 'top level'}: aliases make it "
                               f"nested more than {MAX_YAML_DEPTH} levels deep",
                               node.start_mark)
            done[key] = (values, depth)
        elif key in open_nodes:
            raise _Refused(None, None, f"{paths.get(key) or 'top level'}: an alias refers to "
                           "itself", node.start_mark)
        elif key not in done:
            open_nodes.add(key)
            stack.append((node, True))
            for step, child in _children(node):
                paths.setdefault(id(child), f"{paths[key]}.{step}".lstrip("."))
                stack.append((child, False))
    return paths
