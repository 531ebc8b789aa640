"""Typed payloads with exact wire sizes: what the network carries for the learning layer.

Wire format (what the byte counts assume): a 64-byte message header (kind, round, sender,
checksum), then per tensor a 16-byte header (index, dtype, rank, codec) plus 4 bytes per
dimension, then the encoded elements (see ``compression``). Tensor names are not sent:
both ends know the model. ``tensors`` holds what the receiver reconstructs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from .compression import Codec

MESSAGE_HEADER_BYTES = 64
TENSOR_HEADER_BYTES = 16
BYTES_PER_DIMENSION = 4

KINDS = ("weights", "delta", "feature_map", "embedding", "class_weights", "ses_images",
         "control")


@dataclass(frozen=True)
class Payload:
    """A message of one ``kind``: the tensors as received, and its size raw and on the wire."""

    kind: str
    tensors: Mapping[str, torch.Tensor]
    nbytes: int
    raw_nbytes: int

    @classmethod
    def encode(cls, kind: str, tensors: Mapping[str, torch.Tensor],
               codec: Codec = Codec()) -> "Payload":
        if kind not in KINDS:
            raise ValueError(f"unknown payload kind {kind!r}")
        received, wire, raw = {}, MESSAGE_HEADER_BYTES, MESSAGE_HEADER_BYTES
        for name, tensor in tensors.items():
            tensor = tensor.detach()
            header = TENSOR_HEADER_BYTES + BYTES_PER_DIMENSION * tensor.dim()
            received[name], encoded = codec.round_trip(tensor)
            wire += header + encoded
            raw += header + tensor.numel() * tensor.element_size()
        return cls(kind, received, wire, raw)


def state_payload(kind: str, state: Mapping[str, torch.Tensor],
                  codec: Codec = Codec()) -> Payload:
    """A model state (or a part of it) as a payload. No copy is made first: the codec's
    reconstruction is always a tensor of its own (``Codec.round_trip``), so the payload
    never shares memory with the state it was made from."""
    return Payload.encode(kind, state, codec)


def weights_payload(model: torch.nn.Module, codec: Codec = Codec()) -> Payload:
    return state_payload("weights", model.state_dict(), codec)
