"""HQQ in torch: the semantics of `reference.posttraining.halfquadratic`, bit for bit, on any device."""

from __future__ import annotations

import math
from operator import add, mul, neg, sub, truediv

import torch

from reference.common import validate
from reference.posttraining.halfquadratic import FIRST_BEST, MAX_ITERS, SCALE_CAP, HQQResult
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum
from torch_backend.core.transcendental import cr_pow
from torch_backend.posttraining._host import f32 as _f32
from torch_backend.posttraining._host import f32s, host_values, pow32

__all__ = ["HQQResult", "hqq_shrink", "hqq"]

F32, F64 = torch.float32, torch.float64


def hqq_shrink(x, *, beta, p):
    """`sign(x) * max(|x| - fl32(1/beta) * cr_pow(|x|, p - 1), 0)`; see `reference.posttraining.halfquadratic.hqq_shrink`.

    Up to `HOST_MAX` elements of a plain CPU tensor, all finite, the same float32 steps run on Python floats
    (`_host_shrink`)."""
    x = _arrays.array("x", x)
    values = host_values(x, HOST_MAX)
    if values is None:
        x = _arrays.finite("x", x)
    beta = validate.real("beta", beta, lo=0.0, lo_open=True)
    p = validate.real("p", p, lo=0.0, hi=1.0, lo_open=True)
    if values is not None:
        return torch.tensor(_host_shrink(values, beta, p), dtype=F32).reshape(x.shape)
    return _shrink(x.detach(), beta, p)


def hqq(w, *, bits=4, group_size=64, lp_norm=0.7, beta=10.0, kappa=1.01, iters=20, optimize=True):
    """HQQ's half-quadratic zero-point solver and codes; see `reference.posttraining.halfquadratic.hqq` for the semantics."""
    w = _arrays.array("w", w)
    values = host_values(w, HOST_MAX)
    if values is None:
        w = _arrays.finite("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    bits = validate.integer("bits", bits, lo=1, hi=8)
    g = validate.integer("group_size", group_size, lo=1)
    if w.shape[1] % g:
        raise ValueError(f"group_size={g} must divide in_features={w.shape[1]}")
    p = validate.real("lp_norm", lp_norm, lo=0.0, hi=1.0, lo_open=True)
    beta = validate.real("beta", beta, lo=0.0, lo_open=True)
    kappa = validate.real("kappa", kappa, lo=1.0)
    iters = validate.integer("iters", iters, lo=0, hi=MAX_ITERS)
    optimize = validate.boolean("optimize", optimize)
    if values is not None:
        found = _host_hqq(values, tuple(w.shape), g, float(2**bits - 1), p, beta, kappa, iters if optimize else 0)
        if found is not None:
            return found
    w = w.detach()
    out_f, d = w.shape
    qmax = _f32(2**bits - 1, w)
    zero_f = _f32(0, w)
    groups = w.reshape(-1, g)
    lo, hi = groups.amin(dim=1, keepdim=True) + zero_f, groups.amax(dim=1, keepdim=True) + zero_f  # +0.0 extremes
    width = hi - lo
    _finite_ranges(width)
    sigma = torch.minimum(qmax / width, _f32(float(SCALE_CAP), w))
    zero = -lo * sigma
    done = 0
    if optimize:
        best = FIRST_BEST
        size = _arrays.scalar(float(groups.numel()), w, F64)
        for _ in range(iters):
            done += 1
            wq = torch.clamp(torch.round(groups * sigma + zero), zero_f, qmax).add_(zero_f)  # a zero code: +0.0
            wr = (wq - zero) / sigma
            we = _shrink(groups - wr, beta, p)
            zero = _mean(wq - (groups - we) * sigma)
            beta *= kappa
            error = float(exact_sum((groups - wr).abs()) / size)
            if error < best:
                best = error
            else:
                break
    codes = torch.clamp(torch.round(groups * sigma + zero), zero_f, qmax).add_(zero_f)
    scale = _f32(1, w) / sigma
    weight = (codes - zero) * scale
    n_groups = d // g
    return HQQResult(weight.reshape(out_f, d), codes.to(torch.int32).reshape(out_f, d),
                     scale.reshape(out_f, n_groups), zero.reshape(out_f, n_groups), done)  # fmt: skip


def _shrink(x, beta, p):
    inv = _f32(1.0 / beta, x)
    if float(inv) == 0:
        return torch.sign(x) * x.abs()
    a = x.abs()
    t = inv * cr_pow(a, _f32(p - 1.0, x))
    return torch.sign(x) * torch.maximum(a - t, _f32(0, x))


def _finite_ranges(width):
    bad = ~torch.isfinite(width.reshape(-1))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"group {i} of w spans more than the float32 range (max - min overflows)")


def _mean(v):
    total = exact_sum(v, axis=1)
    return (total / _arrays.scalar(float(v.shape[1]), total)).to(F32)[:, None]


# ---- the host route: tiny CPU inputs on Python floats ---------------------------------------------------------------

HOST_MAX = 64  # up to this many elements of a plain CPU tensor `hqq` and `hqq_shrink` compute on Python floats


def _finite(values):
    return math.isfinite(sum(values))


def _host_shrink(values, beta, p):
    """`_shrink` on Python floats: `t = fl32(inv * cr_pow(|x|, fl32(p - 1)))` (the product of a float32 and a power
    is exact in float64, an infinite power gives an infinite `t`), `d = fl32(|x| - t)`, then `sign(x) * max(d, 0)`
    exactly: `d` or `-d` where `d > 0` (then `x != 0`), else a zero with the sign of `sign(x)`, `+0.0` for
    `x = +-0.0` (`sign(-0.0)` is `+0.0`; `d` is never `-0.0`: `|x| - t` is `+0.0` when they are equal)."""
    inv = f32s((1.0 / beta,))[0]
    if inv == 0:  # sign(x) * |x|: x, with -0.0 as +0.0
        return [v if v else 0.0 for v in values]
    b = f32s((p - 1.0,))[0]
    a = [abs(v) for v in values]
    t = f32s([inv * pow32(u, b) for u in a])
    d = f32s(map(sub, a, t))
    return [(e if v > 0 else -e) if e > 0 else (-0.0 if v < 0 else 0.0) for v, e in zip(values, d, strict=True)]


def _rint_clip(q, qmax):
    """`clip(rint(q), 0, qmax) + 0.0` of a finite float32 `q`: ties to even (Python's `round`, an int: a zero code
    is `+0.0`, as the tensor route's)."""
    r = float(round(q))
    return 0.0 if r < 0 else (qmax if r > qmax else r)


def _host_hqq(values, shape, g, qmax, p, beta, kappa, iters):
    """`hqq` on Python floats (`iters` 0: no optimization), every float32 operation as `f32s` describes, the exact
    sums by `math.fsum` (exact partials, rounded once; `+ 0.0` as the small exact sums), in the tensor route's
    order; None when a value other than the shrinkage's powers is not finite (an overflow), and the tensor route
    runs (or raises)."""
    out_f, d = shape
    n = len(values)
    if not n:
        return None  # no rows: the tensor route (its error is 0 / 0, NaN)
    lo = [min(values[k : k + g]) + 0.0 for k in range(0, n, g)]  # a zero extreme is +0.0
    hi = [max(values[k : k + g]) + 0.0 for k in range(0, n, g)]
    width = f32s(map(sub, hi, lo))
    if not _finite(width):
        return None  # the tensor route names the group
    sigma = [min(s, _CAP) for s in f32s([qmax / v if v else math.inf for v in width])]  # qmax / 0 = inf
    zero = f32s(map(mul, map(neg, lo), sigma))
    S = [s for s in sigma for _ in range(g)]
    Z = [z for z in zero for _ in range(g)]
    if not _finite(Z):
        return None
    W = values
    done = 0
    best = FIRST_BEST
    for _ in range(iters):
        done += 1
        Q = f32s(map(add, f32s(map(mul, W, S)), Z))
        if not _finite(Q):
            return None
        WQ = [_rint_clip(q, qmax) for q in Q]
        WR = f32s(map(truediv, f32s(map(sub, WQ, Z)), S))
        E = f32s(map(sub, W, WR))
        if not _finite(E):
            return None
        WE = _host_shrink(E, beta, p)
        C = f32s(map(mul, f32s(map(sub, W, WE)), S))
        T = f32s(map(sub, WQ, C))
        if not _finite(T):
            return None
        zero = f32s([(math.fsum(T[k : k + g]) + 0.0) / g for k in range(0, n, g)])
        Z = [z for z in zero for _ in range(g)]
        beta *= kappa
        error = (math.fsum(map(abs, E)) + 0.0) / n
        if error < best:
            best = error
        else:
            break
    Q = f32s(map(add, f32s(map(mul, W, S)), Z))
    if not _finite(Q):
        return None
    codes = [_rint_clip(q, qmax) for q in Q]
    scale = f32s([1.0 / s for s in sigma])
    weight = f32s(map(mul, f32s(map(sub, codes, Z)), [s for s in scale for _ in range(g)]))
    if not _finite(weight):
        return None
    count = d // g
    return HQQResult(_rows(weight, d, F32), _rows([int(c) for c in codes], d, torch.int32), _rows(scale, count, F32),
                     _rows(zero, count, F32), done)  # fmt: skip


def _rows(values, width, dtype):
    """The flat list `values` as a fresh 2-D tensor of rows of `width` (a nested list: no reshape)."""
    return torch.tensor([values[k : k + width] for k in range(0, len(values), width)], dtype=dtype)


_CAP = float(SCALE_CAP)
