"""The torch codecs' host routes for tiny CPU inputs (`HOST_MAX`), against the reference, bit for bit.

pack_quantized, unpack_quantized, nvfp4_global_scale, nvfp4_quantize, gguf_dequantize, gptq_pack, gptq_decode,
awq_pack, awq_unpack, awq_decode, pack_nibbles and unpack_nibbles run on Python ints and floats up to `HOST_MAX`
CPU elements (`PACK_HOST_MAX` codes for gptq_pack). Each is forced both ways here (the thresholds of every codec
module patched to 0 and to 2**40, and left as they are), on edge values: the extremes of the code ranges, both
zeros, subnormals, float16 Inf and NaN fields, ties of the NVFP4 encodings, empty arrays, one-element shapes,
strided and misaligned tensors, the registry's own cases, and on invalid inputs, which must raise the
reference's error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from tests.helpers import bits, outcome, same_on_cpu
from torch_backend.codecs import awq, compressed_tensors, gguf, gptq, nibbles, nvfp4

F32 = np.float32
MODULES = (awq, compressed_tensors, gguf, gptq, nibbles, nvfp4)
THRESHOLDS = [(m, "HOST_MAX") for m in MODULES] + [(gptq, "PACK_HOST_MAX")]


@pytest.fixture(params=[None, 0, 1 << 40], ids=["as-is", "tensors", "host"])
def host_max(request, monkeypatch):
    """The thresholds as they are, 0 (every nonempty input on tensors) and 2**40 (every CPU input on the host)."""
    if request.param is not None:
        for m, name in THRESHOLDS:
            monkeypatch.setattr(m, name, request.param)
    return request.param


def _t(a):
    return torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a


def _check(name, *args, **kwargs):
    """The torch function `name` on copies of `args` against the reference: the same result bits, or the same
    error; the inputs unchanged."""
    args = [np.asarray(a) if isinstance(a, np.generic) else a for a in args]
    ref = outcome(getattr(R, name), *args, **kwargs)
    targs = [_t(a) for a in args]
    before = [bits(a) if isinstance(a, torch.Tensor) else None for a in targs]
    got = outcome(getattr(T, name), *targs, **kwargs)
    assert ref[0] == got[0], (ref, got)
    if ref[0] == "ok":
        same_on_cpu(ref[1], got[1])
    else:
        assert ref[1] == got[1]
    assert before == [bits(a) if isinstance(a, torch.Tensor) else None for a in targs]


# ---- compressed-tensors


SHAPES_2D = [(0, 0), (0, 5), (3, 0), (1, 1), (1, 35), (3, 37), (5, 7), (2, 64)]


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("dim", [0, 1])
def test_pack_unpack_quantized(host_max, bits, dim):
    rng = np.random.default_rng(bits * 10 + dim)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for shape in SHAPES_2D:
        q = rng.integers(lo, hi + 1, size=shape).astype(np.int8)
        if q.size:
            q.flat[0], q.flat[-1] = lo, hi
        _check("pack_quantized", q, bits=bits, packed_dim=dim)
        packed = R.pack_quantized(q, bits=bits, packed_dim=dim)
        _check("unpack_quantized", packed, bits=bits, shape=shape, packed_dim=dim)
        # every bit pattern of the used bits (the sign bit of the words included), padding kept zero
        words = rng.integers(-(2**31), 2**31, size=packed.shape, dtype=np.int64).astype(np.int32)
        codes = R.unpack_quantized(words & _used_mask(shape, bits, dim), bits=bits, shape=shape, packed_dim=dim)
        _check(
            "unpack_quantized",
            R.pack_quantized(codes, bits=bits, packed_dim=dim),
            bits=bits,
            shape=shape,
            packed_dim=dim,
        )
        if words.size:  # a set padding bit (where there is one), or a valid word
            _check("unpack_quantized", words, bits=bits, shape=shape, packed_dim=dim)
        if q.size:  # a code out of range, at the end and in the middle
            for bad in (lo - 1, hi + 1):
                if -128 <= bad <= 127:
                    w = q.copy()
                    w.flat[q.size // 2] = bad
                    _check("pack_quantized", w, bits=bits, packed_dim=dim)


def _used_mask(shape, bits, dim):
    """int32 masks of the stream bits that hold codes (the padding bits clear)."""
    rows, n = (shape[0], shape[1]) if dim == 1 else (shape[1], shape[0])
    words_n = -(-n * bits // 32)
    m = np.zeros((rows, words_n), np.int64)
    for k in range(words_n):
        used = min(32, max(0, n * bits - 32 * k))
        m[:, k] = (1 << used) - 1
    m = m.astype(np.uint32).view(np.int32)
    return m if dim == 1 else m.T


def test_compressed_tensors_invalid(host_max):
    _check("pack_quantized", np.int8([1, 2]), bits=4, packed_dim=1)
    _check("pack_quantized", np.int16([[1, 2]]), bits=4, packed_dim=1)
    _check("pack_quantized", np.int8([[1, 2]]), bits=9, packed_dim=1)
    _check("unpack_quantized", np.int32([[1]]), bits=4, shape=(1, 9), packed_dim=1)
    _check("unpack_quantized", np.int32([[-1]]), bits=4, shape=(1, 7), packed_dim=1)  # padding bits 28-31
    _check("unpack_quantized", np.int32([[0], [1 << 30]]), bits=5, shape=(2, 6), packed_dim=1)  # row 1, bit 30
    _check("unpack_quantized", np.int32([[0, 1 << 31 >> 31]]), bits=3, shape=(5, 2), packed_dim=0)


# ---- NVFP4


def _floats_around(scale, n, rng):
    """float32 values near the E2M1 grid times `scale` (ties, neighbours), both zeros and subnormals."""
    grid = np.float64([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    mids = (grid[:-1] + grid[1:]) / 2
    with np.errstate(over="ignore"):
        pool = (np.concatenate([grid, -grid, mids, -mids, [6.5, 7, 100, -100]]) * scale).astype(F32)
    pool = np.concatenate(
        [pool, np.nextafter(pool, F32(np.inf)), np.nextafter(pool, F32(-np.inf)), F32([0.0, -0.0, 1e-45, -1e-45])]
    ).astype(F32)
    return rng.choice(pool[np.isfinite(pool)], size=n).astype(F32)


G_VALUES = [1.0, 0.5, 3.0, 1e-3, 2.0**-126, 1e-45, 2.0**-127, 1e38, 3.4e38, 448.0 / 3.0, 0.1]


@pytest.mark.parametrize("direction", ["decode", "encode"])
def test_nvfp4_quantize(host_max, direction):
    rng = np.random.default_rng(7 if direction == "decode" else 8)
    for g in G_VALUES:
        for shape in [(16,), (1, 16), (2, 32), (3, 2, 16), (0,), (0, 16), (4, 0)]:
            n = int(np.prod(shape))
            for scale in (1.0, 1 / 448, 448.0 * 6, 1e-40, 3e38):
                x = _floats_around(scale, n, rng).reshape(shape)
                _check("nvfp4_quantize", x, F32(g), direction=direction)
        x = np.zeros((2, 16), F32)
        x[1] = -0.0
        _check("nvfp4_quantize", x, F32(g), direction=direction)
        x = F32([3.4e38, -3.4e38] + [1e-45] * 14)
        _check("nvfp4_quantize", x, F32(g), direction=direction)
    for g in (2.0**-128, 2.0**-149, 2.0**-120):  # 1 / g overflows float32 in the encode direction
        _check("nvfp4_quantize", np.ones(16, F32), F32(g), direction=direction)


def test_nvfp4_quantize_invalid(host_max):
    x = np.ones(16, F32)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[5] = bad
        _check("nvfp4_quantize", y, F32(1), direction="decode")
        _check("nvfp4_quantize", y[:15], F32(1), direction="decode")  # not finite, before the shape
        _check("nvfp4_quantize", x, F32(bad), direction="encode")
    _check("nvfp4_quantize", x[:15], F32(1), direction="decode")
    _check("nvfp4_quantize", F32(1.0), F32(1), direction="decode")
    _check("nvfp4_quantize", x, F32([1.0]), direction="decode")
    _check("nvfp4_quantize", x, F32(0.0), direction="decode")
    _check("nvfp4_quantize", x, F32(-0.0), direction="encode")
    _check("nvfp4_quantize", x, F32(1), direction="sideways")
    _check("nvfp4_quantize", x.astype(np.float64), F32(1), direction="decode")


@pytest.mark.parametrize("direction", ["decode", "encode"])
def test_nvfp4_global_scale(host_max, direction):
    rng = np.random.default_rng(3)
    for scale in (1.0, 2688.0, 1e-40, 1e-45, 3.4e38, 1e-38, 7.2e35, 1e-30):
        for shape in [(1,), (5,), (2, 3, 4), ()]:
            x = _floats_around(scale, int(np.prod(shape)), rng).reshape(shape)
            _check("nvfp4_global_scale", x, direction=direction)
    for x in (F32([0.0]), F32([-0.0, 0.0]), np.zeros((2, 2), F32), F32([-1e-45]), F32([-3.4028235e38, 1.0])):
        _check("nvfp4_global_scale", x, direction=direction)
    for x in (F32([]), np.zeros((3, 0), F32), F32([1.0, np.nan]), F32([np.inf]), F32([np.nan, np.inf]), F32([[1, 2]])):
        _check("nvfp4_global_scale", x, direction=direction)
    _check("nvfp4_global_scale", np.float64([1.0]), direction=direction)


# ---- GGUF


HALVES = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE01]


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_K"])
def test_gguf_dequantize(host_max, qtype):
    nbytes = {"Q8_0": 34, "Q4_0": 18, "Q4_K": 144}[qtype]
    rng = np.random.default_rng(nbytes)
    for shape in [(nbytes,), (1, nbytes), (2, nbytes), (1, 2 * nbytes), (2, 1, nbytes), (0, nbytes), (3, 0)]:
        for _ in range(3):
            data = rng.integers(0, 256, size=shape).astype(np.uint8)
            if data.size:
                rows = data.reshape(-1, nbytes)
                for r in range(rows.shape[0]):
                    for at in (0, 2) if qtype == "Q4_K" else (0,):
                        h = HALVES[rng.integers(len(HALVES))]
                        rows[r, at], rows[r, at + 1] = h & 0xFF, h >> 8
                if qtype == "Q8_0":  # the extreme codes
                    rows[:, 2], rows[:, 3], rows[:, 4] = 0x80, 0x7F, 0
                data = rows.reshape(shape)
            _check("gguf_dequantize", data, qtype)
    _check("gguf_dequantize", np.zeros(nbytes + 1, np.uint8), qtype)
    _check("gguf_dequantize", np.zeros((), np.uint8), qtype)
    _check("gguf_dequantize", np.zeros(nbytes, np.int8), qtype)
    _check("gguf_dequantize", np.zeros(nbytes, np.uint8), "Q2_K")


# ---- AWQ


@pytest.mark.parametrize("name", ["awq_unpack", "awq_decode"])
def test_awq(host_max, name):
    rng = np.random.default_rng(11)
    halves = np.uint16(HALVES[:9]).view(np.float16)  # the finite ones
    for in_f, cols, groups in [(1, 1, 1), (2, 2, 2), (9, 2, 3), (6, 1, 2), (0, 1, 1), (0, 2, 3), (4, 4, 1), (40, 1, 5)]:
        qweight = rng.integers(-(2**31), 2**31, size=(in_f, cols), dtype=np.int64).astype(np.int32)
        qzeros = rng.integers(-(2**31), 2**31, size=(groups, cols), dtype=np.int64).astype(np.int32)
        if qweight.size:
            qweight.flat[0], qweight.flat[-1] = -(2**31), 2**31 - 1
        qzeros.flat[0] = -1
        scales = rng.choice(halves, size=(groups, 8 * cols)).astype(np.float16)
        _check(name, qweight, qzeros, scales)
    qweight, qzeros = np.zeros((2, 1), np.int32), np.zeros((1, 1), np.int32)
    scales = np.ones((1, 8), np.float16)
    for bad in (np.inf, -np.inf, np.nan):
        s = scales.copy()
        s[0, 3] = bad
        _check(name, qweight, qzeros, s)
        _check(name, qweight, qzeros, np.concatenate([s, s], axis=1))  # not finite, before the shape
    _check(name, qweight, qzeros, np.ones((1, 16), np.float16))
    _check(name, qweight, np.zeros((2, 1), np.int32), scales)
    _check(name, qweight, qzeros, np.ones((3, 8), np.float16))
    _check(name, qweight, qzeros, scales.astype(F32))
    _check(name, qweight.astype(np.int64), qzeros, scales)
    _check(name, qweight[0], qzeros, scales)


# ---- GPTQ


def _registry(name):
    """The registry's strategy cases (60 of them) and bad inputs of entry `name`, through the torch backend on
    the CPU against the reference (`check_case`: the same bits or the same error, the inputs unchanged)."""
    from hypothesis import given, settings

    from spec.backends import TORCH
    from spec.conformance import check_case
    from spec.registry import REGISTRY

    entry = REGISTRY[name]

    @settings(max_examples=60, deadline=None, database=None)
    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, "cpu")

    check()
    for bad in entry.bad:
        check_case(entry, bad.case, TORCH, "cpu")


@pytest.mark.parametrize("name", ["gptq_pack", "gptq_decode", "awq_pack", "pack_nibbles"])
def test_registry_cases(host_max, name):
    _registry(name)


def _strided(a):
    """Torch tensors with `a`'s values laid out otherwise: a transposed copy, a view at an odd storage offset
    (no view of it as wider words: `view_as` copies it first) and a negative view of `-a`, each made afresh."""
    yield torch.from_numpy(np.ascontiguousarray(np.swapaxes(a, 0, -1))).transpose(0, -1) if a.ndim else _t(a)
    flat = np.concatenate([np.zeros(1, a.dtype), a.reshape(-1)])
    yield torch.from_numpy(flat)[1:].view(a.shape)
    yield torch._neg_view(torch.from_numpy(np.negative(a)))  # unsigned: modulo 256, and back


def _check_layouts(name, *args, **kwargs):
    """`_check`, then each argument in turn replaced by strided torch tensors of the same values."""
    _check(name, *args, **kwargs)
    ref = outcome(getattr(R, name), *args, **kwargs)
    for i, a in enumerate(args):
        for t in _strided(a):
            targs = [_t(b) for b in args]
            targs[i] = t
            got = outcome(getattr(T, name), *targs, **kwargs)
            assert ref[0] == got[0], (ref, got)
            if ref[0] == "ok":
                same_on_cpu(ref[1], got[1])
            else:
                assert ref[1] == got[1]


F16_EDGES = np.uint16([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x3555])


def _gptq_layouts(bits):
    per = 32 // bits
    return [(per, per, 1), (per, 2 * per, 3), (2 * per, per, 2), (per, 0, 1), (0, per, 2), (2 * per, 3 * per, 2)]


@pytest.mark.parametrize("zero_format", ["v1", "v2"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_gptq_pack(host_max, bits, zero_format):
    rng = np.random.default_rng(bits * 2 + (zero_format == "v1"))
    delta, hi = int(zero_format == "v1"), 2**bits - 1
    halves = F16_EDGES.view(np.float16)
    for out_f, in_f, groups in _gptq_layouts(bits):
        codes = rng.integers(0, hi + 1, size=(out_f, in_f)).astype(np.uint8)
        if codes.size:
            codes.flat[0], codes.flat[-1] = hi, 0
        zeros = rng.integers(delta, hi + delta + 1, size=(out_f, groups)).astype(np.int32)
        if zeros.size:
            zeros.flat[0], zeros.flat[-1] = delta, hi + delta
        scales = rng.choice(halves, size=(out_f, groups)).astype(np.float16)
        g_idx = rng.integers(0, groups, size=in_f).astype(np.int32)
        if in_f:
            g_idx[0], g_idx[-1] = 0, groups - 1
        _check_layouts("gptq_pack", codes, scales, zeros, g_idx, bits=bits, zero_format=zero_format)
        _check("gptq_pack", codes, scales, zeros, np.sort(g_idx), bits=bits, zero_format=zero_format)
        if codes.size and bits < 8:  # a code out of range, in the middle
            bad = codes.copy()
            bad.flat[codes.size // 2] = hi + 1
            _check("gptq_pack", bad, scales, zeros, g_idx, bits=bits, zero_format=zero_format)
            _check("gptq_pack", bad, scales.astype(F32), zeros, g_idx, bits=bits, zero_format=zero_format)
        if zeros.size:  # a zero point out of range, below and above
            for z in (delta - 1, hi + delta + 1):
                bad = zeros.copy()
                bad.flat[zeros.size // 2] = z
                _check("gptq_pack", codes, scales, bad, g_idx, bits=bits, zero_format=zero_format)
                _check("gptq_pack", codes, scales, bad, g_idx + groups, bits=bits, zero_format=zero_format)
        if in_f:  # a group out of range, below and above
            for g in (-1, groups):
                bad = g_idx.copy()
                bad[in_f // 2] = g
                _check("gptq_pack", codes, scales, zeros, bad, bits=bits, zero_format=zero_format)
        if scales.size:
            for v in (np.inf, -np.inf, np.nan):
                bad = scales.copy()
                bad.flat[-1] = v
                _check("gptq_pack", codes, bad, zeros, g_idx, bits=bits, zero_format=zero_format)
                _check("gptq_pack", codes, bad, zeros + 2**bits, g_idx, bits=bits, zero_format=zero_format)


def test_gptq_pack_invalid(host_max):
    codes, scales = np.zeros((8, 8), np.uint8), np.ones((8, 1), np.float16)
    zeros, g_idx = np.ones((8, 1), np.int32), np.zeros(8, np.int32)
    v1 = {"bits": 4, "zero_format": "v1"}
    _check("gptq_pack", codes.astype(np.int8), scales, zeros, g_idx, **v1)
    _check("gptq_pack", codes, scales.astype(F32), zeros, g_idx, **v1)
    _check("gptq_pack", codes, scales, zeros.astype(np.int64), g_idx, **v1)
    _check("gptq_pack", codes, scales, zeros, g_idx.astype(np.int64), **v1)
    _check("gptq_pack", codes[0], scales, zeros, g_idx, **v1)
    _check("gptq_pack", codes[:4], scales[:4], zeros[:4], g_idx, **v1)
    _check("gptq_pack", codes[:, :4], scales, zeros, g_idx[:4], **v1)
    _check("gptq_pack", codes, scales[:4], zeros, g_idx, **v1)
    _check("gptq_pack", codes, scales[:, :0], zeros[:, :0], g_idx, **v1)
    _check("gptq_pack", codes, scales[:, 0], zeros, g_idx, **v1)
    _check("gptq_pack", codes, scales, zeros[:4], g_idx, **v1)
    _check("gptq_pack", codes, scales, zeros, g_idx[:4], **v1)
    _check("gptq_pack", codes, scales, zeros, g_idx, bits=3, zero_format="v1")
    _check("gptq_pack", codes, scales, zeros, g_idx, bits=4, zero_format="v3")
    _check("gptq_pack", codes + 16, scales[:4], zeros, g_idx, **v1)  # the codes' range before the scales' shape
    _check("gptq_pack", codes, scales, zeros - 1, g_idx[:4], **v1)  # the zeros' range before g_idx's shape
    _check("gptq_pack", codes, scales, zeros * 16, g_idx + 1, **v1)  # the zeros' range before g_idx's range
    _check("gptq_pack", [[0] * 8] * 8, scales, zeros, g_idx, **v1)


@pytest.mark.parametrize("zero_format", ["v1", "v2"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_gptq_decode(host_max, bits, zero_format):
    rng = np.random.default_rng(bits * 3 + (zero_format == "v1"))
    per = 32 // bits
    halves = F16_EDGES.view(np.float16)
    for out_f, in_f, groups in _gptq_layouts(bits):
        words = rng.integers(-(2**31), 2**31, size=(in_f // per, out_f), dtype=np.int64).astype(np.int32)
        if words.size:
            words.flat[0], words.flat[-1] = -(2**31), 2**31 - 1
        qzeros = rng.integers(-(2**31), 2**31, size=(groups, out_f // per), dtype=np.int64).astype(np.int32)
        if qzeros.size:
            qzeros.flat[0], qzeros.flat[-1] = -1, 0
        scales = rng.choice(halves, size=(groups, out_f)).astype(np.float16)
        g_idx = rng.integers(0, groups, size=in_f).astype(np.int32)
        _check_layouts("gptq_decode", words, qzeros, scales, g_idx, bits=bits, zero_format=zero_format)
        _check("gptq_decode", words, qzeros, scales, np.sort(g_idx), bits=bits, zero_format=zero_format)
        _check("gptq_unpack", words, qzeros, scales, g_idx, bits=bits, zero_format=zero_format)
        if in_f:  # a group out of range, below and above
            for g in (-1, groups):
                bad = g_idx.copy()
                bad[in_f // 2] = g
                _check("gptq_decode", words, qzeros, scales, bad, bits=bits, zero_format=zero_format)
        if scales.size:
            for v in (np.inf, -np.inf, np.nan):
                bad = scales.copy()
                bad.flat[-1] = v
                _check("gptq_decode", words, qzeros, bad, g_idx, bits=bits, zero_format=zero_format)
                _check("gptq_decode", words, qzeros, bad, g_idx[:0], bits=bits, zero_format=zero_format)


def test_gptq_decode_invalid(host_max):
    words, qzeros = np.zeros((1, 8), np.int32), np.zeros((1, 1), np.int32)
    scales, g_idx = np.ones((1, 8), np.float16), np.zeros(8, np.int32)
    v2 = {"bits": 4, "zero_format": "v2"}
    _check("gptq_decode", words.astype(np.uint32), qzeros, scales, g_idx, **v2)
    _check("gptq_decode", words, qzeros.astype(np.int64), scales, g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales.astype(F32), g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales, g_idx.astype(np.int16), **v2)
    _check("gptq_decode", words[0], qzeros, scales, g_idx, **v2)
    _check("gptq_decode", words[:, :4], qzeros, scales[:, :4], g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales[:, :4], g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales[:0], g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales[0], g_idx, **v2)
    _check("gptq_decode", words, np.zeros((2, 1), np.int32), scales, g_idx, **v2)
    _check("gptq_decode", words, qzeros, scales, g_idx[:4], **v2)
    _check("gptq_decode", words, qzeros, scales, g_idx + 1, **v2)
    _check("gptq_decode", words, qzeros, scales, g_idx - 1, bits=2, zero_format="v2")  # 8 is not 16 codes
    _check("gptq_decode", words, qzeros, scales * np.inf, g_idx[:4], **v2)  # not finite, before g_idx's shape
    _check("gptq_decode", words, qzeros, scales, g_idx, bits=4, zero_format="v0")


# ---- AWQ packing


def test_awq_pack(host_max):
    rng = np.random.default_rng(5)
    halves = F16_EDGES.view(np.float16)
    for out_f, in_f, groups in [(8, 1, 1), (8, 6, 3), (16, 9, 3), (24, 4, 2), (8, 0, 1), (8, 0, 3), (0, 4, 2)]:
        codes = rng.integers(0, 16, size=(out_f, in_f)).astype(np.uint8)
        zeros = rng.integers(0, 16, size=(out_f, groups)).astype(np.int32)
        if codes.size:
            codes.flat[0], codes.flat[-1], zeros.flat[0], zeros.flat[-1] = 15, 0, 15, 0
        scales = rng.choice(halves, size=(out_f, groups)).astype(np.float16)
        _check_layouts("awq_pack", codes, scales, zeros)
        if codes.size:
            bad = codes.copy()
            bad.flat[codes.size // 2] = 16
            _check("awq_pack", bad, scales, zeros)
            _check("awq_pack", bad, scales[:, :0], zeros)  # the codes' range before the scales' shape
        if zeros.size:
            for z in (-1, 16):
                bad = zeros.copy()
                bad.flat[zeros.size // 2] = z
                _check("awq_pack", codes, scales, bad)
            for v in (np.inf, -np.inf, np.nan):
                bad = scales.copy()
                bad.flat[-1] = v
                _check("awq_pack", codes, bad, zeros)
                _check("awq_pack", codes, bad, zeros[:, :0])  # not finite, before the zeros' shape
    codes, scales, zeros = np.zeros((8, 4), np.uint8), np.ones((8, 2), np.float16), np.zeros((8, 2), np.int32)
    _check("awq_pack", codes[:4], scales[:4], zeros[:4])
    _check("awq_pack", codes[0], scales, zeros)
    _check("awq_pack", codes, scales[:, :1].repeat(3, axis=1), zeros)
    _check("awq_pack", codes, scales[:4], zeros)
    _check("awq_pack", codes, scales[:, :0], zeros[:, :0])
    _check("awq_pack", codes, scales, zeros[:, :1])
    _check("awq_pack", codes.astype(np.int8), scales, zeros)
    _check("awq_pack", codes, scales.astype(F32), zeros)
    _check("awq_pack", codes, scales, zeros.astype(np.uint8))


# ---- nibbles


@pytest.mark.parametrize("order", ["low_first", "high_first"])
def test_unpack_nibbles(host_max, order):
    every = np.arange(256, dtype=np.uint8)
    for packed in (every, every.reshape(16, 16), every[:1], every[:0], np.zeros((1, 1, 0), np.uint8), every[::-3]):
        _check("unpack_nibbles", packed, order=order)
        _check("unpack_nibbles", packed.T, order=order)
    _check("unpack_nibbles", np.uint8(7), order=order)
    _check("unpack_nibbles", every.astype(np.int8), order=order)
    _check("unpack_nibbles", every, order="middle_first")


@pytest.mark.parametrize("order", ["low_first", "high_first"])
def test_pack_nibbles(host_max, order):
    every = np.arange(256, dtype=np.uint8)
    pairs = np.stack([every & 15, every >> 4], axis=-1)  # every pair of codes
    for codes in (pairs.reshape(-1), pairs, pairs.reshape(16, 16, 2), pairs[:1], pairs[:0], np.zeros((3, 0), np.uint8)):
        _check_layouts("pack_nibbles", codes, order=order)
    for codes in (np.uint8(7), np.uint8(16), every[:3] & 15, every[:0].reshape(0, 0, 0, 1)):
        _check("pack_nibbles", codes, order=order)  # 0-d, or an odd last axis
    for at in (0, 5, 511):
        bad = pairs.reshape(-1).copy()
        bad[at] = 16 + at % 240
        _check("pack_nibbles", bad, order=order)
        _check("pack_nibbles", bad[:-1], order=order)  # a code above 15, before the odd last axis
    _check("pack_nibbles", pairs.astype(np.int8), order=order)
    _check("pack_nibbles", pairs, order="middle_first")


def test_host_route_taken():
    """The default threshold sends the registry's small inputs to the host: fresh tensors of the right kind."""
    q = torch.tensor([[-8, 7, 0, 1]], dtype=torch.int8)
    words = T.pack_quantized(q, bits=4, packed_dim=1)
    assert words.dtype == torch.int32 and words.is_contiguous() and not words.requires_grad
    words += 1  # a writable tensor of its own
    assert torch.equal(q, torch.tensor([[-8, 7, 0, 1]], dtype=torch.int8))
