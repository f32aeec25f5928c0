"""The bit manipulation behind `torch_backend.quantization.floats`: low-bit float codes from float32 bit patterns held in
int64 tensors and back; shared with `torch_backend.quantization.mx` and `torch_backend.codecs.nvfp4` (package-private)."""

from __future__ import annotations

import torch

from reference.quantization.floats import QNAN
from torch_backend.core.random import random_bits
from torch_backend.quantization import _fast

MASK32 = 0xFFFFFFFF


def fields(x):
    """Sign, biased exponent field, and `|x| = sig * 2**E` with `sig` an int < 2**24, from the float32 bits."""
    u = x.detach().view(torch.int32).to(torch.int64) & MASK32
    sign = u >> 31
    biased = (u >> 23) & 0xFF
    frac = u & 0x7FFFFF
    sig = torch.where(biased > 0, frac | (1 << 23), frac)
    exp = torch.clamp(biased, min=1) - 150
    return sign, biased, frac, sig, exp


def floor_log2(n):
    """floor(log2(n)) of int64 values in [1, 2**32); 0 for n = 0. `n` converts to float64 exactly (below 2**53)
    and `frexp` gives its exponent `e` with `n` in `[2**(e - 1), 2**e)`: exact, three passes (a binary search on
    the bits took twenty)."""
    _, e = torch.frexp(n.to(torch.float64))
    return (e.to(torch.int64) - 1).clamp_(min=0)


def pow2(r):
    return torch.bitwise_left_shift(torch.ones_like(r), r)


def round_shift(sig, r, parity, mode, rbits):
    """`sig / 2**r` rounded to an integer; see the reference's `round_shift`."""
    n0 = sig >> r
    rem = sig & (pow2(r) - 1)
    if mode == "half_even":
        half = pow2(r - 1)
        up = (rem > half) | ((rem == half) & ((parity & 1) == 1))
    elif mode == "half_away":  # MX elements with rounding="half_away" (float_encode has no such mode)
        up = rem >= pow2(r - 1)
    else:
        frac32 = (rem << torch.clamp(32 - r, min=0)) >> torch.clamp(r - 32, min=0)
        up = (frac32 + rbits) >= 2**32
    return n0 + up.to(torch.int64)


def encode_magnitude(sig, exp, mbits, emin, mode, rbits):
    """Magnitude code of `sig * 2**exp`, unbounded above; see the reference's `encode_magnitude`."""
    k = floor_log2(sig) + exp
    top = torch.clamp(k, min=emin)
    r = torch.clamp(top - mbits - exp, 1, 56)
    n = round_shift(sig, r, sig >> r, mode, rbits)
    return torch.where(sig == 0, 0, ((top - emin) << mbits) + n)


def encode_e8m0(sig, exp, mode, rbits):
    """E8M0 code (unbounded above) of `sig * 2**exp > 0`: the nearest power of two, ties up."""
    lead = floor_log2(sig)
    k = lead + exp
    frac = (sig << (23 - lead)) & 0x7FFFFF
    if mode == "half_even":
        up = frac >= (1 << 22)
    else:
        up = ((frac << 9) + rbits) >= 2**32
    return k + 127 + up.to(torch.int64)


def encode(x, form, saturate, mode, key, shift=None):
    """Codes (uint8) of `x / 2**shift` and the straight-through pass mask; see the reference's `encode`.

    Each element's code and pass flag depend on that element alone (and its random word, drawn for the whole
    shape first), so large CPU tensors without a shift are encoded a chunk of `CHUNK` elements at a time (in
    flat order), their int64 temporaries in cache: the same bits."""
    rbits = random_bits(key, tuple(x.shape), x.device) if mode == "stochastic" else None
    n = x.numel()
    if shift is not None or n < CHUNKED_MIN or x.device.type != "cpu":
        return _encode(x, form, saturate, mode, rbits, shift)
    flat, words = x.reshape(-1), None if rbits is None else rbits.reshape(-1)
    code = torch.empty(n, dtype=torch.uint8)
    passes = torch.empty(n, dtype=torch.bool)
    for part in _fast.blocks(n, CHUNK):
        code[part], passes[part] = _encode(flat[part], form, saturate, mode, None if words is None else words[part])
    return code.reshape(x.shape), passes.reshape(x.shape)


CHUNK = 1 << 15  # elements encoded together by `encode` on large CPU tensors
CHUNKED_MIN = 1 << 16  # from this many CPU elements (and no shift) `encode` works chunk by chunk


def _encode(x, form, saturate, mode, rbits, shift=None):
    """`encode` of `x` with its random words `rbits` (or None) already drawn."""
    sign, biased, frac, sig, exp = fields(x)
    if shift is not None:
        exp = exp - shift
    is_nan = (biased == 0xFF) & (frac != 0)
    is_inf = (biased == 0xFF) & (frac == 0)
    if not form.signed:
        raw = encode_e8m0(sig, exp, mode, rbits)
        positive = (sign == 0) & (sig > 0) & ~is_nan & ~is_inf
        passes = positive & (raw >= 0) & (raw <= form.max_code)
        over = (raw > form.max_code) | is_inf
        code = torch.clamp(raw, min=0)
        code = torch.where(over, form.max_code if saturate else form.nan_code, code)
        code = torch.where(positive | (is_inf & (sign == 0)), code, form.nan_code)
        return code.to(torch.uint8), passes
    mag = encode_magnitude(sig, exp, form.mbits, 1 - form.bias, mode, rbits)
    over = (mag > form.max_code) | is_inf
    passes = ~over & ~is_nan
    if saturate:
        mag = torch.where(over, form.max_code, mag)
    else:
        mag = torch.where(over, form.inf_code if form.has_inf else form.nan_code, mag)
    if form.has_nan:
        mag = torch.where(is_nan, form.nan_code, mag)
    code = (sign << (form.bits - 1)) | mag
    return code.to(torch.uint8), passes


def decode(code, form):
    """float32 values of int64 codes (each below `2**form.bits`): one lookup in the table of every code's value,
    built once per format and device by `decode_bits` (256 values at most), so the bits are those it gives.
    `take` always copies: indexing with a 0-d code would return a view into the cached table, which a caller
    writing into its result would change for every later call."""
    return torch.take(_table(form, code.device), code)


_TABLES: dict = {}


def _table(form, device):
    key = (form, device)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = decode_bits(torch.arange(2**form.bits, dtype=torch.int64, device=device), form)
    return table


def decode_bits(code, form):
    """float32 values of int64 codes, assembled as float32 bits."""
    if not form.signed:
        bits = torch.where(code == 0, 1 << 22, code << 23)
        bits = torch.where(code == form.nan_code, QNAN, bits)
        return from_bits(bits)
    m = form.mbits
    sign = (code >> (form.bits - 1)) & 1
    mag = code & ((1 << (form.bits - 1)) - 1)
    e = mag >> m
    f = mag & ((1 << m) - 1)
    lead = floor_log2(f)
    sub = ((lead + 1 - form.bias - m + 127) << 23) | ((f - pow2(lead)) << (23 - lead))
    normal = ((e - form.bias + 127) << 23) | (f << (23 - m))
    bits = torch.where(e > 0, normal, torch.where(f > 0, sub, 0))
    if form.has_inf:
        bits = torch.where(mag == form.inf_code, 0x7F800000, bits)
    if form.has_nan:
        nan = (mag == form.nan_code) if not form.has_inf else (mag > form.inf_code)
        bits = torch.where(nan, QNAN, bits)
    return from_bits((sign << 31) | bits)


def from_bits(bits):
    """float32 tensor from int64 bit patterns in [0, 2**32): wrapped to int32 first, then viewed."""
    signed = bits - ((bits >> 31) << 32)
    return signed.to(torch.int32).view(torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# Host twins, for tiny CPU inputs (a few dozen tensor operations cost more than the arithmetic on Python ints)
# ---------------------------------------------------------------------------------------------------------------


HOST_MAX = 64  # up to this many CPU elements the float and MX encoders run on Python ints


def host_ok(x) -> bool:
    """Whether `x` takes the host routes: a plain CPU tensor of `1..HOST_MAX` elements."""
    return x.device.type == "cpu" and 0 < x.numel() <= HOST_MAX and type(x) in (torch.Tensor, torch.nn.Parameter)


def host_words(x) -> list:
    """The float32 bit patterns of `x` in flat (C) order, as Python ints in `[0, 2**32)`."""
    return [w & MASK32 for w in x.detach().view(torch.int32).reshape(-1).tolist()]


def encode_host(words, form, saturate, mode, rbits, shifts=None):
    """`_encode` on Python ints: `(codes, passes)`, two lists, for the float32 bit patterns `words`, the random
    words `rbits` (a list, for `mode="stochastic"`) and the exponent shifts `shifts` (a list, or None).

    The same bits as the tensor route and the reference: every step is integer arithmetic (shifts, masks,
    comparisons, sums), which Python ints do exactly, and no int64 step of the reference overflows (the values
    stay below 2**34 and `r` is clipped to `[1, 56]`), so the int64 results are these ints. `floor_log2(n)` is
    `n.bit_length() - 1` for `n >= 1`, 0 for 0; shifts of non-negative amounts only; the uint8 cast keeps the
    low 8 bits (`& 0xFF`, as int64 to uint8 wraps), though every code is below 256 already. Element by element,
    as the tensor route: each code depends on its own element, shift and random word only."""
    codes, passes = [], []
    for i, u in enumerate(words):
        code, ok = _encode_one(u, form, saturate, mode, None if rbits is None else rbits[i], shifts and shifts[i])
        codes.append(code)
        passes.append(ok)
    return codes, passes


def _encode_one(u, form, saturate, mode, rb, shift):
    """One element of `encode_host` (`shift` None or an int; None and 0 are the same: `exp - 0 = exp`)."""
    sign, biased, frac = u >> 31, (u >> 23) & 0xFF, u & 0x7FFFFF
    sig = frac | (1 << 23) if biased > 0 else frac
    exp = max(biased, 1) - 150
    if shift:
        exp -= shift
    is_nan = biased == 0xFF and frac != 0
    is_inf = biased == 0xFF and frac == 0
    if not form.signed:
        lead = sig.bit_length() - 1 if sig else 0
        f = (sig << (23 - lead)) & 0x7FFFFF
        up = f >= (1 << 22) if mode == "half_even" else ((f << 9) + rb) >= 2**32
        raw = lead + exp + 127 + up
        positive = sign == 0 and sig > 0 and not is_nan and not is_inf
        ok = positive and 0 <= raw <= form.max_code
        code = max(raw, 0)
        if raw > form.max_code or is_inf:
            code = form.max_code if saturate else form.nan_code
        if not (positive or (is_inf and sign == 0)):
            code = form.nan_code
        return code & 0xFF, ok
    mag = magnitude_one(sig, exp, form.mbits, 1 - form.bias, mode, rb)
    over = mag > form.max_code or is_inf
    if over:
        mag = form.max_code if saturate else (form.inf_code if form.has_inf else form.nan_code)
    if form.has_nan and is_nan:
        mag = form.nan_code
    return ((sign << (form.bits - 1)) | mag) & 0xFF, not over and not is_nan


def magnitude_one(sig, exp, mbits, emin, mode, rb):
    """`encode_magnitude` of one element on Python ints (`round_shift` inlined, the same steps)."""
    if sig == 0:
        return 0
    top = max(sig.bit_length() - 1 + exp, emin)
    r = min(max(top - mbits - exp, 1), 56)
    n, rem = sig >> r, sig & ((1 << r) - 1)
    if mode == "half_even":
        half = 1 << (r - 1)
        up = rem > half or (rem == half and n & 1 == 1)
    elif mode == "half_away":
        up = rem >= 1 << (r - 1)
    else:
        up = ((rem << max(32 - r, 0)) >> max(r - 32, 0)) + rb >= 2**32
    return ((top - emin) << mbits) + n + up


def table_words(form) -> list:
    """`decode`'s table on the CPU as signed int32 bit patterns (a Python list, cached per format): looking a code
    up in it copies the bits `decode` gives."""
    words = _WORDS.get(form)
    if words is None:
        words = _WORDS[form] = _table(form, torch.device("cpu")).view(torch.int32).tolist()
    return words


_WORDS: dict = {}
