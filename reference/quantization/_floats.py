"""The bit manipulation behind `reference.quantization.floats`: low-bit float codes from float32 bit patterns and back,
with integer arithmetic only; shared with `reference.quantization.mx` and `reference.codecs.nvfp4` (package-private)."""

from __future__ import annotations

import numpy as np

from reference.core.random import random_bits

QNAN = 0x7FC00000  # the float32 quiet NaN every decoder writes (with the code's sign bit)


def fields(x):
    """Sign, biased exponent field, and `|x| = sig * 2**E` with `sig` an int < 2**24, from the float32 bits."""
    u = x.view(np.uint32).astype(np.int64)
    sign = u >> 31
    biased = (u >> 23) & 0xFF
    frac = u & 0x7FFFFF
    sig = np.where(biased > 0, frac | (1 << 23), frac)
    exp = np.maximum(biased, 1) - 150
    return sign, biased, frac, sig, exp


def floor_log2(n):
    """floor(log2(n)) of int64 values in [1, 2**32), by binary search on the bits; 0 for n = 0."""
    p = np.zeros_like(n)
    for s in (16, 8, 4, 2, 1):
        p = np.where((n >> (p + s)) > 0, p + s, p)
    return p


def round_shift(sig, r, parity, mode, rbits):
    """`sig / 2**r` rounded to an integer: nearest with ties to even `parity`, or stochastic with `rbits`.

    `r` is in [1, 56]; `parity` is the int whose low bit decides a tie (the truncated significand).
    """
    n0 = sig >> r
    rem = sig & ((np.int64(1) << r) - 1)
    if mode == "half_even":
        half = np.int64(1) << (r - 1)
        up = (rem > half) | ((rem == half) & ((parity & 1) == 1))
    elif mode == "half_away":  # MX elements with rounding="half_away" (float_encode has no such mode)
        up = rem >= (np.int64(1) << (r - 1))
    else:
        frac32 = (rem << np.maximum(32 - r, 0)) >> np.maximum(r - 32, 0)
        up = (frac32 + rbits) >= 2**32
    return n0 + up.astype(np.int64)


def encode_magnitude(sig, exp, mbits, emin, mode, rbits):
    """Magnitude code of `sig * 2**exp` in a format with `mbits` fraction bits and smallest normal exponent `emin`.

    The exponent range is unbounded above: a result beyond the format's largest code is an overflow for the
    caller to handle. Every call in pqref drops at least 6 bits (float32 inputs, MX shifts within [-127, 127]).
    """
    k = floor_log2(sig) + exp
    top = np.maximum(k, emin)
    r = np.clip(top - mbits - exp, 1, 56)  # beyond 56 dropped bits every sig < 2**24 rounds the same way
    n = round_shift(sig, r, sig >> r, mode, rbits)
    return np.where(sig == 0, 0, ((top - emin) << mbits) + n)


def encode_e8m0(sig, exp, mode, rbits):
    """E8M0 code (unbounded above, clamped below at 0) of `sig * 2**exp > 0`: the nearest power of two, ties up."""
    lead = floor_log2(sig)
    k = lead + exp
    frac = (sig << (23 - lead)) & 0x7FFFFF  # the 23 fraction bits of the normalized significand
    if mode == "half_even":
        up = frac >= (1 << 22)
    else:
        up = ((frac << 9) + rbits) >= 2**32
    return k + 127 + up.astype(np.int64)


def encode(x, form, saturate, mode, key, shift=None):
    """Codes (uint8) of `x / 2**shift` and the straight-through pass mask (no overflow, finite, in the domain)."""
    sign, biased, frac, sig, exp = fields(x)
    if shift is not None:
        exp = exp - shift
    rbits = random_bits(key, x.shape) if mode == "stochastic" else None
    is_nan = (biased == 0xFF) & (frac != 0)
    is_inf = (biased == 0xFF) & (frac == 0)
    if not form.signed:
        raw = encode_e8m0(sig, exp, mode, rbits)
        positive = (sign == 0) & (sig > 0) & ~is_nan & ~is_inf
        passes = positive & (raw >= 0) & (raw <= form.max_code)
        over = (raw > form.max_code) | is_inf
        code = np.maximum(raw, 0)
        code = np.where(over, form.max_code if saturate else form.nan_code, code)
        code = np.where(positive | (is_inf & (sign == 0)), code, form.nan_code)
        return code.astype(np.uint8), passes
    mag = encode_magnitude(sig, exp, form.mbits, 1 - form.bias, mode, rbits)
    over = (mag > form.max_code) | is_inf
    passes = ~over & ~is_nan
    if saturate:
        mag = np.where(over, form.max_code, mag)
    else:
        mag = np.where(over, form.inf_code if form.has_inf else form.nan_code, mag)
    if form.has_nan:
        mag = np.where(is_nan, form.nan_code, mag)
    code = (sign << (form.bits - 1)) | mag
    return code.astype(np.uint8), passes


def decode(code, form):
    """float32 values of int64 codes, assembled as float32 bits."""
    if not form.signed:
        bits = np.where(code == 0, 1 << 22, code << 23)  # code 0 is 2**-127, a float32 subnormal
        bits = np.where(code == form.nan_code, QNAN, bits)
        return from_bits(bits)
    m = form.mbits
    sign = (code >> (form.bits - 1)) & 1
    mag = code & ((1 << (form.bits - 1)) - 1)
    e = mag >> m
    f = mag & ((1 << m) - 1)
    lead = floor_log2(f)  # subnormals: f = 2**lead + rest becomes 1.rest * 2**(lead + 1 - bias - m)
    sub = ((lead + 1 - form.bias - m + 127) << 23) | ((f - (1 << lead)) << (23 - lead))
    normal = ((e - form.bias + 127) << 23) | (f << (23 - m))
    bits = np.where(e > 0, normal, np.where(f > 0, sub, 0))
    if form.has_inf:
        bits = np.where(mag == form.inf_code, 0x7F800000, bits)
    if form.has_nan:
        nan = (mag == form.nan_code) if not form.has_inf else (mag > form.inf_code)
        bits = np.where(nan, QNAN, bits)
    return from_bits((sign << 31) | bits)


def from_bits(bits):
    return np.asarray(bits.astype(np.uint32).view(np.float32))
