"""Wire codecs for payload tensors: what crosses the link, its exact size, and what the
receiver reconstructs (the receiver really uses the reconstruction).

Sizes: ``fp32`` 4 B/element; ``fp16`` 2 B; ``int8`` 1 B plus a 4-byte scale per tensor
(symmetric quantisation); ``int8-channel`` 1 B plus a 4-byte scale per output channel;
``topk`` keeps the ``ratio`` largest-magnitude elements as fp32 values plus their indices
(2 B each when the tensor has at most 65 536 elements, else 4 B). Integer tensors (e.g.
BatchNorm's counter) always travel raw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CODECS = ("fp32", "fp16", "int8", "int8-channel", "topk")


@dataclass(frozen=True)
class Codec:
    name: str = "fp32"
    ratio: float = 0.01  # topk: fraction of elements kept

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise ValueError(f"unknown codec {self.name!r}; known: {', '.join(CODECS)}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError("topk ratio must be in (0, 1]")

    def round_trip(self, tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(what the receiver reconstructs, bytes of the encoded elements). The
        reconstruction never shares memory with ``tensor``: payloads are built from live
        models without a copy first (``payloads.state_payload``)."""
        if not tensor.is_floating_point() or self.name == "fp32":
            return tensor.clone(), tensor.numel() * tensor.element_size()
        if self.name == "fp16":
            if tensor.dtype == torch.float16:  # .to() would hand back the tensor itself
                return tensor.clone(), 2 * tensor.numel()
            return tensor.to(torch.float16).to(tensor.dtype), 2 * tensor.numel()
        if self.name == "int8":
            return _int8(tensor, per_channel=False)
        if self.name == "int8-channel":
            return _int8(tensor, per_channel=tensor.dim() > 1)
        return _topk(tensor, self.ratio)


def _int8(tensor: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, int]:
    flat = tensor.reshape(tensor.shape[0], -1) if per_channel else tensor.reshape(1, -1)
    scale = flat.abs().amax(dim=1, keepdim=True) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    quantised = torch.clamp(torch.round(flat / scale), -127, 127)
    return (quantised * scale).reshape(tensor.shape), tensor.numel() + 4 * scale.numel()


def _topk(tensor: torch.Tensor, ratio: float) -> tuple[torch.Tensor, int]:
    flat = tensor.reshape(-1)
    k = max(1, int(round(ratio * flat.numel())))
    index = flat.abs().topk(k).indices
    sparse = torch.zeros_like(flat)
    sparse[index] = flat[index]
    index_bytes = 2 if flat.numel() <= 65536 else 4
    return sparse.reshape(tensor.shape), k * (4 + index_bytes)
