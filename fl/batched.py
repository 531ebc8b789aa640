"""Many small clients' local training at once: ``torch.func.vmap`` over
``torch.func.functional_call``, one stacked copy of the weights per client.

A constellation round trains hundreds of clients of a few dozen images each; one at a time,
each step is a small convolution, too small to fill a GPU. Here step k of every client
that has a step k runs as one vmapped forward and one backward, and SGD (momentum, weight
decay) updates the stacked weights of those clients only. The result is
``LocalTrainer.train``'s, client by client (same samples, same augmentations, same
BatchNorm statistics), up to rounding: in float64 within 1e-10, in float32 within 1e-4
after one epoch (rounding differences that BatchNorm on small batches amplifies; a few
1e-4 after two). On a CPU a client's steps already run at the core's arithmetic speed, so
the gain there is small or negative on one thread (``benchmarks/batched_clients.py``).

What keeps it exact:

- each client's generator is consumed as ``LocalTrainer.train`` consumes it (per epoch a
  ``randperm``, then per kept batch one flip and one quarter-turn draw when augmenting);
- a client's short last batch is padded to the step's width; padded samples weigh zero in
  the loss and are left out of BatchNorm's batch statistics (a masked BatchNorm that
  computes what ``nn.BatchNorm2d`` computes on the real samples, running statistics
  included; steps without padding use torch's own batch norm);
- each client's flip and quarter turn are applied to its own slice (the eight dihedral
  transforms are exact pixel permutations).

Supported: models that opt in (``fl/batchable.py``: the built-in classifiers without ACE;
a model of one's own that declares ``batched_obstacle``) and whose only cross-sample layer
is ``BatchNorm2d`` with a momentum; strategies that implement ``Strategy.fit_many``
(FedAvg's client half: FedAvg, FedProx, FedBuff, and FedLA's per-client logit adjustment),
which hand it each client's start, data, generator and loss options (``strategy.TrainMany``),
with or without augmentation; ``train_many`` also takes class weights. Anything else raises
``ValueError``: it needs per-client code.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, cast

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from .batchable import batching_obstacle
from .config import TrainConfig
from .datasets import ImageSet

if TYPE_CHECKING:
    from .strategy import ClientState, ClientUpdate, Strategy

State = dict[str, torch.Tensor]
SUPPORTED = ("batched training supports strategies with a fit_many (fedavg, fedprox, "
             "fedbuff, fedla) on classifiers without ACE")


class _MaskedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` in training mode over the samples whose ``mask`` is 1. It leaves its
    running statistics alone and stashes their updated values in ``updated`` (read by the
    caller inside the same vmapped function): under ``vmap`` they are per-client tensors."""

    mask: torch.Tensor | None = None
    updated: tuple[torch.Tensor, torch.Tensor] | None = None
    # check_model admits only layers that track running statistics with a momentum.
    running_mean: torch.Tensor
    running_var: torch.Tensor
    momentum: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None:  # every sample real: torch's own kernel, on copies of the stats
            mean, var = self.running_mean.clone(), self.running_var.clone()
            y = F.batch_norm(x, mean, var, self.weight, self.bias, True, self.momentum, self.eps)
            self.updated = (mean, var)
            return y
        # per-sample sums first, then the mask (a vector product): two passes over x
        count = self.mask.sum() * (x.shape[2] * x.shape[3])
        mean = (self.mask @ x.sum(dim=(2, 3))) / count
        centred = x - mean.view(1, -1, 1, 1)
        var = (self.mask @ (centred * centred).sum(dim=(2, 3))) / count
        scale = torch.rsqrt(var + self.eps) * self.weight
        y = torch.addcmul(self.bias.view(1, -1, 1, 1), centred, scale.view(1, -1, 1, 1))
        k = self.momentum
        unbiased = var.detach() * (count / (count - 1))
        self.updated = ((1 - k) * self.running_mean + k * mean.detach(),
                        (1 - k) * self.running_var + k * unbiased)
        return y


def check_model(model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``model`` is one that batched training reproduces: it
    opts in and its layers allow it (``batchable.batching_obstacle``)."""
    obstacle = batching_obstacle(model)
    if obstacle is not None:
        raise ValueError(f"{SUPPORTED}; {obstacle}")


MaskedNet = tuple[nn.Module, dict[str, _MaskedBatchNorm2d]]


def masked_copy(model: nn.Module, device: torch.device) -> MaskedNet:
    """A copy of ``model`` whose BatchNorm layers are ``_MaskedBatchNorm2d`` (same names)."""
    check_model(model)
    net = copy.deepcopy(model).to(device).train()
    norms: dict[str, _MaskedBatchNorm2d] = {}
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            module.__class__ = _MaskedBatchNorm2d
            norms[name] = cast(_MaskedBatchNorm2d, module)  # its class was just swapped
    return net, norms


Step = tuple[torch.Tensor, int, int]  # a client's step: sample indices, flip, quarter turns


def _schedule(n: int, generator: torch.Generator, config: TrainConfig) -> list[Step]:
    """A client's steps (sample indices, flip, quarter turns), drawn from ``generator`` in
    ``LocalTrainer.train``'s order."""
    steps = []
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            batch = order[start:start + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            flip = quarter = 0
            if config.augment:
                flip = int(torch.randint(0, 2, (1,), generator=generator))
                quarter = int(torch.randint(0, 4, (1,), generator=generator))
            steps.append((batch, flip, quarter))
    return steps


@dataclass(frozen=True)
class _Loss:
    """A chunk's loss options: FedProx's weight with each client's reference weights (None
    without FedProx), the class weights, each client's logit shift (or None)."""

    prox_mu: float
    references: Sequence[Mapping[str, torch.Tensor]] | None
    class_weights: torch.Tensor | None
    shifts: Sequence[torch.Tensor] | None


def train_many(model: nn.Module, states: Sequence[Mapping[str, torch.Tensor]],
               datasets: Sequence[ImageSet], generators: Sequence[torch.Generator],
               config: TrainConfig, prox_mu: float = 0.0,
               prox_references: Sequence[Mapping[str, torch.Tensor]] | None = None,
               class_weights: torch.Tensor | None = None,
               logit_adjustment: torch.Tensor | Sequence[torch.Tensor] | None = None,
               chunk: int | None = None,
               net: MaskedNet | None = None) -> tuple[list[State], list[float]]:
    """Client i's ``LocalTrainer.train`` from ``states[i]`` on ``datasets[i]`` with
    ``generators[i]`` (consumed), for every i at once, ``chunk`` clients per vmapped pass
    (default: 16 on a CPU, where larger passes leave the cache; 1024 on a GPU).
    ``logit_adjustment``: one for all clients or one per client. ``model`` gives
    the architecture and the device and is not changed; returns each client's trained
    state dict and mean training loss."""
    if not (len(states) == len(datasets) == len(generators)):
        raise ValueError("train_many needs one state, dataset and generator per client")
    if prox_mu > 0 and prox_references is None:
        raise ValueError("train_many: prox_mu > 0 needs prox_references")
    if isinstance(logit_adjustment, torch.Tensor):
        logit_adjustment = [logit_adjustment] * len(states)
    device = next(model.parameters()).device
    chunk = chunk or (16 if device.type == "cpu" else 1024)
    net = net or masked_copy(model, device)
    schedules = [_schedule(len(d), g, config) for d, g in zip(datasets, generators)]
    out_states: list[State] = []
    out_losses: list[float] = []
    for lo in range(0, len(states), chunk):
        hi = min(lo + chunk, len(states))
        loss = _Loss(
            prox_mu,
            prox_references[lo:hi] if prox_mu > 0 and prox_references is not None else None,
            class_weights, logit_adjustment[lo:hi] if logit_adjustment is not None else None)
        trained, losses = _train_chunk(net, model, states[lo:hi], datasets[lo:hi],
                                       schedules[lo:hi], config, loss, device)
        out_states += trained
        out_losses += losses
    return out_states, out_losses


def _train_chunk(net: MaskedNet, model: nn.Module, states: Sequence[Mapping[str, torch.Tensor]],
                 datasets: Sequence[ImageSet], schedules: Sequence[Sequence[Step]],
                 config: TrainConfig, loss: _Loss, device: torch.device
                 ) -> tuple[list[State], list[float]]:
    """``train_many`` on one chunk of clients: at every step, the clients that have it train
    as one vmapped forward and backward and one SGD update of their stacked weights."""
    module, norms = net
    like = model.state_dict()
    names = [n for n, _ in model.named_parameters()]
    weights = _Stacked.of(states, loss.references, like, names, list(norms), device)
    pool = _Pool.of(datasets, device)
    weight = loss.class_weights.to(device) if loss.class_weights is not None else None
    shifts = torch.stack([s.to(device=device, dtype=pool.images.dtype) for s in loss.shifts]) \
        if loss.shifts is not None else None
    objective = _ClientObjective(module, norms, names, loss.prox_mu, weight)
    vmapped = vmap(objective.__call__, in_dims=(0, 0, 0 if weights.refs is not None else None,
                                                0 if shifts is not None else None, 0, 0, 0))
    total = torch.zeros(len(states), device=device)
    count = torch.zeros(len(states), device=device)
    for step in range(max((len(s) for s in schedules), default=0)):
        batch = _batch(schedules, step, pool, device)
        objective.padded = batch.padded
        step_loss = _sgd_step(vmapped, weights, batch, shifts, config, names)
        with torch.no_grad():
            sizes = batch.mask.sum(dim=1)
            total.index_add_(0, batch.rows, (step_loss.detach() * sizes).to(total.dtype))
            count.index_add_(0, batch.rows, sizes.to(count.dtype))
    losses = [float(t) / max(float(c), 1.0) for t, c in zip(total.cpu(), count.cpu())]
    return _unstack(weights, states, like, device), losses


@dataclass
class _Stacked:
    """A chunk's clients' weights, row i client i's: the parameters SGD updates and their
    momentum buffers, BatchNorm's running statistics and batch counters, and FedProx's
    reference weights (None without FedProx)."""

    params: State
    momentum: State
    stats: State
    counters: State
    refs: State | None

    @classmethod
    def of(cls, states: Sequence[Mapping[str, torch.Tensor]],
           references: Sequence[Mapping[str, torch.Tensor]] | None, like: State,
           names: list[str], norms: list[str], device: torch.device) -> "_Stacked":
        """The clients' ``states`` (and ``references``) stacked, each key in ``like``'s
        dtype, on ``device``; the momentum buffers start at zero."""
        def stack(key: str, source: Sequence[Mapping[str, torch.Tensor]]) -> torch.Tensor:
            return torch.stack([s[key].to(device=device, dtype=like[key].dtype) for s in source])

        params = {n: stack(n, states) for n in names}
        stats = {f"{n}.{b}": stack(f"{n}.{b}", states)
                 for n in norms for b in ("running_mean", "running_var")}
        counters = {f"{n}.num_batches_tracked": stack(f"{n}.num_batches_tracked", states)
                    for n in norms}
        refs = {n: stack(n, references) for n in names} if references is not None else None
        momentum = {n: torch.zeros_like(p) for n, p in params.items()}
        return cls(params, momentum, stats, counters, refs)


def _unstack(weights: _Stacked, states: Sequence[Mapping[str, torch.Tensor]], like: State,
             device: torch.device) -> list[State]:
    """Each client's trained state dict, with ``like``'s keys in its order; an entry that
    training does not change is the client's own, copied."""
    tables = (weights.params, weights.stats, weights.counters)
    out = []
    for i, start in enumerate(states):
        state = {}
        for key in like:
            source = next((table for table in tables if key in table), None)
            state[key] = source[key][i].clone() if source is not None else \
                start[key].to(device).clone()
        out.append(state)
    return out


@dataclass(frozen=True)
class _Pool:
    """A chunk's images and labels, client after client; client i's begin at
    ``offsets[i]``."""

    images: torch.Tensor
    labels: torch.Tensor
    offsets: list[int]

    @classmethod
    def of(cls, datasets: Sequence[ImageSet], device: torch.device) -> "_Pool":
        offsets = [0]
        for d in datasets[:-1]:
            offsets.append(offsets[-1] + len(d))
        return cls(torch.cat([d.images for d in datasets]).to(device),
                   torch.cat([d.labels for d in datasets]).to(device), offsets)


@dataclass(frozen=True)
class _Batch:
    """One step's samples of the clients that have that step (``rows`` of the chunk; ``every``
    when that is all of them), each client's padded to one width: ``mask`` is 1 on its real
    samples, ``padded`` whether any sample is not."""

    rows: torch.Tensor
    every: bool
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    padded: bool

    def pick(self, stacked: torch.Tensor) -> torch.Tensor:
        """The step's clients' rows of a tensor stacked over the chunk."""
        return stacked if self.every else stacked[self.rows]

    def put(self, stacked: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``stacked`` with the step's clients' rows replaced by ``rows``."""
        return rows if self.every else stacked.index_copy(0, self.rows, rows)


def _batch(schedules: Sequence[Sequence[Step]], step: int, pool: _Pool,
           device: torch.device) -> _Batch:
    """Step ``step`` of every client whose schedule has one, a short batch padded with its
    first sample (masked out)."""
    active = [i for i in range(len(schedules)) if len(schedules[i]) > step]
    width = max(len(schedules[i][step][0]) for i in active)
    index = torch.zeros(len(active), width, dtype=torch.long)
    mask = torch.zeros(len(active), width, dtype=pool.images.dtype)
    transforms: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, i in enumerate(active):
        batch, flip, quarter = schedules[i][step]
        index[row, :len(batch)] = batch + pool.offsets[i]
        index[row, len(batch):] = batch[0] + pool.offsets[i]
        mask[row, :len(batch)] = 1.0
        if flip or quarter:
            transforms[(flip, quarter)].append(row)
    padded = bool((mask == 0).any())
    index, mask = index.to(device), mask.to(device)
    x = _augment(pool.images[index], transforms, device)
    return _Batch(torch.tensor(active, device=device), len(active) == len(schedules), x,
                  pool.labels[index], mask, padded)


def _augment(x: torch.Tensor, transforms: Mapping[tuple[int, int], list[int]],
             device: torch.device) -> torch.Tensor:
    """``x`` (clients x samples x C x H x W) with each client's rows flipped and turned as
    its step drew: ``transforms`` maps (flip, quarter turns) to rows. The eight dihedral
    transforms are exact pixel permutations."""
    for (flip, quarter), rows in transforms.items():
        rows_t = torch.tensor(rows, device=device)
        part = x[rows_t]
        part = torch.flip(part, dims=(4,)) if flip else part
        x[rows_t] = torch.rot90(part, k=quarter, dims=(3, 4))
    return x


class _ClientObjective:
    """One client's objective and loss on its step's batch, the function ``vmap`` maps over
    clients. Its BatchNorm layers count only its real samples (masked while the step is
    ``padded``) and hand back their updated running statistics; padded samples weigh zero
    in the loss."""

    def __init__(self, module: nn.Module, norms: dict[str, _MaskedBatchNorm2d],
                 names: list[str], prox_mu: float, weight: torch.Tensor | None):
        self.module, self.norms, self.names = module, norms, names
        self.prox_mu, self.weight = prox_mu, weight
        self.padded = False  # whether the current step has padded samples

    def __call__(self, p: State, buffers: State, ref: State | None,
                 shift: torch.Tensor | None, x: torch.Tensor, y: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, State]:
        for bn in self.norms.values():
            bn.mask = mask if self.padded else None
        logits = functional_call(self.module, (p, buffers), (x,))
        updated = {}
        for name, bn in self.norms.items():
            assert bn.updated is not None  # its forward pass has just set it
            updated[f"{name}.running_mean"], updated[f"{name}.running_var"] = bn.updated
            bn.mask = bn.updated = None
        if shift is not None:
            logits = logits + shift.view(1, -1)
        weight = self.weight
        per_sample = F.cross_entropy(logits, y, weight=weight, reduction="none")
        denominator = (mask * weight[y]).sum() if weight is not None else mask.sum()
        loss = (per_sample * mask).sum() / denominator
        objective = loss
        if ref is not None:
            objective = objective + 0.5 * self.prox_mu * sum(((p[n] - ref[n]) ** 2).sum()
                                                            for n in self.names)
        return objective, loss, updated


def _sgd_step(vmapped: Callable[..., Any], weights: _Stacked, batch: _Batch,
              shifts: torch.Tensor | None, config: TrainConfig, names: list[str]
              ) -> torch.Tensor:
    """One step of the batch's clients: the gradients of their objectives from one vmapped
    forward and backward, then their rows of ``weights`` updated (parameters by SGD,
    BatchNorm's statistics and counters). Returns each of those clients' loss."""
    p = {n: batch.pick(v).detach().requires_grad_(True) for n, v in weights.params.items()}
    buffers = {n: batch.pick(v) for n, v in weights.stats.items()}
    refs = {n: batch.pick(v) for n, v in weights.refs.items()} \
        if weights.refs is not None else None
    shift = batch.pick(shifts) if shifts is not None else None
    objective, loss, updated = vmapped(p, buffers, refs, shift, batch.x, batch.y, batch.mask)
    grads = torch.autograd.grad(objective.sum(), [p[n] for n in names])
    with torch.no_grad():
        for name, g in zip(names, grads):
            _sgd(weights, name, p[name].detach(), g, batch, config)
        for name, v in updated.items():
            weights.stats[name] = batch.put(weights.stats[name], v)
        for name, c in list(weights.counters.items()):
            weights.counters[name] = c.index_add(0, batch.rows, torch.ones_like(c[batch.rows]))
    return loss


def _sgd(weights: _Stacked, name: str, w: torch.Tensor, g: torch.Tensor, batch: _Batch,
         config: TrainConfig) -> None:
    """``torch.optim.SGD``'s update of parameter ``name`` for the batch's clients (weight
    decay, then momentum), from their weights ``w`` and gradients ``g``."""
    if config.weight_decay:
        g = g.add(w, alpha=config.weight_decay)
    if config.momentum:
        g = batch.pick(weights.momentum[name]).mul(config.momentum).add(g)
        weights.momentum[name] = batch.put(weights.momentum[name], g)
    weights.params[name] = batch.put(weights.params[name], w.add(g, alpha=-config.lr))


class BatchedFits:
    """A strategy's ``fit_many`` on a list of ``FitJob``s, with ``train_many`` bound to its
    worker model (one masked copy of it, made once): the same ``(ClientUpdate,
    ClientState)`` pairs as ``strategy.run_fit`` job by job, within ``train_many``'s
    tolerance."""

    def __init__(self, strategy: "Strategy", client_data: Sequence[ImageSet],
                 chunk: int | None = None):
        if not strategy.fits_many():
            raise ValueError(f"{SUPPORTED}; strategy {strategy.name!r} needs per-client code "
                             "(it implements no fit_many)")
        self.strategy, self.client_data, self.chunk = strategy, client_data, chunk
        model = strategy.worker
        self.net = masked_copy(model, next(model.parameters()).device)

    def train_many(self, states: Sequence[Mapping[str, torch.Tensor]],
                   datasets: Sequence[ImageSet], generators: Sequence[torch.Generator], *,
                   prox_mu: float = 0.0,
                   prox_references: Sequence[Mapping[str, torch.Tensor]] | None = None,
                   class_weights: torch.Tensor | None = None,
                   logit_adjustment: torch.Tensor | Sequence[torch.Tensor] | None = None
                   ) -> tuple[list[State], list[float]]:
        """``train_many`` on the strategy's worker model and training settings: the
        ``strategy.TrainMany`` that ``fit_many`` is handed."""
        return train_many(self.strategy.worker, states, datasets, generators,
                          self.strategy.config.train, prox_mu, prox_references, class_weights,
                          logit_adjustment, chunk=self.chunk, net=self.net)

    def run(self, jobs: Sequence[Any]) -> list[tuple["ClientUpdate", "ClientState"]]:
        """The jobs' (``executors.FitJob``) fits, through the strategy's ``fit_many``."""
        return self.strategy.fit_many(jobs, self.client_data, self.train_many)
