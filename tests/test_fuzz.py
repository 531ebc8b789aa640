"""Property-based hardening: mutated scenarios and TLE files always end in exit code 0 or 2
with ONE line naming where and what, never a traceback, never a partial run directory.
The three properties run 300 + 300 + 60 = 660 generated cases (derandomised for CI)."""

import copy
import faulthandler
import io
import string
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbitfl.cli import main
from orbitfl.constellation.tle import parse_tle_text
from orbitfl.core.errors import InputError
from orbitfl.core.limits import MAX_ELEMENT_FILE_BYTES, MAX_SCENARIO_BYTES
from orbitfl.scenario import Scenario
from orbitfl.scenario.schema_fields import (
    annotation_options,
    is_list,
    section_fields,
    section_model,
)

from conftest import SCENARIOS, TLE_DIR

BASE = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
BASE["constellation"]["tle"] = str(TLE_DIR / "planet_2024-07-16.tle")
TLE_TEXT = "\n".join((TLE_DIR / "planet_2024-07-16.tle").read_text().splitlines()[:12])
def fuzz(cases: int) -> settings:
    return settings(max_examples=cases, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
COUNTS = {"scenario": 0, "tle": 0, "tle_cli": 0}


def _paths(node, prefix=()):
    """Every YAML path of the document (mappings and list items)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


ALL_PATHS = [p for p in _paths(BASE) if p]
WEIRD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**9, 10**9),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["-3h", "0s", "5 parsecs", "1e309", "nan", "2d2d", "", "..", "/no/such",
                     "FLOCK 9Z*", "svalsat", "2024-13-45T99:00:00Z", "fp64", "topk"]),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                               st.integers(), max_size=2))


@st.composite
def mutated_scenarios(draw):
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            action = draw(st.sampled_from(["delete", "replace", "unknown", "file"]))
            if action == "delete" and isinstance(parent, dict):
                parent.pop(key, None)
            elif action == "unknown" and isinstance(parent, dict):
                parent[draw(st.text(string.ascii_lowercase + "_", min_size=1,
                                    max_size=10))] = 1
            elif action == "file" and isinstance(parent, dict):
                parent[key] = "no/such/file.tle"
            else:
                parent[key] = draw(WEIRD_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return document


def _cli(*args: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = main(list(args))
    return code, err.getvalue()


@fuzz(300)
@given(mutated_scenarios())
def test_mutated_scenarios_fail_cleanly(tmp_path_factory, document):
    COUNTS["scenario"] += 1
    folder = tmp_path_factory.mktemp("fuzz")
    scenario = folder / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, err = _cli("validate", str(scenario))
    assert code in (0, 2)
    assert "Traceback" not in err
    if code == 0 and document.get("fl") is None:  # a contact plan: run refuses it
        run_code, err = _cli("run", str(scenario), "--out", str(folder / "run"))
        assert run_code == 2 and err == f"error: {scenario}: the scenario has no fl: " \
            "section; a run needs one; use orbitfl contacts for its contact plan\n"
        assert sorted(p.name for p in folder.iterdir()) == ["s.yaml"]
    if code == 2:
        lines = err.strip().splitlines()  # every schema error at once, one line each
        assert lines and all(line.startswith(f"error: {scenario}") for line in lines), err
        # run refuses too, and leaves nothing behind
        run_code, _ = _cli("run", str(scenario), "--out", str(folder / "run"))
        assert run_code == 2
        assert sorted(p.name for p in folder.iterdir()) == ["s.yaml"]


TLE_MUTATIONS = st.sampled_from(["truncate", "char", "exponent", "letters", "alpha5",
                                 "drop", "duplicate", "swap"])


@st.composite
def mutated_tles(draw):
    lines = TLE_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        kind = draw(TLE_MUTATIONS)
        if kind == "truncate":
            lines[i] = line[:draw(st.integers(0, max(len(line) - 1, 0)))]
        elif kind == "char" and line:
            j = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:j] + draw(st.sampled_from(string.printable[:95])) + line[j + 1:]
        elif kind == "exponent" and len(line) > 60:
            lines[i] = line[:59] + draw(st.sampled_from(["+", "-", "x", " ", "9"])) + line[60:]
        elif kind == "letters" and len(line) > 20:
            j = draw(st.integers(8, len(line) - 2))
            lines[i] = line[:j] + draw(st.sampled_from("OIlZe.")) + line[j + 1:]
        elif kind == "alpha5" and line[:2] in ("1 ", "2 "):
            lines[i] = line[:2] + draw(st.sampled_from(["A0000", "Z9999", "I1234", "O0001",
                                                        "a1234", "99999", "    1"])) + line[7:]
        elif kind == "drop":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        if not lines:
            lines = [""]
    return "\n".join(lines)


@fuzz(300)
@given(mutated_tles())
def test_mutated_tles_raise_only_input_errors_naming_the_line(text):
    COUNTS["tle"] += 1
    try:
        records = parse_tle_text(text, "fuzz.tle")
    except InputError as err:
        message = str(err)
        assert message.startswith("fuzz.tle") and "\n" not in message
    else:
        assert records and all(len(r.line1) == len(r.line2) == 69 for r in records)
        for record in records:
            record.satrec()  # whatever parses must initialise SGP4


@fuzz(60)
@given(mutated_tles())
def test_mutated_tles_through_the_cli(tmp_path_factory, text):
    COUNTS["tle_cli"] += 1
    folder = tmp_path_factory.mktemp("tlefuzz")
    (folder / "fleet.tle").write_text(text)
    document = copy.deepcopy(BASE)
    document["constellation"] = {"tle": "fleet.tle"}
    document["fl"]["schedule"]["min_clients"] = 1
    (folder / "s.yaml").write_text(yaml.safe_dump(document))
    code, err = _cli("validate", str(folder / "s.yaml"))
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1


def test_at_least_500_fuzz_cases_ran():
    """Runs after the properties above (file order): the counts are the generated cases."""
    total = sum(COUNTS.values())
    assert total >= 500, COUNTS


# Issue 12 families. Each case runs under a watchdog: a hang (even inside C code, where no
# signal handler runs) aborts the session with every thread's stack instead of stalling CI.

def _number_paths(model: type, prefix: tuple = ()):
    """(YAML path, number kinds) of every int and float field of the schema (its models and
    the layers' config dataclasses); list items as index 0."""
    for name, field in section_fields(model).items():
        annotation = field.annotation
        options = annotation_options(annotation)
        section = section_model(annotation)
        if section is not None and any(is_list(o) for o in options):
            yield from _number_paths(section, prefix + (name, 0))
        elif section is not None:
            yield from _number_paths(section, prefix + (name,))
        elif {int, float} & set(options):
            yield prefix + (name,), {int, float} & set(options)


NUMBER_PATHS = list(_number_paths(Scenario))
FLOAT_PATHS = [p for p, kinds in NUMBER_PATHS if float in kinds]
INT_PATHS = [p for p, kinds in NUMBER_PATHS if kinds == {int}]
UNBOUNDED_INTS = {("constellation", "select", "limit")}  # an upper bound on a selection
# BASE with one item in every list of sections, so that a path through a list item reaches
# a field of a valid item (the error must be about the number, not a missing sibling).
FULL = copy.deepcopy(BASE)
FULL["ground_stations"]["sites"][0] = {"id": "home", "lat_deg": 48.0, "lon_deg": 11.0}
FULL["faults"] = {"failures": [{"satellite": "FLOCK 4Y-24", "at": "1h"}],
                  "station_outages": [{"station": "home", "start": "1h", "end": "2h"}]}


def _put(document: dict, path: tuple, value) -> None:
    """Set ``path`` (creating mappings on the way) to ``value``."""
    node = document
    for part, after in zip(path[:-1], path[1:]):
        if isinstance(node, list):
            node = node[part]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = [{}] if isinstance(after, int) else {}
        node = node[part]
    node[path[-1]] = value


def _validate_text(tmp_path_factory, text: str, family: str,
                   also_run: bool = False) -> tuple[int, str, Path]:
    """Validate ``text`` under the watchdog; on exit 2 (and ``also_run``), ``run`` must
    refuse as well and leave no run directory (it validates the same way: the older
    families check that on every case, the cheap ones here on some)."""
    COUNTS[family] = COUNTS.get(family, 0) + 1
    folder = tmp_path_factory.mktemp(family)
    scenario = folder / "s.yaml"
    scenario.write_text(text)
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        code, err = _cli("validate", str(scenario))
        assert code in (0, 2) and "Traceback" not in err
        if code == 2:
            lines = err.strip().splitlines()  # every schema error at once, one line each
            assert lines and all(line.startswith(f"error: {folder}") for line in lines), err
            assert all(len(line) < len(str(scenario)) + 300 for line in lines), \
                "echoes too much input"
        if code == 2 and also_run:
            run_code, _ = _cli("run", str(scenario), "--out", str(folder / "run"))
            assert run_code == 2
            assert sorted(p.name for p in folder.iterdir()) == ["s.yaml"]
    finally:
        faulthandler.cancel_dump_traceback_later()
    return code, err.strip(), scenario


WATCHDOG_S = 120


NON_FINITE = [(path, (float("inf"), float("-inf"), float("nan"))[i % 3])
              for i, path in enumerate(FLOAT_PATHS)]


@pytest.mark.parametrize("path, value", NON_FINITE,
                         ids=[f"{'.'.join(map(str, p))}={v}" for p, v in NON_FINITE])
def test_non_finite_numbers_are_refused_at_every_float_path(tmp_path_factory, path, value):
    document = copy.deepcopy(FULL)
    _put(document, path, value)
    code, err, _ = _validate_text(tmp_path_factory, yaml.safe_dump(document), "non_finite")
    assert code == 2 and ".".join(map(str, path)) in err, err


@pytest.mark.parametrize("path", [p for p in INT_PATHS if p not in UNBOUNDED_INTS],
                         ids=[".".join(map(str, p)) for p in INT_PATHS if p not in UNBOUNDED_INTS])
def test_absurd_counts_are_refused_at_every_int_path(tmp_path_factory, path):
    document = copy.deepcopy(FULL)
    _put(document, path, 10**30)
    code, err, _ = _validate_text(tmp_path_factory, yaml.safe_dump(document), "absurd")
    assert code == 2 and ".".join(map(str, path)) in err, err


@fuzz(10)
@given(st.sampled_from(FLOAT_PATHS), st.sampled_from([1e300, -1e300, 1e-300]))
def test_huge_and_tiny_floats_are_refused_or_accepted_cleanly(tmp_path_factory, path, value):
    document = copy.deepcopy(FULL)
    _put(document, path, value)
    _validate_text(tmp_path_factory, yaml.safe_dump(document), "absurd")


BASE_LINES = yaml.safe_dump(FULL, sort_keys=False).splitlines()
KEY_LINES = [i for i, line in enumerate(BASE_LINES)
             if line.strip() and not line.lstrip().startswith("-") and ":" in line]


@fuzz(30)
@given(st.sampled_from(KEY_LINES))
def test_duplicate_keys_are_refused_with_their_line(tmp_path_factory, index):
    lines = BASE_LINES[:index + 1] + BASE_LINES[index:]
    code, err, scenario = _validate_text(tmp_path_factory, "\n".join(lines) + "\n",
                                         "duplicate", also_run=True)
    assert code == 2 and err.startswith(f"error: {scenario}:{index + 2}:")
    assert f"duplicate key {BASE_LINES[index].split(':')[0].strip()!r}" in err


@st.composite
def aliased_documents(draw):
    """A top-level key whose value is a chain of anchors, each ``width`` aliases of the one
    before (width^depth values once expanded), or an alias inside its own anchor."""
    document = copy.deepcopy(FULL)
    key = draw(st.sampled_from(sorted(document)))
    del document[key]
    if draw(st.booleans()):
        value = "&loop [x, *loop]"
    else:
        width, depth = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        chain = ["&a0 [x]"] + [f"&a{k} [{', '.join([f'*a{k - 1}'] * width)}]"
                               for k in range(1, depth)]
        value = f"[{', '.join(chain)}]"
    return yaml.safe_dump(document) + f"{key}: {value}\n"


@fuzz(30)
@given(aliased_documents())
def test_aliases_fail_fast_and_short(tmp_path_factory, text):
    code, _, _ = _validate_text(tmp_path_factory, text, "alias", also_run=True)
    assert code == 2


@fuzz(20)
@given(st.tuples(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 31),
                 st.integers(0, 23), st.integers(0, 59), st.integers(0, 60)))
def test_unquoted_timestamps_are_dates_or_one_line(tmp_path_factory, parts):
    stamp = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*parts)
    document = copy.deepcopy(FULL)
    del document["epoch"]
    code, err, scenario = _validate_text(tmp_path_factory,
                                         f"epoch: {stamp}\n" + yaml.safe_dump(document),
                                         "timestamp")
    try:
        datetime(*parts)
    except ValueError:
        assert code == 2 and err.startswith(f"error: {scenario}:1:8: epoch: "), err
        assert ("leap second" in err) == (parts[5] == 60)


@pytest.mark.parametrize("padding", [1, 4096])
def test_scenario_files_around_the_size_limit(tmp_path_factory, padding):
    text = yaml.safe_dump(FULL)
    text += "# " + "x" * (MAX_SCENARIO_BYTES - len(text.encode()) - 3 + padding) + "\n"
    code, err, scenario = _validate_text(tmp_path_factory, text, "oversized")
    assert (code == 2) == (padding > 0), err
    if padding > 0:
        assert err == f"error: {scenario}: scenario file is larger than the 1 MiB limit"


def test_element_file_over_the_size_limit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tle")
    tle = folder / "huge.tle"
    with tle.open("wb") as f:
        f.truncate(MAX_ELEMENT_FILE_BYTES + 1)  # sparse: no disk used
    document = copy.deepcopy(FULL)
    document["constellation"]["tle"] = str(tle)
    code, err = _cli("validate", _write(folder, document))
    assert code == 2 and err == f"error: {tle}: element file is larger than the 64 MiB limit\n"


def _write(folder: Path, document: dict) -> str:
    (folder / "s.yaml").write_text(yaml.safe_dump(document))
    return str(folder / "s.yaml")


# Issue 21: a sweep file's replicates: and seeds: keys, with any value, read cleanly: a
# plan, or one InputError line naming the sweep file and the key.
SWEEP_VALUES = st.one_of(WEIRD_VALUES, st.integers(-2**70, 2**70),
                         st.lists(st.one_of(st.integers(-3, 2**64), WEIRD_VALUES), max_size=4))


@fuzz(60)
@given(st.sampled_from(["replicates", "seeds"]), SWEEP_VALUES)
def test_mutated_replicates_and_seeds_are_one_line_errors(tmp_path_factory, key, value):
    from orbitfl.sweeps.runner import load_sweep

    folder = tmp_path_factory.mktemp("replicates")
    _write(folder, FULL)
    sweep = folder / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": "s.yaml", "parameters": {"fl.rounds": [1, 2]},
                                     key: value}))
    try:
        spec = load_sweep(sweep)
    except InputError as err:
        message = str(err)
        assert message.startswith(f"{sweep}: {key}") and "\n" not in message, message
        assert len(message) < len(str(sweep)) + 200, "echoes too much input"
        return
    assert spec.replicates.given and 1 <= spec.replicates.count <= 1000
    assert spec.runs == 2 * spec.replicates.count


# Issue 22: a file cut short by a crash, or pasted from a terminal, holds control characters
# or ends anywhere. YAML forbids C0 and C1 controls (bar tab and newlines), DEL and the
# non-characters U+FFFE/U+FFFF, in comments too: every such file is refused, on one line
# with file:line:column, before any work, at every position class of the text.
CONTROL_CHARS = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0xFFFE, 0xFFFF)
                 if chr(c) not in "\t\n\r\x85"]
POSITIONS = ("start", "key", "value", "end")


def _position(text: str, where: str, draw) -> int:
    """An offset of ``text`` in the class ``where``: its first or last character, or inside
    a key or a value of a ``key: value`` line."""
    if where in ("start", "end"):
        return 0 if where == "start" else len(text)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = text.splitlines()
    candidates = []
    for i, line in enumerate(lines):
        key = line.lstrip(" -")
        colon = line.find(": ")
        if not key or colon < 0 or key.startswith("#"):
            continue
        first = len(line) - len(key)
        span = (first, colon) if where == "key" else (colon + 2, len(line))
        if span[1] > span[0]:
            candidates.append((starts[i], span))
    offset, (low, high) = draw(st.sampled_from(candidates))
    return offset + draw(st.integers(low, high - 1))


@st.composite
def with_control_char(draw, text: str):
    where = draw(st.sampled_from(POSITIONS))
    at = _position(text, where, draw)
    return text[:at] + draw(st.sampled_from(CONTROL_CHARS)) + text[at:], at


SCENARIO_TEXT = "# orbit \u03a9: a scenario's own comment\n" + yaml.safe_dump(FULL, sort_keys=False)


def _line_col(text: str, at: int) -> str:
    """``line:column`` (1-based) of offset ``at``."""
    return f"{text.count(chr(10), 0, at) + 1}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}"


@fuzz(40)
@given(with_control_char(SCENARIO_TEXT))
def test_control_characters_in_a_scenario_are_one_line(tmp_path_factory, case):
    text, at = case
    code, err, scenario = _validate_text(tmp_path_factory, text, "control", also_run=True)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {scenario}:{_line_col(text, at)}: "), err


@fuzz(30)
@given(st.integers(0, len(SCENARIO_TEXT.encode()) - 1))
def test_a_scenario_cut_at_any_byte_is_accepted_or_one_line(tmp_path_factory, length):
    data = SCENARIO_TEXT.encode()[:length]  # may end inside the comment's two-byte letter
    COUNTS["truncated"] = COUNTS.get("truncated", 0) + 1
    folder = tmp_path_factory.mktemp("truncated")
    (folder / "s.yaml").write_bytes(data)
    code, err = _cli("validate", str(folder / "s.yaml"))
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:  # every schema problem of what is left, one line each
        lines = err.strip().splitlines()
        assert lines and all(line.startswith(f"error: {folder / 's.yaml'}") for line in lines)


SWEEP_TEXT = ("# a sweep \u00e0 la carte\nbase: base.yaml\nmode: grid\nname: fuzzed\n"
              "parameters:\n  fl.lr: [0.01, 0.05]\n  links.downlink:\n"
              "    - {preset: dove-x}\n    - {rate_mbps: 2}\n")


def _sweep_folder(tmp_path_factory, family: str) -> Path:
    """A folder with the sweep's base scenario beside where the sweep file goes."""
    COUNTS[family] = COUNTS.get(family, 0) + 1
    folder = tmp_path_factory.mktemp(family)
    (folder / "base.yaml").write_text(yaml.safe_dump(FULL))
    return folder


@fuzz(30)
@given(with_control_char(SWEEP_TEXT))
def test_control_characters_in_a_sweep_file_are_one_line(tmp_path_factory, case):
    text, at = case
    folder = _sweep_folder(tmp_path_factory, "sweep_control")
    sweep = folder / "sweep.yaml"
    sweep.write_text(text)
    code, err = _cli("sweep", str(sweep), "--out", str(folder / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {sweep}:{_line_col(text, at)}: "), err
    assert sorted(p.name for p in folder.iterdir()) == ["base.yaml", "sweep.yaml"]


@fuzz(30)
@given(st.integers(0, len(SWEEP_TEXT.encode()) - 1))
def test_a_sweep_file_cut_at_any_byte_is_read_or_one_line(tmp_path_factory, length):
    """The sweep command's reading step (a complete file would run its points)."""
    from orbitfl.sweeps.runner import load_sweep

    sweep = _sweep_folder(tmp_path_factory, "sweep_truncated") / "sweep.yaml"
    sweep.write_bytes(SWEEP_TEXT.encode()[:length])  # may end inside the two-byte letter
    try:
        load_sweep(sweep)
    except InputError as err:
        assert str(err).startswith(f"{sweep.parent}") and "\n" not in str(err), err
