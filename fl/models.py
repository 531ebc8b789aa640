"""Models: a backbone of spatial features, optionally SAFE's ACE module, global average
pooling and a linear classifier.

``features`` is the penultimate representation (FAU compares these with CKA) and
``classifier`` the final layer (CRO differentiates through it). ACE's parameters live under
``ace.`` so that they can travel as their own (embedding) payload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Protocol, cast

import torch
from torch import nn
from torch.nn import functional as F

from orbitfl.core.errors import InputError

from .config import SafeConfig


@dataclass(frozen=True)
class AceMask:
    """How ACE's foreground mask acts: ``mode`` (``gate`` or ``residual``), the Gumbel-Softmax
    temperature ``tau`` while training, and the prior on the mask's foreground share
    (``prior``) with the weight of that term in the loss (``prior_weight``)."""

    mode: str = "gate"
    tau: float = 1.0
    prior: float = 0.3
    prior_weight: float = 0.3


MASK_OPTIONS = tuple(f.name for f in fields(AceMask))


def fast_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) in the channels-last layout on a CPU. oneDNN's pooling and batch
    norm are several times faster on it than on the default layout (max pooling 10x), so a
    small CNN trains about 1.5x and evaluates about 2x faster (``benchmarks/layout.py``).
    The input's layout carries through every convolution; the parameters keep theirs. The
    values are those of the default layout to float32 rounding, not bit for bit. GPUs keep
    the default layout (not measured here), and so does a pass under ``vmap``
    (``fl/batched.py``), where torch cannot query a layout yet."""
    if x.dim() != 4 or x.device.type != "cpu":
        return x
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # "NYI: querying is_contiguous inside of vmap"
        return x


class FLModel(Protocol):
    """What strategies and training reach for on a model of this module beyond nn.Module.

    nn.Module's attribute lookup types every attribute as ``Tensor | Module``; code that
    uses these parts views its model through :func:`parts` (a checked-by-hand cast).
    """

    classifier: nn.Linear | nn.Conv2d  # the final layer: Linear, or 1x1 Conv2d (segmentation)
    ace: ACE | None

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def head_input(self, x: torch.Tensor) -> torch.Tensor: ...

    def auxiliary_loss(self) -> torch.Tensor: ...


def parts(model: nn.Module) -> FLModel:
    """``model`` as a :class:`FLModel` (ClassifierNet and SegmentationNet implement it;
    training checks ``auxiliary_loss`` with hasattr for models from elsewhere)."""
    return cast(FLModel, model)


class ACE(nn.Module):
    """Adaptive Context Enhancement (docs/safe-method.md, ACE): the client's own learnable
    context embeddings E (K x d) and the server's embedding matrix (``bank``: every
    client's last uploaded E, clients x K x d, a buffer the server fills) are the keys and
    values of a cross-attention whose queries are the backbone's features; a two-way head
    gives a foreground mask (hard Gumbel-Softmax while training, its expectation, the soft
    foreground probability, in evaluation). ``gate`` (default) scales features by the mask,
    ``F' = F (1 + a (2M - 1))`` with ``a = sigmoid(gamma)`` in (0, 1): background down,
    foreground up; ``residual`` adds ``gamma M F``."""

    def __init__(self, channels: int, contexts: int = 8, dim: int = 128,
                 mask: AceMask = AceMask(), query_residual: bool = True, clients: int = 0):
        super().__init__()
        mode = mask.mode
        if mode not in MASK_MODES:
            raise ValueError(f"unknown ACE mode {mode!r}")
        self.mode, self.tau, self.dim = mode, mask.tau, dim
        self.prior, self.prior_weight = mask.prior, mask.prior_weight
        self.query_residual = query_residual
        self._soft: torch.Tensor | None = None
        self.embeddings = nn.Parameter(torch.randn(contexts, dim) * 0.02)
        # every client's contexts start as the initial E (the server has seen none yet)
        self.bank: torch.Tensor  # a buffer: typed here, as register_buffer cannot say
        self.register_buffer("bank", self.embeddings.detach().repeat(clients, 1, 1))
        self.query = nn.Conv2d(channels, dim, 1)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.mask_head = nn.Linear(dim, 2)
        # gate: a = sigmoid(0) = 0.5 (background x 0.5, foreground x 1.5); residual: 1
        self.gamma = nn.Parameter(torch.zeros(()) if mode == "gate" else torch.ones(()))
        self.last_mask: torch.Tensor | None = None  # evaluation: soft foreground probability
        self.last_soft: torch.Tensor | None = None

    def contexts(self) -> torch.Tensor:
        """What the features attend to: the own E, then the server's matrix, (K + NK) x d."""
        return torch.cat([self.embeddings, self.bank.reshape(-1, self.dim)])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, _, h, w = features.shape
        # the 1x1 convolution as a matrix product over positions: same parameters, but the
        # result of an image does not depend on its batch (a convolution's does, by 1e-7),
        # which the soft evaluation mask would carry into the logits (test_fl_core.py)
        queries = F.linear(features.flatten(2).transpose(1, 2),
                           self.query.weight.flatten(1), self.query.bias)  # (B, HW, d)
        contexts = self.contexts()
        keys, values = self.key(contexts), self.value(contexts)            # (K', d)
        attention = torch.softmax(queries @ keys.T / math.sqrt(self.dim), dim=-1)
        context = attention @ values                                        # (B, HW, d)
        # orbitfl's choice: the query joins the context (a transformer-style residual), so
        # the mask can depend on each position; see ``auxiliary_loss``.
        logits = self.mask_head(context + queries if self.query_residual else context)
        soft = torch.softmax(logits, dim=-1)[..., 1]
        if self.training:
            mask = F.gumbel_softmax(logits, tau=self.tau, hard=True)[..., 1]
            self._soft = soft
        else:
            # the training mask's expectation: an argmax of a foreground probability that
            # sits just under 0.5 everywhere is an all-background mask (docs/safe-method.md)
            mask = soft
        mask = mask.reshape(b, 1, h, w)
        self.last_mask = mask.detach()
        self.last_soft = soft.detach().reshape(b, 1, h, w)
        return gated(features, mask, self.gamma, self.mode)

    def auxiliary_loss(self) -> torch.Tensor:
        """Mask prior *(orbitfl's choice, not in the paper)*: without it the cheapest optimum
        is the all-foreground mask (a failure signature in docs/safe-method.md).
        ``prior_weight * (mean foreground probability - prior)^2`` makes the mask spend a
        budget, which it spends where features matter. ``prior_weight = 0`` disables it."""
        if self._soft is None or self.prior_weight == 0:
            return torch.zeros(())
        budget = (self._soft.mean() - self.prior) ** 2
        decisive = (self._soft * (1.0 - self._soft)).mean()
        return self.prior_weight * (budget + decisive)


MASK_MODES = ("gate", "residual")


def gated(features: torch.Tensor, mask: torch.Tensor, gamma: torch.Tensor,
          mode: str) -> torch.Tensor:
    """ACE's output from a mask in [0, 1] (1: foreground). ``gate``: ``F (1 + a (2M - 1))``,
    ``a = sigmoid(gamma)``, so background (M = 0) is scaled by ``1 - a`` < 1 and foreground
    by ``1 + a`` > 1; ``residual``: ``F + gamma M F`` (an empty mask is the identity)."""
    if mode == "gate":
        return features * (1.0 + torch.sigmoid(gamma) * (2.0 * mask - 1.0))
    return features + gamma * mask * features


class ClassifierNet(nn.Module):
    def __init__(self, backbone: nn.Module, channels: int, classes: int,
                 ace: ACE | None = None):
        super().__init__()
        self.backbone = backbone
        self.ace = ace
        self.classifier = nn.Linear(channels, classes)

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(fast_layout(x))
        return self.ace(features) if self.ace is not None else features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(x).mean(dim=(2, 3))

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier layer reads (CRO differentiates the classifier on it)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def auxiliary_loss(self) -> torch.Tensor:
        """Regularisers of the last training forward pass (ACE's mask prior)."""
        return self.ace.auxiliary_loss() if self.ace is not None else torch.zeros(())

    def batched_obstacle(self) -> str | None:
        """Batched training (``fl/batchable.py``) reproduces a classifier's training, but
        not ACE's (its Gumbel noise and mask prior)."""
        return "a model with ACE (Gumbel noise, a mask prior)" if self.ace is not None else None


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def small_cnn_backbone(in_channels: int = 3, width: int = 32) -> tuple[nn.Module, int]:
    """Three conv blocks (~95 k parameters with the classifier), sized for CPU training."""
    return nn.Sequential(_block(in_channels, width), nn.MaxPool2d(2),
                         _block(width, 2 * width), nn.MaxPool2d(2),
                         _block(2 * width, 4 * width)), 4 * width


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18_backbone(in_channels: int = 3) -> tuple[nn.Module, int]:
    """ResNet-18 (He et al., 2016) with a 3x3 stem for small tiles (~11 M parameters)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Residual(cin, cout, stride), _Residual(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers), 512


class SegmentationNet(nn.Module):
    """A small encoder-decoder (U-Net style, two skip connections) for per-pixel classes.

    ``features``: the pooled bottleneck (FAU); ``classifier``: the final 1x1 convolution
    (CRO); ACE, when present, refines the bottleneck. It declares no ``batched_obstacle``:
    batched training's loss has one label per image, not per pixel (``fl/batchable.py``).
    """

    def __init__(self, classes: int, in_channels: int = 3, width: int = 32,
                 ace: ACE | None = None):
        super().__init__()
        w = width
        self.backbone = nn.ModuleDict({
            "enc1": _block(in_channels, w), "enc2": _block(w, 2 * w), "enc3": _block(2 * w, 4 * w),
            "up2": nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2), "dec2": _block(4 * w, 2 * w),
            "up1": nn.ConvTranspose2d(2 * w, w, 2, stride=2), "dec1": _block(2 * w, w)})
        self.ace = ace
        self.classifier = nn.Conv2d(w, classes, 1)

    def _encode(self, x: torch.Tensor):
        b = self.backbone
        e1 = b["enc1"](fast_layout(x))
        e2 = b["enc2"](F.max_pool2d(e1, 2))
        e3 = b["enc3"](F.max_pool2d(e2, 2))
        return e1, e2, self.ace(e3) if self.ace is not None else e3

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[2].mean(dim=(2, 3))

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        e1, e2, e3 = self._encode(x)
        d2 = b["dec2"](torch.cat([b["up2"](e3), e2], dim=1))
        return b["dec1"](torch.cat([b["up1"](d2), e1], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_input(x))

    def auxiliary_loss(self) -> torch.Tensor:
        return self.ace.auxiliary_loss() if self.ace is not None else torch.zeros(())


def tiny_cnn_backbone(in_channels: int = 3) -> tuple[nn.Module, int]:
    """The small CNN at width 16 (~24 k parameters with a 10-class head): 2.3x cheaper to
    train and 4x cheaper to evaluate on 2 CPU cores, which is what lets the SAFE study
    (docs/safe-study.md) run every row and seed in one sitting."""
    return small_cnn_backbone(in_channels, width=16)


BACKBONES = {"small-cnn": small_cnn_backbone, "tiny-cnn": tiny_cnn_backbone,
             "resnet18": resnet18_backbone}


MODELS = (*BACKBONES, "seg-unet")


def ace_options(safe: SafeConfig, clients: int) -> dict:
    """``ACE``'s keyword arguments from SAFE's switches, for a federation of ``clients``
    (the rows of the server's embedding matrix; none without per-client contexts)."""
    return {"contexts": safe.ace_contexts, "dim": safe.ace_dim, "mode": safe.ace_mode,
            "prior": safe.ace_prior, "prior_weight": safe.ace_prior_weight,
            "query_residual": safe.ace_query_residual,
            "clients": clients if safe.ace_client_contexts else 0}


def build_model(name: str, classes: int, ace: dict | None = None) -> nn.Module:
    """``ace``: None, or keyword arguments of ``ACE`` (contexts, dim, mode, tau, ...)."""
    if name == "seg-unet":
        return SegmentationNet(classes, ace=_ace(128, ace) if ace is not None else None)
    if name not in BACKBONES:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    backbone, channels = BACKBONES[name]()
    module = _ace(channels, ace) if ace is not None else None
    return ClassifierNet(backbone, channels, classes, module)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _ace(channels: int, options: dict) -> ACE:
    """``ACE`` from flat keyword options (``ace_options``), its mask's among them."""
    mask = AceMask(**{k: v for k, v in options.items() if k in MASK_OPTIONS})
    return ACE(channels, mask=mask, **{k: v for k, v in options.items() if k not in MASK_OPTIONS})
