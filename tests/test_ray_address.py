"""A Ray cluster address is checked before any work (issue 22): nobody answering at
``127.0.0.1:1`` made a run wait 872 s, ``auto`` without a cluster gave a traceback, both
after the whole preparation. Now both are one line within seconds, for ``run`` (option or
scenario field) and ``sweep``; an address where something listens passes the probe."""

from __future__ import annotations

import socket

import pytest
import yaml

import orbitfl.engine.assemble as assemble
from orbitfl.cli import main
from orbitfl.core.errors import InputError
from orbitfl.engine.ray_address import check_address, parse_address

from conftest import SCENARIOS


@pytest.fixture
def scenario(tmp_path, monkeypatch):
    """The quickstart, and no world is ever built: reaching it means no check refused."""
    def never(*args, **kwargs):
        raise AssertionError("the run began before the address was checked")

    monkeypatch.setattr(assemble, "build_world", never)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "no-ray"))  # no `ray start` record
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"]["tle"] = str((SCENARIOS / document["constellation"]["tle"])
                                           .resolve())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1 (connection refused)"),
    ("auto", "auto: no running Ray cluster found"),
    ("no-port", "'no-port' is not a Ray address"),
    ("host:99999", "'host:99999' is not a Ray address"),
])
def test_a_bad_address_is_one_line_before_any_work(scenario, capsys, tmp_path, address,
                                                   says):
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--backend", "ray", "--address", address,
                 "--out", str(out)]) == 2
    assert one_line(capsys).startswith(f"error: --address: {says}")
    assert not out.exists()
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(scenario), "parameters": {"seed": [1]}}))
    assert main(["sweep", str(sweep), "--backend", "ray", "--address", address,
                 "--out", str(tmp_path / "sweep")]) == 2
    assert one_line(capsys).startswith(f"error: --address: {says}")
    assert not (tmp_path / "sweep").exists()


def test_an_address_in_the_scenario_is_checked_before_the_world(scenario, capsys):
    port = closed_port()
    assert main(["run", str(scenario), "--set", "execution.backend=ray",
                 "--set", f"execution.address=127.0.0.1:{port}",
                 "--out", str(scenario.parent / "run")]) == 2
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in one_line(capsys)


def test_auto_follows_ray_address_and_the_record_of_ray_start(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port()}")
    with pytest.raises(InputError, match="no Ray cluster answers"):
        check_address("auto", "--address")
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(InputError, match="no running Ray cluster found"):
        check_address("auto", "--address")
    with socket.socket() as server:  # a cluster's GCS port, as far as a probe can tell
        server.bind(("127.0.0.1", 0))
        server.listen()
        (tmp_path / "ray").mkdir()
        (tmp_path / "ray" / "ray_current_cluster").write_text(
            f"127.0.0.1:{server.getsockname()[1]}\n")
        check_address("auto", "--address")
        check_address(f"127.0.0.1:{server.getsockname()[1]}", "--address")
        check_address(f"ray://127.0.0.1:{server.getsockname()[1]}", "--address")
    check_address(None, "--address")
    check_address("local", "--address")


def test_addresses_parse_as_ray_writes_them():
    assert parse_address("10.0.0.5:6379", "a") == ("10.0.0.5", 6379)
    assert parse_address("ray://head:10001", "a") == ("head", 10001)
    assert parse_address("[::1]:6379", "a") == ("::1", 6379)
    for bad in ("6379", ":6379", "host:", "host:0", "host:abc", "a b:1", "http://h:1"):
        with pytest.raises(InputError, match="is not a Ray address"):
            parse_address(bad, "a")
