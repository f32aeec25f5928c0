"""Power-of-two (logarithmic) quantization in torch; the semantics are those of
`reference.quantization.power_of_two`. `pow2_quantize` carries a straight-through gradient through a private
`torch.autograd.Function`.
"""

from __future__ import annotations

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
    """INQ's largest exponent floor(log2(4 max|x| / 3)), exactly; see `reference.quantization.power_of_two`."""
    x = _arrays.finite_array("x", x)
    s = x.detach().abs().max() if x.numel() else torch.zeros((), dtype=torch.float32, device=x.device)
    if bool(s == 0):
        raise ValueError(f"x has shape {tuple(x.shape)} and no nonzero element: it has no largest exponent")
    a, e = _mantissa_exponent(s)
    return min(int(e) + int(bool(a >= 1.5)), E_HI)


def pow2_quantize(x, *, bits, emax, rounding="linear", levels="inq"):
    """Quantize to 0 or a signed power of two, straight-through gradient; see the reference for the semantics."""
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    return _Pow2Quantize.apply(x, emin, emax, rounding)


def pow2_quantize_vjp(grad, x, *, bits, emax, rounding="linear", levels="inq"):
    """The gradient of `pow2_quantize` with respect to `x`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    x, emin, emax_, rounding_ = _check(x, bits, emax, rounding, levels)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)

    def direct(g):
        _, _, saturated = _round(x.detach(), emin, emax_, rounding_)
        return _arrays.backward_of(_Pow2Quantize, g, (saturated,))[0]

    fn = lambda v: pow2_quantize(v, bits=bits, emax=emax, rounding=rounding, levels=levels)  # noqa: E731
    return _arrays.vjp(fn, (x,), grad, direct=direct)


def pow2_encode(x, *, bits, emax, rounding="linear", levels="inq"):
    """Sign-magnitude codes of `pow2_quantize(x)`; see `reference.quantization.power_of_two.pow2_encode`."""
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    magnitude, zero, _ = _round(x.detach(), emin, emax, rounding)
    sign = (x.detach() < 0).to(torch.int64) << (bits - 1)
    code = torch.where(zero, 0, magnitude - emin + 1 + sign)
    return code.to(torch.uint8)


def pow2_decode(codes, *, bits, emax, levels="inq"):
    """Values of sign-magnitude power-of-two codes; see `reference.quantization.power_of_two.pow2_decode`."""
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 2**bits - 1)
    c = codes.to(torch.int64)
    m = c & (2 ** (bits - 1) - 1)
    _arrays.within("codes mod 2**(bits-1)", m, 0, emax - emin + 1)
    level = _power(emin + torch.clamp(m, min=1) - 1)
    zero = torch.zeros((), dtype=torch.float32, device=codes.device)
    return torch.where(m == 0, zero, torch.where(c >> (bits - 1) == 1, -level, level))


class _Pow2Quantize(torch.autograd.Function):
    """Forward: 0 or sign(x) 2**e. Backward: pass the gradient where the unclipped exponent is at most emax."""

    @staticmethod
    def forward(ctx, x, emin, emax, rounding):
        magnitude, zero, saturated = _round(x, emin, emax, rounding)
        ctx.save_for_backward(saturated)
        return torch.where(zero, 0.0, torch.copysign(_power(magnitude), x))

    @staticmethod
    def backward(ctx, grad):
        (saturated,) = ctx.saved_tensors
        return torch.where(saturated, 0.0, grad), None, None, None


def _check(x, bits, emax, rounding, levels):
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    validate.choice("rounding", rounding, ROUNDINGS)
    x = _arrays.finite_array("x", x)
    return x, emin, emax, rounding


def _mantissa_exponent(x):
    """`(m, E)` with `|x| = m * 2**E`, `m` in [1, 2) as float32, `E` as int64 (exact; `m = 0` for `x = 0`)."""
    m, e = torch.frexp(x)
    return torch.abs(m) * 2.0, e.to(torch.int64) - 1


def _round(x, emin, emax, rounding):
    """(clipped exponent, flushed-to-zero mask, saturated mask) of each element."""
    m, e = _mantissa_exponent(x)
    if rounding == "linear":
        up = m >= 1.5
    else:
        m64 = m.to(torch.float64)
        up = m64 * m64 > 2.0  # exact: m has 24 significant bits, m*m at most 48
    r = e + up.to(torch.int64)
    zero = (x == 0) | (e < emin - 1)
    return torch.clamp(r, emin, emax), zero, ~zero & (r > emax)


def _power(e):
    """2**e as float32 for integer exponents in [-149, 127], built from its bit pattern (exact everywhere)."""
    bits = torch.where(e >= -126, (e + 127) << 23, torch.ones_like(e) << torch.clamp(e + 149, 0, 22))
    return bits.to(torch.int32).view(torch.float32)
