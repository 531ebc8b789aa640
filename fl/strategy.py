"""The strategy interface: a federated algorithm's server and client halves.

Strategies are plain Python/torch: no clock and no network. The mission decides *when*
(after the bytes have crossed); the strategy decides *what* (payload contents, training,
aggregation). A new algorithm is one subclass of ``Strategy`` (docs/extending.md): it
implements ``fit`` and ``aggregate``; it may declare ``Options`` (a dataclass: the
scenario's ``fl.strategy.options``), ``asynchronous`` (FedBuff-like: runs with
``schedule.mode: async``), ``create`` (when it needs more of the data than the model, as
SAFE needs its shared set), ``model_extras`` (keyword arguments of the built-in model
builder, as SAFE asks for ACE), ``fit_many`` (many clients' fits at once,
``fl/batched.py``) and ``code_versions`` (code its options name, for the scenario's hash).

Uploads go through a composed helper, ``uploads`` (``fl/uploads.py``: the codec, and top-k's
delta with error feedback).
"""

from __future__ import annotations

import copy
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from .compression import Codec
from .config import CompressionConfig, FedBuffConfig, FedProxConfig, SafeConfig
from .datasets import ImageSet
from .payloads import Payload
from .training import LocalTrainer, TrainConfig
from .uploads import Uploads, model_payloads

if TYPE_CHECKING:
    from .datasets import FederatedData

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FLConfig:
    """What a strategy needs: its sections are the scenario's (``fl/config.py``)."""

    rounds: int
    train: TrainConfig = TrainConfig()
    seed: int = 0
    safe: SafeConfig = SafeConfig()
    fedprox: FedProxConfig = FedProxConfig()
    fedbuff: FedBuffConfig = FedBuffConfig()
    compression: CompressionConfig = CompressionConfig()

    @property
    def codec_down(self) -> Codec:
        """The codec of what the server sends (the global model, to the satellites)."""
        return Codec(self.compression.to_satellites)

    @property
    def codec_up(self) -> Codec:
        """The codec of what clients send back (their updates, to the ground)."""
        return Codec(self.compression.to_ground, self.compression.topk_ratio)


ClientState = dict  # one client's memories: tensors and plain Python values only


@dataclass(frozen=True)
class ClientUpdate:
    """What a client sends back after local training."""

    client_id: int
    round_index: int
    num_samples: int
    payloads: list[Payload]
    train_loss: float
    base_version: int = 0   # the global model version the client started from
    diagnostics: dict = field(default_factory=dict)  # plain values the server may record


class TrainMany(Protocol):
    """Batched training as ``fit_many`` is handed it (``fl/batched.py``'s ``train_many``
    bound to the worker model and the training settings): client i trains from
    ``states[i]`` on ``datasets[i]`` with ``generators[i]``; the strategy passes its loss
    options (FedProx's ``prox_mu`` with each client's reference weights, class weights, one
    logit adjustment or one per client). Returns each client's trained state and mean
    training loss."""

    def __call__(self, states: Sequence[Mapping[str, torch.Tensor]],
                 datasets: Sequence[ImageSet], generators: Sequence[torch.Generator], *,
                 prox_mu: float = 0.0,
                 prox_references: Sequence[Mapping[str, torch.Tensor]] | None = None,
                 class_weights: torch.Tensor | None = None,
                 logit_adjustment: torch.Tensor | Sequence[torch.Tensor] | None = None
                 ) -> tuple[list[State], list[float]]: ...


@dataclass(frozen=True)
class PayloadSize:
    """A payload's kind and sizes, known from shapes and codecs before any training."""

    kind: str
    nbytes: int
    raw_nbytes: int

    @classmethod
    def of(cls, payload: Payload) -> "PayloadSize":
        return cls(payload.kind, payload.nbytes, payload.raw_nbytes)


class Strategy(ABC):
    """A federated algorithm in two halves. The server half (``to_client``, ``aggregate``)
    owns the global model and server state. The client half (``fit``) is a pure function of
    what the client received, its data and its own ``ClientState`` (error-feedback
    residuals, personal models, ...), which it returns updated beside its update: clients'
    memories live with the clients, so a fit can run in another process or on another
    machine (``fl/executors.py``). The strategy's ``worker`` is scratch space only."""

    name = "strategy"
    Options: ClassVar[type | None] = None  # a dataclass: the scenario's fl.strategy.options
    asynchronous: ClassVar[bool] = False   # runs with schedule.mode async (FedBuff-like)

    def __init__(self, model: nn.Module, config: FLConfig, options: Any = None):
        self.global_model = model
        self.config = config
        self.options = options  # an instance of ``Options`` (None when it declares none)
        self.trainer = LocalTrainer(copy.deepcopy(model), config.train)
        self.uploads = Uploads(config.codec_up, [n for n, _ in model.named_parameters()])
        self.version = 0                       # bumped at every aggregation
        self._versions: dict[int, State] = {0: clone_state(model.state_dict())}
        self._upload_sizes: list[PayloadSize] | None = None
        self._broadcast: tuple[tuple, list[Payload]] | None = None  # (key, payloads)

    @classmethod
    def create(cls, model: nn.Module, config: FLConfig, data: "FederatedData",
               options: Any = None) -> "Strategy":
        """How a run builds the strategy: override when it needs more of the federation's
        data than the model (SAFE: the server's shared set, ``data.ses``)."""
        return cls(model, config) if options is None else cls(model, config, options)

    @classmethod
    def code_versions(cls, options: Mapping[str, Any]) -> dict[str, str | None]:
        """Versions of code the options name beyond the class's own module (the Flower
        adapter: flwr and the Flower app's modules): the scenario's content hash includes
        them, so a run resumes only on the same code. None by default."""
        return {}

    @classmethod
    def model_extras(cls, config: FLConfig, data: "FederatedData") -> dict:
        """Keyword arguments the built-in model builder adds for this strategy (SAFE: its
        ACE module, one context row per client of ``data``); a model from a factory gets
        none."""
        return {}

    @property
    def worker(self) -> nn.Module:
        return self.trainer.model

    def run_fit(self, round_index: int, client_id: int, received: Sequence[Payload],
                data: ImageSet, state: ClientState | None = None
                ) -> tuple[ClientUpdate, ClientState]:
        """``fit`` with torch's global generator (ACE's Gumbel noise) seeded from (seed,
        round, client) and restored afterwards: a client's result does not depend on what
        trained before it or where, which is what makes a resumed run, and every executor,
        give identical results."""
        seed = np.random.SeedSequence([self.config.seed, round_index, client_id, 7])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed.generate_state(1)[0]))
            return self.fit(round_index, client_id, received, data, dict(state or {}))

    def client_generator(self, round_index: int, client_id: int) -> torch.Generator:
        """Shuffling depends on (seed, round, client) only, not on simulated event order."""
        seed = np.random.SeedSequence([self.config.seed, round_index, client_id])
        return torch.Generator().manual_seed(int(seed.generate_state(1)[0]))

    # -- the interface ----------------------------------------------------------------
    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        """Payloads the server sends a selected client at the start of a round.

        The global model is encoded once per version and the same payloads go to every
        client that starts from it (a 300-satellite round would otherwise encode and hold
        300 copies). Payloads are read-only: a fit loads them, never writes into them. The
        cache is keyed by the version and by every tensor's in-place counter, so a global
        model changed by any route (``commit``, ``load_state_dict``, a test's direct
        ``load_state_dict``) is encoded afresh."""
        model = self.global_model  # parameters and buffers: cheaper to walk than state_dict()
        key = (self.version, tuple((v.data_ptr(), v._version)
                                   for v in itertools.chain(model.parameters(), model.buffers())))
        if self._broadcast is None or self._broadcast[0] != key:
            self._broadcast = (key, model_payloads(model.state_dict(), self.config.codec_down) +
                               [_version_payload(self.version)])
        return list(self._broadcast[1])

    @abstractmethod
    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet, state: ClientState) -> tuple[ClientUpdate, ClientState]:
        """Client half: absorb what arrived, train locally, say what to upload; returns
        the update and the client's new state (``state`` is the client's own copy)."""

    @abstractmethod
    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        """Server half: fold the updates that arrived in time into the global model."""

    def fit_many(self, jobs: Sequence[Any], client_data: Sequence[ImageSet],
                 train_many: TrainMany) -> list[tuple[ClientUpdate, ClientState]]:
        """Many clients' ``fit`` at once (``execution.batched``): ``jobs`` are
        ``executors.FitJob``s, ``train_many`` trains them together (``TrainMany``: the
        strategy hands it each client's start, data, generator and its loss options; it
        knows nothing of strategies). The results must be
        ``run_fit``'s, job by job, within ``train_many``'s tolerance. A strategy that cannot
        raises ``NotImplementedError`` (the default) and trains one client at a time."""
        raise NotImplementedError(f"strategy {self.name!r} trains one client at a time")

    @classmethod
    def fits_many(cls) -> bool:
        """Whether ``fit_many`` is implemented for this class's ``fit``."""
        return cls.fit_many is not Strategy.fit_many

    def upload_sizes(self, client_id: int) -> list[PayloadSize]:
        """What ``fit`` will upload, by kind and size, before it has run: sizes depend on
        the model's shapes and the codec, never on values (top-k keeps a fixed count), so
        they are measured once on the global model's shapes. The mission schedules the
        upload's transfers with them while training still runs elsewhere."""
        if self._upload_sizes is None:
            shapes = {k: torch.zeros_like(v) for k, v in self.global_model.state_dict().items()}
            payloads, _ = self.upload(shapes, shapes, {})
            self._upload_sizes = [PayloadSize.of(p) for p in payloads]
        return list(self._upload_sizes)

    keeps_personal_models = False  # clients keep a personalised model in their state

    def note_evaluation(self, round_index: int) -> None:
        """The mission evaluated the global model after ``round_index``: a strategy with
        diagnostics of its own (SAFE's ``evaluation_log``) records them now."""

    @staticmethod
    def personal_model(state: ClientState) -> State | None:
        """The client's personalised model, when the strategy keeps one (SAFE's FAU)."""
        return state.get("personal")

    # -- helpers for subclasses ---------------------------------------------------------
    def received_state(self, received: Sequence[Payload]) -> tuple[State, int]:
        """The global state a client got (weights plus any embedding) and its version."""
        state: State = {}
        for payload in received:
            if payload.kind in ("weights", "embedding"):
                state.update(payload.tensors)
        version = next((int(p.tensors["version"]) for p in received if p.kind == "control"), 0)
        return state, version

    def upload(self, trained: State, base: State, state: ClientState
               ) -> tuple[list[Payload], ClientState]:
        """The trained model as the upload codec sends it (``uploads.encode``)."""
        return self.uploads.encode(trained, base, state)

    def uploaded_state(self, update: ClientUpdate) -> State:
        """The client's trained state as the server reconstructs it."""
        return self.uploads.decode(update.payloads, self._versions[update.base_version])

    def state_dict(self) -> dict:
        """The server half's state, for checkpoints (tensors and plain Python values only,
        so ``torch.load(weights_only=True)`` can read it); clients' states are saved by
        whoever keeps them (the mission)."""
        return {"global": clone_state(self.global_model.state_dict()), "version": self.version,
                "versions": {int(k): v for k, v in self._versions.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.global_model.load_state_dict(state["global"])
        self.version = int(state["version"])
        self._versions = {int(k): v for k, v in state["versions"].items()}

    def commit(self, state: State) -> None:
        """Install a new global model; keep past versions that clients may still build on."""
        self.global_model.load_state_dict(state)
        self.version += 1
        self._versions[self.version] = clone_state(self.global_model.state_dict())
        for old in [v for v in self._versions if v < self.version - 50]:
            del self._versions[old]


def clone_state(state: Mapping[str, torch.Tensor]) -> State:
    return {k: v.detach().clone() for k, v in state.items()}


def _version_payload(version: int) -> Payload:
    return Payload.encode("control", {"version": torch.tensor(version, dtype=torch.int64)})


def weighted_average(states: Sequence[Mapping[str, torch.Tensor]],
                     weights: Sequence[float]) -> State:
    """Weighted mean of state dicts, accumulated in float64.

    Integer buffers (BatchNorm's batch counter) take the maximum: averaging a counter is
    meaningless and it only matters when momentum is None.

    Accumulated in place, one scratch tensor per key whatever the number of clients (a
    300-client round would otherwise allocate two float64 copies of every client's model);
    each term is rounded as ``s.to(float64) * (w / total)`` and added in client order from
    zero, so the sums are bit for bit those of the plain expression.
    """
    total = float(sum(weights))
    out = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            acc = torch.zeros(ref.shape, dtype=torch.float64, device=ref.device)
            term = torch.empty_like(acc)
            for s, w in zip(states, weights):
                acc.add_(term.copy_(s[key]).mul_(w / total))
            out[key] = acc.to(ref.dtype)
        else:
            acc = states[0][key].clone()
            for s in states[1:]:
                torch.maximum(acc, s[key], out=acc)
            out[key] = acc
    return out
