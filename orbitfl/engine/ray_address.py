"""A Ray cluster address is checked before any work: Ray itself waits many minutes on an
address nobody answers (``127.0.0.1:1``: 872 s, then a traceback) and finds out that
``auto`` has no cluster only after the scenario was prepared. Here the address is parsed,
``auto`` is resolved the way Ray resolves it (``RAY_ADDRESS``, then the address file of
the last ``ray start`` under Ray's temporary folder), and its port gets one TCP connect
with a short timeout; any failure is one ``InputError`` line within seconds."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from orbitfl.core.errors import InputError, short

CONNECT_TIMEOUT_S = 3.0
START_HINT = "start a cluster with `ray start --head`, or leave out the address to start " \
             "Ray on this machine"


def check_address(address: str | None, where: str) -> None:
    """An ``InputError`` (``where``: the option or YAML path to name) unless ``address``
    is None, ``local`` (Ray starts here), or a cluster that accepts a connection."""
    if address is None or address == "local":
        return
    text = str(address).strip()
    if text == "auto":
        text = _auto_address(where)
    host, port = parse_address(text, where)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        why = "no answer" if isinstance(err, TimeoutError) else \
            (err.strerror or type(err).__name__).lower()
        raise InputError(f"{where}: no Ray cluster answers at {host}:{port} ({why}); "
                         f"{START_HINT}") from None


def parse_address(text: str, where: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``ray://host:port`` as (host, port)."""
    bare = text[len("ray://"):] if text.startswith("ray://") else text
    host, sep, port = bare.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 \
            or any(c.isspace() or c in "/@?#" for c in host):
        raise InputError(f"{where}: {short(text)} is not a Ray address: give HOST:PORT (the "
                         "head node's GCS port, e.g. 10.0.0.5:6379), ray://HOST:PORT or auto")
    return host, int(port)


def _auto_address(where: str) -> str:
    """What ``auto`` means to Ray: RAY_ADDRESS, else the last ``ray start`` on this
    machine."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"  # as Ray's
    record = Path(temp) / "ray" / "ray_current_cluster"
    try:
        found = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        found = ""
    if not found:
        raise InputError(f"{where}: auto: no running Ray cluster found (RAY_ADDRESS is not "
                         f"set and {record} does not exist); {START_HINT}")
    return found
