"""MX block formats in torch; the semantics are those of `reference.quantization.mx`.

Scales come from the float32 exponent bits of each block's amax; elements are encoded from the bits of `x` with the
block exponent subtracted in integer arithmetic (no division, no `log2`, no library cast).
"""

from __future__ import annotations

import struct

import torch

from reference.common import checks, shapes, validate
from reference.quantization.floats import FORMATS, QNAN
from reference.quantization.mx import ELEMENT_ROUNDINGS, INT8_MAX_CODE, MAX_BLOCK, MX_FORMATS, NONFINITE, SCALE_RULES
from torch_backend import _arrays
from torch_backend.core import _host
from torch_backend.quantization import _floats

__all__ = ["mx_quantize", "mx_dequantize", "mx_fake_quantize", "mx_fake_quantize_vjp"]


def mx_quantize(x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"):
    """Shared E8M0 scales and element codes of MX blocks; see `reference.quantization.mx.mx_quantize`."""
    checked = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    elem, rule, bs, x, k, mode, nonfinite, words = checked
    if words is not None:
        scales, codes, _ = _host_quantize(words, tuple(x.shape), elem, rule, bs, k, mode, nonfinite)
        return _host_tensors(scales, codes, tuple(x.shape), bs, k, elem)
    return _quantize(x.detach(), elem, rule, bs, k, mode, nonfinite)


def mx_dequantize(scales, codes, fmt, *, axis=-1, block_size=32):
    """Element times block scale, in float32; see `reference.quantization.mx.mx_dequantize`."""
    elem = MX_FORMATS[validate.choice("fmt", fmt, tuple(MX_FORMATS))]
    bs = checks.mx_block_size(block_size, MAX_BLOCK)
    scales = _arrays.array("scales", scales, ("uint8",))
    if elem.float_format is None:
        codes = _arrays.array("codes", codes, ("int8",))
    else:
        codes = _arrays.array("codes", codes, ("uint8",))
        _arrays.within("codes", codes, 0, 2 ** FORMATS[elem.float_format].bits - 1)
    k = shapes.block_axis("codes", tuple(codes.shape), axis, bs)
    expected = shapes.blocked(codes.shape, k, bs)
    _arrays.shaped("scales", scales, expected, f"codes of shape {tuple(codes.shape)} in blocks of {bs} along {k}")
    _arrays.same_device("scales", scales, "codes", codes)
    s = torch.repeat_interleave(scales.to(torch.int64), bs, dim=k)
    return _dequantize(s, codes, elem)


def mx_fake_quantize(x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"):
    """MX quantize then dequantize, identity gradient; see `reference.quantization.mx.mx_fake_quantize`."""
    checked = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    elem, rule, bs, x, k, mode, nonfinite, words = checked
    if words is not None and not (torch.is_grad_enabled() and x.requires_grad):  # nothing to record
        scales, codes, block = _host_quantize(words, tuple(x.shape), elem, rule, bs, k, mode, nonfinite)
        return _host_dequantize(scales, codes, block, elem).reshape(x.shape)
    return _MXFakeQuantize.apply(x, elem, rule, bs, k, mode, nonfinite)


def mx_fake_quantize_vjp(
    grad, x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"
):
    """The gradient of `mx_fake_quantize`: the backward of its autograd function (the identity, a copy of `grad`),
    applied to `grad` after the same checks, without running the forward, whose values it does not read (the
    forward costs hundreds of times more than the copy on large inputs)."""
    _, _, _, x, _, _, _, _ = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    return _MXFakeQuantize.backward(None, grad.detach())[0]


class _MXFakeQuantize(torch.autograd.Function):
    """Forward: MX quantize then dequantize. Backward: the identity (straight-through)."""

    @staticmethod
    def forward(ctx, x, elem, rule, bs, k, mode, nonfinite):
        scales, codes = _quantize(x, elem, rule, bs, k, mode, nonfinite)
        return _dequantize(torch.repeat_interleave(scales.to(torch.int64), bs, dim=k), codes, elem)

    @staticmethod
    def backward(ctx, grad):
        return grad.clone(), None, None, None, None, None, None


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite):
    elem = MX_FORMATS[validate.choice("fmt", fmt, tuple(MX_FORMATS))]
    rule = validate.choice("scale_rule", scale_rule, SCALE_RULES)
    mode = validate.choice("rounding", rounding, ELEMENT_ROUNDINGS)
    nonfinite = validate.choice("nonfinite", nonfinite, NONFINITE)
    bs = checks.mx_block_size(block_size, MAX_BLOCK)
    x = _arrays.array("x", x)
    words = None
    if _floats.host_ok(x):  # the bit patterns, read once, also prove x finite (exponent field not 0xFF)
        words = _floats.host_words(x)
        if nonfinite == "raise" and any(u & 0x7F800000 == 0x7F800000 for u in words):
            _arrays.finite("x", x)  # raises the reference's error
    elif nonfinite == "raise":
        _arrays.finite("x", x)
    k = shapes.block_axis("x", tuple(x.shape), axis, bs)
    return elem, rule, bs, x, k, mode, nonfinite, words


# ---------------------------------------------------------------------------------------------------------------
# Scales and elements
# ---------------------------------------------------------------------------------------------------------------


CHUNK = 1 << 16  # elements of x encoded together by `_quantize` (rounded down to whole MX blocks)
CHUNKED_MIN = 1 << 17  # from this many CPU elements `_quantize` encodes chunk by chunk


def _quantize(x, elem, rule, bs, k, mode, nonfinite):
    """`(scales, codes)` of `x`'s MX blocks along axis `k` (`_quantize_whole`).

    Large contiguous CPU tensors blocked along their last axis are encoded a chunk of whole MX blocks at a time
    (the flat tensor cut every `CHUNK` elements rounded down to a multiple of `bs`; the last axis is a multiple
    of `bs`, so every MX block lies in one chunk), so that the dozens of int64 temporaries of a chunk stay in
    cache. Each block's scale and codes depend only on its own elements (no rounding mode of MX draws random
    bits), so the concatenated chunks are the whole tensor's, bit for bit."""
    n = x.numel()
    if n < CHUNKED_MIN or x.device.type != "cpu" or k != x.ndim - 1 or not x.is_contiguous():
        return _quantize_whole(x, elem, rule, bs, k, mode, nonfinite)
    flat, step = x.reshape(-1), max(1, CHUNK // bs) * bs
    parts = [_quantize_whole(flat[i : i + step], elem, rule, bs, 0, mode, nonfinite) for i in range(0, n, step)]
    scales = torch.cat([p[0] for p in parts]).reshape(x.shape[:-1] + (x.shape[-1] // bs,))
    return scales, torch.cat([p[1] for p in parts]).reshape(x.shape)


def _quantize_whole(x, elem, rule, bs, k, mode, nonfinite):
    bad = ~torch.isfinite(x) if nonfinite == "nan" else None
    clean = x if bad is None else torch.where(bad, 0.0, x)
    moved = torch.movedim(clean, k, -1)
    blocks = moved.reshape(moved.shape[:-1] + (moved.shape[-1] // bs, bs))
    amax = blocks.abs().amax(dim=-1) if blocks.numel() else blocks.new_zeros(blocks.shape[:-1])
    e = _scale_exponent(amax, elem, rule)
    shift = torch.movedim(torch.repeat_interleave(e, bs, dim=-1), -1, k)
    codes = _encode_elements(clean, elem, shift, mode)
    scales = torch.movedim((e + 127).to(torch.uint8), -1, k)
    if bad is not None:  # a block holding NaN or Inf: the NaN scale, NaN (or 0) element codes
        moved_bad = torch.movedim(bad, k, -1)
        nan_block = torch.movedim(moved_bad.reshape(blocks.shape).any(dim=-1), -1, k)  # an empty x too
        scales = torch.where(nan_block, 255, scales.to(torch.int64)).to(torch.uint8)
        filler = 0x7F if elem.float_format is not None and FORMATS[elem.float_format].has_nan else 0
        codes = torch.where(torch.repeat_interleave(nan_block, bs, dim=k), filler, codes.to(torch.int64)).to(
            codes.dtype
        )
    return scales, codes


def _scale_exponent(amax, elem, rule):
    """The shared exponent e in [-127, 127] of each block; see the reference's `_scale_exponent`."""
    _, _, _, sig, exp = _floats.fields(amax)
    lead = _floats.floor_log2(sig)
    sig24 = sig << (23 - lead)
    e = lead + exp - elem.emax
    if rule == "ceil":
        e = e + (sig24 > elem.max_sig).to(torch.int64)
    elif rule == "even":
        e = e + (sig24 >= (1 << 24) - (1 << (22 - elem.mbits))).to(torch.int64)
    elif rule == "ceil_pow2":
        e = e + (sig24 > (1 << 23)).to(torch.int64)
    return torch.clamp(torch.where(sig == 0, -127, e), -127, 127)


def _encode_elements(x, elem, shift, mode):
    if elem.float_format is not None:
        codes, _ = _floats.encode(x, FORMATS[elem.float_format], True, mode, None, shift)
        return codes
    sign, _, _, sig, exp = _floats.fields(x)
    mag = torch.clamp(_floats.encode_magnitude(sig, exp - shift, elem.mbits, 0, mode, None), max=INT8_MAX_CODE)
    return torch.where(sign == 1, -mag, mag).to(torch.int8)


# ---------------------------------------------------------------------------------------------------------------
# Host route: up to `_floats.HOST_MAX` CPU elements on Python ints and floats
# ---------------------------------------------------------------------------------------------------------------


def _host_quantize(words, shape, elem, rule, bs, k, mode, nonfinite):
    """`(scales, codes, block)`: Python lists of the scale codes (flat, in the C order of the scales' shape), the
    element codes (flat, C order of `x`) and each element's block, for the float32 bit patterns `words` of `x`.

    The reference's steps on Python ints, which are exact (no int64 step overflows): a non-finite element
    (exponent field 0xFF) is `+0.0` (bits 0) in `clean`; a block's amax is the largest `|x|` bit pattern
    (`u & 0x7FFFFFFF`: the patterns of non-negative finite floats order as their values; `max` from 0, as
    `initial=0`), and its exponent `_scale_exponent_one`; the elements are `_floats.encode_host` (FP, saturating)
    or `_floats.magnitude_one` (INT8) with their block's exponent as the shift. Element `(o, l, j)` of `x`
    viewed as `(outer, L, inner)` around axis `k` lies in block `(o, l // bs, j)` of the scales viewed as
    `(outer, L // bs, inner)`: flat index `(o (L // bs) + l // bs) inner + j`, the C order of the scales."""
    length = shape[k]
    inner = 1
    for d in shape[k + 1 :]:
        inner *= d
    per = length // bs
    block = []
    for i in range(len(words)):
        o, rest = divmod(i, length * inner)
        l, j = divmod(rest, inner)
        block.append((o * per + l // bs) * inner + j)
    bad = [u & 0x7F800000 == 0x7F800000 for u in words] if nonfinite == "nan" else None
    clean = words if bad is None else [0 if b else u for u, b in zip(words, bad, strict=True)]
    amax = [0] * (len(words) // bs)
    for u, b in zip(clean, block, strict=True):
        a = u & 0x7FFFFFFF
        if a > amax[b]:
            amax[b] = a
    e = [_scale_exponent_one(a, elem, rule) for a in amax]
    shifts = [e[b] for b in block]
    if elem.float_format is not None:
        codes, _ = _floats.encode_host(clean, FORMATS[elem.float_format], True, mode, None, shifts)
    else:
        codes = []
        for u, shift in zip(clean, shifts, strict=True):
            biased, frac = (u >> 23) & 0xFF, u & 0x7FFFFF
            sig = frac | (1 << 23) if biased > 0 else frac
            mag = min(_floats.magnitude_one(sig, max(biased, 1) - 150 - shift, elem.mbits, 0, mode, None), 127)
            codes.append(-mag if u >> 31 == 1 else mag)
    scales = [c + 127 for c in e]
    if bad is not None and any(bad):  # a block holding NaN or Inf: the NaN scale, NaN (or 0) element codes
        filler = 0x7F if elem.float_format is not None and FORMATS[elem.float_format].has_nan else 0
        for i, b in enumerate(bad):
            if b:
                scales[block[i]] = 255
        codes = [filler if scales[b] == 255 else c for c, b in zip(codes, block, strict=True)]
    return scales, codes, block


def _scale_exponent_one(a, elem, rule):
    """`_scale_exponent` of one amax bit pattern `a` (non-negative, finite) on Python ints: `floor_log2(sig)` is
    `sig.bit_length() - 1` (0 for 0), the comparisons and the clip the same integer steps."""
    biased, frac = a >> 23, a & 0x7FFFFF
    sig = frac | (1 << 23) if biased > 0 else frac
    if sig == 0:
        return -127
    lead = sig.bit_length() - 1
    sig24 = sig << (23 - lead)
    e = lead + max(biased, 1) - 150 - elem.emax
    if rule == "ceil":
        e += sig24 > elem.max_sig
    elif rule == "even":
        e += sig24 >= (1 << 24) - (1 << (22 - elem.mbits))
    elif rule == "ceil_pow2":
        e += sig24 > (1 << 23)
    return min(max(e, -127), 127)


def _host_tensors(scales, codes, shape, bs, k, elem):
    """The host route's lists as `mx_quantize`'s tensors (uint8 scales; uint8 or int8 codes), on the CPU."""
    scale_shape = shape[:k] + (shape[k] // bs,) + shape[k + 1 :]
    dtype = torch.int8 if elem.float_format is None else torch.uint8
    return (
        torch.tensor(scales, dtype=torch.uint8).reshape(scale_shape),
        torch.tensor(codes, dtype=dtype).reshape(shape),
    )


def _host_dequantize(scales, codes, block, elem):
    """`_dequantize` of the host route's lists, flat float32 on the CPU, as int32 bit patterns.

    The same bits: an INT8 element `c * 2**-6` is exact (the reference's float32 product of an int8 and 2**-6);
    an FP element is `decode`'s table entry (`_floats.table_words`). Its product with the scale
    `2**(min(s, 254) - 127)` is exact in float64 (a power-of-two scaling; the smallest products, 2**-143, are
    normal float64s) and is rounded once to float32 by `_f32_word` (to nearest even, overflow to +-inf), as the
    reference's float64 product and `astype(float32)`. A NaN element keeps its table bits; scale code 255 gives
    the quiet NaN `QNAN`."""
    words = None if elem.float_format is None else _floats.table_words(FORMATS[elem.float_format])
    out = []
    for c, b in zip(codes, block, strict=True):
        s = scales[b]
        if s == 255:
            out.append(_QNAN_WORD)
            continue
        if words is None:
            v = c * 2.0**-6
        else:
            w = words[c]
            if w & 0x7FFFFFFF > 0x7F800000:  # a NaN code: its bits
                out.append(w)
                continue
            v = struct.unpack("<f", struct.pack("<i", w))[0]
        out.append(_f32_word(v * 2.0 ** (min(s, 254) - 127)))
    return torch.tensor(out, dtype=torch.int32).view(torch.float32)


def _f32_word(v):
    """The signed int32 bit pattern of the float64 `v` rounded to float32 (`_host.float32`: nearest even, from
    halfway past the largest float32 on, +-inf)."""
    return struct.unpack("<i", struct.pack("<f", _host.float32(v)))[0]


_QNAN_WORD = QNAN - (1 << 32) if QNAN >= 1 << 31 else QNAN


def _dequantize(s, codes, elem):
    if elem.float_format is None:
        values = codes.to(torch.float32) * 2.0**-6
    else:
        values = _floats.decode(codes.to(torch.int64), FORMATS[elem.float_format])
    scale = ((torch.clamp(s, max=254) - 127 + 1023) << 52).view(torch.float64)
    out = (values.to(torch.float64) * scale).to(torch.float32)
    out = torch.where(torch.isnan(values), values, out)
    qnan = torch.tensor(QNAN, dtype=torch.int32, device=out.device).view(torch.float32)
    return torch.where(s == 255, qnan, out)
