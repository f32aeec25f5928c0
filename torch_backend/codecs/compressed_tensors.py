"""compressed-tensors' pack-quantized format in torch; the semantics are those of
`reference.codecs.compressed_tensors`."""

from __future__ import annotations

import math

import torch

from reference.common import checks, validate
from torch_backend import _arrays
from torch_backend.codecs._bytes import HOST_MAX, host_tensor, on_host

__all__ = ["pack_quantized", "unpack_quantized"]


def pack_quantized(q, *, bits, packed_dim):
    """Pack signed codes into int32 words along packed_dim; see `reference.codecs.compressed_tensors`."""
    b, dim = checks.compressed_tensors_options(bits, packed_dim)
    q = _arrays.array("q", q, ("int8",))
    if q.ndim != 2:
        raise ValueError(f"q must be 2-D, got shape {tuple(q.shape)}")
    if q.numel() <= HOST_MAX and on_host(q):
        words = _pack_host(q, b, dim)
        if words is not None:  # None: a code out of range, raised below
            return words
    _arrays.within("q", q, -(2 ** (b - 1)), 2 ** (b - 1) - 1)
    if q.numel() >= WORDS_MIN:
        words = _pack_by_words(q.T if dim == 1 else q, b)
        return words.T.contiguous() if dim == 1 else words
    u = q.to(torch.int64) + 2 ** (b - 1)
    rows = u if dim == 1 else u.T
    words = _pack_rows(rows, b)
    return words if dim == 1 else words.T.contiguous()


def unpack_quantized(packed, *, bits, shape, packed_dim):
    """int32 words back to signed codes of `shape`; see `reference.codecs.compressed_tensors.unpack_quantized`."""
    b, dim = checks.compressed_tensors_options(bits, packed_dim)
    shape = validate.shape("shape", shape)
    if len(shape) != 2:
        raise ValueError(f"shape must have 2 sides, got {shape}")
    packed = _arrays.array("packed", packed, ("int32",))
    rows_n, n = (shape[0], shape[1]) if dim == 1 else (shape[1], shape[0])
    words_n = -(-n * b // 32)
    expected = (rows_n, words_n) if dim == 1 else (words_n, rows_n)
    _arrays.shaped("packed", packed, expected, f"shape {shape} packed along dim {dim} with {b} bits")
    if rows_n * n <= HOST_MAX and on_host(packed):
        q = _unpack_host(packed, b, dim, rows_n, n, shape)
        if q is not None:  # None: a set padding bit, raised below
            return q
    words = packed if dim == 1 else packed.T
    bit = torch.arange(32, dtype=torch.int64, device=packed.device)
    stream = (((words.to(torch.int64)[:, :, None] & 0xFFFFFFFF) >> bit) & 1).reshape(rows_n, words_n * 32)
    padding = stream[:, n * b :]
    if bool(padding.any()):
        r, k = (int(v[0]) for v in torch.nonzero(padding, as_tuple=True))
        raise ValueError(f"packed has a set padding bit after the last code of row {r}: stream bit {n * b + k}")
    u = (stream[:, : n * b].reshape(rows_n, n, b) << bit[:b]).sum(dim=2)
    q = (u - 2 ** (b - 1)).to(torch.int8)
    return q if dim == 1 else q.T.contiguous()


def _pack_host(q, b, dim):
    """`pack_quantized` of validated-shape CPU codes `q` on Python ints, or None when a code is out of range.

    Each packed row's stream is one Python int, `sum(u_i << (b i))` with `u_i = q_i + 2**(b - 1)` in
    `[0, 2**b)`: code i in stream bits `[b i, b i + b)` (disjoint ranges: the sum is the reference's bit stream,
    its high bits zero), and word m is `(stream >> 32 m) & 0xFFFFFFFF`, written as an unsigned 32-bit word and
    read as int32 (the reference's `astype(uint32).view(int32)`). Exact integers throughout.
    """
    rows = q.tolist()
    lo, hi = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    flat = [v for r in rows for v in r]
    if flat and not (lo <= min(flat) and max(flat) <= hi):
        return None
    r_n, c_n = q.shape
    lines = rows if dim == 1 else [[r[c] for r in rows] for c in range(c_n)]
    n = c_n if dim == 1 else r_n
    words_n = -(-n * b // 32)
    shifts = range(0, b * n, b)
    streams = [sum((v - lo) << s for v, s in zip(line, shifts, strict=True)) for line in lines]
    mask = 0xFFFFFFFF
    if dim == 1:
        words = [(s >> (32 * m)) & mask for s in streams for m in range(words_n)]
        return host_tensor("I", words, torch.int32, (r_n, words_n))
    words = [(s >> (32 * m)) & mask for m in range(words_n) for s in streams]
    return host_tensor("I", words, torch.int32, (words_n, c_n))


def _unpack_host(packed, b, dim, rows_n, n, shape):
    """`unpack_quantized` of checked CPU words on Python ints, or None when a padding bit is set.

    A packed row's stream is `sum((w_m & 0xFFFFFFFF) << 32 m)` over its words (the unsigned bits of each int32,
    stream bit k = bit k mod 32 of word k // 32, as the reference's bit array); a padding bit is set exactly when
    `stream >> (n b)` is nonzero; code i is `((stream >> b i) & (2**b - 1)) - 2**(b - 1)`, the reference's sum of
    its bits minus the offset, in int8's range. Exact integers throughout.
    """
    words = packed.tolist()
    lines = words if dim == 1 else [[w[r] for w in words] for r in range(rows_n)]
    streams = [sum((w & 0xFFFFFFFF) << (32 * m) for m, w in enumerate(line)) for line in lines]
    if any(s >> (n * b) for s in streams):
        return None
    mask, off = 2**b - 1, 2 ** (b - 1)
    if dim == 1:
        codes = [((s >> (b * i)) & mask) - off for s in streams for i in range(n)]
    else:
        codes = [((s >> (b * i)) & mask) - off for i in range(n) for s in streams]
    return host_tensor("b", codes, torch.int8, shape)


WORDS_MIN = 4096  # from this many codes `pack_quantized` writes whole words (`_pack_by_words`), not stream bits


def _pack_by_words(q, b):
    """The words of `pack_quantized` for validated codes `q` `(n, C)`, each column one packed row (its codes along
    axis 0): `(ceil(n b / 32), C)` int32, one word row at a time instead of one element per stream bit.

    Each column's stream repeats its layout every `per` codes (`per * b` = lcm(b, 32) bits, `width` words): code
    `l` of a period (unsigned: q + 2**(b - 1), in [0, 2**b)) holds stream bits `[b l, b l + b)` of it, so word `k`
    is the OR of `code_l << (b l - 32 k)` (a right shift, i.e. floor division, for a negative amount) over the
    codes overlapping bits `[32 k, 32 k + 32)`, masked to its low 32 bits: the stream's bits there, each from the
    one code that owns it (disjoint ranges: the OR is the reference's sum). The codes are padded with zero codes
    to whole periods (zero bits, as the reference's padding) and the words past `ceil(n b / 32)` dropped. A word
    w in [0, 2**32) becomes the int32 of the same bits as `w - 2**32 [w >= 2**31]`, `w - ((w >> 31) << 32)`.
    Integers only (int64 throughout): exact.
    """
    n, c = q.shape
    g = math.gcd(b, 32)
    per, width = 32 // g, b // g
    blocks = -(-n // per)
    padded = torch.zeros(blocks * per, c, dtype=torch.int64, device=q.device)
    padded[:n] = q
    padded[:n] += 2 ** (b - 1)
    codes = padded.view(blocks, per, c)
    out = torch.empty(blocks, width, c, dtype=torch.int64, device=q.device)
    for k in range(width):
        acc = None
        for lane in range(per):
            shift = b * lane - 32 * k
            if shift >= 32 or shift + b <= 0:  # no bit of this code in word k
                continue
            part = codes[:, lane] << shift if shift >= 0 else codes[:, lane] >> -shift
            acc = part if acc is None else acc.bitwise_or_(part)
        out[:, k] = acc.bitwise_and_(0xFFFFFFFF)
    words = out.view(blocks * width, c)[: -(-n * b // 32)]
    return (words - ((words >> 31) << 32)).to(torch.int32)


def _pack_rows(u, b):
    rows, n = u.shape
    words_n = -(-n * b // 32)
    bit = torch.arange(32, dtype=torch.int64, device=u.device)
    stream = ((u[:, :, None] >> bit[:b]) & 1).reshape(rows, n * b)
    stream = torch.nn.functional.pad(stream, (0, words_n * 32 - n * b))
    words = (stream.reshape(rows, words_n, 32) << bit).sum(dim=2)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
