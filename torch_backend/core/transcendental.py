"""Correctly rounded float32 `exp`, `log`, `pow`, sigmoid and `sqrt` in torch: the semantics of
`reference.core.transcendental`, bit for bit, on any device.

torch's float64 `exp`, `log` and `pow` (the CPU's vectorized ones, CUDA's) give the approximation; the certified
interval is computed with tensor operations on the device; the rare elements it cannot settle are copied to the
host and settled by `reference.common.transcendentals`, the very code the reference uses.
"""

from __future__ import annotations

import math

import torch

from reference.common import transcendentals as host
from reference.core.transcendental import REL, TINY
from torch_backend import _arrays
from torch_backend.core import _host

__all__ = ["cr_exp", "cr_log", "cr_pow", "cr_sigmoid", "cr_sqrt"]

F32, F64 = torch.float32, torch.float64


def cr_exp(x):
    """`fl32(exp(x))`, correctly rounded; see `reference.core.transcendental.cr_exp`."""
    few = _few(x, math.isfinite, math.exp, host.exp_float32)
    if few is not None:
        return few
    x = _arrays.finite_array("x", x).detach()
    return _settle(torch.exp(x.to(F64)), lambda v: [host.exp_float32(a) for a in v], x.reshape(-1), nonneg=True)


def cr_log(x):
    """`fl32(log(x))` for `x > 0`, correctly rounded; see `reference.core.transcendental.cr_log`."""
    few = _few(x, lambda v: 0.0 < v < math.inf, math.log, host.log_float32)
    if few is not None:
        return few
    x = _arrays.positive("x", _arrays.finite_array("x", x)).detach()
    return _settle(torch.log(x.to(F64)), lambda v: [host.log_float32(a) for a in v], x.reshape(-1))


def cr_pow(x, y):
    """`fl32(x ** y)` for `x >= 0`, correctly rounded, ties to even; see `reference.core.transcendental.cr_pow`."""
    if isinstance(y, torch.Tensor) and y.dtype == F32 and y.device.type == "cpu" and y.ndim == 0:
        b = y.item()
        if math.isfinite(b):
            base = lambda v: 0.0 <= v < math.inf  # noqa: E731 (-0.0 included: its power is that of +0.0)
            few = _few(x, base, lambda v: math.pow(abs(v), b), lambda v: host.pow_float32(abs(v), b))
            if few is not None:
                return few
    x = _arrays.within("x", _arrays.finite_array("x", x), 0.0, math.inf).detach()
    y = _arrays.finite_array("y", y).detach()
    if y.ndim != 0 and tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"y must be 0-d or have x's shape {tuple(x.shape)}, got shape {tuple(y.shape)}")
    _arrays.same_device("y", y, "x", x)
    x64 = x.to(F64).abs_()  # -0.0 as +0.0
    y64 = y.to(F64)
    approx = torch.pow(x64, y64)
    xs, ys = x64.reshape(-1), y64.expand(x.shape).reshape(-1)
    pairs = lambda bad: torch.stack([xs[bad], ys[bad]], dim=1)  # noqa: E731
    return _settle(approx, lambda v: [host.pow_float32(a, b) for a, b in v], pairs, nonneg=True)


def cr_sigmoid(x):
    """`fl32(1 / (1 + exp(-x)))`, correctly rounded; see `reference.core.transcendental.cr_sigmoid`."""
    few = _few(x, math.isfinite, lambda v: 1.0 / (1.0 + math.exp(-v)), host.sigmoid_float32)
    if few is not None:
        return few
    x = _arrays.finite_array("x", x).detach()
    one = _arrays.scalar(1.0, x, F64)
    approx = one / (one + torch.exp(-x.to(F64)))
    return _settle(approx, lambda v: [host.sigmoid_float32(a) for a in v], x.reshape(-1), nonneg=True)


def cr_sqrt(x):
    """`fl32(sqrt(x))` for float32 or float64 `x >= 0`, settled by exact squared midpoints; see the reference.

    Up to `HOST_MAX` CPU elements, all in `[0, 2**254]`, the same steps run on Python floats (`_host.sqrt_float32`);
    anything else (larger, on a device, or a value it must refuse) takes the tensor route and its checks."""
    if isinstance(x, torch.Tensor) and x.device.type == "cpu" and x.numel() <= HOST_MAX and x.dtype in (F32, F64):
        values = x.detach().reshape(-1).tolist()
        if all(0.0 <= v <= 2.0**254 for v in values):  # a NaN fails too
            return torch.tensor([_host.sqrt_float32(v) for v in values], dtype=F32).reshape(x.shape)
    x = _arrays.within("x", _arrays.finite_array("x", x, ("float32", "float64")), 0.0, math.inf).detach()
    s = x.to(F64)
    y = torch.sqrt(s).to(F32)
    if x.dtype == F32:
        return _sqrt_fix32(s, y)
    for toward in (math.inf, 0.0):
        other = torch.nextafter(y, torch.full_like(y, toward))
        mid = (_wide(y) + _wide(other)) / _arrays.scalar(2.0, s)
        beyond = s > mid * mid if toward > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & ((other.view(torch.int32) & 1) == 0)
        y = torch.where(beyond | tie, other, y)
    return y


def _sqrt_fix32(s, y):
    r"""`cr_sqrt`'s two steps (up, then down) at once for float32 `s` (as float64) and `y = fl32(sqrt(s))`.

    `y` is normal or zero (`sqrt(s) >= 2**-74.5` for `s > 0`) and below `2**64`, so its neighbours are finite;
    each midpoint $m$ of `y` and a neighbour is exact in float64 (26 bits), and so is $m^2$ (at most 50 bits).
    No tie is possible: $m = M 2^q$ with $M$ odd and $M \ge 2^{24} - 1$, so $m^2$ has an odd significand of at
    least 47 bits and is not a float32 `s`; the reference's tie test never fires here. Moving up excludes moving
    down (the lower midpoint of the new `y` is the old upper one), so the two tests read the same `y`.
    """
    half = _arrays.constant(0.5, s)
    wide = y.to(F64)
    up = torch.nextafter(y, _arrays.constant(math.inf, y))
    down = torch.nextafter(y, _arrays.constant(0.0, y))
    hi = (wide + up.to(F64)).mul_(half)
    lo = (wide + down.to(F64)).mul_(half)
    return torch.where(s > hi.mul_(hi), up, torch.where(s < lo.mul_(lo), down, y))


HOST_MAX = 16  # at most this many CPU elements: every function on Python floats (a dozen tensor operations cost more)


def _few(x, valid, approx, exact):
    """The tensor route's steps on Python floats, for at most `HOST_MAX` CPU float32 elements that all pass
    `valid`: `approx` (the platform's float64 function, as accurate as torch's: the same assumed error) certified
    with the same half-width, the rest settled by `exact`. None otherwise (larger, on a device, a value the checks
    must refuse, or a float64 function that raises where torch gives an infinity): then the tensor route runs."""
    if not (isinstance(x, torch.Tensor) and x.device.type == "cpu" and x.dtype == F32 and x.numel() <= HOST_MAX):
        return None
    values = x.detach().reshape(-1).tolist()
    if not all(map(valid, values)):
        return None
    out = []
    for v in values:
        try:
            a = approx(v)
        except (OverflowError, ValueError, ZeroDivisionError):
            return None
        delta = max(min(abs(a), _DBL_MAX) * REL, TINY)
        certified = _host.float32(a - delta) == _host.float32(a + delta)  # +-0.0 compare equal: fl32(a) below
        out.append(_host.float32(a) if certified else exact(v))
    return torch.tensor(out, dtype=F32).reshape(x.shape)


# ---- certification -----------------------------------------------------------------------------------------


def _settle(approx, exact, points, nonneg=False):
    """`fl32` of the exact values: certified on the device where possible; the rest by `exact` on the host, from
    the rows of `points` (a tensor with one row per flat element, or a function of the uncertified flat indices
    giving their rows) at the uncertified positions. `nonneg`: every `approx` is `>= +0.0`, and `approx` (a fresh
    tensor of the caller's) is raised to `FLOOR` in place (see `_certified`)."""
    value, ok = _certified(approx.clamp_(min=FLOOR) if nonneg else approx)  # approx: a fresh tensor, ours
    if bool(ok.all()):
        return value
    bad = (~ok).reshape(-1).nonzero().reshape(-1)
    rows = points(bad) if callable(points) else points[bad]
    flat = value.reshape(-1).clone()
    flat[bad] = torch.tensor(exact(rows.tolist()), dtype=F32, device=value.device)
    return flat.reshape(value.shape)


def _certified(approx):
    """`(fl32(approx), ok)`: `ok` where every value within `max(REL * |approx|, TINY)` of `approx` rounds to the
    same float32 (then so does the exact value, which lies there).

    The reference's half-width is `REL * |approx| + TINY`; this one is at least half of it, and the error it
    must cover is half of that too (`REL` is twice the assumed relative error, `TINY` far above an absolute error
    of the float64 results that underflow), so both contain the exact value and a certified result is the
    correctly rounded one either way (the float64 approximations of torch and NumPy differ anyway, and with them
    which elements the host settles). Adding the subnormal `TINY` to every element cost 20x a normal addition on
    the CPU. `|approx|` is capped at the largest float64, so an infinite `approx` gets a finite width and is
    certified by the same test; `fl32(lo) == fl32(hi)` suffices, as rounding is monotonic.
    """
    value = approx.to(F32)
    delta = approx.abs().clamp_(max=_DBL_MAX).mul_(REL).clamp_(min=TINY)  # subnormal only for |approx| < 2**-977
    hi = (approx + delta).to(F32)
    return value, delta.neg_().add_(approx).to(F32) == hi  # approx + (-delta) is approx - delta, in place


_DBL_MAX = 1.7976931348623157e308

# Non-negative approximations (exp, pow, sigmoid) are raised to `FLOOR` before the certificate: below it, the
# float32 value is +0.0 either way and the certificate holds either way (every value within the half-width rounds
# to a zero, and -0.0 == +0.0), while arithmetic on float64 subnormals costs about 15x a normal operation on the
# CPU. Above it nothing changes (`approx >= FLOOR` is kept, its half-width `REL * approx >= 2**-945` is normal).
FLOOR = 2.0**-900


def _wide(y):
    """float32 as float64, with inf standing for 2**128."""
    return torch.where(torch.isinf(y), torch.full((), 2.0**128, dtype=F64, device=y.device), y.to(F64))
