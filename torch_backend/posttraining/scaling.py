"""AWQ in torch, exact: the semantics of `reference.posttraining.scaling`, bit for bit, on any device.

The losses of the grid and clipping searches are float64 products on the device, certified by the same error
bounds; only comparisons they cannot decide are done exactly on the host (the reference's own integer code).
"""

from __future__ import annotations

import math
import struct
from operator import mul, truediv

import torch

from reference.common import validate
from reference.posttraining.scaling import FLOOR, MAX_GRID, SQ_FLOOR, AWQResult, SmoothQuantResult
from torch_backend import _arrays
from torch_backend.core import _host
from torch_backend.core.exact import exact_sum
from torch_backend.core.transcendental import cr_pow
from torch_backend.posttraining._certified import argmin_quadratic
from torch_backend.posttraining._host import f32 as _f32
from torch_backend.posttraining._host import f32s, host_values, pow32
from torch_backend.quantization.affine import dequantize, fake_quantize, integer_range, minmax_qparams, quantize

__all__ = [
    "AWQResult", "SmoothQuantResult", "awq_act_scale", "awq_scales", "awq", "smoothquant_scales", "smoothquant",
]  # fmt: skip

F32, F64 = torch.float32, torch.float64


def awq_act_scale(x):
    """`fl32(fl64(exact_sum(|x|, axis=0) / n))`; see `reference.posttraining.scaling.awq_act_scale`."""
    x = _arrays.finite_array("x", x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, in_features) with n >= 1, got {tuple(x.shape)}")
    total = exact_sum(x.detach().abs(), axis=0)
    return (total / _arrays.scalar(float(x.shape[0]), total)).to(F32)


def awq_scales(act_scale, alpha):
    """`max(cr_pow(s_x, alpha), 1e-4)` normalized by `cr_sqrt(max * min)`; see the reference."""
    s_x = _act_scale(act_scale)
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    if struct.unpack("<f", struct.pack("<f", alpha))[0] == 0.0:
        # fl32(alpha) = 0 (alpha <= 2**-150): cr_pow(x, 0) = 1 for every x >= 0 (0**0 too), so t = max(1, fl32(1e-4))
        # = 1 everywhere, max t * min t = 1, cr_sqrt(1) = 1, and t / 1 = 1: all ones, without the powers
        return torch.ones(s_x.shape, dtype=F32, device=s_x.device)
    return _scales(s_x.detach(), _f32(alpha, s_x))


def awq(w, h, act_scale, *, bits=4, group_size=None, symmetric=False, grid=20, clip=True, max_shrink=0.5,
        clip_grid=20):  # fmt: skip
    """AWQ on one layer, exact searches; see `reference.posttraining.scaling.awq` for the semantics."""
    w, h = _layer(w, h)
    s_x = _act_scale(act_scale, w.shape[1])
    _arrays.same_device("act_scale", s_x, "w", w)
    bits = validate.integer("bits", bits, lo=2, hi=8)
    g = _group_size(group_size, w.shape[1])
    symmetric = validate.boolean("symmetric", symmetric)
    grid = validate.integer("grid", grid, lo=1, hi=MAX_GRID)
    clip = validate.boolean("clip", clip)
    max_shrink = validate.real("max_shrink", max_shrink, lo=0.0, hi=1.0, hi_open=True)
    clip_grid = validate.integer("clip_grid", clip_grid, lo=1, hi=MAX_GRID)
    qmin, qmax = integer_range(bits, True, symmetric)
    w, h, s_x = w.detach(), h.detach(), s_x.detach()
    out_f, d = w.shape
    n_groups = d // g
    w64 = w.to(F64)

    scales = [_scales(s_x, _f32(k / grid, w)) for k in range(grid)]
    diffs = torch.stack([w64 - _candidate(w, s, None, g, qmin, qmax, symmetric).to(F64) for s in scales])
    zero = torch.zeros(1, dtype=torch.int64, device=w.device)
    k = int(argmin_quadratic(diffs[:, None], h[None], zero)[0])
    s = scales[k]
    ws = w * s[None, :]

    amax = ws.abs().reshape(out_f, n_groups, g).amax(dim=2)
    shrinks = int(max_shrink * clip_grid) if clip else 0
    ratios = [_f32(1 - i / clip_grid, w) for i in range(max(shrinks, 1))]
    thresholds = torch.stack([amax * r for r in ratios])
    if shrinks > 1:
        blocks = torch.stack([h[j * g : (j + 1) * g, j * g : (j + 1) * g] for j in range(n_groups)])
        diffs = torch.stack([w64 - _candidate(w, s, m, g, qmin, qmax, symmetric).to(F64) for m in thresholds])
        diffs = diffs.reshape(len(ratios), out_f * n_groups, 1, g)
        hidx = torch.arange(n_groups, device=w.device).repeat(out_f)
        best = argmin_quadratic(diffs, blocks, hidx).reshape(out_f, n_groups)
        chosen = torch.gather(thresholds, 0, best[None])[0]
    else:
        chosen = thresholds[0]

    clipped = _clip(ws, chosen, g)
    scale, zero_point = minmax_qparams(clipped, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=1, group_size=g)
    codes = quantize(clipped, scale, zero_point, qmin=qmin, qmax=qmax, axis=1, group_size=g)
    weight = dequantize(codes, scale, zero_point, axis=1, group_size=g) / s[None, :]
    return AWQResult(weight, codes, scale, zero_point, s, torch.tensor(k / grid, dtype=F32, device=w.device), chosen)


def smoothquant_scales(act_max, w, alpha=0.5):
    """`max(cr_pow(a, alpha) / cr_pow(max(max|W_j|, 1e-5), 1 - alpha), 1e-5)`; see
    `reference.posttraining.scaling.smoothquant_scales`."""
    a = _vector("act_max", act_max)
    w = _weight(w, a.shape[0])
    _arrays.same_device("w", w, "act_max", a)
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    return _smooth(a.detach(), w.detach(), alpha)


def smoothquant(w, act_max, *, alpha=0.5, bits=8):
    """The smoothed weight quantized per output channel, symmetric; see `reference.posttraining.scaling.smoothquant`.

    Up to `HOST_MAX` weights of plain CPU tensors that pass the checks, the same steps run on Python floats
    (`_host_smoothquant`)."""
    found = _host_smoothquant(w, act_max, alpha, bits)
    if found is not None:
        return found
    a = _vector("act_max", act_max)
    w = _weight(w, a.shape[0])
    _arrays.same_device("w", w, "act_max", a)
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    bits = validate.integer("bits", bits, lo=2, hi=16)
    w, a = w.detach(), a.detach()
    s = _smooth(a, w, alpha)
    qmin, qmax = integer_range(bits, True, True)
    ws = w * s[None, :]
    scale, zero_point = minmax_qparams(ws, qmin=qmin, qmax=qmax, symmetric=True, axis=0)
    codes = quantize(ws, scale, zero_point, qmin=qmin, qmax=qmax, axis=0)
    return SmoothQuantResult(dequantize(codes, scale, zero_point, axis=0), codes, scale, s)


HOST_MAX = 128  # up to this many weights `smoothquant` computes on Python floats (measured: 3x faster than the
# tensor route at 64, on par at 256)


def _host_smoothquant(w, act_max, alpha, bits):
    """`smoothquant` on Python floats, or None (then the tensor route runs, and raises the reference's errors in
    its order). The host route takes plain float32 CPU tensors only, `act_max` `(d,)` with `d >= 1`, finite and
    `>= 0`, and `w` `(out, d)` with `out >= 1` and at most `HOST_MAX` elements, finite: then `act_max` and `w`
    pass their checks, and `alpha` and `bits` are checked next, as there.

    Each float32 operation of float32 operands is computed once in float64 and rounded (`halfquadratic.f32s`):
    the column maxima `m` and the floors are exact; the powers are `cr_pow`'s correctly rounded values
    (`halfquadratic.pow32`); `s = max(fl32(num / den), 1e-5)`, `ws = fl32(w * s)`. An infinite `ws` (the tensor
    route's error) goes back to the tensors. Then `minmax_qparams(ws, symmetric=True, axis=0)` with the zero point
    0 of the narrow signed range: `scale = fl32(max(-min(lo, 0), max(hi, 0)) / qmax)` in float64, 1 below
    `2**-126`; the codes `clip(rint(fl32(ws / scale)), -qmax, qmax)` as `round(clip(v))` (the bounds are integers,
    and finite for an infinite quotient); the weight `fl32(code * scale)` (`fl32(q - 0)` is exact)."""
    if not (
        type(act_max) in _arrays.PLAIN
        and type(w) in _arrays.PLAIN
        and act_max.dtype == F32
        and w.dtype == F32
        and act_max.ndim == 1
        and w.ndim == 2
        and 0 < w.shape[0]
        and 0 < act_max.shape[0] == w.shape[1]
    ):
        return None
    a, wv = host_values(act_max, HOST_MAX), host_values(w, HOST_MAX)
    if a is None or wv is None or min(a) < 0:
        return None
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    bits = validate.integer("bits", bits, lo=2, hi=16)
    out_f, d = w.shape
    floor = float(SQ_FLOOR)
    m = [max(max(map(abs, wv[j::d])), floor) for j in range(d)]
    e_num, e_den = f32s((alpha, 1.0 - alpha))
    num = [pow32(v, e_num) for v in a]
    den = [pow32(v, e_den) for v in m]  # m >= 1e-5 and 0 <= e_den <= 1: den > 0
    s = [max(v, floor) for v in f32s(map(truediv, num, den))]
    ws = f32s(map(mul, wv, s * out_f))
    if not math.isfinite(sum(ws)):
        return None
    qmax = 2 ** (bits - 1) - 1
    lo, hi = float(-qmax), float(qmax)
    scale = []
    for k in range(0, out_f * d, d):
        row = ws[k : k + d]
        scale.append(f32s((max(-min(min(row), 0.0), max(max(row), 0.0)) / qmax,))[0])
    scale = [1.0 if v < _TINY else v for v in scale]
    per = [v for v in scale for _ in range(d)]
    codes = [round(min(max(v, lo), hi)) for v in f32s(map(truediv, ws, per))]
    weight = f32s(map(mul, codes, per))
    rows = lambda v: [v[k : k + d] for k in range(0, out_f * d, d)]  # noqa: E731
    return SmoothQuantResult(torch.tensor(rows(weight), dtype=F32), torch.tensor(rows(codes), dtype=torch.int32),
                             torch.tensor(scale, dtype=F32), torch.tensor(s, dtype=F32))  # fmt: skip


_TINY = 2.0**-126  # the smallest normal float32: smaller scales become 1 (`minmax_qparams`)


def _smooth(a, w, alpha):
    floor = _f32(float(SQ_FLOOR), w)
    m = torch.maximum(w.abs().amax(dim=0) if w.shape[0] else torch.zeros_like(a), floor)
    # num = cr_pow(a, alpha) and den = cr_pow(m, 1 - alpha) in one call (pays its fixed cost once)
    exponents = torch.stack([_f32(alpha, a), _f32(1.0 - alpha, a)])[:, None].expand(2, a.shape[0])
    num, den = cr_pow(torch.stack([a, m]), exponents)
    return torch.maximum(num / den, floor)


def _scales(s_x, alpha):
    t = torch.maximum(cr_pow(s_x, alpha), _f32(float(FLOOR), s_x))
    small, large = (v.item() for v in torch.aminmax(t))
    return t / _f32(_host.sqrt_float32(large * small), t)  # float64: the product of two float32 values is exact


def _clip(ws, thresholds, g):
    m = thresholds.repeat_interleave(g, dim=1)
    return torch.minimum(torch.maximum(ws, -m), m)


def _candidate(w, s, thresholds, g, qmin, qmax, symmetric):
    ws = w * s[None, :]
    if thresholds is not None:
        ws = _clip(ws, thresholds, g)
    scale, zero_point = minmax_qparams(ws, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=1, group_size=g)
    q = fake_quantize(ws, scale, zero_point, qmin=qmin, qmax=qmax, axis=1, group_size=g)
    return q / s[None, :]


def _vector(name, v):
    v = _arrays.within(name, _arrays.finite_array(name, v), 0.0, float("inf"))
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"{name} must have shape (in_features,) with in_features >= 1, got {tuple(v.shape)}")
    return v


def _weight(w, d):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] != d:
        raise ValueError(f"w must have shape (out_features, {d}) to match act_max, got {tuple(w.shape)}")
    return w


def _act_scale(act_scale, d=None):
    s_x = _arrays.within("act_scale", _arrays.finite_array("act_scale", act_scale), 0.0, float("inf"))
    if s_x.ndim != 1 or s_x.shape[0] == 0:
        raise ValueError(f"act_scale must have shape (in_features,) with in_features >= 1, got {tuple(s_x.shape)}")
    if d is not None and s_x.shape[0] != d:
        raise validate.shape_mismatch("act_scale", s_x.shape, (d,), f"w with in_features {d}")
    return s_x


def _layer(w, h):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    h = _arrays.finite_array("h", h, ("float64",))
    if tuple(h.shape) != (w.shape[1], w.shape[1]):
        raise validate.shape_mismatch("h", h.shape, (w.shape[1], w.shape[1]), f"w with in_features {w.shape[1]}")
    bad = (h != h.T).nonzero()
    if bad.numel():
        i, j = (int(v) for v in bad[0])
        raise validate.not_symmetric("h", i, j, float(h[i, j]), float(h[j, i]))
    _arrays.same_device("h", h, "w", w)
    return w, h


def _group_size(group_size, d):
    if group_size is None:
        return d
    g = validate.integer("group_size", group_size, lo=1)
    if d % g:
        raise ValueError(f"group_size={g} must divide in_features={d}")
    return g
