"""Typed payloads with exact wire sizes: what the network carries for the learning layer.

Wire format (what the byte count assumes): a 64-byte message header (kind, round, sender,
checksum), then per tensor a 16-byte header (index, dtype, rank) plus 4 bytes per dimension,
then the raw little-endian elements. Tensor names are not sent: both ends know the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

MESSAGE_HEADER_BYTES = 64
TENSOR_HEADER_BYTES = 16
BYTES_PER_DIMENSION = 4

KINDS = ("weights", "delta", "feature_map", "embedding", "class_weights", "ses_images",
         "control")


@dataclass(frozen=True)
class Payload:
    """A message of one ``kind`` carrying named tensors."""

    kind: str
    tensors: Mapping[str, torch.Tensor]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown payload kind {self.kind!r}")

    @property
    def nbytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(
            TENSOR_HEADER_BYTES + BYTES_PER_DIMENSION * t.dim() + t.numel() * t.element_size()
            for t in self.tensors.values())


def weights_payload(model: torch.nn.Module) -> Payload:
    """The model's full state (parameters and buffers), detached copies."""
    return Payload("weights", {k: v.detach().clone() for k, v in model.state_dict().items()})
