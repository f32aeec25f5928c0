"""Observers and calibration in torch; the semantics are those of `reference.quantization.observers`."""

from __future__ import annotations

import math
import struct
from array import array

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core import _host, _radix
from torch_backend.core.exact import exact_sum

__all__ = ["minmax_observer", "ema_minmax_observer", "percentile_amax", "mse_amax"]

TINY = 2.0**-126


def minmax_observer(x, state=None, *, axis=None):
    """Running minimum and maximum with explicit state; see `reference.quantization.observers.minmax_observer`."""
    x = _arrays.array("x", x)
    found = _host_minmax(x, state, axis, ordered=True)
    if found is not None:
        lo, hi, old = found
        if old is not None:  # min/max of finite floats, then -0.0 -> +0.0 (the order of zeros does not matter)
            lo = [min(a, b) + 0.0 for a, b in zip(old[0], lo, strict=True)]
            hi = [max(a, b) + 0.0 for a, b in zip(old[1], hi, strict=True)]
        return _host_tensor(lo, axis), _host_tensor(hi, axis)
    lo, hi = _finite_minmax(x, axis)
    if state is None:
        return lo, hi
    old_lo, old_hi = _check_state(state, lo, axis)
    return _plus_zero(torch.minimum(old_lo, lo)), _plus_zero(torch.maximum(old_hi, hi))


def ema_minmax_observer(x, state=None, *, averaging_constant=0.01, axis=None):
    """Moving-average min-max in torch.ao's float32 arithmetic; see `reference.quantization.observers`."""
    c = validate.real("averaging_constant", averaging_constant, lo=0.0, hi=1.0, lo_open=True)
    x = _arrays.array("x", x)
    found = _host_minmax(x, state, axis, ordered=False)
    if found is not None:
        lo, hi, old = found
        if old is not None:  # three float32 operations of two float32 operands each (see `_host_minmax`)
            f, c = _host.float32, _host.float32(c)
            lo = [f(a + f(c * f(b - a))) for a, b in zip(old[0], lo, strict=True)]
            hi = [f(a + f(c * f(b - a))) for a, b in zip(old[1], hi, strict=True)]
        return _host_tensor(lo, axis), _host_tensor(hi, axis)
    lo, hi = _finite_minmax(x, axis)
    if state is None:
        return lo, hi
    old_lo, old_hi = _check_state(state, lo, axis, ordered=False)
    c = _arrays.scalar(c, lo, torch.float32)
    return old_lo + c * (lo - old_lo), old_hi + c * (hi - old_hi)


def percentile_amax(x, percentile=99.99, *, axis=None):
    """Percentile of |x| with NumPy's linear interpolation, in float64; see `reference.quantization.observers`.

    Per tensor only the two order statistics the interpolation reads are found (`_order_statistics`: no sort
    of a large |x|), and the interpolation runs on Python floats (IEEE float64, the same operations, one at a
    time, as the reference's). Per channel each row is sorted (as int32 bit patterns) and only the two columns read
    go to float64."""
    p = validate.real("percentile", percentile, lo=0.0, hi=100.0)
    x = _arrays.array("x", x)
    rows = _host_rows(x, axis)
    if rows is not None:  # the interpolation below, per row, on Python floats
        n = len(rows[0])
        h = p / 100.0 * float(n - 1)
        i = math.floor(h)
        g = h - float(i)
        out = []
        for row in rows:
            v = sorted(map(abs, row))  # abs(-0.0) is +0.0: |x| as the reference's (values only)
            a, b = v[i], v[min(i + 1, n - 1)]
            d = b - a
            out.append(_host.float32(a + d * g if g < 0.5 else b - d * (1.0 - g)))
        return _host_tensor(out, axis)
    x = _arrays.finite("x", x)
    rows = _rows(x.detach(), axis)
    n = rows.shape[1]
    h = p / 100.0 * float(n - 1)  # Python floats are IEEE float64: the same two operations as the reference
    i = math.floor(h)
    g = h - float(i)
    if axis is None:
        a, b = _order_statistics(torch.abs(rows.reshape(-1)), i, min(i + 1, n - 1))
        d = b - a
        r = a + d * g if g < 0.5 else b - d * (1.0 - g)
        return torch.tensor(r, dtype=torch.float32, device=x.device)  # rounded once, to nearest
    # values only: the order of ties does not matter. |x| is finite and never -0.0, so its bit patterns (int32)
    # order as its values, and equal values have equal patterns: sorting the patterns (about 2x faster than
    # sorting floats on the CPU) gives the sorted values' bits
    v = torch.sort(torch.abs(rows).view(torch.int32), dim=1).values.view(torch.float32)
    a, b = v[:, i].to(torch.float64), v[:, min(i + 1, n - 1)].to(torch.float64)
    d = b - a
    r = a + d * _arrays.scalar(g, d) if g < 0.5 else b - d * _arrays.scalar(1.0 - g, d)
    return _shape(r.to(torch.float32), axis)


SELECT_MIN = 1 << 12  # from this many values `_order_statistics` selects (radix select) instead of sorting


def _order_statistics(v, i, j):
    """The values at positions `i` and `j = i` or `i + 1` of the 1-D float32 `v >= +0.0` sorted ascending, as
    Python floats (values only: how ties are ordered does not matter).

    Small inputs are sorted in Python (one host read). Larger ones take radix select on the bit patterns (which
    order non-negative floats as their values): the value of rank `n - i` from the top, with the counts of the
    values above it and equal to it; position `i + 1` holds the same value when more than `i + 1` values are at
    most it, else the smallest value above it.
    """
    if v.numel() < SELECT_MIN:
        ordered = sorted(v.tolist())
        return ordered[i], ordered[j]
    n = v.numel()
    key, above, _ = _radix.kth_largest_key(v.view(torch.int32), n - i)
    a = struct.unpack("<f", struct.pack("<i", key))[0]
    if j == i or n - above > j:
        return a, a
    return a, torch.where(v > a, v, _arrays.constant(math.inf, v)).amin().item()


def mse_amax(x, *, bits=8, grid=100, axis=None):
    """MSE-optimal symmetric clipping range over a fixed grid; see `reference.quantization.observers.mse_amax`.

    Up to `MSE_HOST_MAX` elements (and `HOST_MAX`: `_host_rows`) the search runs on Python floats (`_host_mse`)."""
    bits = validate.integer("bits", bits, lo=2, hi=16)
    grid = validate.integer("grid", grid, lo=1, hi=10000)
    x = _arrays.array("x", x)
    q_max = 2 ** (bits - 1) - 1
    rows = _host_rows(x, axis) if x.numel() <= MSE_HOST_MAX else None
    if rows is not None:
        return _host_tensor([_host_mse(row, q_max, grid) for row in rows], axis)
    x = _arrays.finite("x", x)
    rows = _rows(x.detach(), axis)
    amax = torch.abs(rows).amax(dim=1).to(torch.float64)
    x64 = rows.to(torch.float64)
    best = torch.zeros(rows.shape[0], dtype=torch.float32, device=rows.device)
    best_error = torch.full((rows.shape[0],), math.inf, dtype=torch.float64, device=rows.device)
    for i in range(1, grid + 1):
        c = (amax * float(i) / _arrays.scalar(float(grid), amax)).to(torch.float32)
        s = (c.to(torch.float64) / _arrays.scalar(float(q_max), amax)).to(torch.float32)
        s = torch.where(s < TINY, 1.0, s)[:, None]
        q = torch.clamp(torch.round(rows / s), -q_max - 1, q_max)
        d = q.to(torch.float64) * s.to(torch.float64) - x64  # q * s is exact in float64: no float32 overflow
        error = exact_sum(d * d, axis=1)
        better = error < best_error
        best = torch.where(better, c, best)
        best_error = torch.where(better, error, best_error)
    return _shape(best, axis)


MSE_HOST_MAX = 128  # up to this many elements `mse_amax` searches on Python floats (measured: 2x faster than
# the tensor route at 64 elements, even at 128, slower at 256; the passes of both grow with the grid)


def _host_mse(row, q_max, grid):
    """`mse_amax`'s search on one row of Python floats (float32 values), the tensor route's steps one by one: `c`
    and `s` by the same float64 operations, each rounded once to float32 (`array`'s C conversion, as `struct`'s);
    `fl32(x / s)` (a float64 quotient of float32 values rounded to float32 is the float32 quotient: 53 >= 2 * 24 +
    2 bits; an overflow gives an infinity); the code `clip(rint(v), -q_max - 1, q_max)` as `round(clip(v))`,
    equal since the bounds are integers (and finite for an infinite `v`); `q * s` exact in float64, the difference
    and its square float64 operations; the error summed exactly by `math.fsum` (exact partials, rounded once, as
    the small exact sums; the signs of zeros do not matter to a square or a comparison); the first least error
    wins."""
    amax = max(map(abs, row))
    lo, hi = float(-q_max - 1), float(q_max)
    best, best_error = 0.0, math.inf
    for i in range(1, grid + 1):
        c = array("f", (amax * float(i) / float(grid),))[0]
        s = array("f", (c / float(q_max),))[0]
        if s < TINY:
            s = 1.0
        v = array("f", [x / s for x in row])
        d = [round(min(max(a, lo), hi)) * s - x for a, x in zip(v, row, strict=True)]
        error = math.fsum([e * e for e in d])
        if error < best_error:
            best, best_error = c, error
    return best


HOST_MAX = 256  # up to this many elements of a plain CPU tensor the observers compute on Python floats


def _host_rows(x, axis):
    """The rows of `_rows(x, axis)` as lists of Python floats (exact: float32 values), when `x` (checked by
    `_arrays.array`) is a plain CPU tensor of 1 to `HOST_MAX` elements, outside a deferred block, every element
    finite and `axis` valid; else None, and the tensor route runs (and raises the reference's error, in its
    order). The results never carry autograd: the tensor routes detach `x` too.

    Per channel (axis `k`, `c = shape[k]` channels) the flat index of a C-contiguous `x` is
    `(o * c + j) * inner + t` with `inner` the product of the sizes after `k`: channel `j` is the concatenation,
    over `o`, of the slices `[(o * c + j) * inner, (o * c + j + 1) * inner)`, in the order of `movedim` then
    `reshape` (the reference's order; only the min, max and sorted values are used, which ignore the order)."""
    n = x.numel()
    if not (0 < n <= HOST_MAX and type(x) in _arrays.PLAIN and x.device.type == "cpu") or _arrays.deferring():
        return None
    if axis is not None:
        try:
            k = validate.axis("axis", axis, x.ndim)
        except (TypeError, ValueError):
            return None
    flat = x.reshape(-1).tolist()
    if not all(map(math.isfinite, flat)):
        return None
    if axis is None:
        return [flat]
    c = x.shape[k]
    inner = n // math.prod(x.shape[: k + 1])
    outer = n // (c * inner)
    return [[v for o in range(outer) for v in flat[(o * c + j) * inner : (o * c + j + 1) * inner]] for j in range(c)]


def _host_minmax(x, state, axis, ordered):
    """`(lo, hi, old)` on the host route (`_host_rows`): the batch minima and maxima as lists of Python floats
    (zeros as +0.0) and `old`, None or the state's two lists, when the state passes `_check_state` (a tuple of
    two plain CPU float32 tensors of the statistic shape, not negative-bit views, finite, ordered if `ordered`);
    else None: the tensor route runs and raises the reference's error.

    `ema_minmax_observer`'s update is three float32 operations, each of two float32 operands: computed in
    float64 (exact for `*`, correctly rounded for `-` and `+`) and rounded once by `_host.float32`, each equals
    the float32 operation (53 >= 2 * 24 + 2 bits, also for subnormal results; a float64 sum of two float32 values
    never overflows, and `_host.float32` gives the float32 overflow to +-inf). An infinite difference stays
    infinite through `c * d` (`c > 0`) and the finite `a + inf`: no NaN, as in float32."""
    rows = _host_rows(x, axis)
    if rows is None:
        return None
    lo = [min(r) + 0.0 for r in rows]  # + 0.0: -0.0 -> +0.0, every finite value unchanged
    hi = [max(r) + 0.0 for r in rows]
    if state is None:
        return lo, hi, None
    if not isinstance(state, tuple) or len(state) != 2:
        return None
    shape = () if axis is None else (len(rows),)
    old = []
    for s in state:
        if not (
            type(s) in _arrays.PLAIN
            and s.dtype == torch.float32
            and s.device.type == "cpu"
            and tuple(s.shape) == shape
            and not s.is_neg()
        ):
            return None
        v = s.reshape(-1).tolist()
        if not all(map(math.isfinite, v)):
            return None
        old.append(v)
    if ordered and any(a > b for a, b in zip(old[0], old[1], strict=True)):
        return None
    return lo, hi, old


def _host_tensor(values, axis):
    """A list of float32 values (Python floats) as the float32 tensor of the statistic shape, on the CPU."""
    return torch.tensor(values[0] if axis is None else values, dtype=torch.float32)


def _rows(x, axis):
    """`x` as a 2-D tensor: one row (per tensor) or one row per index along `axis` (per channel)."""
    if axis is None:
        if x.numel() == 0:
            raise ValueError(f"x has shape {tuple(x.shape)}: the statistics need at least one element")
        return x.reshape(1, -1)
    k = validate.axis("axis", axis, x.ndim)
    if x.numel() == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: per-channel statistics need at least one element per channel")
    return torch.movedim(x, k, 0).reshape(x.shape[k], -1)


def _shape(v, axis):
    return v.reshape(()) if axis is None else v


def _finite_minmax(x, axis):
    """`_batch_minmax(_arrays.finite_array("x", x).detach(), axis)`, the checks in that order, without the
    finiteness pass when all is well: the minima and maxima are finite exactly when every element is (`amin` and
    `amax` carry a NaN, and an infinity is an extreme), and `v - v` is `+0.0` for a finite `v`, NaN otherwise, so
    one sum of those differences settles it (it cannot overflow). An empty `x` or an invalid axis, or a value not
    finite, take the checks first, as before."""
    x = _arrays.array("x", x)
    d = x.detach()
    try:
        usable = d.numel() > 0 and (axis is None or validate.axis("axis", axis, d.ndim) is not None)
    except (TypeError, ValueError):  # the error comes below, after the finiteness check
        usable = False
    if usable:
        lo, hi = _batch_minmax(d, axis)
        if math.isfinite(((lo - lo) + (hi - hi)).sum().item()):
            return lo, hi
    _arrays.finite("x", x)
    return _batch_minmax(d, axis)


def _batch_minmax(x, axis):
    rows = _rows(x, axis)
    if axis is not None and x.ndim > 1:  # reduce over the other axes in place: no copy of x moved to rows
        k = validate.axis("axis", axis, x.ndim)
        others = tuple(i for i in range(x.ndim) if i != k)
        return _plus_zero(x.amin(dim=others)), _plus_zero(x.amax(dim=others))
    return _shape(_plus_zero(rows.amin(dim=1)), axis), _shape(_plus_zero(rows.amax(dim=1)), axis)


def _plus_zero(v):
    """-0.0 -> +0.0, every other value unchanged."""
    return torch.where(v == 0, 0.0, v)


def _check_state(state, like, axis, ordered=True):
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state must be None or a tuple (min_val, max_val), got {type(state).__name__}")
    why = "axis=None" if axis is None else f"axis={axis}"
    lo = _arrays.shaped("min_val", _arrays.finite_array("min_val", state[0]), like.shape, why)
    hi = _arrays.shaped("max_val", _arrays.finite_array("max_val", state[1]), like.shape, why)
    _arrays.same_device("min_val", lo, "x", like)
    _arrays.same_device("max_val", hi, "x", like)
    lo, hi = lo.detach(), hi.detach()
    bad = lo > hi
    if ordered and bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise ValueError(
            f"min_val must be <= max_val, got {float(lo.reshape(-1)[i])!r} > {float(hi.reshape(-1)[i])!r} "
            f"at flat index {i}"
        )
    return lo, hi
