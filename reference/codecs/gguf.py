r"""GGUF block quantization, Q8_0, Q4_0 and Q4_K, with llama.cpp's reference semantics (`quantize_row_*_ref`,
`dequantize_row_*` in ggml-quants.c), operation for operation in float32.

| `qtype` | block | bytes | layout | value |
|---|---|---|---|---|
| `"Q8_0"` | 32 | 34 | `d` (float16), 32 int8 `q` | $d \cdot q$ |
| `"Q4_0"` | 32 | 18 | `d` (float16), 16 bytes: byte $j$ = $q_j + 16\, q_{j+16}$ | $d \cdot (q - 8)$ |
| `"Q4_K"` | 256 | 144 | `d`, `dmin` (float16), 12 bytes of eight 6-bit scales and mins, 128 bytes of 4-bit `q` | $d\, s_j\, q - d_{min}\, m_j$ |

Blocks run along the last axis (ggml's rows); float16 fields are little-endian. Every product in the decoders
is exact in float32, and the one subtraction of Q4_K rounds once, so a fused multiply-add gives the same bits.

!!! note "What llama.cpp builds may do differently"
    The Q4_K search sums in float32 in index order (`sum_l += w*l`, ...). A build of ggml that contracts these
    multiply-adds into FMAs (GCC's default `-ffp-contract=fast` with `-march=native`) rounds differently and can
    pick other scales; pqref pins the unfused sums, which is what a build with `-ffp-contract=off` (or without
    FMA instructions) computes. gguf-py's NumPy Q4_0 takes the block's signed maximum from `argmax`, so an
    all-zero block whose first element is `-0.0` gets $d = +0.0$ there and $d = -0.0$ in C ($+0.0 / -8$): pqref
    follows C.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference._reduce import sqrt_to_float32
from reference._rounding import half_away
from reference.common import shapes, validate
from reference.quantization.floats import QNAN

__all__ = ["gguf_quantize", "gguf_dequantize"]

QTYPES = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_K": (256, 144)}  # elements and bytes per block
F = np.float32


def gguf_quantize(x, qtype):
    r"""Quantize rows of float32 values into GGUF blocks, as llama.cpp's reference quantizers do.

    **Q8_0**: $d = \operatorname{fl}(\text{amax} / 127)$, $q = \operatorname{rna}(\operatorname{fl}(x \cdot
    \operatorname{fl}(1/d)))$ (C's `roundf`, ties away from zero; $1/d$ taken as 0 when $d = 0$); $d$ is stored
    as float16 (round to nearest even).

    **Q4_0**: $M$ = the first element of largest magnitude (`+0.0` for an all-zero block), $d =
    \operatorname{fl}(M / {-8})$, $q = \min(15, \operatorname{trunc}(\operatorname{fl}(\operatorname{fl}(x \cdot
    \operatorname{fl}(1/d)) + 8.5)))$. The codes stand for $-8 d$ to $7 d$ and $M$ is $-8 d$: an element near $-M$
    is clamped to $7 d$, up to one step $|d|$ away (elsewhere half a step).

    **Q4_K**: per 32-element sub-block, the weights $w = \sqrt{\operatorname{fl}(\sum x^2) / 32} + |x|$ (float32 sums
    in index order, a correctly rounded `sqrtf`) and llama.cpp's `make_qkx2_quants(32, 15, x, w, rmin=-1,
    rdelta=0.1, nstep=20)`: the min-max start, then 21 candidate scales $(-1 + 0.1\,i + 15) / (\max - \min)$, each
    refit by weighted least squares and kept when its weighted squared error is strictly smaller; the sub-block
    scales and mins are quantized to 6 bits against the largest of each ($d = \operatorname{fl}(\max s / 63)$,
    $d_{min} = \operatorname{fl}(\max m / 63)$, float16), and the elements requantized with them,
    $q = \operatorname{clip}(\operatorname{ni}(\operatorname{fl}(\operatorname{fl}(x + d_{min} m_j) / (d\, s_j))), 0, 15)$
    (a sub-block with $d\, s_j = 0$ keeps the search's codes). $\operatorname{ni}$ is ggml's `nearest_int`
    (add $1.5 \cdot 2^{23}$, read the low mantissa bits: ties to even), taken as 0 for NaN.

    **Arguments:**

    - `x`: a float32 array with at least one dimension, finite; the last axis a multiple of the block size (32,
      or 256 for Q4_K).
    - `qtype`: `"Q8_0"`, `"Q4_0"` or `"Q4_K"`.

    **Returns:**

    A uint8 array shaped like `x` with the last axis replaced by its number of blocks times the block's bytes.

    !!! note
        A float16 field overflows to Inf for scales above 65504 (amax above about $8.3 \cdot 10^6$ for Q8_0), as
        in llama.cpp; decoding then gives Inf and NaN. Q4_K's `uint8_t` conversion of a negative 6-bit scale
        wraps and then clips to 63, as in C.

    Example (`"Q8_0"`): a block `[1.0, -2.0, 0.5, 0, ...]` has $d = 2/127$, stored as float16 `0x2408`
    (0.0157470703125, two bytes little-endian), then codes `[64, -127, 32, 0, ...]` ($1 \cdot 63.5 = 63.5 \to
    64$, ties away):

        >>> x = np.zeros(32, np.float32)
        >>> x[:3] = [1.0, -2.0, 0.5]
        >>> block = gguf_quantize(x, "Q8_0")
        >>> block.shape, hex(int(block[:2].view(np.uint16)[0])), block[2:6].view(np.int8)
        ((34,), '0x2408', array([  64, -127,   32,    0], dtype=int8))

    ??? cite "Gerganov et al., llama.cpp / ggml"
        ggml-quants.c: `quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `quantize_row_q4_K_ref`,
        `make_qkx2_quants`; the GGUF format (github.com/ggml-org/ggml, docs/gguf.md).
    """
    qtype = validate.choice("qtype", qtype, tuple(QTYPES))
    block, _ = QTYPES[qtype]
    x = _arrays.finite_array("x", x)
    shapes.last_axis_blocks("x", x.shape, block, "elements")
    rows = x.reshape(-1, block)
    with np.errstate(all="ignore"):
        out = {"Q8_0": _q8_0, "Q4_0": _q4_0, "Q4_K": _q4_k}[qtype](rows)
    return np.asarray(out.reshape(x.shape[:-1] + (x.shape[-1] // block * QTYPES[qtype][1],)))


def gguf_dequantize(data, qtype):
    r"""Decode GGUF blocks to float32, as llama.cpp's `dequantize_row_*`.

    $$ \text{Q8\_0: } y = d \cdot q, \qquad \text{Q4\_0: } y = d \cdot (q - 8), \qquad
       \text{Q4\_K: } y = \operatorname{fl}\big((d\, s_j)\, q - d_{min}\, m_j\big) $$

    with the float16 fields widened exactly to float32.

    **Arguments:**

    - `data`: a uint8 array with at least one dimension, the last axis a multiple of the block's bytes (34, 18,
      144). Any bytes decode: float16 Inf and NaN fields give Inf and NaN values; every NaN result is the quiet
      NaN `0x7FC00000` (NaN payloads and signs are not kept: NumPy keeps a float16 NaN's payload, torch does not).
    - `qtype`: `"Q8_0"`, `"Q4_0"` or `"Q4_K"`.

    **Returns:**

    A float32 array shaped like `data` with the last axis replaced by its number of blocks times the block size.

    Example (`"Q4_0"`): $d = 0.5$ (float16 `0x3800`) and a byte `0x9F` in position 0 give
    $y_0 = 0.5 \cdot (15 - 8)$ and $y_{16} = 0.5 \cdot (9 - 8)$; the other bytes `0x88` decode to 0:

        >>> y = gguf_dequantize(np.array([0x00, 0x38, 0x9F] + [0x88] * 15, np.uint8), "Q4_0")
        >>> y[0], y[16], y[1]
        (np.float32(3.5), np.float32(0.5), np.float32(0.0))
    """
    qtype = validate.choice("qtype", qtype, tuple(QTYPES))
    block, nbytes = QTYPES[qtype]
    data = _arrays.array("data", data, ("uint8",))
    shapes.last_axis_blocks("data", data.shape, nbytes, "bytes")
    b = data.reshape(-1, nbytes).astype(np.int64)
    with np.errstate(all="ignore"):
        if qtype == "Q8_0":
            q = np.where(b[:, 2:] > 127, b[:, 2:] - 256, b[:, 2:])
            y = _half(b, 0)[:, None] * q.astype(F)
        elif qtype == "Q4_0":
            q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], axis=1)
            y = _half(b, 0)[:, None] * (q - 8).astype(F)
        else:
            y = _q4_k_decode(b)
    y = np.where(np.isnan(y), np.uint32(QNAN).view(F), y)  # one NaN: payloads and signs differ between libraries
    return np.asarray(y.astype(F).reshape(data.shape[:-1] + (data.shape[-1] // nbytes * block,)))


# ---------------------------------------------------------------------------------------------------------------


def _half(b, at):
    """The float16 field at byte `at` of each block (little-endian), as float32."""
    return (b[:, at] | (b[:, at + 1] << 8)).astype(np.uint16).view(np.float16).astype(F)


def _half_bytes(v):
    """float32 values rounded to float16 (nearest even), as (n, 2) little-endian bytes."""
    h = v.astype(np.float16).view(np.uint16).astype(np.int64)
    return np.stack([h & 0xFF, h >> 8], axis=1)


def _q8_0(rows):
    amax = np.max(np.abs(rows), axis=1)
    d = amax / F(127)
    inv = np.where(d != 0, F(1) / np.where(d != 0, d, F(1)), F(0))
    q = half_away(rows * inv[:, None]).astype(np.int64)
    return np.concatenate([_half_bytes(d), q & 0xFF], axis=1).astype(np.uint8)


def _q4_0(rows):
    i = np.argmax(np.abs(rows), axis=1)  # the first of the largest magnitudes, as C's strict `<` scan
    m = rows[np.arange(rows.shape[0]), i]
    m = np.where(np.abs(m) > 0, m, F(0))  # an all-zero block keeps C's initial +0.0
    d = m / F(-8)
    inv = np.where(d != 0, F(1) / np.where(d != 0, d, F(1)), F(0))
    v = rows * inv[:, None] + F(8.5)
    q = np.minimum(np.trunc(v), 15).astype(np.int64)
    return np.concatenate([_half_bytes(d), q[:, :16] | (q[:, 16:] << 4)], axis=1).astype(np.uint8)


def _nearest_int(v):
    """ggml's nearest_int: the low 23 bits of fl(v + 1.5 * 2**23), minus 2**22; NaN gives 0."""
    bits = (v + F(12582912.0)).astype(F).view(np.uint32).astype(np.int64)
    return np.where(np.isnan(v), 0, (bits & 0x7FFFFF) - 0x400000)


def _make_qkx2(x, w):
    """llama.cpp's make_qkx2_quants(32, 15, x, w, L, &the_min, Laux, -1, 0.1, 20, false), over axis -1 of (..., 32).

    Returns (scale, the_min, L). Every sum runs in index order in float32.
    """
    n, nmax = x.shape[-1], 15
    lo, hi = x[..., 0], x[..., 0]
    sum_w = w[..., 0]
    sum_x = sum_w * x[..., 0]
    for i in range(1, n):
        lo = np.where(x[..., i] < lo, x[..., i], lo)
        hi = np.where(x[..., i] > hi, x[..., i], hi)
        sum_w = sum_w + w[..., i]
        sum_x = sum_x + w[..., i] * x[..., i]
    lo = np.where(lo > 0, F(0), lo)
    flat = hi == lo
    span = np.where(flat, F(1), hi - lo)
    iscale = F(nmax) / span
    scale = F(1) / iscale
    L = np.clip(_nearest_int(iscale[..., None] * (x - lo[..., None])), 0, nmax)
    best = np.zeros_like(sum_w)
    for i in range(n):
        diff = scale * L[..., i].astype(F) + lo - x[..., i]
        best = best + w[..., i] * (diff * diff)
    for step in range(21):
        iscale = (F(-1) + F(0.1) * F(step) + F(nmax)) / np.where(flat, F(1), hi - lo)
        aux = np.clip(_nearest_int(iscale[..., None] * (x - lo[..., None])), 0, nmax)
        la = aux.astype(F)
        sum_l = np.zeros_like(sum_w)
        sum_l2 = np.zeros_like(sum_w)
        sum_xl = np.zeros_like(sum_w)
        for i in range(n):
            wl = w[..., i] * la[..., i]
            sum_l = sum_l + wl
            sum_l2 = sum_l2 + wl * la[..., i]
            sum_xl = sum_xl + wl * x[..., i]
        det = sum_w * sum_l2 - sum_l * sum_l
        ok = det > 0
        safe = np.where(ok, det, F(1))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe
        clamp = this_min > 0
        this_scale = np.where(clamp, sum_xl / np.where(sum_l2 != 0, sum_l2, F(1)), this_scale)  # ok: sum_l2 > 0
        this_min = np.where(clamp, F(0), this_min)
        mad = np.zeros_like(sum_w)
        for i in range(n):
            diff = this_scale * la[..., i] + this_min - x[..., i]
            mad = mad + w[..., i] * (diff * diff)
        better = ok & ~flat & (mad < best)
        L = np.where(better[..., None], aux, L)
        best = np.where(better, mad, best)
        scale = np.where(better, this_scale, scale)
        lo = np.where(better, this_min, lo)
    L = np.where(flat[..., None], 0, L)
    scale = np.where(flat, F(0), scale)
    return scale.astype(F), (-lo).astype(F), L


def _q4_k(rows):
    xs = rows.reshape(-1, 8, 32)
    sum_x2 = np.zeros(xs.shape[:2], F)
    for i in range(32):
        sum_x2 = sum_x2 + xs[..., i] * xs[..., i]
    av = sqrt_to_float32((sum_x2 / F(32)).astype(np.float64))
    w = av[..., None] + np.abs(xs)
    scales, mins, L = _make_qkx2(xs, w)
    max_scale = np.zeros(xs.shape[0], F)
    max_min = np.zeros(xs.shape[0], F)
    for j in range(8):
        max_scale = np.where(scales[:, j] > max_scale, scales[:, j], max_scale)
        max_min = np.where(mins[:, j] > max_min, mins[:, j], max_min)
    inv_scale = np.where(max_scale > 0, F(63) / np.where(max_scale > 0, max_scale, F(1)), F(0))
    inv_min = np.where(max_min > 0, F(63) / np.where(max_min > 0, max_min, F(1)), F(0))
    ls = np.minimum(_nearest_int(inv_scale[:, None] * scales) & 0xFF, 63)  # uint8_t, then MIN(63, .)
    lm = np.minimum(_nearest_int(inv_min[:, None] * mins) & 0xFF, 63)
    packed = np.zeros((xs.shape[0], 12), np.int64)
    packed[:, 0:4] = ls[:, :4] | ((ls[:, 4:] >> 4) << 6)
    packed[:, 4:8] = lm[:, :4] | ((lm[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
    d = max_scale / F(63)
    dmin = max_min / F(63)
    d16 = d.astype(np.float16).astype(F)
    dmin16 = dmin.astype(np.float16).astype(F)
    dj = d16[:, None] * ls.astype(F)
    dm = dmin16[:, None] * lm.astype(F)
    safe = np.where(dj != 0, dj, F(1))
    q = np.clip(_nearest_int((xs + dm[..., None]) / safe[..., None]), 0, 15)
    L = np.where((dj != 0)[..., None], q, L).reshape(-1, 4, 2, 32)
    qs = (L[:, :, 0, :] | (L[:, :, 1, :] << 4)).reshape(-1, 128)
    return np.concatenate([_half_bytes(d), _half_bytes(dmin), packed, qs], axis=1).astype(np.uint8)


def _q4_k_decode(b):
    d, dmin = _half(b, 0), _half(b, 2)
    s = b[:, 4:16]
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    m = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    qs = b[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4]).reshape(1, 1, 2, 1)
    q = (qs & 0xF).reshape(-1, 8, 32).astype(F)
    dj = (d[:, None] * sc.astype(F))[..., None]
    mj = (dmin[:, None] * m.astype(F))[..., None]
    return (dj * q - mj).reshape(-1, 256)
