"""AdaRound in torch: the semantics of `reference.posttraining.adaround`, bit for bit, on any device.

Every scalar enters as a 0-d float32 tensor on the data's device (so a division is IEEE on CUDA too); the gradient
of the reconstruction loss is the certified float32 product of `torch_backend.posttraining._certified`.
"""

from __future__ import annotations

import functools
import math
import struct
from array import array
from itertools import repeat
from operator import add, mul, sub, truediv

import torch

from reference.common import transcendentals as _exact
from reference.common import validate
from reference.core.transcendental import REL, TINY
from reference.posttraining.adaround import GAMMA, ZETA, AdaRoundState, adaround_beta
from torch_backend import _arrays
from torch_backend.core._host import sqrt_float32
from torch_backend.core.exact import exact_sum
from torch_backend.core.transcendental import cr_log, cr_pow, cr_sigmoid, cr_sqrt
from torch_backend.posttraining._certified import matmul32
from torch_backend.posttraining._host import f32 as _f32
from torch_backend.posttraining._host import f32s, host_values, pow32

__all__ = [
    "AdaRoundState", "rectified_sigmoid", "rectified_sigmoid_vjp", "adaround_regularizer", "adaround_regularizer_vjp",
    "adaround_beta", "adaround_init", "adaround_step", "adaround_quantize",
]  # fmt: skip

F32, F64 = torch.float32, torch.float64


def rectified_sigmoid(v, *, zeta=ZETA, gamma=GAMMA):
    """`clip(fl32(fl32(cr_sigmoid(v) * (zeta - gamma)) + gamma), 0, 1)`; see the reference."""
    v = _arrays.finite_array("v", v).detach()
    c, g = _stretch(zeta, gamma, v)
    keep = _passing(v, c, g)
    if keep is None:
        return _h(cr_sigmoid(v), c, g)
    return _Stretched(v, c, g, keep).full_h(v)


def rectified_sigmoid_vjp(grad, v, *, zeta=ZETA, gamma=GAMMA):
    """`grad * sigma (1 - sigma) (zeta - gamma)` where the clip passes, else +0; see the reference.

    Up to `VJP_HOST_MAX` elements of plain CPU tensors the same float32 steps run on Python floats: `sigma` by
    `_sigmoid32` (correctly rounded, as `cr_sigmoid`), every product, sum and difference of float32 values computed
    once in float64 and rounded by `f32s` (the float32 operation: 53 >= 2 * 24 + 2 bits)."""
    v = _arrays.array("v", v)
    vs = host_values(v, VJP_HOST_MAX)
    if vs is None:
        v = _arrays.finite("v", v)
    v = v.detach()
    grad = _arrays.array("grad", grad)
    gs = host_values(grad, VJP_HOST_MAX) if vs is not None else None
    if gs is None:
        _arrays.finite("grad", grad)
    grad = _arrays.shaped("grad", grad, v.shape, "v").detach()
    _arrays.same_device("grad", grad, "v", v)
    c, g = _stretch(zeta, gamma, v)
    if gs is not None:
        return _host_tensor(_sigmoid_vjp_host(gs, vs, c.item(), g.item()), v.shape)
    return _sigmoid_vjp(grad, _Stretched(v, c, g))


VJP_HOST_MAX = 64  # up to this many CPU elements, `rectified_sigmoid_vjp` runs on Python floats


def _sigmoid_vjp_host(grad, v, c, g):
    """`_sigmoid_vjp` on Python floats (float32 values): `pre = fl32(fl32(sigma c) + g)`; where `0 <= pre <= 1`
    (`pre == clip(pre, 0, 1)`; `pre` is finite) `fl32(grad fl32(fl32(sigma fl32(1 - sigma)) c))`, else `+0.0`."""
    sig = [_sigmoid32(x) for x in v]
    pre = f32s([p + g for p in f32s([x * c for x in sig])])
    d = f32s([x * c for x in f32s(map(mul, sig, f32s([1.0 - x for x in sig])))])
    out = f32s(map(mul, grad, d))
    return [o if 0.0 <= p <= 1.0 else 0.0 for o, p in zip(out, pre, strict=True)]


def _host_tensor(values, shape):
    """A fresh float32 CPU tensor of `shape` from a flat list of float32 values (exact: `array("f")`)."""
    if not values:
        return torch.empty(shape, dtype=F32)
    return torch.frombuffer(bytearray(array("f", values).tobytes()), dtype=F32).clone().reshape(shape)


def adaround_regularizer(v, *, beta, zeta=ZETA, gamma=GAMMA):
    """`fl32(exact_sum(1 - cr_pow(|2h - 1|, beta)))`; see the reference."""
    v = _arrays.finite_array("v", v).detach()
    beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    c, g = _stretch(zeta, gamma, v)
    u = (_f32(2, v) * _h(cr_sigmoid(v), c, g) - _f32(1, v)).abs()
    if u.numel() >= LIVE_MIN and u.device.type == "cpu":  # the selection reads its count from the device
        # cr_pow(1, beta) = 1 exactly (1**y = 1), so every element with u = 1 (h = 0 or 1: a rounded weight, as
        # AdaRound drives them) has the term 1 - 1 = +0.0; the exact sum, rounded once, is the same without those
        # zeros (an exact sum of nothing, or of zeros, is +0.0 either way). Only the others take the powers.
        u = u[u != _f32(1, v)]
    terms = _f32(1, v) - cr_pow(u, _f32(beta, v))
    return exact_sum(terms).to(F32)


LIVE_MIN = 1 << 14  # from this many elements `adaround_regularizer` takes powers of the elements with u != 1 only


def adaround_regularizer_vjp(grad, v, *, beta, zeta=ZETA, gamma=GAMMA):
    """The regularizer's VJP for a 0-d cotangent; see the reference."""
    v = _arrays.finite_array("v", v).detach()
    grad = _arrays.finite_array("grad", grad).detach()
    if grad.ndim != 0:
        raise ValueError(f"grad must be 0-d (the cotangent of a sum), got shape {tuple(grad.shape)}")
    _arrays.same_device("grad", grad, "v", v)
    beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    c, g = _stretch(zeta, gamma, v)
    return _regularizer_vjp(grad, _Stretched(v, c, g), beta)


def adaround_init(w, scale, *, zeta=ZETA, gamma=GAMMA):
    """`-cr_log(fl32(fl32((zeta - gamma) / fl32(rest - gamma)) - 1))`, rest the fractional part of `w / s`; see the
    reference."""
    w, s = _weight_and_scale(w, scale)
    c, g = _stretch(zeta, gamma, w)
    out_f, d = w.shape
    r = (w.reshape(out_f, s.shape[1], d // s.shape[1]) / s[:, :, None]).reshape(out_f, d)  # w / s, group by group
    rest = r - torch.floor(r)
    return -cr_log(c / (rest - g) - _f32(1, w))


def adaround_step(w, h, v, m, s, scale, zero_point, *, step, qmin, qmax, beta=None, lam=0.01, lr=1e-3,
                  zeta=ZETA, gamma=GAMMA):  # fmt: skip
    """One Adam step on AdaRound's layer-wise loss; see `reference.posttraining.adaround.adaround_step`.

    Tiny CPU layers (`HOST_MAX`) that pass the checks take the same steps on Python floats (`_host_step`)."""
    found = _host_step(w, h, v, m, s, scale, zero_point, step, qmin, qmax, beta, lam, lr, zeta, gamma)
    if found is not None:
        return found
    w, s_g = _weight_and_scale(w, scale)
    s_g = _per_weight(s_g, w.shape[1])
    h = _hessian(h, w.shape[1], w)
    v = _state("v", v, w)
    m = _state("m", m, w)
    s = _arrays.within("s", _state("s", s, w), 0.0, float("inf"))
    qmin, qmax = validate.qrange(qmin, qmax)
    z = _zero_point(zero_point, scale, qmin, qmax, w)
    step = validate.integer("step", step, lo=0, hi=10**6)
    if beta is not None:
        beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    lam = validate.real("lam", lam, lo=0.0)
    lr = validate.real("lr", lr, lo=0.0, lo_open=True)
    c, g = _stretch(zeta, gamma, w)

    lo, hi = _f32(qmin, w), _f32(qmax, w)
    floor = torch.floor(w / s_g)
    st = _Stretched(v, c, g)
    pre = (floor + (st.h if st.keep is None else st.full_h(v))) + z
    passes = (pre >= lo) & (pre <= hi)
    soft = (torch.clamp(pre, lo, hi) - z) * s_g
    grad_w = matmul32(soft.to(F64) - w.to(F64), h)
    grad_h = torch.where(passes, grad_w * s_g, _f32(0, w))
    grad = _sigmoid_vjp(grad_h, st)
    if beta is not None:
        grad = grad + _regularizer_vjp(_f32(lam, w), st, beta)

    t = step + 1
    b1, b2, eps = 0.9, 0.999, 1e-8
    m2 = _f32(b1, w) * m + _f32(1 - b1, w) * grad
    s2 = _f32(b2, w) * s + _f32(1 - b2, w) * grad * grad
    eta = _f32(lr / (1 - b1**t), w)
    denom = cr_sqrt(s2) / _f32(math.sqrt(1 - b2**t), w) + _f32(eps, w)
    v2 = v - eta * (m2 / denom)
    return AdaRoundState(v2, m2, s2)


def adaround_quantize(w, v, scale, zero_point, *, qmin, qmax):
    """`clip(floor(w / s) + [v >= 0] + z, qmin, qmax)`; see the reference."""
    w, s = _weight_and_scale(w, scale)
    v = _state("v", v, w)
    qmin, qmax = validate.qrange(qmin, qmax)
    z = _zero_point_groups(zero_point, scale, qmin, qmax, w)
    if w.numel() < QUANTIZE_MIN:
        s_g = _per_weight(s, w.shape[1])
        q = torch.floor(w / s_g).to(F64) + (v >= 0).to(F64) + _per_weight(z, w.shape[1]).to(F64)
        return torch.clamp(q, qmin, qmax).to(torch.int32)
    # float32 throughout, exact: `f = floor(w / s)` (an integer or inf: `w` finite, `s > 0`) clamped first to
    # [qmin - qmax - 1, qmax - qmin] leaves `clip(f + b + z, qmin, qmax)` unchanged (`b` in {0, 1}, `z` in [qmin,
    # qmax]: below, `f + b + z <= qmin` either way; above, `>= qmax`; the reference's float64 sum of a huge `f`
    # rounds monotonically past the same bound), and then every sum is an integer of magnitude below 2**18, exact
    # in float32 (qrange: -2**15 <= qmin <= qmax < 2**16); the int32 conversion of the clipped integer is exact.
    out_f, d = w.shape
    n = z.shape[1]
    w3, v3 = w.reshape(out_f, n, d // n), v.reshape(out_f, n, d // n)
    q = (w3 / s[:, :, None]).floor_().clamp_(qmin - qmax - 1, qmax - qmin)
    q = q.add_(z[:, :, None]).add_(v3 >= 0).clamp_(qmin, qmax)
    return q.to(torch.int32).reshape(out_f, d)


QUANTIZE_MIN = 1 << 12  # from this many weights, `adaround_quantize` runs in float32 over groups (exact; above)


# ---- pieces -------------------------------------------------------------------------------------------------------


def _stretch(zeta, gamma, like):
    zeta = validate.real("zeta", zeta, lo=1.0, lo_open=True, hi=100.0)
    gamma = validate.real("gamma", gamma, lo=-100.0, hi=0.0, hi_open=True)
    return _f32(zeta - gamma, like), _f32(gamma, like)


def _h(sig, c, g):
    return torch.clamp(sig * c + g, _f32(0, sig), _f32(1, sig))


class _Stretched:
    """What the gradients read of `sig = cr_sigmoid(v)`, computed once per call (AdaRound's step uses them twice):
    `h = clip(sig * c + g, 0, 1)`, where the clip passes (`pre == h`: `pre` is finite, `sig` lies in [0, 1]), and
    the derivative `sig (1 - sig) c`.

    `keep` None: every element (`h`, `passes`, `d` shaped like `v`). Otherwise `keep` is the mask of the elements
    where the clip passes (`_passing`) and `h`, `d` hold their values alone, in row-major order (`v[keep]`); every
    other element has `h` 0 or 1 (`full_h`) and a gradient of +0, whatever its sigmoid, which is not computed.
    """

    def __init__(self, v, c, g, keep=False):
        self.keep = _passing(v, c, g) if keep is False else keep  # False: not decided yet
        self.hi = None if self.keep is None else _arrays.constant(_interval(float(c), float(g))[1], v, F32)
        sig = cr_sigmoid(v if self.keep is None else v[self.keep])
        pre = sig * c + g
        self.h = torch.clamp(pre, _f32(0, sig), _f32(1, sig))
        self.passes = pre == self.h if self.keep is None else None  # (pre >= 0) & (pre <= 1); -0.0 == +0.0
        self.d = sig * (_f32(1, sig) - sig) * c

    def full_h(self, v):
        """`h` shaped like `v` (the subset route): `clip(pre, 0, 1)` is the bound +0.0 below the kept interval
        (`pre < 0`), 1.0 above it (`pre > 1`), the kept values inside."""
        return (v > self.hi).to(F32).masked_scatter_(self.keep, self.h)


def _sigmoid_vjp(grad, st):
    if st.keep is None:
        return torch.where(st.passes, grad * st.d, _f32(0, grad))
    return _scattered(grad[st.keep] if grad.ndim else grad, st)


def _scattered(grad, st):
    """The subset route's VJP: `grad * d` at the kept elements (`grad` holds their values, or is 0-d), +0
    elsewhere: `where(passes, grad * d, +0)` with `passes` exactly `keep`."""
    return torch.zeros(st.keep.shape, dtype=F32, device=st.keep.device).masked_scatter_(st.keep, grad * st.d)


def _regularizer_vjp(grad, st, beta):
    u = _f32(2, st.h) * st.h - _f32(1, st.h)
    dh = _f32(-2 * beta, u) * cr_pow(u.abs(), _f32(beta - 1, u)) * torch.sign(u)
    return _sigmoid_vjp(grad * dh, st) if st.keep is None else _scattered(grad * dh, st)


SUBSET_MIN = 1 << 14  # from this many elements, the sigmoid may be computed only where the clip passes...
SUBSET_MAX = 0.5  # ...when at most this fraction of a sample (every `SAMPLE_STEP`-th element) lies there
SAMPLE_STEP = 61


def _passing(v, c, g):
    """None (compute everything), or the mask of the elements of `v` where the clip passes, `lo <= v <= hi` for
    the interval of `_interval`: when `v` is large and a sample says that few pass (a heuristic: the route
    changes the time, never a bit)."""
    if v.numel() < SUBSET_MIN:
        return None
    interval = _interval(float(c), float(g))
    if interval is None:
        return None
    lo, hi = (_arrays.constant(x, v, F32) for x in interval)
    sample = v.reshape(-1)[::SAMPLE_STEP]
    if int(torch.count_nonzero(torch.clamp(sample, lo, hi) == sample)) > SUBSET_MAX * sample.numel():
        return None
    return torch.clamp(v, lo, hi) == v  # lo <= v <= hi: v is finite (no NaN)


_TOP = 0x7F7FFFFF  # the bit pattern of the largest finite float32


def _float32(k):
    """The finite float32 of rank `k` in `[-_TOP, _TOP]`, numerically ordered: the pattern `k` for `k >= 0`, the
    negated pattern `-k` below (-0.0 skipped: it behaves as +0.0)."""
    x = struct.unpack("<f", struct.pack("<i", abs(k)))[0]
    return -x if k < 0 else x


@functools.lru_cache(maxsize=64)
def _interval(c, g):
    """`(lo, hi)`: the finite float32 `v` where the clip passes, `0 <= pre(v) = fl32(fl32(cr_sigmoid(v) c) + g) <=
    1`, are exactly `lo <= v <= hi` (for the float32 `c > 0`, `g < 0` of `_stretch`).

    `pre` is nondecreasing in `v`: `cr_sigmoid` is the correctly rounded value of an increasing function, and
    multiplying by `c > 0` and adding `g`, each rounded once, keep the order. So `pre >= 0` holds on an upper set
    and `pre <= 1` on a lower set of the floats, found by bisection over their ranks, computing `pre` by the same
    float32 operations as `_Stretched` (`cr_sigmoid` is correctly rounded: the same value on any route). `pre`
    runs from `g < 0` (at the lowest float, `cr_sigmoid` 0) to `fl32(c + g) > 1`, so neither set is empty, and an
    empty interval (a jump from below 0 to above 1 between neighbouring floats, impossible for these stretches)
    gives None: then the full route runs.
    """
    ct, gt = torch.tensor(c, dtype=F32), torch.tensor(g, dtype=F32)

    def pre(k):
        return float(cr_sigmoid(torch.tensor([_float32(k)], dtype=F32)) * ct + gt)

    a, b = -_TOP, _TOP + 1  # the smallest rank with pre >= 0 (_TOP + 1: none)
    while a < b:
        mid = (a + b) // 2
        a, b = (a, mid) if pre(mid) >= 0 else (mid + 1, b)
    lo = a
    a, b = -_TOP - 1, _TOP  # the largest rank with pre <= 1 (-_TOP - 1: none)
    while a < b:
        mid = (a + b + 1) // 2
        a, b = (mid, b) if pre(mid) <= 1 else (a, mid - 1)
    hi = a
    if lo > hi or lo > _TOP or hi < -_TOP:
        return None
    return _float32(lo), _float32(hi)


# ---- the host route of `adaround_step` -------------------------------------------------------------------------------

# `adaround_step` runs on Python floats while `out * in * (in + 8)` (the products of `D H`, and a few dozen float32
# operations and a sigmoid per weight, each weighed as 8 products) is at most this (measured: about 0.6x the tensor
# route's time at 1 x 8 and 4 x 4, even at 4 x 8 and 1 x 16)
HOST_MAX = 384


def _host_step(w, h, v, m, s, scale, zero_point, step, qmin, qmax, beta, lam, lr, zeta, gamma):
    """`adaround_step` on Python floats, or None: then the tensor route runs, and raises the reference's errors
    in their order. The host route takes plain CPU tensors of the right dtypes and shapes whose values pass every
    array check (finite, `scale > 0`, `s >= 0`, `h` symmetric, the zero points in `[qmin, qmax]`); the scalars
    are then checked in the tensor route's order. Every float32 operation of float32 operands is computed once in
    float64 and rounded (`halfquadratic.f32s`), in the tensor route's order; `cr_sigmoid`, `cr_pow` and `cr_sqrt`
    give their correctly rounded values (`_sigmoid32`, `halfquadratic.pow32`, `core._host.sqrt_float32`); each
    entry of `fl32(D H)` is `matmul32`'s (`_exact32`, exact in Python integers), and when one cannot be told
    there (a zero whose sign comes from the float64 product, or a value beyond float32: the error), `matmul32`
    itself gives them all. A result that is not finite (an overflow of the update) goes back to the tensors."""
    tensors = (w, h, v, m, s, scale, zero_point)
    if not all(type(t) in _arrays.PLAIN and t.device.type == "cpu" for t in tensors) or _arrays.deferring():
        return None
    if w.dtype != F32 or w.ndim != 2 or not 0 < w.numel() * (w.shape[1] + 8) <= HOST_MAX:
        return None
    out_f, d = w.shape
    if scale.dtype != F32 or scale.ndim != 2 or scale.shape[0] != out_f or not 0 < scale.shape[1] <= d:
        return None
    n_groups = scale.shape[1]
    if d % n_groups or h.dtype != F64 or tuple(h.shape) != (d, d) or zero_point.dtype != torch.int32:
        return None
    if any(t.dtype != F32 or tuple(t.shape) != (out_f, d) for t in (v, m, s)) or zero_point.shape != scale.shape:
        return None
    values = [host_values(t, HOST_MAX) for t in (w, scale, h, v, m, s)]
    if any(x is None for x in values):
        return None
    W, SC, H, V, M, S = values
    if min(SC) <= 0 or min(S) < 0 or any(H[i * d + j] != H[j * d + i] for i in range(d) for j in range(i)):
        return None
    qmin, qmax = validate.qrange(qmin, qmax)
    Z = [float(z) for z in zero_point.reshape(-1).tolist()]
    if not all(qmin <= z <= qmax for z in Z):
        return None
    step = validate.integer("step", step, lo=0, hi=10**6)
    if beta is not None:
        beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    lam = validate.real("lam", lam, lo=0.0)
    lr = validate.real("lr", lr, lo=0.0, lo_open=True)
    zeta = validate.real("zeta", zeta, lo=1.0, lo_open=True, hi=100.0)
    gamma = validate.real("gamma", gamma, lo=-100.0, hi=0.0, hi_open=True)
    c, g = f32s((zeta - gamma, gamma))

    size = d // n_groups  # the per-weight scale and zero point, row by row
    SG = [x for k in range(0, out_f * n_groups, n_groups) for x in SC[k : k + n_groups] for _ in range(size)]
    ZG = [x for k in range(0, out_f * n_groups, n_groups) for x in Z[k : k + n_groups] for _ in range(size)]
    lo, hi = float(qmin), float(qmax)
    floor = [math.floor(x) if math.isfinite(x) else x for x in f32s(map(truediv, W, SG))]  # floor(+-0.0): 0,
    # whose sign does not matter: h is never -0.0, so floor + h is +0.0 either way
    sig = [_sigmoid32(x) for x in V]
    pre_h = f32s(map(add, f32s([x * c for x in sig]), repeat(g)))
    H01 = [0.0 if x < 0 else (1.0 if x > 1 else x) for x in pre_h]  # clip(pre_h, 0, 1); pre_h is never -0.0
    pre = f32s(map(add, f32s(map(add, floor, H01)), ZG))
    soft = f32s(
        map(mul, f32s([(lo if x < lo else (hi if x > hi else x)) - z for x, z in zip(pre, ZG, strict=True)]), SG)
    )
    D = list(map(sub, soft, W))  # float64 differences, as the tensor route's
    grad_w = [_exact32(D[k : k + d], H[j::d]) for k in range(0, out_f * d, d) for j in range(d)]
    if None in grad_w:  # a zero or an overflow: matmul32 decides them (and raises its error)
        grad_w = matmul32(torch.tensor(D, dtype=F64).reshape(out_f, d), h.detach()).reshape(-1).tolist()
    grad_h = [x if lo <= y <= hi else 0.0 for x, y in zip(f32s(map(mul, grad_w, SG)), pre, strict=True)]
    passes = [0.0 <= x <= 1.0 for x in pre_h]
    dsig = f32s([x * c for x in f32s([x * y for x, y in zip(sig, f32s([1.0 - x for x in sig]), strict=True)])])
    grad = [x if p else 0.0 for x, p in zip(f32s(map(mul, grad_h, dsig)), passes, strict=True)]
    if beta is not None:
        u = f32s([x - 1.0 for x in f32s([2.0 * x for x in H01])])
        two_beta, power = f32s((-2 * beta, beta - 1))
        P = f32s([two_beta * pow32(abs(x), power) for x in u])
        dh = f32s([x * (1.0 if y > 0 else (-1.0 if y < 0 else 0.0)) for x, y in zip(P, u, strict=True)])
        lam32 = f32s((lam,))[0]
        reg = [
            x if p else 0.0 for x, p in zip(f32s(map(mul, f32s([lam32 * x for x in dh]), dsig)), passes, strict=True)
        ]
        grad = f32s(map(add, grad, reg))

    t = step + 1
    b1, b2, eps = 0.9, 0.999, 1e-8
    cb1, cb1n, cb2, cb2n, eta, root, eps32 = f32s((b1, 1 - b1, b2, 1 - b2, lr / (1 - b1**t), math.sqrt(1 - b2**t), eps))
    m2 = f32s(map(add, f32s([cb1 * x for x in M]), f32s([cb1n * x for x in grad])))
    s2 = f32s(map(add, f32s([cb2 * x for x in S]), f32s(map(mul, f32s([cb2n * x for x in grad]), grad))))
    if not (math.isfinite(sum(m2)) and math.isfinite(sum(s2))):
        return None
    denom = f32s([x + eps32 for x in f32s([sqrt_float32(x) / root for x in s2])])
    v2 = f32s(map(sub, V, f32s([eta * x for x in f32s(map(truediv, m2, denom))])))
    if not math.isfinite(sum(v2)):
        return None
    rows = lambda x: torch.tensor([x[k : k + d] for k in range(0, out_f * d, d)], dtype=F32)  # noqa: E731
    return AdaRoundState(rows(v2), rows(m2), rows(s2))


def _sigmoid32(x):
    """`cr_sigmoid` of one float32 on Python floats, as the tensor route's host step (`transcendental._few`): the
    float64 `1 / (1 + exp(-x))` certified by the same half-width, else the reference's exact `sigmoid_float32`:
    either way the correctly rounded value. `exp(-x)` overflows for `x < -709`, where the sigmoid is below
    `exp(x) < 2**-1000`, far below half the least float32: `+0.0`, as the tensor route's certified `1 / inf`."""
    try:
        a = 1.0 / (1.0 + math.exp(-x))
    except OverflowError:
        return 0.0
    delta = max(a * REL, TINY)  # 0 < a <= 1
    lo, mid, hi = array("f", (a - delta, a, a + delta))
    return mid if lo == hi else _exact.sigmoid_float32(x)


def _exact32(a, b):
    """`matmul32`'s entry `fl32(sum_j a_j b_j)` of float64 lists, or None where only `matmul32` can tell it.

    Nonzero: every product is an exact rational `n / 2**k` (Python integers), their sum one integer `M / 2**K`,
    rounded once to the float32 grid at its binade (quantum `2**(max(e, -126) - 23)` for `2**e <= |M| / 2**K <
    2**(e + 1)`), to nearest with ties to even: the exact value rounded once, which `matmul32` gives too. A zero
    takes its sign from `matmul32`'s float64 product where that certifies it: `+0.0` when every product is an exact
    zero and one of them is `+0.0` (a float64 sum of zeros in any order, fused or not, is `-0.0` only when every
    term is; the bound is then the tiny floor, so it certifies), and `+0.0` when nonzero products cancel exactly
    and one is at least `2**-80` (the bound then spans both signs, so `exact32` decides, and the exact zero of
    `exact_dot` is `+0.0`). None for the rest: every product `-0.0` (the sign is the float64 product's), a nonzero
    sum rounding to a zero, a cancellation of tiny products, and a sum beyond float32 (`matmul32` raises)."""
    terms = []
    plus_zero = large = False
    for x, y in zip(a, b, strict=True):
        if x and y:
            nx, dx = x.as_integer_ratio()
            ny, dy = y.as_integer_ratio()
            terms.append((nx * ny, (dx * dy).bit_length() - 1))
            large = large or abs(x * y) >= 2.0**-80
        elif math.copysign(1.0, x) == math.copysign(1.0, y):
            plus_zero = True
    if not terms:
        return 0.0 if plus_zero else None
    top = max(k for _, k in terms)
    total = sum(n << (top - k) for n, k in terms)
    if not total:
        return 0.0 if large else None
    size = abs(total)
    e = size.bit_length() - 1 - top
    if e >= 128:
        return None
    q = max(e, -126) - 23
    shift = top + q
    if shift <= 0:
        r = size << -shift
    else:
        r, rest = size >> shift, size & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and r & 1):
            r += 1
    value = math.ldexp(r, q)
    if not value or value >= 2.0**128:
        return None
    return -value if total < 0 else value


# ---- checks -------------------------------------------------------------------------------------------------------


def _weight_and_scale(w, scale):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    s = _arrays.positive("scale", _arrays.finite_array("scale", scale))
    if s.ndim != 2 or s.shape[0] != w.shape[0] or s.shape[1] == 0 or w.shape[1] % s.shape[1]:
        raise ValueError(
            f"scale must have shape (out_features, n_groups) = ({w.shape[0]}, n) with n dividing in_features "
            f"{w.shape[1]}, got {tuple(s.shape)}"
        )
    _arrays.same_device("scale", s, "w", w)
    return w.detach(), s.detach()


def _per_weight(t, d):
    """A per-group `(out_features, n_groups)` tensor broadcastable against `(out_features, d)`: one group (a value
    per output channel) broadcasts as it is, more are repeated `d // n_groups` times each."""
    return t if t.shape[1] == 1 else t.repeat_interleave(d // t.shape[1], dim=1)


def _zero_point(zero_point, scale, qmin, qmax, like):
    return _per_weight(_zero_point_groups(zero_point, scale, qmin, qmax, like), like.shape[1])


def _zero_point_groups(zero_point, scale, qmin, qmax, like):
    """The checked zero points as float32 `(out_features, n_groups)` (exact: integers below 2**16)."""
    z = _arrays.array("zero_point", zero_point, ("int32",))
    _arrays.shaped("zero_point", z, tuple(scale.shape), "scale")
    _arrays.within("zero_point", z, qmin, qmax)
    _arrays.same_device("zero_point", z, "w", like)
    return z.detach().to(F32)


def _state(name, x, like):
    x = _arrays.shaped(name, _arrays.finite_array(name, x), tuple(like.shape), "w")
    _arrays.same_device(name, x, "w", like)
    return x.detach()


def _hessian(h, d, like):
    h = _arrays.finite_array("h", h, ("float64",))
    if tuple(h.shape) != (d, d):
        raise validate.shape_mismatch("h", h.shape, (d, d), f"w with in_features {d}")
    bad = (h != h.T).nonzero()
    if bad.numel():
        i, j = (int(t) for t in bad[0])
        raise validate.not_symmetric("h", i, j, float(h[i, j]), float(h[j, i]))
    _arrays.same_device("h", h, "w", like)
    return h.detach()
