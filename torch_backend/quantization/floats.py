"""Low-bit float formats in torch; the semantics are those of `reference.quantization.floats`.

Every conversion works on float32 bit patterns held in int64 tensors (`x.view(torch.int32)`, masked to 32 bits):
no `.to(torch.float8_*)` cast is used, since those casts differ between torch versions and devices out of range.
The format table `FORMATS` is the reference's (pure data).
"""

from __future__ import annotations

import torch

from reference.common import checks, validate
from reference.quantization.floats import FORMATS, ROUNDINGS
from torch_backend import _arrays
from torch_backend.core.random import random_bits
from torch_backend.quantization import _floats

__all__ = ["float_encode", "float_decode", "float_quantize", "float_quantize_vjp"]


def float_encode(x, fmt, *, saturate=True, rounding="half_even", key=None):
    """Encode float32 values as uint8 codes of a low-bit float format; see `reference.quantization.floats`."""
    form, saturate, mode, key = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x, words = _check_x(x, fmt, form)
    if words is not None:
        codes, _ = _encode_host(x, words, form, saturate, mode, key)
        return torch.tensor(codes, dtype=torch.uint8).reshape(x.shape)
    code, _ = _floats.encode(x.detach(), form, saturate, mode, key)
    return code


def float_decode(codes, fmt):
    """Decode uint8 codes of a low-bit float format to float32; see `reference.quantization.floats.float_decode`."""
    form = FORMATS[validate.choice("fmt", fmt, tuple(FORMATS))]
    codes = _arrays.array("codes", codes, ("uint8",))
    _arrays.within("codes", codes, 0, 2**form.bits - 1)
    return _floats.decode(codes.to(torch.int64), form)


def float_quantize(x, fmt, *, saturate=True, rounding="half_even", key=None):
    """decode(encode(x)) with a straight-through gradient; see `reference.quantization.floats.float_quantize`."""
    form, saturate, mode, key = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x, words = _check_x(x, fmt, form)
    if words is not None and not (torch.is_grad_enabled() and x.requires_grad):  # nothing to record
        codes, _ = _encode_host(x, words, form, saturate, mode, key)
        table = _floats.table_words(form)
        return torch.tensor([table[c] for c in codes], dtype=torch.int32).view(torch.float32).reshape(x.shape)
    return _FloatQuantize.apply(x, form, saturate, mode, key)


def float_quantize_vjp(grad, x, fmt, *, saturate=True, rounding="half_even", key=None):
    """The gradient of `float_quantize` with respect to `x`: its autograd function's backward applied to `grad`,
    with the pass mask of the encoding and without the decoding (`torch_backend._arrays.vjp`)."""
    form, saturate_, mode, key_ = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x, words = _check_x(x, fmt, form)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)

    def direct(g):
        if words is None:
            _, passes = _floats.encode(x.detach(), form, saturate_, mode, key_)
        else:
            _, passes = _encode_host(x, words, form, saturate_, mode, key_)
            passes = torch.tensor(passes, dtype=torch.bool).reshape(x.shape)
        return _arrays.backward_of(_FloatQuantize, g, (passes,))[0]

    quantize = lambda v: float_quantize(v, fmt, saturate=saturate, rounding=rounding, key=key)  # noqa: E731
    return _arrays.vjp(quantize, (x,), grad, direct=direct)


class _FloatQuantize(torch.autograd.Function):
    """Forward: decode(encode(x)). Backward: the gradient where x is finite and its rounding did not overflow."""

    @staticmethod
    def forward(ctx, x, form, saturate, mode, key):
        code, passes = _floats.encode(x, form, saturate, mode, key)
        ctx.save_for_backward(passes)
        return _floats.decode(code.to(torch.int64), form)

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return torch.where(passes, grad, 0.0), None, None, None, None


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _check_x(x, fmt, form):
    """`(x, words)`: `x` checked, and its float32 bit patterns (`_floats.host_words`) when it takes the host
    route (`_floats.host_ok`), else None; a NaN is found in the words there (exponent field 0xFF, fraction not
    0: `isnan` of float32), the first in flat order, as `nonzero` finds it."""
    x = _arrays.array("x", x)
    if _floats.host_ok(x):
        words = _floats.host_words(x)
        if not form.has_nan:
            for i, u in enumerate(words):
                if u & 0x7FFFFFFF > 0x7F800000:
                    raise ValueError(f"x must not contain NaN: {fmt} has no NaN encoding, got nan at flat index {i}")
        return x, words
    if not form.has_nan:
        bad = torch.isnan(x.detach())
        if bool(bad.any()):
            i = int(bad.reshape(-1).nonzero()[0])
            raise ValueError(f"x must not contain NaN: {fmt} has no NaN encoding, got nan at flat index {i}")
    return x, None


def _encode_host(x, words, form, saturate, mode, key):
    """`_floats.encode` of a host-route `x` (its `words`) on Python ints (`_floats.encode_host`), the random
    words of stochastic rounding drawn by the same `random_bits` call as the tensor route, then read."""
    rbits = None
    if mode == "stochastic":
        rbits = random_bits(key, tuple(x.shape), x.device).reshape(-1).tolist()
    return _floats.encode_host(words, form, saturate, mode, rbits)


# ---------------------------------------------------------------------------------------------------------------
# Bit manipulation (shared with torch_backend.quantization.mx)
# ---------------------------------------------------------------------------------------------------------------
