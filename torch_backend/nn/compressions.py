"""Weight compressions as `torch.nn.utils.parametrize` parametrizations, each with its NumPy replay.

A `Compression` maps the dense float32 master weight to the weight the layer uses, in every forward, with the
functions of `torch_backend`. Its `reference` method computes the same tensor with the functions of `reference`
from NumPy copies of the same inputs, so `replay` can prove after training that every compressed tensor is exactly
what the reference says it is. State (masks, learned scales, observer statistics) lives in buffers and parameters,
so it travels with `state_dict`.

Mixed precision rule: a float16 or bfloat16 weight is widened to float32 (exact), compressed in float32, and
rounded back to its dtype with round-to-nearest-even. The reference does the same with NumPy / ml_dtypes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import reference as ref
import torch_backend as tb

LOW_PRECISION = (torch.float16, torch.bfloat16)


class Compression(nn.Module):
    """Base class: `compress` (torch, float32 -> float32) and `reference` (NumPy, the same bits)."""

    algorithm = ""
    kind = "quantization"  # or "pruning"

    def forward(self, w):
        if w.dtype in LOW_PRECISION:
            return self.compress(w.float()).to(w.dtype)
        return self.compress(w)

    def compress(self, w):
        raise NotImplementedError

    def reference(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def replay(self, w: np.ndarray) -> np.ndarray:
        """The reference result for a master weight of any float dtype, with the mixed precision rule."""
        if w.dtype == np.float32:
            return self.reference(w)
        return self.reference(w.astype(np.float32)).astype(w.dtype)

    def bits_per_weight(self) -> float:
        return 32.0

    def describe(self) -> dict:
        return {"algorithm": self.algorithm}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


class Mask(Compression):
    """`apply_mask(w, mask)`: pruned weights are +0.0 and get +0.0 gradient; the mask is a bool buffer."""

    algorithm = "mask"
    kind = "pruning"

    def __init__(self, shape, device=None):
        super().__init__()
        self.register_buffer("mask", torch.ones(shape, dtype=torch.bool, device=device))

    def compress(self, w):
        return tb.apply_mask(w, self.mask)

    def reference(self, w):
        return ref.apply_mask(w, _np(self.mask))

    def sparsity(self) -> float:
        return 1.0 - float(self.mask.sum()) / max(1, self.mask.numel())


class AffineQuant(Compression):
    """Weight fake quantization with min-max scales recomputed from the current weight in every forward.

    `axis=None` quantizes per tensor, `axis=k` per channel along `k`, `axis=k, group_size=g` per group; the integer
    range comes from `integer_range(bits, signed=True, narrow_range=symmetric)`.
    """

    algorithm = "affine"

    def __init__(self, bits=8, symmetric=True, axis=0, group_size=None, rounding="half_even"):
        super().__init__()
        self.qmin, self.qmax = tb.integer_range(bits, True, symmetric)
        self.bits, self.symmetric, self.axis, self.group_size, self.rounding = (
            bits,
            symmetric,
            axis,
            group_size,
            rounding,
        )

    def _kw(self):
        return {"qmin": self.qmin, "qmax": self.qmax, "axis": self.axis, "group_size": self.group_size}

    def qparams(self, w):
        kw = self._kw()
        return tb.minmax_qparams(w.detach(), symmetric=self.symmetric, **kw)

    def compress(self, w):
        scale, zero_point = self.qparams(w)
        return tb.fake_quantize(w, scale, zero_point, rounding=self.rounding, **self._kw())

    def reference(self, w):
        scale, zero_point = ref.minmax_qparams(w, symmetric=self.symmetric, **self._kw())
        return ref.fake_quantize(w, scale, zero_point, rounding=self.rounding, **self._kw())

    def export(self, w):
        """`(arrays, meta)`: the integer codes, scales and zero points a deployment stores."""
        scale, zero_point = self.qparams(w)
        codes = tb.quantize(w.detach(), scale, zero_point, rounding=self.rounding, **self._kw())
        meta = {"algorithm": self.algorithm, "bits": self.bits, "qmin": self.qmin, "qmax": self.qmax,
                "axis": self.axis, "group_size": self.group_size, "parts": ["scale", "zero_point"]}  # fmt: skip
        return {"codes": _np(codes), "scale": _np(scale), "zero_point": _np(zero_point)}, meta

    @staticmethod
    def decode(codes, parts, meta):
        """The reference's `dequantize` of exported codes."""
        return ref.dequantize(
            codes, parts["scale"], parts["zero_point"], axis=meta["axis"], group_size=meta["group_size"]
        )

    def bits_per_weight(self) -> float:
        return float(self.bits)

    def describe(self) -> dict:
        return {"algorithm": self.algorithm, "bits": self.bits, "symmetric": self.symmetric, "axis": self.axis,
                "group_size": self.group_size, "rounding": self.rounding}  # fmt: skip
