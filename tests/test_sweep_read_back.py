"""What a sweep and the study read back from their own folders (run directories of earlier
points, checkpoints, records) is checked (issue 22): a damaged one is reported or rebuilt,
never a traceback and never a result read from it."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from orbitfl.core.errors import InputError
from orbitfl.sweeps.runner import Point, _resumable, is_complete


def _point(tmp_path: Path) -> Point:
    run_dir = tmp_path / "runs" / "p0"
    run_dir.mkdir(parents=True)
    return Point(0, "p0", {}, tmp_path / "p0.json", run_dir)


@pytest.mark.parametrize("manifest", ["[" * 50_000 + "]" * 50_000, "[1, 2]", '{"status": 1}',
                                      '{"summary": {"rounds_completed": "3", '
                                      '"final_accuracy": 0.5}, "status": "complete"}'])
def test_a_damaged_earlier_point_is_not_complete(tmp_path, manifest):
    point = _point(tmp_path)
    (point.run_dir / "manifest.json").write_text(manifest)
    assert is_complete(point) is False


def test_an_unreadable_point_checkpoint_is_discarded(tmp_path, caplog):
    run_dir = tmp_path / "runs" / "p0"
    checkpoint = tmp_path / "runs" / ".p0.partial" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"PK\x03\x04 not a checkpoint")
    with caplog.at_level("INFO", logger="orbitfl"):
        assert _resumable(SimpleNamespace(content_hash=lambda: "0" * 64), run_dir) is False
    assert not checkpoint.parent.exists()
    assert any("it is damaged" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("record", ["[" * 50_000, "[]", '{"methods": []}',
                                    '{"elapsed_s": true}', '{"protocol": "x"}'])
def test_a_damaged_study_record_is_one_line(tmp_path, record):
    """The driver (resuming a study) and the report (from shipped data) read the record
    back: a damaged one is one line naming it, never a traceback later."""
    from orbitfl.studies.safe.record import load_record
    from orbitfl.studies.safe.report import load_data

    (tmp_path / "study.json").write_text(record)
    for load in (load_record, load_data):
        with pytest.raises(InputError) as err:
            load(tmp_path)
        assert str(err.value).startswith(str(tmp_path / "study.json"))
        assert "\n" not in str(err.value)
