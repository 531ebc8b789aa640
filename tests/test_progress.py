"""What a user sees while long work runs: status lines through stdlib logging (plain on
stderr, quieter with -q, debug with --verbose), progress bars with an ETA on a terminal and
none elsewhere, and lower layers that know nothing of rich."""

import ast
import io
import logging

import pytest
import yaml
from rich.console import Console
from test_end_to_end import TINY

from orbitfl.cli import main
from orbitfl.core import progress
from orbitfl.engine.prepare import prepare
from orbitfl.engine.world import build_world

from conftest import REPO

SCENARIO = {**TINY, "name": "progress", "duration": "2h", "contacts": {"cache": False}}


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


@pytest.mark.parametrize("flags, shown, hidden", [
    ([], ["contacts: 3 satellites x 2 stations", "warning: watch"], ["debug:"]),
    (["-q"], ["warning: watch"], ["contacts:", "debug:"]),
    (["--verbose"], ["contacts: 3 satellites", "debug: orbitfl.test: detail",
                     "warning: watch"], []),
])
def test_command_logging_levels(scenario, tmp_path, capsys, monkeypatch, flags, shown, hidden):
    """The contacts command's status lines, and a warning and a debug line logged by a
    module of the package while it runs."""
    import orbitfl.commands.contacts_report as report

    original = report.build_world

    def noisy(*args, **kwargs):
        logging.getLogger("orbitfl.test").warning("watch")
        logging.getLogger("orbitfl.test").debug("detail")
        return original(*args, **kwargs)

    monkeypatch.setattr(report, "build_world", noisy)
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "c.csv"), *flags]) == 0
    err = capsys.readouterr().err
    for line in shown:
        assert line in err, err
    for line in hidden:
        assert line not in err, err
    assert err.count("warning: watch") == 1  # one handler, however often main() ran


def test_quiet_and_verbose_exclude_each_other(scenario, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(scenario), "-q", "--verbose"])
    assert stop.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_no_bars_when_stderr_is_not_a_terminal(capsys):
    bars = progress.Bars(enabled=True)  # pytest's captured stderr is no terminal
    assert not bars.enabled
    with bars:
        bars.task("rounds")(1, 3)
    assert capsys.readouterr().err == ""


def test_bars_show_each_stage_with_counts_and_eta(scenario, monkeypatch):
    """On a terminal: one bar per stage, with its done/total, elapsed time and ETA."""
    screen = io.StringIO()
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    monkeypatch.setattr(progress, "_console",
                        lambda: Console(file=screen, force_terminal=True, width=120))
    bars = progress.Bars(enabled=True)
    with bars:
        build_world(prepare(scenario), bars.task("contacts"))
        advance = bars.task("rounds")
        for done in range(4):
            advance(done, 3)
    text = screen.getvalue()
    assert "contacts" in text and "rounds" in text and "3/3" in text and "ETA" in text
    assert not progress.Bars(enabled=False).enabled


def test_quiet_bars_never_draw(monkeypatch):
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    assert progress.Bars(enabled=True).enabled and not progress.Bars(enabled=False).enabled


def test_physics_and_learning_layers_import_neither_rich_nor_the_progress_module():
    """They take a plain ``progress(done, total)`` callback and log through stdlib logging."""
    for folder in ("constellation", "fl"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    assert not name.startswith(("rich", "tqdm", "orbitfl.core.progress")), \
                        f"{path}: imports {name}"


def test_no_log_stream_parameter_is_threaded_through_calls():
    """Status lines go through module loggers: no function takes a text stream to write
    them to."""
    for folder in ("orbitfl", "constellation", "fl", "analysis"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for a in (*node.args.args, *node.args.kwonlyargs):
                        kind = ast.unparse(a.annotation) if a.annotation else ""
                        assert "TextIO" not in kind, f"{path}:{node.lineno}: {node.name}"


def test_api_shows_status_lines_only_when_the_caller_configured_no_logging(monkeypatch,
                                                                           capsys):
    """``orbitfl.run(progress=True)`` in a plain script prints the lines; a caller with
    its own logging configuration (or progress=False) gets none added by us."""
    package = logging.getLogger(progress.LOGGER)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "propagate", True)
    for enabled in (True, False):
        with progress.status_lines(enabled):
            logging.getLogger("orbitfl.engine.runner").info("round  1/3")
    assert capsys.readouterr().err == "round  1/3\n"
    assert package.handlers == []
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    with progress.status_lines(True):
        logging.getLogger("orbitfl.engine.runner").info("round  2/3")
    assert capsys.readouterr().err == ""


def test_run_summary_reports_the_commands_wall_time_and_its_parts(scenario, tmp_path,
                                                                   capsys):
    """Issue 21 item 6: the summary's wall time is the command's own (measured here around
    it), split into preparation, mission, report and the rest; the report draws under
    status lines, and the manifest's wall time counts the report."""
    import json
    import re
    import time

    before = time.perf_counter()
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 0
    outside = time.perf_counter() - before
    out, err = capsys.readouterr()
    line = next(row for row in out.splitlines() if row.startswith("wall time"))
    total, *parts = map(float, re.findall(r"(\d+\.\d) s", line))
    assert re.search(r"of which preparation .* mission .* report .* start-up and tables",
                     line), line
    summary = json.loads((tmp_path / "run" / "manifest.json").read_text())["summary"]
    assert summary["report_s"] > 0 and summary["mission_s"] > 0 and summary["prepare_s"] > 0
    assert summary["wall_time_s"] >= summary["prepare_s"] + summary["mission_s"] + \
        summary["report_s"]
    assert summary["wall_time_s"] - 0.05 <= total <= outside + 0.05
    assert abs(sum(parts) - total) <= 0.25  # each part rounded to 0.1 s
    drawing, done = err.index("report: drawing"), err.index("report: done in")
    assert err.rindex("round ") < drawing < err.index("writing dashboard.html") < done


def test_a_blind_handler_withholds_scores_and_leaves_them_to_the_others():
    """A study's blind point log prints ``score withheld`` for a ``Score`` argument and the
    rest of the line as is; a second handler of the same record still shows the score."""
    logger = logging.getLogger("orbitfl.test_blind")
    blind, scored = io.StringIO(), io.StringIO()
    handlers = [progress.plain_handler(logging.StreamHandler(blind), withhold_scores=True),
                progress.plain_handler(logging.StreamHandler(scored))]
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("round %2d/%d  %s  up %.2f MB", 3, 10, progress.Score("acc 0.812"), 1.5)
        logger.info("resuming after round %d", 2)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    assert blind.getvalue().splitlines() == ["round  3/10  score withheld  up 1.50 MB",
                                             "resuming after round 2"]
    assert scored.getvalue().splitlines()[0] == "round  3/10  acc 0.812  up 1.50 MB"
