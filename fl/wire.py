"""Fit jobs and results as bytes, for the trip to a worker process or a Ray actor.

Why not let the transport pickle them: ``multiprocessing`` pickles with torch's
``ForkingPickler`` reductions, which move every tensor's storage into a new shared-memory
segment and pass its file descriptor through a socket, about a millisecond per tensor
(a small CNN's update is 21 tensors); plain pickle writes tensors through
``torch.save``, a few milliseconds per job. Here a CPU tensor travels as its NumPy array
(pickle protocol 5: one copy of the raw bytes), which keeps every bit, and a job's
repeated objects (the global model every client of a round receives) are written once
per message.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import torch

# dtypes NumPy has no type for travel as raw integers of the same width
_AS_BITS = {torch.bfloat16: torch.int16}
_FROM_BITS = {str(k): k for k in _AS_BITS}


def _tensor(array: np.ndarray, dtype: str | None) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor.view(_FROM_BITS[dtype]) if dtype is not None else tensor


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any):
        if type(obj) is not torch.Tensor or obj.device.type != "cpu" or obj.is_sparse \
                or obj.is_quantized or obj.requires_grad:
            return NotImplemented  # the default reduction (a rare case, never wrong)
        tensor = obj.resolve_conj().resolve_neg()
        bits = _AS_BITS.get(tensor.dtype)
        array = (tensor.view(bits) if bits is not None else tensor).numpy()
        return _tensor, (array, str(tensor.dtype) if bits is not None else None)


def dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)
