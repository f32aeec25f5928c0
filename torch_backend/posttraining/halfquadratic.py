"""HQQ in torch: the semantics of `reference.posttraining.halfquadratic`, bit for bit, on any device."""

from __future__ import annotations

import torch

from reference.common import validate
from reference.posttraining.halfquadratic import FIRST_BEST, MAX_ITERS, SCALE_CAP, HQQResult
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum
from torch_backend.core.transcendental import cr_pow
from torch_backend.posttraining._host import f32 as _f32

__all__ = ["HQQResult", "hqq_shrink", "hqq"]

F32, F64 = torch.float32, torch.float64


def hqq_shrink(x, *, beta, p):
    """`sign(x) * max(|x| - fl32(1/beta) * cr_pow(|x|, p - 1), 0)`; see `reference.posttraining.halfquadratic.hqq_shrink`."""
    x = _arrays.finite_array("x", x)
    beta = validate.real("beta", beta, lo=0.0, lo_open=True)
    p = validate.real("p", p, lo=0.0, hi=1.0, lo_open=True)
    return _shrink(x.detach(), beta, p)


def hqq(w, *, bits=4, group_size=64, lp_norm=0.7, beta=10.0, kappa=1.01, iters=20, optimize=True):
    """HQQ's half-quadratic zero-point solver and codes; see `reference.posttraining.halfquadratic.hqq` for the semantics."""
    w = _arrays.finite_array("w", w)
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
            wq = torch.clamp(torch.round(groups * sigma + zero), zero_f, qmax)
            wr = (wq - zero) / sigma
            we = _shrink(groups - wr, beta, p)
            zero = _mean(wq - (groups - we) * sigma)
            beta *= kappa
            error = float(exact_sum((groups - wr).abs()) / size)
            if error < best:
                best = error
            else:
                break
    codes = torch.clamp(torch.round(groups * sigma + zero), zero_f, qmax)
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
