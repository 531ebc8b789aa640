"""Unmodified Flower strategies and clients inside an orbitfl mission.

orbitfl decides *when*: which clients train, when the global model reaches them and when
their updates reach the ground. Flower decides *what*: its client (a ``client_fn`` or a
``ClientApp``'s train function, ``fl/flower_clients.py``) trains, and its server strategy
(FedAvg, FedAdam, FedYogi, FedAdagrad, FedProx, QFedAvg, FedTrimmedAvg, ... from
``flwr.server.strategy`` or ``flwr.serverapp.strategy``, ``fl/flower_servers.py``)
aggregates, through Flower's own types. flwr is imported only when the adapter is built,
so orbitfl works without it (``pip install 'orbitfl[flower]'``). A scenario names it as
``fl.strategy: {class: "orbitfl.fl.flower_adapter:FlowerStrategy", options: {strategy: ...,
client_app: ..., strategy_options: {...}, run_config: {...}}}`` (``FlowerOptions``,
docs/extending.md).

What crosses the links, with sizes from the arrays' shapes and dtypes: the global model's
arrays (``weights``) and the strategy's config for the client (a ``control`` payload) down; the
client's arrays (``weights``, or a top-k ``delta`` with the scenario's codec) up. The
arrays are the orbitfl model's ``state_dict()`` values in order, as a ``NumPyClient``
written for that model returns them. A client's ``num_examples`` and metrics (a few
scalars) travel in the update's header, like orbitfl's own sample counts.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import math
import random
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from orbitfl.core.errors import InputError

from .datasets import ImageSet
from .flower_clients import check_client, fit_client
from .flower_servers import Result, make_server
from .payloads import Payload
from .registry import REFERENCE, reference, version
from .strategy import ClientState, ClientUpdate, FLConfig, State, Strategy, clone_state

INSTALL_HINT = "pip install 'orbitfl[flower]'"
STRATEGY_PATH, CLIENT_PATH = "fl.strategy.options.strategy", "fl.strategy.options.client_app"
_CLIENT_DATA: ContextVar[ImageSet] = ContextVar("orbitfl_flower_client_data")
_SCALAR_TAGS = {bool: "b", int: "i", float: "f", str: "s", bytes: "y"}


def client_data(context: Any = None) -> ImageSet:
    """The orbitfl training set of the client a ``client_fn`` is building, for Flower
    clients that train on the mission's data (orbit-driven imagery) instead of loading
    their own partition; ``context`` is accepted so it reads as Flower code does."""
    try:
        return _CLIENT_DATA.get()
    except LookupError:
        raise RuntimeError("client_data() is only available inside an orbitfl fit") from None


def _require_flwr() -> None:
    try:
        import flwr.common  # noqa: F401
    except ImportError:
        raise InputError(f"the Flower adapter needs flwr ({INSTALL_HINT})") from None


def resolve(reference: Any, what: str) -> Any:
    """``"package.module:attribute"`` as the object it names (anything else unchanged)."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise InputError(f"{what}: {reference!r} is not of the form 'package.module:name'")
    try:
        found = importlib.import_module(module)
    except ImportError as error:
        raise InputError(f"{what}: cannot import {module!r} ({error})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise InputError(f"{what}: {module!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    return found


@dataclass(frozen=True)
class FlowerOptions:
    """A scenario's ``fl.strategy.options`` for the adapter: checked by ``orbitfl validate``
    (flwr installed, both references importable, a Flower strategy that takes
    ``strategy_options``' keys, a client_fn or ClientApp) before anything is simulated."""

    strategy: str  # "module:Class" of a Flower server strategy (flwr.server.strategy:FedAdam)
    client_app: str  # "module:name" of a client_fn(context) or a ClientApp
    strategy_options: dict[str, Any] = field(default_factory=dict)  # the class's arguments
    run_config: dict[str, Any] = field(default_factory=dict)  # every context.run_config

    def __post_init__(self) -> None:
        try:
            _require_flwr()
            # built once with the options (FedOpt's family without model weights): an
            # unknown or missing argument, or not a Flower strategy, is refused here
            make_server(resolve(self.strategy, STRATEGY_PATH), dict(self.strategy_options), {})
            check_client(resolve(self.client_app, CLIENT_PATH))
        except InputError as err:  # pydantic reports a ValueError as the options' problem
            raise ValueError(str(err)) from None


class FlowerStrategy(Strategy):
    """orbitfl's ``Strategy`` around a Flower server strategy and a Flower client.

    ``strategy``: a Flower strategy instance, class or ``"module:Class"`` (built with
    ``strategy_options``; ``initial_parameters`` default to the orbitfl model's weights, as
    FedOpt's family requires them). ``client_app``: a ``client_fn(context)`` or a
    ``ClientApp`` with train functions, or its ``"module:name"`` (a reference keeps the
    adapter picklable for worker processes). ``run_config`` is every client's
    ``context.run_config``; ``num_partitions`` (the number of clients) its
    ``node_config["num-partitions"]``, beside ``partition-id`` (the orbitfl client). The
    Flower strategy is the server half: it stays in the mission process."""

    name = "flower"
    Options = FlowerOptions

    @classmethod
    def create(cls, model: nn.Module, config: FLConfig, data: Any,
               options: FlowerOptions | None = None) -> "FlowerStrategy":
        """The adapter a scenario names: one Flower partition per orbitfl client."""
        if options is None:
            raise InputError("fl.strategy.options: the Flower adapter needs strategy and "
                             "client_app")
        return cls(model, config, strategy=options.strategy, client_app=options.client_app,
                   strategy_options=options.strategy_options, run_config=options.run_config,
                   num_partitions=len(data.clients))

    @classmethod
    def code_versions(cls, options: Mapping[str, Any]) -> dict[str, str | None]:
        """flwr's version and those of the Flower strategy's and client's code (a loose
        module's source hash), so that a run resumes only on the same Flower app."""
        try:
            found: dict[str, str | None] = {"flwr": importlib.metadata.version("flwr")}
        except importlib.metadata.PackageNotFoundError:
            found = {"flwr": None}
        for key in ("strategy", "client_app"):
            if isinstance(options.get(key), str) and REFERENCE.match(options[key]):
                found[key] = version(reference("strategy", options[key]))
        return found

    def __init__(self, model: nn.Module, config: FLConfig, *, strategy: Any,
                 client_app: Any, strategy_options: Mapping[str, Any] | None = None,
                 run_config: Mapping[str, Any] | None = None, num_partitions: int | None = None):
        _require_flwr()
        server = make_server(resolve(strategy, STRATEGY_PATH),
                             dict(strategy_options or {}), model.state_dict())
        initial = server.initial()
        if initial is not None:  # the strategy's own start (a given instance's weights)
            model.load_state_dict(arrays_to_state(initial, model.state_dict(),
                                                  "initial_parameters"))
        super().__init__(model, config)
        self.flower = server
        self.client_app = client_app
        self._client_fn: Callable | None = None
        check_client(resolve(client_app, CLIENT_PATH))  # fails here, early
        self.run_config = dict(run_config or {})
        self.num_partitions = num_partitions

    def __getstate__(self) -> dict:
        """Workers get the client half only: the Flower strategy (which may hold
        callbacks that do not pickle) and a resolved ``client_fn`` stay here."""
        state = dict(self.__dict__)
        state["flower"], state["_client_fn"] = None, None
        return state

    # -- the server half ----------------------------------------------------------------
    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        """The global model, and the config that the Flower strategy gives this client
        (FedProx's ``proximal_mu``, an ``on_fit_config_fn``'s values, ``server-round``) as
        a ``control`` payload."""
        config = self._server().configure(round_index, client_id,
                                          self.global_model.state_dict(), self.version)
        payloads = super().to_client(round_index, client_id)
        return payloads + ([_config_payload(config)] if config else [])

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        """The Flower strategy's aggregation of the updates that arrived in time, each as
        its client returned it (late ones never reach the strategy)."""
        keys = self.global_model.state_dict()
        results = [Result(u.client_id, self.uploaded_state(u), u.num_samples,
                          dict(u.diagnostics.get("flower_metrics", {}))) for u in updates]
        arrays = self._server().aggregate(round_index, results)
        if arrays is None:  # Flower kept its model (no usable result): so do we
            self.commit(clone_state(keys))
            return
        self.commit(arrays_to_state(arrays, keys,
                                    f"{type(self.flower.strategy).__name__}'s aggregate"))

    def _server(self):
        if self.flower is None:
            raise RuntimeError("the Flower strategy stays in the mission process")
        return self.flower

    def state_dict(self) -> dict:
        """orbitfl's server state plus the Flower strategy's array-valued attributes
        (FedAdam's moments, its current weights, QFedAvg's previous weights)."""
        return {**super().state_dict(), "flower": _array_attributes(self._server().strategy)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._server().forget()
        _restore_array_attributes(self._server().strategy, state.get("flower", {}))

    # -- the client half ----------------------------------------------------------------
    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet, state: ClientState) -> tuple[ClientUpdate, ClientState]:
        """The Flower client's training on what arrived, with numpy's and Python's global
        generators seeded like torch's (``run_fit``), so the scenario's seed decides."""
        from flwr.app import Context, RecordDict

        received_state, version = self.received_state(received)
        start = {k: received_state[k] for k in self.global_model.state_dict()}  # model order
        if self._client_fn is None:
            self._client_fn = resolve(self.client_app, CLIENT_PATH)
        node_config: dict[str, bool | float | int | str] = {"partition-id": client_id}
        if self.num_partitions is not None:
            node_config["num-partitions"] = self.num_partitions
        context = Context(run_id=0, node_id=client_id, node_config=node_config,
                          state=RecordDict(), run_config=dict(self.run_config))
        what = f"Flower client {client_id}"
        with _seeded_globals(), _client_data(data):
            arrays, num_examples, metrics = fit_client(
                self._client_fn, context, start, _read_config(received), round_index, what)
        trained = arrays_to_state(arrays, start, f"{what}'s returned arrays")
        payloads, state = self.upload(trained, start, state)
        loss = metrics.get("train_loss", metrics.get("loss", math.nan))
        return ClientUpdate(client_id, round_index, num_examples, payloads,
                            float(loss) if isinstance(loss, (int, float)) else math.nan,
                            version, {"flower_metrics": metrics}), state


def state_to_arrays(state: Mapping[str, torch.Tensor], keys: Mapping[str, Any]
                    ) -> list[np.ndarray]:
    """A state dict as Flower's NDArrays, in the model's key order."""
    return [state[k].detach().cpu().numpy() for k in keys]


def arrays_to_state(arrays: Sequence[np.ndarray], reference: Mapping[str, torch.Tensor],
                    what: str) -> State:
    """Flower's NDArrays as a state dict shaped like ``reference``: the count and every
    shape must match; values take the reference's dtype (Flower averages integer
    counters in floating point)."""
    if len(arrays) != len(reference):
        raise InputError(f"{what}: {len(arrays)} arrays, the model has {len(reference)} "
                         "(state_dict() values, in order)")
    state = {}
    for index, (array, (key, ref)) in enumerate(zip(arrays, reference.items())):
        array = np.asarray(array)
        if tuple(array.shape) != tuple(ref.shape):
            raise InputError(f"{what}: array {index} ({key}) has shape {tuple(array.shape)}, "
                             f"the model's is {tuple(ref.shape)}")
        state[key] = torch.from_numpy(np.array(array, copy=True)).to(ref.dtype)
    return state


def _config_payload(config: Mapping[str, Any]) -> Payload:
    """``FitIns.config`` scalars as tensors, the type in the name (``"f:lr"``)."""
    tensors = {}
    for key, value in config.items():
        tag = _SCALAR_TAGS.get(type(value))
        if tag is None:
            raise InputError(f"fl.strategy: FitIns.config[{key!r}] is a {type(value).__name__}, "
                             "Flower's scalars are bool, int, float, str and bytes")
        raw = value.encode() if tag == "s" else value
        tensors[f"{tag}:{key}"] = (torch.frombuffer(bytearray(raw), dtype=torch.uint8)
                                   if tag in "sy" else torch.tensor(value))
    return Payload.encode("control", tensors)


def _read_config(received: Sequence[Payload]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for payload in received:
        if payload.kind != "control" or "version" in payload.tensors:
            continue
        for name, tensor in payload.tensors.items():
            tag, key = name.split(":", 1)
            config[key] = (tensor.numpy().tobytes().decode() if tag == "s" else
                           tensor.numpy().tobytes() if tag == "y" else
                           {"b": bool, "i": int, "f": float}[tag](tensor.item()))
    return config


def _array_attributes(strategy: Any) -> dict[str, Any]:
    """A strategy's array state as tensors: the attributes that are arrays, lists or
    name-keyed dicts of arrays (FedAdam's moments in either API), and those still None
    (before the first round), so that a checkpoint has the keys of a freshly built
    strategy (``orbitfl/engine/checkpoint_check.py``)."""
    saved: dict[str, Any] = {}
    for name, value in vars(strategy).items():
        if value is None or _is_arrays(value):
            saved[name] = _convert(value, lambda a: torch.from_numpy(a.copy()))
    return saved


def _restore_array_attributes(strategy: Any, saved: Mapping[str, Any]) -> None:
    """``_array_attributes``' inverse, for the attributes that hold arrays or None here."""
    for name, value in saved.items():
        current = getattr(strategy, name, None)
        if current is None or _is_arrays(current):  # not a callback or an option
            setattr(strategy, name, _convert(value, lambda t: t.numpy()))


def _is_arrays(value: Any) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, np.ndarray) or isinstance(value, list) and bool(value) and \
        all(isinstance(v, np.ndarray) for v in value)


def _convert(value: Any, one: Callable[[Any], Any]) -> Any:
    """``one`` applied to an array, or to every array of a list or dict (None stays)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [one(v) for v in value]
    if isinstance(value, dict):
        return {k: one(v) for k, v in value.items()}
    return one(value)


@contextlib.contextmanager
def _seeded_globals() -> Iterator[None]:
    """numpy's and Python's global generators seeded from torch's (already seeded from
    (seed, round, client) by ``run_fit``), and restored afterwards."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextlib.contextmanager
def _client_data(data: ImageSet) -> Iterator[None]:
    token = _CLIENT_DATA.set(data)
    try:
        yield
    finally:
        _CLIENT_DATA.reset(token)
