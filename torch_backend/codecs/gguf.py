"""GGUF Q8_0, Q4_0 and Q4_K in torch; the semantics (llama.cpp's reference quantizers, operation for operation in
float32) are those of `reference.codecs.gguf`."""

from __future__ import annotations

import math
import struct

import torch

from reference.codecs.gguf import QTYPES
from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend._reduce import sqrt_to_float32
from torch_backend._rounding import half_away
from torch_backend.codecs._bytes import HOST_MAX, host_tensor, on_host, view_as
from torch_backend.core._host import float32

__all__ = ["gguf_quantize", "gguf_dequantize"]

F = torch.float32


def gguf_quantize(x, qtype):
    """GGUF blocks (uint8) of float32 rows, as llama.cpp's reference quantizers; see the reference."""
    qtype = validate.choice("qtype", qtype, tuple(QTYPES))
    block, _ = QTYPES[qtype]
    x = _arrays.finite_array("x", x)
    shapes.last_axis_blocks("x", tuple(x.shape), block, "elements")
    rows = x.detach().reshape(-1, block)
    out = {"Q8_0": _q8_0, "Q4_0": _q4_0, "Q4_K": _q4_k}[qtype](rows)
    return out.reshape(tuple(x.shape[:-1]) + (x.shape[-1] // block * QTYPES[qtype][1],))


def gguf_dequantize(data, qtype):
    """GGUF blocks back to float32, as llama.cpp's dequantize_row_*; see `reference.codecs.gguf.gguf_dequantize`."""
    qtype = validate.choice("qtype", qtype, tuple(QTYPES))
    block, nbytes = QTYPES[qtype]
    data = _arrays.array("data", data, ("uint8",))
    shapes.last_axis_blocks("data", tuple(data.shape), nbytes, "bytes")
    shape = tuple(data.shape[:-1]) + (data.shape[-1] // nbytes * block,)
    if data.numel() == 0:  # no block: nothing to decode
        return torch.empty(shape, dtype=F, device=data.device)
    if data.numel() // nbytes * block <= HOST_MAX and on_host(data):
        return host_tensor("f", _dequantize_host(data, qtype, nbytes), F, shape)
    b = data.detach().reshape(-1, nbytes)
    if qtype == "Q8_0":
        y = _half(b, 0)[:, None] * b[:, 2:].view(torch.int8).to(F)
    elif qtype == "Q4_0":
        q = torch.cat([b[:, 2:] & _U8[0xF], b[:, 2:] >> _U8[4]], dim=1).to(F)
        y = _half(b, 0)[:, None] * q.sub_(_c(8.0, q))  # q - 8: small integers, exact
    else:
        y = _q4_k_decode(b)
    y = torch.where(torch.isnan(y), float("nan"), y)  # the quiet NaN 0x7FC00000
    return y.reshape(shape)


# ---------------------------------------------------------------------------------------------------------------


def _c(value, like):
    """A float32 constant on `like`'s device (IEEE arithmetic on every device), cached."""
    return _arrays.constant(float(value), like, F)


_U8 = {v: torch.tensor(v, dtype=torch.uint8) for v in (2, 4, 0xF, 0x30, 63)}  # CPU 0-d tensors: for any device
_NIBBLE_SHIFTS = torch.tensor([0, 4], dtype=torch.uint8).reshape(1, 1, 2, 1)


def _half(b, at):
    """The float16 in bytes `at`, `at + 1` of each row of the uint8 `b`, as float32."""
    return view_as(b[:, at : at + 2], torch.float16)[:, 0].to(F)


def _half_bytes(v):
    h = v.to(torch.float16).view(torch.int16).to(torch.int64) & 0xFFFF
    return torch.stack([h & 0xFF, h >> 8], dim=1)


def _inverse(d):
    one = _c(1.0, d)
    return torch.where(d != 0, one / torch.where(d != 0, d, one), _c(0.0, d))


def _q8_0(rows):
    amax = torch.abs(rows).amax(dim=1)
    d = amax / _c(127.0, amax)
    q = half_away(rows * _inverse(d)[:, None]).to(torch.int64)
    return torch.cat([_half_bytes(d), q & 0xFF], dim=1).to(torch.uint8)


def _q4_0(rows):
    i = torch.argmax(torch.abs(rows), dim=1)  # the first of the largest magnitudes
    m = rows[torch.arange(rows.shape[0], device=rows.device), i]
    m = torch.where(torch.abs(m) > 0, m, _c(0.0, m))
    d = m / _c(-8.0, m)
    v = rows * _inverse(d)[:, None] + _c(8.5, rows)
    q = torch.clamp(torch.trunc(v), max=15).to(torch.int64)
    return torch.cat([_half_bytes(d), q[:, :16] | (q[:, 16:] << 4)], dim=1).to(torch.uint8)


def _nearest_int(v):
    bits = (v + _c(12582912.0, v)).view(torch.int32).to(torch.int64)
    return torch.where(torch.isnan(v), 0, (bits & 0x7FFFFF) - 0x400000)


def _in_order(terms, start=None):
    """The float32 sums over the last axis of `terms`, one index after another from `start` (+0.0 by default), as
    llama.cpp's loops add them; leading axes are independent sums that share each addition (one operation per
    index, whatever the number of sums)."""
    columns = terms.unbind(-1)
    total = torch.zeros_like(columns[0]) if start is None else start.clone()
    for c in columns:
        total.add_(c)
    return total


def _make_qkx2(x, w):
    """llama.cpp's make_qkx2_quants over dim -1 of (..., 32); see the reference's `_make_qkx2`.

    The terms of every float32 sum are computed for all indices at once, and the sums taken by `_in_order`, the
    sums of one loop together: a few hundred small operations for the 21 steps instead of thousands."""
    nmax = 15
    one, zero = _c(1.0, x), _c(0.0, x)
    # lo and -hi: the running minima of x and -x (a strict `<`, so the first of equal values stays, -0.0 or +0.0)
    ends = torch.stack([x, -x])
    run = ends[..., 0].clone()
    for c in ends.unbind(-1)[1:]:
        run = torch.where(c < run, c, run)
    lo, hi = run[0], -run[1]
    first = torch.stack([w, w * x])
    sum_w, sum_x = _in_order(first[..., 1:], first[..., 0])
    lo = torch.where(lo > 0, zero, lo)
    flat = hi == lo
    iscale = _c(float(nmax), x) / torch.where(flat, one, hi - lo)
    scale = one / iscale
    L = torch.clamp(_nearest_int(iscale[..., None] * (x - lo[..., None])), 0, nmax)
    diff = scale[..., None] * L.to(F) + lo[..., None] - x
    best = _in_order(w * (diff * diff))
    rdelta = _c(0.1, x)
    for step in range(21):
        top = _c(-1.0, x) + rdelta * _c(float(step), x) + _c(float(nmax), x)
        iscale = top / torch.where(flat, one, hi - lo)
        aux = torch.clamp(_nearest_int(iscale[..., None] * (x - lo[..., None])), 0, nmax)
        la = aux.to(F)
        wl = w * la
        sum_l, sum_l2, sum_xl = _in_order(torch.stack([wl, wl * la, wl * x]))
        det = sum_w * sum_l2 - sum_l * sum_l
        ok = det > 0
        safe = torch.where(ok, det, one)
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe
        clamp = this_min > 0
        this_scale = torch.where(clamp, sum_xl / torch.where(sum_l2 != 0, sum_l2, one), this_scale)
        this_min = torch.where(clamp, zero, this_min)
        diff = this_scale[..., None] * la + this_min[..., None] - x
        mad = _in_order(w * (diff * diff))
        better = ok & ~flat & (mad < best)
        L = torch.where(better[..., None], aux, L)
        best = torch.where(better, mad, best)
        scale = torch.where(better, this_scale, scale)
        lo = torch.where(better, this_min, lo)
    L = torch.where(flat[..., None], 0, L)
    scale = torch.where(flat, zero, scale)
    return scale, -lo, L


def _q4_k(rows):
    xs = rows.reshape(-1, 8, 32)
    sum_x2 = _in_order(xs * xs)
    av = sqrt_to_float32((sum_x2 / _c(32.0, sum_x2)).to(torch.float64))
    w = av[..., None] + torch.abs(xs)
    scales, mins, L = _make_qkx2(xs, w)
    max_scale = torch.zeros(xs.shape[0], dtype=F, device=xs.device)
    max_min = torch.zeros_like(max_scale)
    for j in range(8):
        max_scale = torch.where(scales[:, j] > max_scale, scales[:, j], max_scale)
        max_min = torch.where(mins[:, j] > max_min, mins[:, j], max_min)
    c63, one, zero = _c(63.0, xs), _c(1.0, xs), _c(0.0, xs)
    inv_scale = torch.where(max_scale > 0, c63 / torch.where(max_scale > 0, max_scale, one), zero)
    inv_min = torch.where(max_min > 0, c63 / torch.where(max_min > 0, max_min, one), zero)
    ls = torch.clamp(_nearest_int(inv_scale[:, None] * scales) & 0xFF, max=63)
    lm = torch.clamp(_nearest_int(inv_min[:, None] * mins) & 0xFF, max=63)
    packed = torch.cat(
        [
            ls[:, :4] | ((ls[:, 4:] >> 4) << 6),
            lm[:, :4] | ((lm[:, 4:] >> 4) << 6),
            (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4),
        ],
        dim=1,
    )
    d = max_scale / c63
    dmin = max_min / c63
    dj = d.to(torch.float16).to(F)[:, None] * ls.to(F)
    dm = dmin.to(torch.float16).to(F)[:, None] * lm.to(F)
    safe = torch.where(dj != 0, dj, one)
    q = torch.clamp(_nearest_int((xs + dm[..., None]) / safe[..., None]), 0, 15)
    L = torch.where((dj != 0)[..., None], q, L).reshape(-1, 4, 2, 32)
    qs = (L[:, :, 0, :] | (L[:, :, 1, :] << 4)).reshape(-1, 128)
    return torch.cat([_half_bytes(d), _half_bytes(dmin), packed, qs], dim=1).to(torch.uint8)


def _q4_k_decode(b):
    """Q4_K blocks (uint8 rows of 144 bytes) to float32 `(rows, 256)`, in uint8 operations with cached constants."""
    rows = b.shape[0]
    dd = view_as(b[:, 0:4], torch.float16).to(F)  # d, dmin
    s = b[:, 4:16]
    low, high = s[:, 0:8], s[:, 8:12]  # the 6-bit scales and mins of sub-blocks 0-3; the low 4 bits of 4-7
    top = (low >> _U8[2]) & _U8[0x30]  # their top 2 bits, as bits 4-5 of the scales and mins of sub-blocks 4-7
    rest = top | torch.cat([high & _U8[0xF], high >> _U8[4]], dim=1)
    scm = torch.stack([(low & _U8[63]).reshape(rows, 2, 4), rest.reshape(rows, 2, 4)], dim=2).reshape(rows, 2, 8)
    dm = dd[:, :, None] * scm.to(F)  # (rows, [d * scale, dmin * min], 8)
    q = ((b[:, 16:].reshape(rows, 4, 1, 32) >> _NIBBLE_SHIFTS.to(b.device)) & _U8[0xF]).reshape(rows, 8, 32)
    return (dm[:, 0, :, None] * q.to(F) - dm[:, 1, :, None]).reshape(rows, 256)


def _dequantize_host(data, qtype, nbytes):
    """`gguf_dequantize`'s values (Python floats, flat) of a small nonempty CPU `data`, on the host.

    A float16 field is read by `struct` ('<e', little-endian as GGUF stores it): its exact value, Inf or NaN. Q8_0
    and Q4_0: d q with q an int in [-128, 127] (Q4_0: the nibble minus 8) has at most 11 + 8 significant bits and
    lies within float32's range: the float64 product is the float32 one (IEEE: the signs of zeros, Inf times 0 a
    NaN). Q4_K: d s_j and dmin m_j (11 + 6 bits) and (d s_j) q (+ 4 bits) are exact; the two terms of the
    subtraction are multiples of 2**-24 (a float16's quantum) below 2**26 in magnitude, so their float64
    difference is exact and `float32` rounds it once, as the reference's float32 subtraction. Every NaN becomes
    `math.nan`, written as the quiet NaN 0x7FC00000 (a NaN of a float64 operation may carry a sign).
    """
    raw = bytes(data.detach().reshape(-1).tolist())
    out = []
    for at in range(0, len(raw), nbytes):
        blk = raw[at : at + nbytes]
        if qtype == "Q8_0":
            d = _HALF.unpack_from(blk)[0]
            out.extend(d * (q - 256 if q > 127 else q) for q in blk[2:])
        elif qtype == "Q4_0":
            d = _HALF.unpack_from(blk)[0]
            qs = blk[2:]
            out.extend(d * ((q & 0xF) - 8) for q in qs)
            out.extend(d * ((q >> 4) - 8) for q in qs)
        else:
            d, dmin = _HALF2.unpack_from(blk)
            s = blk[4:16]
            for j in range(8):
                if j < 4:
                    sc, m = s[j] & 63, s[j + 4] & 63
                else:
                    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)
                    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
                dj, mj = d * sc, dmin * m
                shift = 4 * (j % 2)
                out.extend(
                    float32(dj * ((q >> shift) & 0xF) - mj) for q in blk[16 + 32 * (j // 2) : 48 + 32 * (j // 2)]
                )
    return [math.nan if v != v else v for v in out]


_HALF, _HALF2 = struct.Struct("<e"), struct.Struct("<2e")
