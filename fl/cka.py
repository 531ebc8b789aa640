"""Linear centred kernel alignment (Kornblith et al., 2019), in float64."""

from __future__ import annotations

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred features
    (rows: the same n inputs; columns: features, possibly different widths)."""
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


def gram_cka(gram_x: torch.Tensor, gram_y: torch.Tensor) -> float:
    """The same CKA from the n x n Gram matrices K = X X^T (what ``fau_payload: gram``
    sends): <HKH, HLH>_F / (||HKH||_F ||HLH||_F), H the centring matrix."""
    n = gram_x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    kx = h @ gram_x.to(torch.float64) @ h
    ky = h @ gram_y.to(torch.float64) @ h
    norm = torch.linalg.matrix_norm(kx) * torch.linalg.matrix_norm(ky)
    return float((kx * ky).sum() / norm) if norm > 0 else 0.0
