"""FedLA: FedAvg whose clients train with the logit-adjusted loss of their own class prior
(Menon et al., "Long-tail learning via logit adjustment", ICLR 2021; with tau = 1 it is the
balanced softmax of Ren et al., NeurIPS 2020), a federated long-tail baseline.

A client with class prior ``pi`` (its own training histogram) minimises
``CE(f(x) + tau log pi, y)``: the logits the loss sees are shifted towards the classes the
client holds, so the model itself (used without the shift at test time) is pushed towards
the balanced posterior instead of the client's skewed one. A class the client holds no
image of gets the prior of a single image (``max(n_c, 1) / sum_j max(n_j, 1)``), a finite
shift that keeps it out of the way of the client's own classes without an infinite logit.
Aggregation is FedAvg's sample-weighted mean; nothing but the model travels, so the bytes
are FedAvg's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .datasets import ImageSet
from .fedavg import FedAvg
from .models import parts

TAU = 1.0  # Menon et al.'s recommended temperature; 1 is the balanced softmax


def logit_adjustment(class_counts: np.ndarray, tau: float = TAU) -> torch.Tensor:
    """``tau * log pi``, with ``pi_c = max(n_c, 1) / sum_j max(n_j, 1)``."""
    counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
    return torch.as_tensor(tau * np.log(counts / counts.sum()), dtype=torch.float32)


class FedLA(FedAvg):
    """FedAvg with each client's logit-adjusted local loss."""

    name = "fedla"

    def local_loss(self, data: ImageSet) -> dict[str, Any]:
        classes = parts(self.worker).classifier.weight.shape[0]  # Linear or 1x1 Conv2d
        return {"logit_adjustment": logit_adjustment(data.class_counts(classes))}
