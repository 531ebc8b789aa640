"""SAFE's extra bytes, computed from shapes: what SAFE sends beside FedAvg's model, per client
and round (A_g, CRO's class weights, ACE's parameters with, downwards, the server's
embedding matrix of every client's contexts) and once per client (the SES), at the image
sizes and models a mission might use. Nothing is trained: every size is the exact
wire size of a payload (``fl.payloads``) built from zero tensors of the shapes the
strategy sends (``fl.safe.encode_ses`` for the SES, ``fl.strategy.model_payloads`` for the
model and ACE's parameters), so the table follows the code if either changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from orbitfl.fl.compression import Codec
from orbitfl.fl.models import build_model, parts
from orbitfl.fl.payloads import Payload
from orbitfl.fl.safe import BANK, encode_ses
from orbitfl.fl.strategy import model_payloads

MB = 1e6


@dataclass(frozen=True)
class ExtraBytes:
    """Wire bytes of one client's payloads: FedAvg's model each way per round, and what
    SAFE adds (per round: A_g down, class weights down, ACE's parameters down and up;
    once: the SES down)."""

    model: str
    image_size: int
    classes: int
    ses_per_class: int
    clients: int
    weights: int
    ses: int
    a_g: int
    class_weights: int
    embedding_down: int   # ACE's parameters and the clients x K x d embedding matrix
    embedding_up: int     # ACE's parameters with the client's own contexts

    @property
    def per_round_extra(self) -> int:
        """SAFE's bytes beyond FedAvg's in one round of one client, both ways (the SES
        aside): A_g, class weights and ACE with the embedding matrix down, ACE up."""
        return self.a_g + self.class_weights + self.embedding_down + self.embedding_up

    @property
    def per_round_share(self) -> float:
        """That extra as a fraction of FedAvg's round (the model down and up)."""
        return self.per_round_extra / (2 * self.weights)


def extra_bytes(model: str, image_size: int, classes: int = 10, ses_per_class: int = 10,
                clients: int = 10, ace_contexts: int = 8, ace_dim: int = 32) -> ExtraBytes:
    """The payload sizes above for ``model`` on ``image_size`` px tiles (3 channels) in a
    federation of ``clients``."""
    ace = {"contexts": ace_contexts, "dim": ace_dim, "clients": clients}
    net = build_model(model, classes, ace)
    state = net.state_dict()
    payloads = {p.kind: p.nbytes for p in model_payloads(state, Codec())}
    up = {p.kind: p.nbytes for p in model_payloads(
        {k: v for k, v in state.items() if k != BANK}, Codec())}
    features = parts(net).classifier.weight.shape[1]
    n = classes * ses_per_class
    ses = Payload.encode("ses_images", encode_ses(torch.zeros(n, 3, image_size, image_size)))
    a_g = Payload.encode("feature_map", {"A_g": torch.zeros(n, features)})
    weights = Payload.encode("class_weights", {"w": torch.zeros(classes)})
    return ExtraBytes(model, image_size, classes, ses_per_class, clients, payloads["weights"],
                      ses.nbytes, a_g.nbytes, weights.nbytes, payloads.get("embedding", 0),
                      up.get("embedding", 0))


def table(sizes: tuple[int, ...] = (32, 64, 256), classes: tuple[int, ...] = (10, 45),
          models: tuple[str, ...] = ("tiny-cnn", "small-cnn", "resnet18")) -> list[ExtraBytes]:
    """Every model (tiny-cnn: this study's) x image size x number of classes (10: this study;
    45: NWPU-RESISC45)."""
    return [extra_bytes(m, s, c) for m in models for c in classes for s in sizes]


def markdown(rows: list[ExtraBytes]) -> list[str]:
    lines = ["| model | px | classes | clients | model (MB, each way) | SES once (MB) | "
             "A_g (kB) | class weights (B) | ACE + embedding matrix down (kB) | ACE up (kB) | "
             "extra per round | SES / model |", "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r.model} | {r.image_size} | {r.classes} | {r.clients} | "
                     f"{r.weights / MB:.3f} | {r.ses / MB:.3f} | {r.a_g / 1e3:.1f} | "
                     f"{r.class_weights} | {r.embedding_down / 1e3:.1f} | "
                     f"{r.embedding_up / 1e3:.1f} | +{100 * r.per_round_share:.1f} % | "
                     f"{r.ses / r.weights:.2f} |")
    return lines
