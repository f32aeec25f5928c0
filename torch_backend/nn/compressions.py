"""Weight compressions as `torch.nn.utils.parametrize` parametrizations, each written once for both backends.

A `Compression` maps the master weight to the weight the layer uses, in every forward. Its algorithm calls are
stated once, in `compute(B, w, s)` (see `torch_backend.nn.backend`): the forward runs them on tensors with
`B = TORCH`; `replay` runs the same calls with `B = NUMPY` on NumPy copies of the master weight and of the state
`s` (masks, learned scales: the module's own buffers and parameters, which travel with `state_dict`), so
`Compressor.replay` proves every compressed tensor equal to what the reference computes.

**Dtype rule.** Every algorithm is defined on float32. A float16 or bfloat16 master weight is widened to float32
(exact), compressed, and rounded back to its dtype (round to nearest, ties to even); a float64 master weight is
rounded to float32 first (ties to even), compressed, and widened back (exact). The replay applies the same rule
with NumPy and ml_dtypes. A compression's own state (masks, scales, observer statistics) stays float32 when the
model is cast (`model.half()`, `.to(torch.bfloat16)`, `.double()`): only the master weights change dtype.

**Export.** `encode(B, w, s)` gives the integer codes and parameters a deployment stores, through registry
functions only (`quantize`, `codebook_assign`); the NumPy reader decodes them with `dequantize` or
`codebook_decode` (`reference.checkpoint`), and the exporter checks that the decoded tensor is bit-identical to the
forward's before it writes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from torch_backend.nn.backend import NUMPY, TORCH, full_tree


class Float32State(nn.Module):
    """A module whose floating-point state stays float32 under dtype casts of the model: `.half()`,
    `.to(dtype)`, `.double()` and the like move it between devices but do not change its dtype."""

    def _apply(self, fn, recurse=True):
        probe = fn(torch.zeros((), dtype=torch.float32))
        if probe.dtype == torch.float32:
            return super()._apply(fn, recurse)
        device = probe.device
        return super()._apply(lambda t: t.to(device), recurse)

    def state(self, B=TORCH) -> dict:
        """The module's own parameters and buffers by name: the tensors themselves for `TORCH`, NumPy copies for
        `NUMPY`."""
        own = dict(self.named_parameters(recurse=False)) | dict(self.named_buffers(recurse=False))
        return {name: B.array(t) for name, t in own.items()}


@dataclass
class Encoded:
    """What a deployment stores for one quantized tensor: integer `codes` and the `parts` that decode them.

    `decode` names the reference function that turns them back into float32: `"dequantize"` (`parts`: `scale`,
    `zero_point`; `params`: `axis`, `group_size`) or `"codebook_decode"` (`parts`: `codebook`). The codes lie in
    `[qmin, qmax]`; they are stored as `code - qmin` in `bits` bits each.
    """

    codes: object
    decode: str
    parts: dict
    qmin: int
    qmax: int
    params: dict = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return max(1, math.ceil(math.log2(self.qmax - self.qmin + 1)))


class Compression(Float32State):
    """Base class of the weight compressions: `compute(B, w, s)` on float32, once for both backends."""

    algorithm = ""
    kind = "quantization"  # or "pruning"

    def forward(self, w, state=None):
        """The compressed weight, with the dtype rule; `state` defaults to the module's own (`state(TORCH)`)."""
        state = self.state(TORCH) if state is None else state
        if w.dtype == torch.float32:
            return self.compute(TORCH, w, state)
        return self.compute(TORCH, w.float(), state).to(w.dtype)

    def whole(self, w):
        """The forward on a whole weight outside the model's forward: the module's own parameters, sharded when
        the model is (FSDP2), are gathered first, as FSDP2 gathers them for the forward."""
        return self(w, full_tree(self.state(TORCH)))

    def compute(self, B, w, s):
        raise NotImplementedError

    def encode(self, B, w, s) -> Encoded | None:
        """The codes of `w` (the float32 input of this compression) for export; None for masks."""
        return None

    def replay(self, w: np.ndarray) -> np.ndarray:
        """The reference's result for a NumPy master weight of any float dtype, with the dtype rule."""
        s = self.state(NUMPY)
        if w.dtype == np.float32:
            return self.compute(NUMPY, w, s)
        return self.compute(NUMPY, w.astype(np.float32), s).astype(w.dtype)

    def bits_per_weight(self) -> float:
        return 32.0

    def keep_mask(self):
        """The bool mask of the entries this compression keeps (None if it prunes nothing)."""
        return None

    def describe(self) -> dict:
        return {"algorithm": self.algorithm}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "algorithm")


class Mask(Compression):
    """`apply_mask(w, mask)`: pruned weights are +0.0 and get +0.0 gradient; the mask is a bool buffer."""

    algorithm = "mask"
    kind = "pruning"

    def __init__(self, shape, device=None):
        super().__init__()
        self.register_buffer("mask", torch.ones(shape, dtype=torch.bool, device=device))

    def compute(self, B, w, s):
        return B.apply_mask(w, s["mask"])

    def keep_mask(self):
        return self.mask

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
        self.qmin, self.qmax = TORCH.integer_range(bits, True, symmetric)
        self.bits, self.symmetric, self.axis, self.group_size, self.rounding = (
            bits, symmetric, axis, group_size, rounding,
        )  # fmt: skip

    def _kw(self):
        return {"qmin": self.qmin, "qmax": self.qmax, "axis": self.axis, "group_size": self.group_size}

    def qparams(self, B, w):
        return B.minmax_qparams(B.constant(w), symmetric=self.symmetric, **self._kw())

    def compute(self, B, w, s):
        scale, zero_point = self.qparams(B, w)
        return B.fake_quantize(w, scale, zero_point, rounding=self.rounding, **self._kw())

    def encode(self, B, w, s):
        scale, zero_point = self.qparams(B, w)
        codes = B.quantize(B.constant(w), scale, zero_point, rounding=self.rounding, **self._kw())
        parts = {"scale": scale, "zero_point": zero_point}
        return Encoded(
            codes, "dequantize", parts, self.qmin, self.qmax, {"axis": self.axis, "group_size": self.group_size}
        )

    def bits_per_weight(self) -> float:
        return float(self.bits)

    def describe(self) -> dict:
        return {"algorithm": self.algorithm, "bits": self.bits, "symmetric": self.symmetric, "axis": self.axis,
                "group_size": self.group_size, "rounding": self.rounding}  # fmt: skip


class LSQQuant(Compression):
    """Learned step size quantization: the step is an `nn.Parameter`, trained with LSQ's gradient.

    Initialized from the first weight it sees with `lsq_init_scale` (the paper's $2\\,\\mathrm{mean}|w| /
    \\sqrt{Q_P}$, per channel with `axis`); the replay uses the stored step, so the initialization need not be
    reproduced, but it is the same on every device.

    The step used is $\\max(|s|, 2^{-23})$ of the parameter $s$: an optimizer step may push a small step through
    zero, which the LSQ paper does not address, and `lsq_quantize` needs a positive step. torch.ao's
    `_LearnableFakeQuantize` clamps its parameter in place to the same floor (`finfo(float32).eps`), from where it
    can grow again; a compression does not write its parameter, so the absolute value reflects it instead and the
    gradient keeps flowing (through $|s|$; none below the floor). Export writes the step used.
    """

    algorithm = "lsq"

    def __init__(self, weight, bits=4, axis=0):
        super().__init__()
        self.bits, self.axis = bits, axis
        self.scale = nn.Parameter(TORCH.lsq_init_scale(weight.detach().float(), bits=bits, signed=True, axis=axis))

    def _range(self):
        return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    def compute(self, B, w, s):
        return B.lsq_quantize(w, _lsq_step(B, s["scale"]), bits=self.bits, signed=True, axis=self.axis)

    def encode(self, B, w, s):
        qmin, qmax = self._range()
        scale = _lsq_step(B, B.constant(s["scale"]))
        codes = B.quantize(B.constant(w), scale, B.int32_zeros_like(scale), qmin=qmin, qmax=qmax, axis=self.axis)
        parts = {"scale": scale, "zero_point": B.int32_zeros_like(scale)}
        return Encoded(codes, "dequantize", parts, qmin, qmax, {"axis": self.axis, "group_size": None})

    def bits_per_weight(self):
        return float(self.bits)

    def describe(self):
        return {"algorithm": self.algorithm, "bits": self.bits, "axis": self.axis}


LSQ_MIN_STEP = 2.0**-23  # torch.finfo(torch.float32).eps: torch.ao's floor of a learned scale


def _lsq_step(B, scale):
    """The step LSQ quantizes with: `max(|scale|, 2**-23)`, exact in float32 (an absolute value and a choice)."""
    a = B.abs(scale)
    return B.where(a > LSQ_MIN_STEP, a, B.full_like(a, LSQ_MIN_STEP))


def _sign_codes(B, out, alpha, axis):
    """Codes in {-1, 0, 1} of a binary or ternary weight `out` whose levels are `+-alpha`, through `quantize`
    (`out / alpha` is exactly -1, 0 or 1). A slice with `alpha = 0` is all zeros and gets scale 1; the exporter's
    decode check catches the one case codes cannot hold (a `-0.0` from an XNOR slice whose mean underflows)."""
    scale = B.where(alpha > 0, alpha, B.full_like(alpha, 1.0))
    codes = B.quantize(out, scale, B.int32_zeros_like(scale), qmin=-1, qmax=1, axis=axis)
    parts = {"scale": scale, "zero_point": B.int32_zeros_like(scale)}
    return Encoded(codes, "dequantize", parts, -1, 1, {"axis": axis, "group_size": None})


class TWNQuant(Compression):
    """Ternary weight networks: $\\{-\\alpha, 0, +\\alpha\\}$ with TWN's threshold, recomputed every forward."""

    algorithm = "twn"

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def compute(self, B, w, s):
        return B.twn_ternarize(w, axis=self.axis)

    def encode(self, B, w, s):
        w = B.constant(w)
        _, alpha = B.twn_params(w, axis=self.axis)
        return _sign_codes(B, self.compute(B, w, s), alpha, self.axis)

    def bits_per_weight(self):
        return 2.0

    def describe(self):
        return {"algorithm": self.algorithm, "axis": self.axis}


class XNORQuant(Compression):
    """XNOR-Net / BWN binary weights: the sign times the mean absolute value, per channel with `axis`.

    Exported with 2-bit codes `{-1, 0, 1}`: code 0 holds the `+0.0` of an all-zero slice (`alpha = 0`).
    """

    algorithm = "xnor"

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def compute(self, B, w, s):
        return B.xnor_binarize(w, axis=self.axis)

    def encode(self, B, w, s):
        w = B.constant(w)
        return _sign_codes(B, self.compute(B, w, s), B.xnor_scale(w, axis=self.axis), self.axis)

    def bits_per_weight(self):
        return 1.0

    def describe(self):
        return {"algorithm": self.algorithm, "axis": self.axis}


class TTQQuant(Compression):
    """Trained ternary quantization: learned positive and negative scales (`nn.Parameter`s), threshold t max|w|.

    TTQ needs positive scales; a training step may push one below zero, so the forward uses
    `where(scale >= 2**-126, scale, 2**-126)` (the gradient passes where the scale is at or above the floor, as
    `clamp` lets it), and so does the replay.
    """

    algorithm = "ttq"
    FLOOR = 2.0**-126

    def __init__(self, weight, t=0.05):
        super().__init__()
        self.t = t
        init = TORCH.xnor_scale(weight.detach().float())
        init = torch.where(init > 0, init, torch.ones_like(init))
        self.wp = nn.Parameter(init.clone())
        self.wn = nn.Parameter(init.clone())

    def _floored(self, B, scale):
        return B.where(scale >= self.FLOOR, scale, B.full_like(scale, self.FLOOR))

    def compute(self, B, w, s):
        return B.ttq_quantize(w, self._floored(B, s["wp"]), self._floored(B, s["wn"]), t=self.t)

    def encode(self, B, w, s):
        wp, wn = (B.constant(self._floored(B, s[k])) for k in ("wp", "wn"))
        codebook = B.stack([-wn, B.full_like(wp, 0.0), wp])
        codes = B.codebook_assign(self.compute(B, B.constant(w), s), codebook)  # exact: the output is in it
        return Encoded(codes, "codebook_decode", {"codebook": codebook}, 0, 2)

    def bits_per_weight(self):
        return 2.0

    def describe(self):
        return {"algorithm": self.algorithm, "t": self.t}


class Calibrated(Compression):
    """The result of a post-training algorithm (`gptq`, `sparsegpt`) on one weight, computed once by
    `torch_backend.nn.calibrate` from the layer's calibration Hessian and stored: before calibration the weight
    passes unchanged; after it the layer uses the stored result. `replay` recomputes the whole result with the
    reference from the master weight and the stored Hessian, and requires every output (weight, codes, scales,
    zero points, g_idx, mask) to be the same bits.
    """

    FIELDS = {"gptq": ("weight", "codes", "scale", "zero_point", "g_idx", "perm"),
              "sparsegpt": ("weight", "mask", "codes", "scale", "zero_point", "g_idx")}  # fmt: skip

    def __init__(self, algorithm, options):
        super().__init__()
        self.algorithm, self.options = algorithm, dict(options)
        self.kind = "pruning" if algorithm == "sparsegpt" else "quantization"
        self.calibrated = False

    def calibrate(self, w, h):
        """Run the algorithm on the float32 weight `w` with the Hessian `h` (torch) and store the result."""
        result = getattr(TORCH, self.algorithm)(w, h, **self.options)
        self.register_buffer("hessian", h.detach().clone())
        for name, value in zip(result._fields, result, strict=True):
            if value is not None:
                self.register_buffer(f"result_{name}", value.detach().clone())
        self.calibrated = True

    def result(self, B=TORCH):
        return {k.removeprefix("result_"): v for k, v in self.state(B).items() if k.startswith("result_")}

    def compute(self, B, w, s):
        return s["result_weight"] if self.calibrated else w

    def replay(self, w: np.ndarray) -> np.ndarray:
        """The reference's result from the master weight and the stored Hessian; every stored output must match,
        else the returned weight is marked wrong (NaN), so that the replay row fails."""
        if not self.calibrated:
            return w
        s = self.state(NUMPY)
        result = getattr(NUMPY, self.algorithm)(w.astype(np.float32), s["hessian"], **self.options)
        stored = self.result(NUMPY)
        want = {k: v for k, v in zip(result._fields, result, strict=True) if v is not None}
        same = want.keys() == stored.keys() and all(
            want[k].dtype == stored[k].dtype and want[k].tobytes() == stored[k].tobytes() for k in want
        )
        out = result.weight if same else np.full(w.shape, np.nan, dtype=np.float32)
        return out if w.dtype == np.float32 else out.astype(w.dtype)

    def keep_mask(self):
        return getattr(self, "result_mask", None)

    def encode(self, B, w, s):
        if not self.calibrated or "result_codes" not in s:
            return None
        bits, symmetric = self.options["bits"], self.options.get("symmetric", False)
        qmin, qmax = B.integer_range(bits, True, symmetric)
        g_idx = s["result_g_idx"]
        group = w.shape[1] // s["result_scale"].shape[1]
        parts = {"scale": s["result_scale"], "zero_point": s["result_zero_point"], "g_idx": g_idx}
        return Encoded(s["result_codes"], "dequantize", parts, qmin, qmax, {"axis": 1, "group_size": group})

    def bits_per_weight(self) -> float:
        return float(self.options["bits"]) if self.options.get("bits") is not None else 32.0

    def describe(self) -> dict:
        return {"algorithm": self.algorithm, **self.options}


WEIGHT_QUANTIZERS = (AffineQuant, LSQQuant, TWNQuant, XNORQuant, TTQQuant)
