"""A Flower server strategy's side of a round, for both strategy APIs of Flower 1.42.

- ``LegacyServer``: ``flwr.server.strategy`` (``Parameters``, ``FitIns``, ``FitRes``, a
  ``ClientManager`` of ``ClientProxy``\\ s).
- ``MessageServer``: ``flwr.serverapp.strategy`` (``ArrayRecord``, ``ConfigRecord``,
  ``Message``, a ``Grid``).

Each answers the adapter's three questions (``fl/flower_adapter.py``): the strategy's own
initial arrays, the config one selected client gets for a round, and the aggregate of the
updates that arrived. orbitfl, not the strategy, chooses who trains: the client manager or
grid a strategy samples from holds only the client being configured.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from orbitfl.core.errors import InputError

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Result:
    """One client's update as the server reconstructed it."""

    client_id: int
    state: State           # in the model's key order
    num_examples: int
    metrics: dict[str, Any]


def make_server(strategy: Any, options: dict, model_state: State):
    """The bridge for a Flower strategy instance, or a class and its options (FedOpt's
    family needs ``initial_parameters``: the orbitfl model's weights unless given)."""
    import flwr.server.strategy as legacy
    import flwr.serverapp.strategy as message

    if isinstance(strategy, (legacy.Strategy, message.Strategy)):
        if options:
            raise InputError("fl.strategy.options.strategy_options: given with a ready "
                             "strategy instance")
    elif inspect.isclass(strategy) and issubclass(strategy, (legacy.Strategy, message.Strategy)):
        if "initial_parameters" in inspect.signature(strategy).parameters \
                and "initial_parameters" not in options:
            options = {**options, "initial_parameters": _parameters(model_state)}
        try:
            strategy = strategy(**options)
        except TypeError as error:
            raise InputError(f"fl.strategy.options.strategy_options: {strategy.__name__}: "
                             f"{error}") from None
    else:
        raise InputError(f"fl.strategy.options.strategy: {strategy!r} is not a Flower strategy "
                         "(flwr.server.strategy or flwr.serverapp.strategy)")
    return LegacyServer(strategy) if isinstance(strategy, legacy.Strategy) \
        else MessageServer(strategy)


def _parameters(state: State):
    from flwr.common import ndarrays_to_parameters

    return ndarrays_to_parameters([v.detach().cpu().numpy() for v in state.values()])


class LegacyServer:
    """``flwr.server.strategy``: ``configure_fit`` and ``aggregate_fit``."""

    def __init__(self, strategy: Any):
        self.strategy = strategy
        self._parameters: tuple[int, Any] | None = None  # (version, Parameters)

    def initial(self) -> list[np.ndarray] | None:
        from flwr.common import parameters_to_ndarrays

        initial = self.strategy.initialize_parameters(_Clients([]))
        return None if initial is None else parameters_to_ndarrays(initial)

    def forget(self) -> None:
        """Drop the serialised global model (a restored checkpoint may reuse a version)."""
        self._parameters = None

    def configure(self, round_index: int, client_id: int, state: State,
                  version: int) -> dict[str, Any]:
        if self._parameters is None or self._parameters[0] != version:
            self._parameters = (version, _parameters(state))  # serialised once per version
        instructions = self.strategy.configure_fit(round_index, self._parameters[1],
                                                   _Clients([client_id]))
        return dict(instructions[0][1].config) if instructions else {}

    def aggregate(self, round_index: int, results: Sequence[Result]) -> list[np.ndarray] | None:
        from flwr.common import Code, FitRes, Status, parameters_to_ndarrays

        fit_results = [(_proxy(r.client_id), FitRes(Status(Code.OK, "Success"),
                                                     _parameters(r.state), r.num_examples,
                                                     dict(r.metrics))) for r in results]
        parameters, _ = self.strategy.aggregate_fit(round_index, fit_results, [])
        return None if parameters is None else parameters_to_ndarrays(parameters)


class MessageServer:
    """``flwr.serverapp.strategy``: ``configure_train`` and ``aggregate_train``."""

    def __init__(self, strategy: Any):
        self.strategy = strategy

    def initial(self) -> None:
        return None  # a Message strategy starts from the arrays it is given: orbitfl's model

    def forget(self) -> None:
        pass  # nothing serialised is kept

    def configure(self, round_index: int, client_id: int, state: State,
                  version: int) -> dict[str, Any]:
        from flwr.app import ArrayRecord, ConfigRecord

        with _server_identity(), _python_random_kept():
            messages = list(self.strategy.configure_train(
                round_index, ArrayRecord(OrderedDict(state)), ConfigRecord(),
                _Grid(client_id, self.strategy)))
        if not messages:
            return {}
        key = getattr(self.strategy, "configrecord_key", "config")
        return dict(messages[0].content.config_records.get(key, {}))

    def aggregate(self, round_index: int, results: Sequence[Result]) -> list[np.ndarray] | None:
        from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

        arrays_key = getattr(self.strategy, "arrayrecord_key", "arrays")
        weight_key = getattr(self.strategy, "weighted_by_key", "num-examples")
        replies = []
        for r in results:
            numbers = {k: v for k, v in r.metrics.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            content = RecordDict({arrays_key: ArrayRecord(OrderedDict(r.state)),
                                  "metrics": MetricRecord({**numbers,
                                                           weight_key: r.num_examples})})
            # flwr's overloads leave out the metadata= form its __init__ accepts
            replies.append(Message(content=content,  # type: ignore[call-overload]
                                   metadata=_metadata(round_index, r.client_id)))
        arrays, _ = self.strategy.aggregate_train(round_index, replies)
        if arrays is None:
            return None
        names = list(results[0].state)
        return [arrays[k].numpy() for k in names] if set(arrays.keys()) == set(names) \
            else arrays.to_numpy_ndarrays()


def _metadata(round_index: int, client_id: int):
    """A reply's envelope (``created_at`` is wall-clock metadata that no result reads)."""
    from flwr.app import DEFAULT_TTL, MessageType, Metadata

    return Metadata(run_id=0, message_id=f"reply-{round_index}-{client_id}",
                    src_node_id=client_id, dst_node_id=0, reply_to_message_id="",
                    group_id=str(round_index), created_at=time.time(), ttl=DEFAULT_TTL,
                    message_type=MessageType.TRAIN)


@contextlib.contextmanager
def _server_identity() -> Iterator[None]:
    """A Message strategy builds its messages with Flower's process identity (set by
    Flower's runtime, which does not run here): a server's, for the call only."""
    from flwr.supercore.task_identity import TaskIdentity

    names = ("_run_id", "_node_id", "_task_id")
    saved = {name: getattr(TaskIdentity, name) for name in names}
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 0, 0, 0
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(TaskIdentity, name, value)


@contextlib.contextmanager
def _python_random_kept() -> Iterator[None]:
    """A strategy's sampling draws from Python's global generator: not the mission's."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


class _Grid:
    """The nodes a Message strategy samples from: the configured client only, listed as
    often as the strategy's minimums ask (a strategy waits for that many to connect), so
    whatever it samples is that client."""

    def __init__(self, client_id: int, strategy: Any):
        count = max(1, int(getattr(strategy, "min_available_nodes", 1)),
                    int(getattr(strategy, "min_train_nodes", 1)))
        self.nodes = [client_id] * count

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


def _proxy(client_id: int):
    """A ``ClientProxy`` naming an orbitfl client (strategies read only its ``cid``)."""
    return _proxy_class()(str(client_id))


@functools.cache
def _proxy_class() -> type:
    from flwr.server.client_proxy import ClientProxy

    class OrbitClient(ClientProxy):
        def _remote(self, *args, **kwargs):
            raise RuntimeError("orbitfl clients are reached through the mission only")

        get_properties = get_parameters = fit = evaluate = reconnect = _remote

    return OrbitClient


class _Clients:
    """The ``ClientManager`` a legacy strategy's ``configure_fit`` samples from: the clients
    orbitfl chose, every one of them (the mission, not Flower, selects)."""

    def __init__(self, client_ids: Sequence[int]):
        self.clients = {str(c): _proxy(c) for c in client_ids}

    def num_available(self) -> int:
        return len(self.clients)

    def all(self) -> dict:
        return dict(self.clients)

    def sample(self, num_clients: int, min_num_clients: int | None = None,
               criterion: Any = None) -> list:
        return list(self.clients.values())

    def wait_for(self, num_clients: int, timeout: int = 86400) -> bool:
        return True
