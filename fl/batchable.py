"""Whether ``fl/batched.py`` may train a model: the model opts in, and its layers allow it.

Batched training runs many clients' steps as one ``torch.func.vmap`` pass and computes a
classifier's loss, one label per image, from the model's (n, classes) logits. Only the
model knows whether that is its training (a head with per-pixel labels, or ACE's Gumbel
noise and mask prior, is not), so it says so through :class:`BatchableModel`; a model that
declares nothing is trained one client at a time. Whatever the model declares, each of its
layers must also compute per client what it computes one client at a time under ``vmap``:
dropout draws random numbers, and only ``BatchNorm2d`` with a momentum, running statistics
and an affine transform is reproduced (by ``batched.py``'s masked copy of it).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn

HOW_TO_OPT_IN = "it declares no batched_obstacle: docs/extending.md"


@runtime_checkable
class BatchableModel(Protocol):
    """A model that says whether batched training reproduces its one-by-one training."""

    def batched_obstacle(self) -> str | None:
        """None when its loss is the cross-entropy of its logits, one label per image, and
        nothing more (no ``auxiliary_loss``, which batched training leaves out);
        otherwise what stands in the way, as the subject of "... needs per-client code"
        ("a model with ACE (Gumbel noise, a mask prior)")."""
        ...


def layer_obstacle(model: nn.Module) -> str | None:
    """The first layer of ``model`` that a vmapped pass cannot reproduce per client, named
    as the subject of "... needs per-client code"; None when every layer can."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            return f"dropout ({name})"
        if isinstance(module, nn.modules.batchnorm._NormBase):
            if type(module) is not nn.BatchNorm2d or module.momentum is None \
                    or not module.track_running_stats or not module.affine:
                return f"{name} ({module!r})"
    return None


def batching_obstacle(model: nn.Module) -> str | None:
    """Why batched training would not reproduce ``model``'s training, as one clause ending in
    "needs per-client code"; None when it would."""
    if not isinstance(model, BatchableModel):
        return f"{type(model).__name__} needs per-client code ({HOW_TO_OPT_IN})"
    obstacle = model.batched_obstacle() or layer_obstacle(model)
    return f"{obstacle} needs per-client code" if obstacle is not None else None
