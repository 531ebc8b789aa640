"""What a client uploads and how the server reads it back: the upload codec, and for a
sparsifying codec (top-k) a delta from the model the client started from with error
feedback (what top-k dropped this round is added to the next round's delta; Seide et al.,
2014; Stich et al., 2018). A helper a strategy composes (``Strategy.uploads``), not
machinery it inherits: a strategy that uploads something else need not use it."""

from __future__ import annotations

from typing import Collection, Mapping

import torch

from .compression import Codec
from .payloads import Payload, state_payload

State = dict[str, torch.Tensor]


class Uploads:
    """The upload codec and the error feedback of one strategy's clients.

    ``trainable``: the names of the model's trainable parameters. Top-k sparsifies those
    only: buffers (BatchNorm's running statistics) are a few hundred numbers that a sparse
    delta would corrupt (a running variance driven below zero gives a model at chance), so
    they travel whole."""

    def __init__(self, codec: Codec, trainable: Collection[str]):
        self.codec, self.trainable = codec, frozenset(trainable)

    def encode(self, trained: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor],
               state: dict) -> tuple[list[Payload], dict]:
        """The trained model as weights, or as an error-fed top-k delta from ``base``; the
        client's residual memory is ``state["residual"]``, returned updated."""
        if self.codec.name != "topk":
            return model_payloads(trained, self.codec), state
        residual = state.get("residual", {})
        delta = {k: trained[k] - base[k] + residual.get(k, 0.0)
                 for k in trained if k in self.trainable}
        payload = state_payload("delta", delta, self.codec)
        state = {**state, "residual": {k: delta[k] - payload.tensors[k] for k in delta}}
        whole = {k: v for k, v in trained.items() if k not in self.trainable}
        return [payload] + ([state_payload("weights", whole)] if whole else []), state

    @staticmethod
    def decode(payloads: list[Payload], base: Mapping[str, torch.Tensor]) -> State:
        """The client's trained state as the server reconstructs it from ``base``, the
        global version the client started from."""
        state: State = {}
        for payload in payloads:
            if payload.kind == "delta":
                state.update({k: base[k] + v for k, v in payload.tensors.items()})
            elif payload.kind in ("weights", "embedding"):
                state.update(payload.tensors)
        return {k: state.get(k, base[k]) for k in base}


def model_payloads(state: Mapping[str, torch.Tensor], codec: Codec) -> list[Payload]:
    """A model as a ``weights`` payload, with ACE's parameters (``ace.*``, the context
    embeddings and their projections) as a separate ``embedding`` payload."""
    backbone = {k: v for k, v in state.items() if not k.startswith("ace.")}
    embedding = {k: v for k, v in state.items() if k.startswith("ace.")}
    payloads = [state_payload("weights", backbone, codec)]
    if embedding:
        payloads.append(state_payload("embedding", embedding, codec))
    return payloads
