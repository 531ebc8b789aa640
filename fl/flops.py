"""FLOPs counted from the actual model, for onboard training time and energy."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

TRAINING_TO_FORWARD = 3.0  # forward + backward (about twice the forward) per sample


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one sample (``input_shape`` without the batch axis)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros((1, *input_shape), device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


def training_flops(model: nn.Module, input_shape: tuple[int, ...], samples: int,
                   epochs: int) -> float:
    return TRAINING_TO_FORWARD * forward_flops(model, input_shape) * samples * epochs
