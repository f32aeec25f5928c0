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
        return _fake_quantize(w, scale, zero_point, rounding=self.rounding, **self._kw())

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


def _per(axis, value, ndim):
    """A per-channel value reshaped to broadcast along `axis` of an `ndim`-dimensional weight."""
    if axis is None or value.ndim == 0:
        return value
    return value.reshape(tuple(-1 if i == axis % ndim else 1 for i in range(ndim)))


def _codes_meta(algorithm, bits, qmin, axis, parts):
    return {"algorithm": algorithm, "bits": bits, "qmin": qmin, "qmax": qmin + 2**bits - 1, "axis": axis,
            "group_size": None, "parts": parts}  # fmt: skip


class LSQQuant(Compression):
    """Learned step size quantization: the step is an `nn.Parameter`, trained with LSQ's gradient.

    Initialized as in the paper, $s = 2\\,\\mathrm{mean}|w| / \\sqrt{Q_P}$ (per channel with `axis`), from the first
    weight it sees; the replay uses the stored step, so the initialization need not be reproduced.
    """

    algorithm = "lsq"

    def __init__(self, weight, bits=4, axis=0):
        super().__init__()
        self.bits, self.axis = bits, axis
        qp = 2 ** (bits - 1) - 1
        a = torch.abs(weight.detach().float())
        if axis is None:
            mean = tb.tree_mean(a)
        else:
            rows = torch.movedim(a, axis, 0)
            mean = tb.tree_mean(rows.reshape(rows.shape[0], -1), axis=1)
        step = (mean * 2.0 / torch.tensor(qp, dtype=torch.float64, device=mean.device).sqrt()).to(torch.float32)
        step = torch.where(step > 0, step, torch.ones_like(step))
        self.scale = nn.Parameter(step)

    def compress(self, w):
        return tb.lsq_quantize(w, self.scale, bits=self.bits, signed=True, axis=self.axis)

    def reference(self, w):
        return ref.lsq_quantize(w, _np(self.scale), bits=self.bits, signed=True, axis=self.axis)

    def export(self, w):
        out = self.compress(w).detach()
        s = _per(self.axis, self.scale.detach(), w.ndim)
        codes = torch.round(out / s).to(torch.int32)  # out is code * s exactly, so out / s is the code
        return {"codes": _np(codes), "scale": _np(self.scale)}, _codes_meta(
            "lsq", self.bits, -(2 ** (self.bits - 1)), self.axis, ["scale"]
        )

    @staticmethod
    def decode(codes, parts, meta):
        s = parts["scale"]
        if meta["axis"] is not None and s.ndim:
            s = s.reshape(tuple(-1 if i == meta["axis"] % codes.ndim else 1 for i in range(codes.ndim)))
        return codes.astype(np.float32) * s

    def bits_per_weight(self):
        return float(self.bits)

    def describe(self):
        return {"algorithm": self.algorithm, "bits": self.bits, "axis": self.axis}


class TWNQuant(Compression):
    """Ternary weight networks: $\\{-\\alpha, 0, +\\alpha\\}$ with TWN's threshold, recomputed every forward."""

    algorithm = "twn"

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def compress(self, w):
        return tb.twn_ternarize(w, axis=self.axis)

    def reference(self, w):
        return ref.twn_ternarize(w, axis=self.axis)

    def export(self, w):
        out = self.compress(w).detach()
        _, alpha = tb.twn_params(w.detach(), axis=self.axis)
        codes = (out > 0).to(torch.int32) - (out < 0).to(torch.int32)
        return {"codes": _np(codes), "alpha": _np(alpha)}, _codes_meta("twn", 2, -1, self.axis, ["alpha"])

    @staticmethod
    def decode(codes, parts, meta):
        a = parts["alpha"]
        if meta["axis"] is not None and a.ndim:
            a = a.reshape(tuple(-1 if i == meta["axis"] % codes.ndim else 1 for i in range(codes.ndim)))
        a = np.broadcast_to(a, codes.shape)
        return np.where(codes > 0, a, np.where(codes < 0, -a, np.float32(0))).astype(np.float32)

    def bits_per_weight(self):
        return 2.0

    def describe(self):
        return {"algorithm": self.algorithm, "axis": self.axis}


class XNORQuant(Compression):
    """XNOR-Net / BWN binary weights: the sign times the mean absolute value, per channel with `axis`."""

    algorithm = "xnor"

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def compress(self, w):
        return tb.xnor_binarize(w, axis=self.axis)

    def reference(self, w):
        return ref.xnor_binarize(w, axis=self.axis)

    def export(self, w):
        out = self.compress(w).detach()
        alpha = tb.xnor_scale(w.detach(), axis=self.axis)
        codes = torch.signbit(out).to(torch.int32)  # 1 where the weight is -alpha (or -0.0)
        return {"codes": _np(codes), "alpha": _np(alpha)}, _codes_meta("xnor", 1, 0, self.axis, ["alpha"])

    @staticmethod
    def decode(codes, parts, meta):
        a = parts["alpha"]
        if meta["axis"] is not None and a.ndim:
            a = a.reshape(tuple(-1 if i == meta["axis"] % codes.ndim else 1 for i in range(codes.ndim)))
        a = np.broadcast_to(a, codes.shape)
        return np.where(codes == 1, -a, a).astype(np.float32)

    def bits_per_weight(self):
        return 1.0

    def describe(self):
        return {"algorithm": self.algorithm, "axis": self.axis}


class TTQQuant(Compression):
    """Trained ternary quantization: learned positive and negative scales (`nn.Parameter`s), threshold t max|w|."""

    algorithm = "ttq"

    def __init__(self, weight, t=0.05):
        super().__init__()
        self.t = t
        init = tb.xnor_scale(weight.detach().float())
        init = torch.where(init > 0, init, torch.ones_like(init))
        self.wp = nn.Parameter(init.clone())
        self.wn = nn.Parameter(init.clone())

    # TTQ needs positive scales; a training step may push one below zero, so the forward uses
    # max(scale, 2**-126) (the gradient passes where the scale is above the floor), and so does the replay.
    FLOOR = 2.0**-126

    def _scales(self):
        return torch.clamp(self.wp, min=self.FLOOR), torch.clamp(self.wn, min=self.FLOOR)

    def compress(self, w):
        wp, wn = self._scales()
        return tb.ttq_quantize(w, wp, wn, t=self.t)

    def reference(self, w):
        floor = np.float32(self.FLOOR)
        return ref.ttq_quantize(w, np.maximum(_np(self.wp), floor), np.maximum(_np(self.wn), floor), t=self.t)

    def export(self, w):
        out = self.compress(w).detach()
        codes = (out > 0).to(torch.int32) - (out < 0).to(torch.int32)
        wp, wn = self._scales()
        return {"codes": _np(codes), "wp": _np(wp), "wn": _np(wn)}, _codes_meta("ttq", 2, -1, None, ["wp", "wn"])

    @staticmethod
    def decode(codes, parts, meta):
        wp, wn = parts["wp"], parts["wn"]
        return np.where(codes > 0, wp, np.where(codes < 0, -wn, np.float32(0))).astype(np.float32)

    def bits_per_weight(self):
        return 2.0

    def describe(self):
        return {"algorithm": self.algorithm, "t": self.t}


def _fake_quantize(x, scale, zero_point, **kw):
    """`torch_backend.fake_quantize`; on CUDA through the fused kernel of `torch_backend.kernels` (bit-identical,
    one pass over `x`, one host sync), elsewhere the eager function itself."""
    if x.is_cuda:
        from torch_backend import kernels

        return kernels.fake_quantize(x, scale, zero_point, **kw)
    return tb.fake_quantize(x, scale, zero_point, **kw)
