"""One Flower client's training, the two ways Flower 1.42 writes a client.

- ``client_fn(context)`` returning a ``NumPyClient`` or ``Client`` (the function a
  ``ClientApp(client_fn=...)`` is built from): called with ``FitIns``, answers ``FitRes``,
  as Flower's own legacy message handler does.
- a ``ClientApp`` with ``@app.train()`` functions (the Message API): called with a train
  ``Message`` holding the global model as ``content["arrays"]`` (an ``ArrayRecord`` keyed
  by the model's ``state_dict()`` names) and ``content["config"]`` (the strategy's config
  plus ``server-round``), as Flower's Message strategies send it; the reply's single
  ``ArrayRecord`` and its ``MetricRecord``'s ``num-examples`` are the update.

flwr is imported here only when a client runs (``fl/flower_adapter.py`` imports it lazily).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
import torch

from orbitfl.core.errors import InputError

Fit = tuple[list[np.ndarray], int, dict[str, Any]]  # arrays, num_examples, metrics


def check_client(client: Any) -> None:
    """A ``client_fn`` or a ``ClientApp`` with train functions, refused in one line
    otherwise (before any simulation)."""
    from flwr.clientapp import ClientApp

    if isinstance(client, ClientApp):
        # a ClientApp(client_fn=f) answers only Flower's legacy messages: give f instead
        if getattr(client, "_call", None) is not None:
            raise InputError("fl.strategy.options.client_app: a ClientApp built from a "
                             "client_fn: give that client_fn ('module:client_fn')")
        return
    if not callable(client):
        raise InputError(f"fl.strategy.options.client_app: {client!r} is neither a "
                         "client_fn(context) nor a ClientApp")


def fit_client(client: Any, context: Any, start: Mapping[str, torch.Tensor],
               config: dict[str, Any], round_index: int, what: str) -> Fit:
    """Train ``client`` (a ``client_fn`` or a ``ClientApp``) from the global ``start``."""
    from flwr.clientapp import ClientApp

    if isinstance(client, ClientApp):
        return _fit_app(client, context, start, config, round_index, what)
    return _fit_client_fn(client, context, start, config, what)


def _fit_client_fn(client_fn: Any, context: Any, start: Mapping[str, torch.Tensor],
                   config: dict[str, Any], what: str) -> Fit:
    import flwr.common as common
    from flwr.client import NumPyClient

    client = client_fn(context)
    client = client.to_client() if isinstance(client, NumPyClient) else client
    arrays = [v.detach().cpu().numpy() for v in start.values()]
    result = client.fit(common.FitIns(common.ndarrays_to_parameters(arrays), config))
    if result.status.code != common.Code.OK:
        raise RuntimeError(f"{what}: fit failed: {result.status.message}")
    return (common.parameters_to_ndarrays(result.parameters), int(result.num_examples),
            dict(result.metrics))


def _fit_app(app: Any, context: Any, start: Mapping[str, torch.Tensor],
             config: dict[str, Any], round_index: int, what: str) -> Fit:
    from flwr.app import (
        DEFAULT_TTL,
        ArrayRecord,
        ConfigRecord,
        Message,
        MessageType,
        Metadata,
        RecordDict,
    )

    content = RecordDict({"arrays": ArrayRecord(OrderedDict(start)),
                          "config": ConfigRecord({**config, "server-round": round_index})})
    # created_at is wall-clock metadata (Flower limits a reply's time to live by it); it
    # never reaches the update
    metadata = Metadata(run_id=0, message_id=f"train-{round_index}-{context.node_id}",
                        src_node_id=0, dst_node_id=context.node_id, reply_to_message_id="",
                        group_id=str(round_index), created_at=time.time(), ttl=DEFAULT_TTL,
                        message_type=MessageType.TRAIN)
    # flwr's overloads leave out the metadata= form its __init__ accepts for replayed messages
    reply = app(Message(content=content, metadata=metadata),  # type: ignore[call-overload]
                context)
    if reply.has_error():
        raise RuntimeError(f"{what}: train failed: {reply.error.reason}")
    records, metrics = reply.content.array_records, reply.content.metric_records
    if len(records) != 1 or len(metrics) != 1:
        raise InputError(f"{what}: the reply must hold one ArrayRecord and one MetricRecord "
                         f"(found {len(records)} and {len(metrics)})")
    record, values = next(iter(records.values())), dict(next(iter(metrics.values())))
    if "num-examples" not in values:
        raise InputError(f"{what}: the reply's MetricRecord has no 'num-examples'")
    if set(record.keys()) == set(start):  # a state_dict's names: match them by name
        arrays = [record[k].numpy() for k in start]
    else:
        arrays = record.to_numpy_ndarrays()
    return arrays, int(values.pop("num-examples")), values
