"""Power-of-two (logarithmic) quantization in torch; the semantics are those of
`reference.quantization.power_of_two`. `pow2_quantize` carries a straight-through gradient through a private
`torch.autograd.Function`.
"""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.quantization.power_of_two import ROUNDINGS, pow2_exponent_range
from torch_backend import _arrays

__all__ = [
    "pow2_exponent_range",
    "pow2_emax",
    "pow2_quantize",
    "pow2_quantize_vjp",
    "pow2_encode",
    "pow2_decode",
]

E_LO, E_HI = -149, 127


def pow2_emax(x):
    """INQ's largest exponent floor(log2(4 max|x| / 3)), exactly; see `reference.quantization.power_of_two`.

    One reduction (`aminmax`) and its host read: the minimum and maximum are finite exactly when every element
    is (else `_arrays.finite` names the first bad one), and max|x| = max(-min, max) is exact in Python, where
    `math.frexp` splits it as the reference's `frexp` does.
    """
    x = _arrays.array("x", x)
    if not x.numel():
        raise ValueError(f"x has shape {tuple(x.shape)} and no nonzero element: it has no largest exponent")
    lo, hi = torch.aminmax(x.detach())
    lo, hi = lo.item(), hi.item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        _arrays.finite("x", x)
    s = max(-lo, hi)
    if s == 0:
        raise ValueError(f"x has shape {tuple(x.shape)} and no nonzero element: it has no largest exponent")
    m, e = math.frexp(s)  # s = m 2**e, m in [0.5, 1): the reference's mantissa is 2m, its exponent e - 1
    return min(e - 1 + int(2 * m >= 1.5), E_HI)


def pow2_quantize(x, *, bits, emax, rounding="linear", levels="inq"):
    """Quantize to 0 or a signed power of two, straight-through gradient; see the reference for the semantics.

    Without a gradient to record the forward is called directly (`Function.apply` costs a few microseconds)."""
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Pow2Quantize.apply(x, emin, emax, rounding)
    return _quantize(_Exponents(x, emin, emax, rounding))


def pow2_quantize_vjp(grad, x, *, bits, emax, rounding="linear", levels="inq"):
    """The gradient of `pow2_quantize` with respect to `x`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    x, emin, emax_, rounding_ = _check(x, bits, emax, rounding, levels)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)

    def direct(g):
        saturated = _Exponents(x.detach(), emin, emax_, rounding_).saturated()
        return _arrays.backward_of(_Pow2Quantize, g, (saturated,))[0]

    fn = lambda v: pow2_quantize(v, bits=bits, emax=emax, rounding=rounding, levels=levels)  # noqa: E731
    return _arrays.vjp(fn, (x,), grad, direct=direct)


def pow2_encode(x, *, bits, emax, rounding="linear", levels="inq"):
    """Sign-magnitude codes of `pow2_quantize(x)`; see `reference.quantization.power_of_two.pow2_encode`.

    The magnitude code e - emin + 1 is the biased exponent minus `lo - 1`, subtracted before the shift."""
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    t = _Exponents(x.detach(), emin, emax, rounding, offset=1 - _lo(emin))
    sign = (t.bits >> _arrays.constant(31, t.bits)) & _arrays.constant(1 << (bits - 1), t.bits)  # -0.0 is flushed: no sign
    code = torch.clamp(t.rounded, 1, emax - emin + 1).add_(sign)
    return torch.where(t.zero, _arrays.constant(0, code), code).to(torch.uint8)


def pow2_decode(codes, *, bits, emax, levels="inq"):
    """Values of sign-magnitude power-of-two codes; see `reference.quantization.power_of_two.pow2_decode`.

    A uint8 code has 256 values: they are decoded once (`_decoder`, the reference's formula, NaN for an invalid
    code) and `codes` are looked up in that table; a non-finite sum of the result (an invalid code, or an
    overflow of the sum) runs the checks, which name the first invalid code."""
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    codes = _arrays.array("codes", codes, ("uint8",))
    y = torch.take(_decoder(bits, emin, emax, codes.device), codes.to(torch.int64))  # a copy, also when 0-d
    if not (codes.numel() and math.isfinite(y.sum().item())):
        _arrays.within("codes", codes, 0, 2**bits - 1)
        _arrays.within("codes mod 2**(bits-1)", codes.to(torch.int64) & (2 ** (bits - 1) - 1), 0, emax - emin + 1)
    return y


_DECODERS = {}


def _decoder(bits, emin, emax, device):
    """The float32 value of each uint8 code 0..255 (NaN where the code is invalid), cached per code and device."""
    key = (bits, emin, emax, device)
    if key not in _DECODERS:
        c = torch.arange(256, dtype=torch.int64, device=device)
        m = c & (2 ** (bits - 1) - 1)
        level = _power(emin + torch.clamp(m, min=1) - 1)
        y = torch.where(m == 0, 0.0, torch.where(c >> (bits - 1) == 1, -level, level))
        _DECODERS[key] = torch.where((c < 2**bits) & (m <= emax - emin + 1), y, math.nan)
    return _DECODERS[key]


class _Pow2Quantize(torch.autograd.Function):
    """Forward: 0 or sign(x) 2**e. Backward: pass the gradient where the unclipped exponent is at most emax."""

    @staticmethod
    def forward(ctx, x, emin, emax, rounding):
        t = _Exponents(x, emin, emax, rounding)
        ctx.save_for_backward(t.saturated())
        return _quantize(t)

    @staticmethod
    def backward(ctx, grad):
        (saturated,) = ctx.saved_tensors
        return torch.where(saturated, 0.0, grad), None, None, None


def _check(x, bits, emax, rounding, levels):
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    validate.choice("rounding", rounding, ROUNDINGS)
    x = _arrays.finite_array("x", x)
    return x, emin, emax, rounding


# Rounding |x| = m 2**E to the nearer power of two adds one to E when m >= 1.5 (linear) or m >= 1.4142137
# (log: the float32 just above sqrt(2), so m**2 > 2): adding this to |x|'s bit pattern carries into the exponent
# field exactly then.
_CARRY = {"linear": 0x400000, "log": 0x800000 - 0x3504F4}
_SCALE = 64  # exponent added to every x when emin <= -126, so that the subnormals it keeps become normal


def _lo(emin):
    """The biased exponent (of the scaled x) of the smallest level 2**emin."""
    return emin + 127 + (_SCALE if emin <= -126 else 0)


class _Exponents:
    """The rounding of `x` to powers of two, read from its float32 bit pattern.

    For a normal float32 the biased exponent field is E + 127 and the mantissa field is (m - 1) 2**23, so
    `(|bits| + carry) >> 23` is the biased exponent of the nearer power of two, E + up + 127: exact, the same
    integers as the reference's `frexp`. Subnormals are made normal first: when `emin <= -126` (the only codes
    whose levels or flushing threshold reach them) x is multiplied by 2**64, exact (every level is then normal,
    since emax <= emin + 126 <= 0, and an x that overflows to Inf has an exponent above emax either way), and
    the levels by 2**-64 at the end. Otherwise every subnormal is flushed (|x| < 2**(emin - 1), a normal).

    `bits`: x's (scaled) bit pattern; `zero`: |x| < 2**(emin - 1); `rounded`: the biased rounded exponent plus
    `offset`, not clipped; `lo`, `hi`: the biased exponents of 2**emin and 2**emax, plus `offset`.
    """

    def __init__(self, x, emin, emax, rounding, offset=0):
        self.scaled = emin <= -126
        if self.scaled:
            x = x * _arrays.constant(2.0**_SCALE, x)
        b = x.view(torch.int32)
        lo = _lo(emin)
        a = b & _arrays.constant(0x7FFFFFFF, b)
        self.bits = b
        self.zero = a < _arrays.constant((lo - 1) << 23, a)
        self.rounded = a.add_(_arrays.constant(_CARRY[rounding] + (offset << 23), a)).bitwise_right_shift_(_arrays.constant(23, a))
        self.lo, self.hi = lo + offset, lo + offset + emax - emin

    def saturated(self):
        """Where the rounded exponent exceeds emax (never where x is flushed: its exponent is below emin)."""
        return self.rounded > self.hi


def _quantize(t):
    """0 or sign(x) 2**e, e the clipped exponent."""
    level = torch.clamp(t.rounded, t.lo, t.hi).bitwise_left_shift_(_arrays.constant(23, t.rounded)).view(torch.float32)
    y = torch.where(t.zero, _arrays.constant(0.0, level), level.copysign_(t.bits.view(torch.float32)))
    return y * _arrays.constant(2.0**-_SCALE, y) if t.scaled else y


def _power(e):
    """2**e as float32 for integer exponents in [-149, 127], built from its bit pattern (exact everywhere)."""
    bits = torch.where(e >= -126, (e + 127) << 23, torch.ones_like(e) << torch.clamp(e + 149, 0, 22))
    return bits.to(torch.int32).view(torch.float32)
