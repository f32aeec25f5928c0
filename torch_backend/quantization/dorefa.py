"""DoReFa-Net quantizers in torch; the semantics are those of `reference.quantization.dorefa`.

tanh is evaluated in float64 and rounded once to float32, which for a float32 input is the float32 nearest the
exact tanh on any backend whose float64 tanh errs by less than 16 ulps (see the reference). Gradients are private
`torch.autograd.Function`s whose backward computes exactly the reference VJP.
"""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_finite, host_tensor, on_host
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum
from torch_backend.quantization import _fast

__all__ = ["dorefa_weight", "dorefa_weight_vjp", "dorefa_activation", "dorefa_activation_vjp"]


def dorefa_weight(w, bits):
    """DoReFa k-bit weights: tanh, normalise by max |tanh w|, quantize, map to [-1, 1]; see the reference."""
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    if torch.is_grad_enabled() and w.requires_grad:
        return _DorefaWeight.apply(w, bits)
    return _weight(w.detach(), bits)  # nothing to record: no `Function.apply` (it costs a few microseconds)


def dorefa_weight_vjp(grad, w, bits):
    """The gradient of `dorefa_weight` to `w`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)

    def direct(g):
        saved = () if bits == 1 or w.numel() == 0 else (_tanh32(w.detach()),)
        return _arrays.backward_of(_DorefaWeight, g, saved, bits=bits)[0]

    return _arrays.vjp(lambda v: dorefa_weight(v, bits), (w,), grad, direct=direct)


def dorefa_activation(x, bits):
    """DoReFa k-bit activations: clip to [0, 1], then rne(n * y) / n; see the reference."""
    bits = _check_bits(bits)
    x = _arrays.finite_array("x", x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _DorefaActivation.apply(x, bits)
    return _activation(x.detach(), bits)  # nothing to record: no `Function.apply`


def dorefa_activation_vjp(grad, x, bits):
    """The gradient of `dorefa_activation` to `x`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    bits = _check_bits(bits)
    x = _arrays.array("x", x)
    xs = _host_values(x)
    if xs is None:
        _arrays.finite("x", x)
    grad = _arrays.array("grad", grad)
    gs = _host_values(grad) if xs is not None else None
    if gs is None:
        _arrays.finite("grad", grad)
    _arrays.shaped("grad", grad, x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    if gs is not None:  # `where(0 <= x <= 1, grad, +0.0)` on Python floats (float32 values, exact; -0.0 passes)
        passed = [g if 0.0 <= v <= 1.0 else 0.0 for v, g in zip(xs, gs, strict=True)]
        return host_tensor("f", passed, torch.float32, x.shape)
    xd = x.detach()
    direct = lambda g: _arrays.backward_of(_DorefaActivation, g, (xd,))[0]  # noqa: E731
    return _arrays.vjp(lambda v: dorefa_activation(v, bits), (x,), grad, direct=direct)


HOST_MAX = 256  # up to this many CPU elements, the direct activation VJP runs on Python floats


def _host_values(t):
    """The values of a plain CPU tensor of at most `HOST_MAX` elements as Python floats, when all are finite and
    the VJPs take their direct route (not `vjps_by_autograd`); else None (then the tensor checks and route)."""
    if t.numel() > HOST_MAX or not on_host(t) or _arrays.autograd_vjps():
        return None
    return host_finite(t)


class _DorefaWeight(torch.autograd.Function):
    """Forward: the reference's float32 steps. Backward: straight through the rounding, autograd's chain rule
    through the max normalisation (split evenly among ties) and tanh, in float64, rounded once."""

    @staticmethod
    def forward(ctx, w, bits):
        ctx.bits = bits
        if w.numel() == 0 or bits == 1:
            return _weight(w, bits)
        t = _tanh32(w)
        ctx.save_for_backward(t)
        return _levels(t, bits)

    @staticmethod
    def backward(ctx, grad):
        if ctx.bits == 1 or grad.numel() == 0:
            return grad.clone(), None
        (t,) = ctx.saved_tensors
        m = torch.abs(t).max()
        if not bool(m > 0):
            return torch.zeros_like(grad), None
        if (
            t.numel() >= BLOCKED_MIN
            and t.device.type == "cpu"
            and type(grad) in _arrays.PLAIN
            and type(t) in _arrays.PLAIN
        ):
            return _weight_grad_blocked(grad, t, m), None
        g64, t64, m64 = grad.to(torch.float64), t.to(torch.float64), m.to(torch.float64)
        d = -sum_unchecked(g64 * t64) / (m64 * m64)
        at_max = torch.abs(t) == m
        share = d / at_max.sum().to(torch.float64)
        direct = g64 / m64
        dt = torch.where(at_max, direct + torch.where(t64 > 0, share, -share), direct)
        return (dt * (1 - t64 * t64)).to(torch.float32), None


class _DorefaActivation(torch.autograd.Function):
    """Forward: rne(n * clip(x, 0, 1)) / n. Backward: pass where 0 <= x <= 1.

    The forward saves the mask; the direct VJP (`dorefa_activation_vjp`) hands the backward `x` itself (float32),
    whose mask `_passed` builds by bit patterns without a boolean tensor."""

    @staticmethod
    def forward(ctx, x, bits):
        ctx.save_for_backward((x >= 0) & (x <= 1))
        return _activation(x, bits)

    @staticmethod
    def backward(ctx, grad):
        (saved,) = ctx.saved_tensors
        if saved.dtype == torch.bool:
            return _arrays.where_kept(saved, grad), None
        return _passed(saved, grad), None


BLOCKED_MIN = 1 << 14  # from this many CPU elements `_DorefaWeight.backward` runs in cache-sized blocks


def _weight_grad_blocked(grad, t, m):
    """`_DorefaWeight.backward`'s formula for `m > 0`, block by block (`_fast.blocks`), with the same bits.

    Pass 1 writes the exact float64 products g t (float32 values convert exactly; their product has at most 48
    significant bits and lies within float64's normal range) into one buffer, whose `sum_unchecked` is the one
    the formula takes, and counts the ties `|t| = m` (K, an exact int64 count, as `at_max.sum()`). Pass 2 gives
    each element the formula's float64 steps in its order: `direct = g / m`; at the ties
    `direct + where(t > 0, share, -share)`, elsewhere `direct`; times `1 - t t`; one rounding to float32. Two
    rewrites, both exact:

    - `where(t > 0, share, -share)` is `sign(t) * share` at the ties: there |t| = m > 0, so sign(t) = +-1, and
      multiplying by +-1 is exact; share = d / K is finite and not NaN (|sum| <= n 2**128, m m >= 2**-298, so
      d is finite in float64), so its sign flips as `-share` flips it. Elsewhere the value is not selected.
    - `1 - u` is `(-u) + 1`: IEEE subtraction is the addition of the negation (an exact zero is +0.0 both ways).
    `dt + inner` is computed as `inner + dt` (IEEE addition commutes; neither is NaN: g / m is finite, g being
    finite and m >= 2**-149).
    """
    one = _arrays.constant(1.0, t, torch.float64)
    m64 = m.to(torch.float64)
    g, ts = grad.reshape(-1), t.reshape(-1)
    m_bits = m.view(torch.int32)
    n = ts.numel()
    products = torch.empty(n, dtype=torch.float64, device=t.device)
    count = torch.zeros((), dtype=torch.int64, device=t.device)
    ties = torch.empty(n, dtype=torch.bool, device=t.device)
    for s in _fast.blocks(n, _fast.BLOCK // 2):
        torch.mul(g[s].to(torch.float64), ts[s].to(torch.float64), out=products[s])
        # |t| = m compared as bit patterns: non-negative floats (no NaN: t is tanh of finite values) order as ints
        torch.eq(ts[s].view(torch.int32).bitwise_and(0x7FFFFFFF), m_bits, out=ties[s])
        count += ties[s].sum()
    d = -sum_unchecked(products) / (m64 * m64)
    del products
    share = d / count.to(torch.float64)
    out = torch.empty(n, dtype=torch.float32, device=t.device)
    for s in _fast.blocks(n, _fast.BLOCK // 2):
        t64 = ts[s].to(torch.float64)
        dt = g[s].to(torch.float64).div_(m64)
        inner = torch.sign(t64).mul_(share).add_(dt)
        dt = torch.where(ties[s], inner, dt)
        factor = t64.mul_(t64).neg_().add_(one)
        out[s] = dt.mul_(factor)
    return out.reshape(t.shape)


PASSED_MIN = 1 << 14  # from this many elements `_passed` works on bit patterns, in cache-sized blocks


def _passed(x, g):
    """`where(0 <= x <= 1, g, +0.0)` for finite float32 `x` and `g` of one shape, with the same bits.

    Large inputs (`PASSED_MIN` elements or more, plain tensors) work on int32 bit patterns, in blocks of
    `_fast.BLOCK` elements so that the six passes over a block run in cache (one fresh tensor: the result):

    - z = x + (+0.0) is x except that -0.0 becomes +0.0 (exact: adding +0.0 to a finite nonzero value or +0.0
      changes nothing, and -0.0 + +0.0 = +0.0 in round-to-nearest); -0.0 passes (0 <= -0.0), and so does +0.0.
    - For finite float32 z, 0 <= z <= 1 exactly when its bit pattern i (signed int32) lies in [0, K],
      K = 0x3F800000 (the bits of 1.0): non-negative floats order as their patterns, negative nonzero ones have
      the sign bit set (i < 0), and no -0.0 is left.
    - With H = K / 2 (K is even), i in [0, K] exactly when |i - H| <= H: `i - H` wraps (int32) only for
      i < INT_MIN + H, to at least INT_MAX - H + 1 > H (excluded, as those i < 0 must be); the one value whose
      `abs` wraps, i - H = INT_MIN (i = INT_MIN + H < 0), stays INT_MIN, and INT_MIN - (H + 1) wraps to
      INT_MAX - H > 0 (excluded). Every other i < 0 gives |i - H| >= H + 1, every i > K gives i - H > H
      (no wrap: i <= 0x7F7FFFFF). So `a = |i - H| - (H + 1)` is negative exactly when the element passes,
      and `a >> 31` (arithmetic) is -1 (all 32 bits) there and 0 elsewhere.
    - ANDing that with g's bits gives g's bits (its -0.0 too) where x passes and +0.0 elsewhere: `where`'s.

    Smaller inputs, and other tensor types, take torch's `where` on the boolean mask.
    """
    if x.numel() < PASSED_MIN or type(x) not in _arrays.PLAIN or type(g) not in _arrays.PLAIN:
        return torch.where((x >= 0) & (x <= 1), g, 0.0)
    xs, gs = x.reshape(-1), g.reshape(-1).view(torch.int32)
    out = torch.empty(xs.shape, dtype=torch.float32, device=x.device)
    bits = out.view(torch.int32)
    zero = _arrays.constant(0.0, x)
    for s in _fast.blocks(xs.numel()):
        torch.add(xs[s], zero, out=out[s])
        bits[s].sub_(_HALF).abs_().sub_(_HALF + 1).bitwise_right_shift_(31).bitwise_and_(gs[s])
    return out.reshape(x.shape)


_HALF = 0x3F800000 // 2  # half the bit pattern of 1.0f


def _check_bits(bits):
    return validate.integer("bits", bits, lo=1, hi=16)


def _tanh32(w):
    """float64 tanh rounded once to float32: the float32 nearest tanh(w) (see the reference).

    Large CPU tensors (`TANH_BLOCKED_MIN` elements) go block by block (`_fast.blocks`), each block's float64
    temporaries in cache: every element's float32 result is the nearest to its exact tanh whichever float64 tanh
    computed it (the reference's bound holds for the vectorized loop and its scalar tail alike), so the blocks
    give the same bits."""
    if w.numel() < TANH_BLOCKED_MIN or w.device.type != "cpu":
        return torch.tanh(w.to(torch.float64)).to(torch.float32)
    flat = w.reshape(-1)
    out = torch.empty(flat.shape, dtype=torch.float32)
    for s in _fast.blocks(flat.numel(), _fast.BLOCK // 2):
        out[s] = torch.tanh(flat[s].to(torch.float64))
    return out.reshape(w.shape)


TANH_BLOCKED_MIN = 1 << 16  # from this many CPU elements `_tanh32` works block by block


def _weight(w, bits):
    """The forward of `dorefa_weight` (`w` finite)."""
    if w.numel() == 0:
        return w.clone()
    if bits == 1:
        s = exact_sum(torch.abs(w))
        e = (s / _arrays.scalar(float(w.numel()), s)).to(torch.float32)
        return torch.where(w >= 0, e, -e)
    return _levels(_tanh32(w), bits)


def _levels(t, bits):
    """(2 rne(n r) - n) / n with r = t / (2m) + 1/2, m = max|t| (r = 1/2 everywhere when m = 0), in float32.

    m = max(-min t, max t) is read on the host (one reduction), so the divisor 2m (exact: m <= 1) is a
    0-d tensor; the other steps run in place on one buffer, each rounding as the reference's."""
    small, large = torch.aminmax(t)
    m = max(-small.item(), large.item())
    n = _arrays.constant(float(2**bits - 1), t)
    r = (t / _arrays.scalar(2.0 * m if m > 0 else 1.0, t)).add_(_arrays.constant(0.5, t))
    return r.mul_(n).round_().mul_(_arrays.constant(2.0, t)).sub_(n).div_(n)


def _activation(x, bits):
    """rne(n clip(x, 0, 1)) / n in float32, in place on one buffer; + 0.0 makes a clipped -0.0 the reference's
    +0.0 (no other value changes)."""
    n = _arrays.constant(float(2**bits - 1), x)
    return torch.clamp(x, 0.0, 1.0).add_(_arrays.constant(0.0, x)).mul_(n).round_().div_(n)
