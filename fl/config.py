"""The learning layer's configuration, declared once: the scenario schema composes these
dataclasses as its sections (``fl.safe`` is ``SafeConfig``, ``fl.fedprox``, ``fl.fedbuff``
and ``fl.compression`` the classes of those names), so each option's type, bounds,
description and unit live here (``orbitfl/options.py``). Plain dataclasses, no torch: a
scenario validates without importing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orbitfl.limits import MAX_SATELLITES
from orbitfl.options import STRICT, option


@dataclass(frozen=True)
class SafeConfig:
    """SAFE's switches and their modes (docs/safe-method.md); every orbitfl choice is a field.
    The scenario's ``fl.safe`` section is this class (``orbitfl/options.py``)."""

    __pydantic_config__ = STRICT

    cro: bool = option(
        True, "CRO: class rectification, server-sent class weights in the local loss")
    fau: bool = option(
        True, "FAU: feature-aligned EMA start from the global model, mu from CKA on the SES")
    dmr: bool = option(
        True, "DMR: cosine schedule from global to local over the rounds (scales FAU's mu and "
              "CRO)")
    ace: bool = option(
        True, "ACE: adaptive context enhancement module between backbone and head")
    cro_mode: Literal["grad_norm", "ratio_loss"] = option(
        "grad_norm", "how CRO weighs classes: grad_norm or ratio_loss")
    cro_smoothing: bool = option(True, "smooth CRO's weights over rounds (0.9 old + 0.1 new)")
    fau_scope: Literal["all", "backbone"] = option(
        "all", "parameters FAU's EMA start blends: all, or the backbone only")
    fau_payload: Literal["features", "gram"] = option(
        "features", "FAU's payload: features (n x d) or their Gram matrix (n x n)")
    fau_cka: bool = option(True, "FAU's mu driven by CKA; false: fixed mu")
    # fau_tau = fau_mu_fixed by default, so fixed against CKA-driven mu is a fair comparison
    fau_tau: float = option(0.5, "mu of a client drifting as much as usual", gt=0)
    # a bound of 1 would let a client ignore the global model entirely (orbitfl's choice)
    fau_mu_max: float = option(0.8, "upper bound on FAU's mu", ge=0, lt=1)
    fau_mu_fixed: float = option(0.5, "FAU's mu when fau_cka is false", ge=0, le=1)
    dmr_cro: Literal["ramp_up", "constant", "ramp_down"] = option(
        "ramp_up", "DMR's schedule of CRO: ramp_up, constant or ramp_down")
    ace_mode: Literal["residual", "gate"] = option(
        "residual", "how ACE's context joins the features: residual or gate")
    ace_contexts: int = option(8, "K, the number of ACE context embeddings", gt=0, le=1024)
    ace_dim: int = option(128, "d, ACE's attention width", gt=0, le=4096)
    # the mask prior and the query residual are orbitfl's additions (see models.ACE)
    ace_prior: float = option(0.3, "foreground budget of ACE's mask prior", gt=0, lt=1)
    ace_prior_weight: float = option(0.3, "weight of ACE's mask prior; 0 disables it", ge=0)
    ace_query_residual: bool = option(True, "ACE's mask head reads context plus query")


@dataclass(frozen=True)
class FedProxConfig:
    __pydantic_config__ = STRICT

    mu: float = option(0.01, "weight of FedProx's proximal term", ge=0)


@dataclass(frozen=True)
class FedBuffConfig:
    __pydantic_config__ = STRICT

    buffer_size: int = option(
        5, "updates buffered before the server aggregates", gt=0, le=MAX_SATELLITES)
    staleness_exponent: float = option(
        0.5, "exponent a of the staleness weight (1 + staleness) ** -a", ge=0)
    server_lr: float = option(
        1.0, "server learning rate applied to the buffered mean update", gt=0)


@dataclass(frozen=True)
class CompressionConfig:
    """Codecs by link direction, named like the byte columns (up = ground to satellites):
    ``to_satellites`` for the global model the server broadcasts, ``to_ground`` for the
    updates satellites send back (where top-k with error feedback applies)."""

    __pydantic_config__ = STRICT

    to_satellites: Literal["fp32", "fp16", "int8", "int8-channel"] = option(
        "fp32", "codec of the global model sent up (ground to satellites)")
    to_ground: Literal["fp32", "fp16", "int8", "int8-channel", "topk"] = option(
        "fp32", "codec of the updates sent down (satellites to ground); topk keeps the largest, "
                "with error feedback")
    topk_ratio: float = option(0.01, "fraction of update entries topk keeps", gt=0, le=1)
