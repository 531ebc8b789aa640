"""A checkpoint read back for ``--resume`` is checked against what the resumed mission
holds before anything is restored: its strategy state has the keys, tensor shapes and
dtypes of the scenario's freshly built strategy (the model being resumed), every tensor in
it is finite, and its round records, client states and in-flight payloads have the shapes
the mission writes. ``torch.load(weights_only=True)`` only promises that the file holds no
code; a checkpoint with the right scenario hash but other contents (edited, from another
version, NaN weights after a bad round) would otherwise fail deep in the restore with a
traceback, or resume from weights that can only give NaN."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

import torch

from orbitfl.core.errors import InputError, short
from orbitfl.engine.mission import RoundRecord

PAYLOAD_KEYS = {"kind", "tensors", "nbytes", "raw_nbytes"}      # learning.encode_payload
UPDATE_KEYS = {"client_id", "round_index", "num_samples", "train_loss", "base_version",
               "payloads", "diagnostics"}                       # learning.encode_update
RECORD_KEYS = {f.name for f in dataclasses.fields(RoundRecord)}


def retry_advice(path: Path) -> str:
    return f"delete {path.parent} and run the scenario again without --resume"


def check_checkpoint(saved: dict, reference: dict, clients: int, path: Path) -> None:
    """``saved`` (a checkpoint whose top-level fields were checked on loading) against
    ``reference``, the ``state_dict()`` of the scenario's freshly built strategy; one
    ``InputError`` line naming the first mismatch."""
    problem = next(_problems(saved, reference, clients), None)
    if problem is not None:
        raise InputError(f"{path}: damaged checkpoint ({problem}); {retry_advice(path)}")


def _problems(saved: dict, reference: dict, clients: int) -> Iterator[str]:
    yield from _like(saved["strategy"], reference, "strategy")
    if saved["round"] < 0 or len(saved["rounds"]) != saved["round"] + 1:
        yield (f"round {short(saved['round'])} with {len(saved['rounds'])} round records "
               "(one per round from round 0 is needed)")
    for i, record in enumerate(saved["rounds"]):
        if not isinstance(record, dict) or set(record) != RECORD_KEYS:
            yield f"rounds.{i} is not a round record of this orbitfl"
    for client, state in saved["clients"].items():
        if not _index(client, clients) or not isinstance(state, dict):
            yield f"clients.{short(client)} is not the state of one of the {clients} clients"
    for job, payloads in saved["received"].items():
        if not _index(job) or not isinstance(payloads, list) or \
                not all(_is_payload(p) for p in payloads):
            yield f"received.{short(job)} is not a list of payloads"
    for job, update in saved["undelivered"].items():
        if not _index(job) or not isinstance(update, dict) or set(update) != UPDATE_KEYS \
                or not _index(update["client_id"], clients) \
                or not isinstance(update["payloads"], list) \
                or not all(_is_payload(p) for p in update["payloads"]):
            yield f"undelivered.{short(job)} is not a client update of this mission"
    for where, tensor in _tensors(saved, ""):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            yield f"{where} holds NaN or infinite values"


def _like(saved: Any, reference: Any, where: str) -> Iterator[str]:
    """Where ``saved`` differs in structure from ``reference``: tensors by dtype and shape,
    mappings with named keys key by key, mappings keyed by number (model versions) entry
    by entry against the reference's entries, plain values by type."""
    if isinstance(reference, torch.Tensor):
        if not isinstance(saved, torch.Tensor):
            yield f"key {where} is {type(saved).__name__}, the scenario's model needs a tensor"
        elif saved.dtype != reference.dtype:
            yield f"key {where} has dtype {saved.dtype}, the scenario's model needs " \
                  f"{reference.dtype}"
        elif saved.shape != reference.shape:
            yield f"key {where} has shape {tuple(saved.shape)}, the scenario's model needs " \
                  f"{tuple(reference.shape)}"
    elif isinstance(reference, dict):
        if not isinstance(saved, dict):
            yield f"{where} is {type(saved).__name__}, not a mapping"
        elif reference and all(isinstance(k, str) for k in reference):
            missing, extra = set(reference) - set(saved), set(saved) - set(reference)
            differences = ([f"lacks {short(sorted(missing))}"] if missing else []) + \
                ([f"has unknown {short(sorted(map(str, extra)))}"] if extra else [])
            if differences:
                yield f"{where} {' and '.join(differences)}; the scenario's model differs"
            for key in reference.keys() & saved.keys():
                yield from _like(saved[key], reference[key], f"{where}.{key}")
        else:
            template = next(iter(reference.values()), None)
            for key, value in saved.items():
                if not _index(key):
                    yield f"{where} has key {short(key)}, not a number"
                elif template is not None:
                    yield from _like(value, template, f"{where}.{key}")
    elif isinstance(reference, (list, tuple)):
        if not isinstance(saved, (list, tuple)):
            yield f"{where} is {type(saved).__name__}, not a list"
    elif isinstance(reference, bool) or isinstance(reference, (int, str)):
        if type(saved) is not type(reference):
            yield f"{where} is {short(saved)}, not {type(reference).__name__}"
    elif isinstance(reference, float) and not _number(saved):
        yield f"{where} is {short(saved)}, not a number"


def _index(value: Any, below: int | None = None) -> bool:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return ok and (below is None or value < below)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_payload(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == PAYLOAD_KEYS and \
        isinstance(value["kind"], str) and isinstance(value["tensors"], dict) and \
        all(isinstance(t, torch.Tensor) for t in value["tensors"].values()) and \
        _index(value["nbytes"]) and _index(value["raw_nbytes"])


def _tensors(value: Any, where: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a checkpoint, with its dotted path."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}".lstrip("."))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}.{i}".lstrip("."))
