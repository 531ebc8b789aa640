"""Memory-layout benchmark: orbitfl's models on channels-last activations (``fast_layout`` in
``fl/models.py``, the default) against torch's default layout, on one CPU thread, the
setting of a study's worker.

    .venv/bin/python benchmarks/layout.py

Five SGD steps on a batch of 32 and one evaluation pass over 500 tiles at 32 px, best of
three, both layouts measured in this run; the largest difference of their logits on the
same weights shows that only float32 rounding separates them. Printed figures, not a test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from unittest import mock

import torch
from timing import best_of
from torch.nn import functional as F

from orbitfl.fl import models
from orbitfl.fl.models import build_model

CLASSES, BATCH, EVALUATED, SIZE = 10, 32, 500, 32
ACE = {"contexts": 8, "dim": 32, "clients": 10}


def step_and_pass(model: torch.nn.Module, segmentation: bool) -> tuple[Callable, Callable]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=generator)
    shape = (BATCH, SIZE, SIZE) if segmentation else (BATCH,)
    y = torch.randint(0, CLASSES, shape, generator=generator)
    tiles = torch.randn(EVALUATED, 3, SIZE, SIZE, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        model.train()
        for _ in range(5):
            loss = F.cross_entropy(model(x), y) + model.auxiliary_loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def evaluate() -> None:
        model.eval()
        with torch.no_grad():
            model(tiles)

    return step, evaluate


def main() -> int:
    torch.set_num_threads(1)
    print(f"== default layout against channels-last, 1 thread, {SIZE} px: 5 SGD steps on "
          f"{BATCH} tiles, one pass over {EVALUATED} ==")
    for name, ace in (("tiny-cnn", None), ("tiny-cnn", ACE), ("small-cnn", None),
                      ("seg-unet", None)):
        torch.manual_seed(0)
        model = build_model(name, CLASSES, ace)
        label = name + (" + ACE" if ace else "")
        step, evaluate = step_and_pass(model, name == "seg-unet")
        seconds = {}
        with mock.patch.object(models, "fast_layout", lambda x: x):
            seconds["default"] = (best_of(3, step), best_of(3, evaluate))
        seconds["channels-last"] = (best_of(3, step), best_of(3, evaluate))
        model.eval()
        probe = torch.randn(64, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            fast = model(probe)
            with mock.patch.object(models, "fast_layout", lambda x: x):
                default = model(probe)
        (train_default, eval_default), (train_fast, eval_fast) = seconds.values()
        print(f"{label:16s} train {train_default * 1e3:6.1f} -> {train_fast * 1e3:6.1f} ms "
              f"({train_default / train_fast:.2f}x), evaluate {eval_default * 1e3:6.1f} -> "
              f"{eval_fast * 1e3:6.1f} ms ({eval_default / eval_fast:.2f}x); logits differ by "
              f"at most {(fast - default).abs().max().item():.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
