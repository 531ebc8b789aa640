"""Fit jobs and results as bytes (fl/wire.py): every bit, dtype and shape survives, shared
objects are written once, and what NumPy cannot hold falls back to pickle's own way."""

import pickle

import pytest
import torch

from orbitfl.fl import wire
from orbitfl.fl.payloads import Payload


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (NaNs and signed zeros included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.is_floating_point:
        width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.contiguous().view(width), b.contiguous().view(width))
    return torch.equal(a, b)


@pytest.mark.parametrize("tensor", [
    torch.tensor([1.0, -0.0, float("nan"), float("inf"), 1e-45]),
    torch.randn(4, 3, generator=torch.Generator().manual_seed(0)).t(),   # not contiguous
    torch.randn(6, dtype=torch.float64).to(torch.bfloat16),              # no NumPy dtype
    torch.randn(6).half(),
    torch.randint(-128, 127, (3, 2), dtype=torch.int8),
    torch.tensor([True, False]),
    torch.tensor(7),                                                     # 0-d
    torch.zeros(0, 5),
], ids=["f32 specials", "transposed", "bf16", "f16", "int8", "bool", "0-d", "empty"])
def test_every_bit_dtype_and_shape_survive(tensor):
    back = wire.loads(wire.dumps(tensor))
    assert _same(tensor, back)
    back.add_(1) if back.dtype != torch.bool else back.logical_not_()  # writable, own memory


def test_a_tensor_shared_by_many_jobs_is_written_once():
    model = {f"w{i}": torch.randn(256) for i in range(4)}
    payload = Payload("weights", model, 4096, 4096)
    one = len(wire.dumps([payload]))
    many = wire.loads(wire.dumps([payload] * 50))
    assert len(wire.dumps([payload] * 50)) < one + 50 * 16
    assert all(m is many[0] for m in many)
    assert _same(many[0].tensors["w3"], model["w3"])


def test_tensors_that_need_grad_or_are_parameters_take_pickles_own_way():
    value = {"p": torch.nn.Parameter(torch.randn(3)), "g": torch.randn(2, requires_grad=True)}
    back = wire.loads(wire.dumps(value))
    assert isinstance(back["p"], torch.nn.Parameter) and back["g"].requires_grad
    assert _same(back["p"].detach(), value["p"].detach())
    assert wire.loads(wire.dumps(value)).keys() == pickle.loads(pickle.dumps(value)).keys()
