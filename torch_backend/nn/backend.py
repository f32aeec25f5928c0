"""The two backends every training-layer computation is written against, once: `TORCH` and `NUMPY`.

A compression, an activation quantizer or a mask policy states its algorithm calls once, as a function of a
backend `B`:

```python
def compute(self, B, w, s):
    scale, zero_point = B.minmax_qparams(B.constant(w), qmin=self.qmin, qmax=self.qmax, axis=self.axis)
    return B.fake_quantize(w, scale, zero_point, qmin=self.qmin, qmax=self.qmax, axis=self.axis)
```

The training forward runs it with `B = TORCH` on tensors (the fused kernels of `torch_backend.kernels` where they
exist, else `torch_backend`); `replay()`, mask verification and export checks run the same function with
`B = NUMPY` on NumPy copies (the `reference`). Names that are not registry functions (`where`, `full_like`) come
from the array library of the backend (torch or NumPy); the few operations whose spelling differs between the two
are methods of `Backend`.

A policy whose tensors are sharded (DTensors: FSDP2's `fully_shard`) runs with `B = SHARDED`: the exact cross-rank
function of `torch_backend.distributed` where there is one (magnitude masks, the global gamma threshold:
histograms cross the ranks, not weights), else the `TORCH` function on the whole tensors, gathered first. Either
way the result is the single-process result on the whole tensors, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

import reference
import torch_backend
from torch_backend import distributed, kernels


class Backend:
    """Registry functions by name (from `modules`, first match wins), then the array library `xp`'s own."""

    def __init__(self, name: str, xp, *modules):
        self.name, self.xp, self.modules = name, xp, modules

    def __getattr__(self, name):
        for module in self.modules:
            fn = getattr(module, name, None)
            if fn is not None:
                return fn
        return getattr(self.xp, name)

    def __repr__(self) -> str:
        return f"Backend({self.name})"

    @property
    def is_torch(self) -> bool:
        return self.xp is torch

    def constant(self, x):
        """`x` without its autograd history (torch), or `x` itself (NumPy)."""
        return x.detach() if self.is_torch else x

    def int32_zeros_like(self, x):
        """Zeros of `x`'s shape as int32 (zero points), on `x`'s device."""
        if self.is_torch:
            return torch.zeros(x.shape, dtype=torch.int32, device=x.device)
        return np.zeros(x.shape, dtype=np.int32)

    def to_uint8(self, x):
        return x.to(torch.uint8) if self.is_torch else x.astype(np.uint8)

    def stack(self, values):
        return torch.stack(list(values)) if self.is_torch else np.stack(list(values))

    def array(self, t: torch.Tensor):
        """A tensor as this backend's array: the tensor itself, or a NumPy copy."""
        return t if self.is_torch else to_numpy(t)


class Sharded(Backend):
    """`TORCH` for DTensor arguments: a function of `torch_backend.distributed` (exact across ranks) where one
    has the name, else the `TORCH` function called with every DTensor argument gathered (`full_tensor`)."""

    def __getattr__(self, name):
        if name in distributed.__all__:
            return getattr(distributed, name)
        fn = TORCH.__getattr__(name)
        if not callable(fn):
            return fn

        def gathered(*args, **kwargs):
            return fn(*full_tree(args), **full_tree(kwargs))

        return gathered


TORCH = Backend("torch", torch, kernels, torch_backend)
NUMPY = Backend("reference", np, reference)
SHARDED = Sharded("sharded", torch, distributed, kernels, torch_backend)


def any_sharded(value) -> bool:
    """Whether a DTensor is among the tensors inside lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return distributed.is_sharded(value)
    if isinstance(value, list | tuple):
        return any(any_sharded(v) for v in value)
    if isinstance(value, dict):
        return any(any_sharded(v) for v in value.values())
    return False


def full_tree(value):
    """Every DTensor inside lists, tuples and dicts gathered into the whole tensor (`distributed.full_tensor`,
    a collective: every rank calls it in the same order); other values as they are."""
    if isinstance(value, torch.Tensor):
        return distributed.full_tensor(value)
    if isinstance(value, list | tuple):
        return type(value)(full_tree(v) for v in value)
    if isinstance(value, dict):
        return {k: full_tree(v) for k, v in value.items()}
    return value


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor, on the host; bfloat16 becomes `ml_dtypes.bfloat16` (the same bits). A DTensor is
    gathered first (a collective)."""
    t = distributed.full_tensor(t.detach()).cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.numpy().copy()


def numpy_tree(value):
    """`to_numpy` applied to every tensor inside lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return to_numpy(value)
    if isinstance(value, list | tuple):
        return type(value)(numpy_tree(v) for v in value)
    if isinstance(value, dict):
        return {k: numpy_tree(v) for k, v in value.items()}
    return value


def same_bits(a, b) -> bool:
    """Equal dtype, shape and bit pattern (signed zeros and NaN payloads count), through lists, tuples and dicts;
    tensors are compared through their NumPy copies."""
    a, b = numpy_tree(a), numpy_tree(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_bits(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(same_bits, a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fcV" or a.dtype.name == "bfloat16":
        return a.tobytes() == b.tobytes()
    return bool(np.array_equal(a, b))
