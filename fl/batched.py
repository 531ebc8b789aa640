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

Supported: classifiers (``ClassifierNet`` without ACE) whose only cross-sample layer is
``BatchNorm2d`` with a momentum; strategies that implement ``Strategy.fit_many`` (FedAvg's
client half: FedAvg, FedProx, FedBuff, and FedLA's per-client logit adjustment), with or
without augmentation;
``train_many`` also takes class weights. Anything else raises ``ValueError``: it needs
per-client code.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import TYPE_CHECKING, Mapping, Sequence, cast

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from .config import TrainConfig
from .datasets import ImageSet
from .models import ClassifierNet

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
    """Raise ``ValueError`` unless ``model`` is one that batched training reproduces."""
    if getattr(model, "ace", None) is not None:
        raise ValueError(f"{SUPPORTED}; a model with ACE (Gumbel noise, a mask prior) needs "
                         "per-client code")
    if not isinstance(model, ClassifierNet):  # per-pixel labels, other heads
        raise ValueError(f"{SUPPORTED}; {type(model).__name__} needs per-client code")
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            raise ValueError(f"{SUPPORTED}; dropout ({name}) needs per-client code")
        if isinstance(module, nn.modules.batchnorm._NormBase):
            if type(module) is not nn.BatchNorm2d or module.momentum is None \
                    or not module.track_running_stats or not module.affine:
                raise ValueError(f"{SUPPORTED}; {name} ({module!r}) needs per-client code")


def masked_copy(model: nn.Module, device: torch.device
                ) -> tuple[nn.Module, dict[str, _MaskedBatchNorm2d]]:
    """A copy of ``model`` whose BatchNorm layers are ``_MaskedBatchNorm2d`` (same names)."""
    check_model(model)
    net = copy.deepcopy(model).to(device).train()
    norms: dict[str, _MaskedBatchNorm2d] = {}
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            module.__class__ = _MaskedBatchNorm2d
            norms[name] = cast(_MaskedBatchNorm2d, module)  # its class was just swapped
    return net, norms


def _schedule(n: int, generator: torch.Generator, config: TrainConfig
              ) -> list[tuple[torch.Tensor, int, int]]:
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


def train_many(model: nn.Module, states: Sequence[Mapping[str, torch.Tensor]],
               datasets: Sequence[ImageSet], generators: Sequence[torch.Generator],
               config: TrainConfig, prox_mu: float = 0.0,
               prox_references: Sequence[Mapping[str, torch.Tensor]] | None = None,
               class_weights: torch.Tensor | None = None,
               logit_adjustment: torch.Tensor | Sequence[torch.Tensor] | None = None,
               chunk: int | None = None,
               net: tuple[nn.Module, dict] | None = None) -> tuple[list[State], list[float]]:
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
        trained, losses = _train_chunk(
            net, model, states[lo:hi], datasets[lo:hi], schedules[lo:hi], config, prox_mu,
            prox_references[lo:hi] if prox_mu > 0 and prox_references is not None else None,
            class_weights,
            logit_adjustment[lo:hi] if logit_adjustment is not None else None, device)
        out_states += trained
        out_losses += losses
    return out_states, out_losses


def _train_chunk(net, model, states, datasets, schedules, config, prox_mu, references,
                 class_weights, logit_adjustment, device):
    module, norms = net
    reference_state = model.state_dict()
    param_names = [n for n, _ in model.named_parameters()]
    k = len(states)

    def stack(key, source):
        like = reference_state[key]
        return torch.stack([s[key].to(device=device, dtype=like.dtype) for s in source])

    params = {n: stack(n, states) for n in param_names}
    stats = {f"{n}.{b}": stack(f"{n}.{b}", states)
             for n in norms for b in ("running_mean", "running_var")}
    counters = {f"{n}.num_batches_tracked": stack(f"{n}.num_batches_tracked", states)
                for n in norms}
    refs = {n: stack(n, references) for n in param_names} if references is not None else None
    momentum_buffers = {n: torch.zeros_like(p) for n, p in params.items()}

    images = torch.cat([d.images for d in datasets]).to(device)
    labels = torch.cat([d.labels for d in datasets]).to(device)
    offsets = [0]
    for d in datasets[:-1]:
        offsets.append(offsets[-1] + len(d))
    weight = class_weights.to(device) if class_weights is not None else None
    shifts = torch.stack([s.to(device=device, dtype=images.dtype) for s in logit_adjustment]) \
        if logit_adjustment is not None else None

    padded = [False]

    def client_loss(p, buffers, ref, shift, x, y, mask):
        for bn in norms.values():
            bn.mask = mask if padded[0] else None
        logits = functional_call(module, (p, buffers), (x,))
        updated = {}
        for name, bn in norms.items():
            updated[f"{name}.running_mean"], updated[f"{name}.running_var"] = bn.updated
            bn.mask = bn.updated = None
        if shift is not None:
            logits = logits + shift.view(1, -1)
        per_sample = F.cross_entropy(logits, y, weight=weight, reduction="none")
        denominator = (mask * weight[y]).sum() if weight is not None else mask.sum()
        loss = (per_sample * mask).sum() / denominator
        objective = loss
        if ref is not None:
            objective = objective + 0.5 * prox_mu * sum(((p[n] - ref[n]) ** 2).sum()
                                                       for n in param_names)
        return objective, loss, updated

    batched = vmap(client_loss, in_dims=(0, 0, 0 if refs is not None else None,
                                         0 if shifts is not None else None, 0, 0, 0))
    total = torch.zeros(k, device=device)
    count = torch.zeros(k, device=device)
    steps = max((len(s) for s in schedules), default=0)
    for step in range(steps):
        active = [i for i in range(k) if len(schedules[i]) > step]
        width = max(len(schedules[i][step][0]) for i in active)
        index = torch.zeros(len(active), width, dtype=torch.long)
        mask = torch.zeros(len(active), width, dtype=images.dtype)
        transforms = defaultdict(list)
        for row, i in enumerate(active):
            batch, flip, quarter = schedules[i][step]
            index[row, :len(batch)] = batch + offsets[i]
            index[row, len(batch):] = batch[0] + offsets[i]
            mask[row, :len(batch)] = 1.0
            if flip or quarter:
                transforms[(flip, quarter)].append(row)
        padded[0] = bool((mask == 0).any())
        index, mask = index.to(device), mask.to(device)
        x, y = images[index], labels[index]
        for (flip, quarter), rows in transforms.items():
            rows_t = torch.tensor(rows, device=device)
            part = x[rows_t]
            part = torch.flip(part, dims=(4,)) if flip else part
            x[rows_t] = torch.rot90(part, k=quarter, dims=(3, 4))
        every = len(active) == k
        rows_all = torch.tensor(active, device=device)
        pick = (lambda t: t) if every else (lambda t: t[rows_all])
        p = {n: pick(v).detach().requires_grad_(True) for n, v in params.items()}
        b = {n: pick(v) for n, v in stats.items()}
        r = {n: pick(v) for n, v in refs.items()} if refs is not None else None
        shift = pick(shifts) if shifts is not None else None
        objective, loss, updated = batched(p, b, r, shift, x, y, mask)
        grads = torch.autograd.grad(objective.sum(), [p[n] for n in param_names])
        with torch.no_grad():
            for name, g in zip(param_names, grads):
                w = p[name].detach()
                if config.weight_decay:
                    g = g.add(w, alpha=config.weight_decay)
                if config.momentum:
                    buf = pick(momentum_buffers[name]).mul(config.momentum).add(g)
                    g = buf
                new = w.add(g, alpha=-config.lr)
                if every:
                    params[name] = new
                    if config.momentum:
                        momentum_buffers[name] = buf
                else:
                    params[name] = params[name].index_copy(0, rows_all, new)
                    if config.momentum:
                        momentum_buffers[name] = momentum_buffers[name].index_copy(0, rows_all, buf)
            for name, v in updated.items():
                stats[name] = v if every else stats[name].index_copy(0, rows_all, v)
            for name in counters:
                counters[name] = counters[name].index_add(
                    0, rows_all, torch.ones_like(counters[name][rows_all]))
            sizes = mask.sum(dim=1)
            total.index_add_(0, rows_all, (loss.detach() * sizes).to(total.dtype))
            count.index_add_(0, rows_all, sizes.to(count.dtype))
    out = []
    for i in range(k):
        state = {}
        for key in reference_state:
            source = params if key in params else stats if key in stats else \
                counters if key in counters else None
            state[key] = source[key][i].clone() if source is not None else \
                states[i][key].to(device).clone()
        out.append(state)
    losses = [float(t) / max(float(c), 1.0) for t, c in zip(total.cpu(), count.cpu())]
    return out, losses


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
                   datasets: Sequence[ImageSet], generators: Sequence[torch.Generator],
                   **loss) -> tuple[list[State], list[float]]:
        """``train_many`` on the strategy's worker model and training settings."""
        return train_many(self.strategy.worker, states, datasets, generators,
                          self.strategy.config.train, chunk=self.chunk, net=self.net, **loss)

    def run(self, jobs: Sequence) -> list[tuple["ClientUpdate", "ClientState"]]:
        return self.strategy.fit_many(jobs, self.client_data, self.train_many)
