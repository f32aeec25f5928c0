"""The byte-level routes of the torch codecs and the host routes of post-training, against the reference.

The registry's strategies draw small arrays with few distinct values, so `test_properties` checks these routes on
small inputs only. Here they run on larger inputs: every code and zero point value, every byte and word pattern
(signed words, float16 NaN and infinity scales in the GGUF blocks), float32 rows full of ties, signed zeros,
subnormals and flat blocks for Q4_K's ordered sums, and square roots at and next to float32 midpoints.
"""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest
import torch

import reference.codecs as RC
import torch_backend.codecs as TC
from torch_backend.core import _host, transcendental
from torch_backend.core.transcendental import cr_sqrt


def _bits(a) -> bytes:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint8).tobytes() + str(a.shape).encode()


def _same(got, want):
    got = got if isinstance(got, tuple | list) else (got,)
    want = want if isinstance(want, tuple | list) else (want,)
    assert [_bits(g) for g in got] == [_bits(w) for w in want]


def _torch(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


@pytest.mark.parametrize(("out_f", "in_f", "groups"), [(64, 96, 3), (8, 1, 1), (8, 0, 1), (0, 4, 2), (256, 32, 32)])
def test_awq_byte_routes_match_the_reference(out_f, in_f, groups):
    rng = np.random.default_rng(out_f + in_f)
    codes = rng.integers(0, 16, (out_f, in_f), dtype=np.uint8)
    scales = rng.standard_normal((out_f, groups)).astype(np.float16)
    zeros = rng.integers(0, 16, (out_f, groups), dtype=np.int32)
    _same(TC.awq_pack(*_torch(codes, scales, zeros)), RC.awq_pack(codes, scales, zeros))
    strided = torch.from_numpy(codes.T.copy()).T
    _same(TC.awq_pack(strided, *_torch(scales, zeros)), RC.awq_pack(codes, scales, zeros))
    words = rng.integers(-(2**31), 2**31, (in_f, out_f // 8), dtype=np.int64).astype(np.int32)  # any patterns
    qzeros = rng.integers(-(2**31), 2**31, (groups, out_f // 8), dtype=np.int64).astype(np.int32)
    packed = (words, qzeros, np.ascontiguousarray(scales.T))
    _same(TC.awq_unpack(*_torch(*packed)), RC.awq_unpack(*packed))
    _same(TC.awq_decode(*_torch(*packed)), RC.awq_decode(*packed))
    _same(TC.awq_decode(torch.from_numpy(words.T.copy()).T, *_torch(*packed[1:])), RC.awq_decode(*packed))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("zero_format", ["v1", "v2"])
@pytest.mark.parametrize(("out_f", "in_f", "groups"), [(64, 128, 4), (32, 32, 1), (32, 0, 1)])
def test_gptq_byte_routes_match_the_reference(bits, zero_format, out_f, in_f, groups):
    rng = np.random.default_rng(bits * 7 + out_f)
    delta = 1 if zero_format == "v1" else 0
    codes = rng.integers(0, 2**bits, (out_f, in_f), dtype=np.uint8)
    codes[0] = 2**bits - 1  # the top field of every word
    scales = rng.standard_normal((out_f, groups)).astype(np.float16)
    zeros = rng.integers(delta, 2**bits + delta, (out_f, groups), dtype=np.int32)
    zeros[0] = 2**bits - 1 + delta  # 256 for 8-bit v1: wraps in uint8 before the offset is taken
    g_idx = rng.integers(0, groups, in_f, dtype=np.int32)
    kw = {"bits": bits, "zero_format": zero_format}
    args = (codes, scales, zeros, g_idx)
    _same(TC.gptq_pack(*_torch(*args), **kw), RC.gptq_pack(*args, **kw))
    per = 32 // bits
    words = rng.integers(-(2**31), 2**31, (in_f // per, out_f), dtype=np.int64).astype(np.int32)
    qzeros = rng.integers(-(2**31), 2**31, (groups, out_f // per), dtype=np.int64).astype(np.int32)
    packed = (words, qzeros, np.ascontiguousarray(scales.T), g_idx)
    _same(TC.gptq_unpack(*_torch(*packed), **kw), RC.gptq_unpack(*packed, **kw))
    _same(TC.gptq_decode(*_torch(*packed), **kw), RC.gptq_decode(*packed, **kw))


def _hard_rows(n_blocks, block, seed):
    """float32 rows of GGUF blocks: ties, both zeros, subnormals, huge values, flat and one-sided blocks."""
    rng = np.random.default_rng(seed)
    levels = np.float32([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 3.0, 1e-40, -1e-40, 6e4, -6e4, 2.0**-24, 7.5])
    x = rng.choice(levels, size=(n_blocks, block)).astype(np.float32)
    spread = (rng.standard_normal((n_blocks, block)) * rng.choice([1e-3, 1.0, 100.0], (n_blocks, 1))).astype(np.float32)
    x = np.where(rng.random(x.shape) < 0.4, spread, x).astype(np.float32)
    x[0] = 0.0
    x[1] = -0.0
    x[2] = 2.5  # flat
    x[3] = np.abs(x[3])  # no negative value: the minimum is clamped to zero
    x[4, ::2] = 1e-40
    return x


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_K"])
def test_gguf_routes_match_the_reference(qtype):
    block, nbytes = RC.gguf.QTYPES[qtype]
    x = _hard_rows(48 if qtype == "Q4_K" else 256, block, seed=len(qtype)).reshape(-1, 2 * block)
    got = TC.gguf_quantize(torch.from_numpy(x), qtype)
    want = RC.gguf_quantize(x, qtype)
    _same(got, want)
    data = np.random.default_rng(3).integers(0, 256, (64, 2 * nbytes), dtype=np.uint8)  # any bytes
    data[:, :2] = [[0x00, 0x7C], [0x00, 0xFC], [0x01, 0x7E], [0x01, 0x7C]] * 16  # +inf, -inf, NaN payloads
    data = np.concatenate([data, want.reshape(-1, 2 * nbytes)])
    _same(TC.gguf_dequantize(torch.from_numpy(data), qtype), RC.gguf_dequantize(data, qtype))


def _float32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def test_host_square_root_is_cr_sqrt(monkeypatch):
    """`sqrt_float32` (`cr_sqrt` on Python floats) against `cr_sqrt`'s tensor route: products of float32
    values, squared float32 midpoints (exact ties) and their float64 neighbours, subnormals, both ends."""
    rng = random.Random(0)
    values = [0.0, 5e-324, 2.0**-1022, 1.0, 2.0, 2.0**254, 1e-8, 1.2e77]
    for _ in range(4000):
        values.append(math.ldexp(rng.random(), rng.randint(-1074, 254)))
        a, b = (_float32(rng.randrange(0x00000001, 0x7F800000)) for _ in range(2))
        values.append(a * b)
        mid = (rng.randrange(2**24, 2**25) | 1) * 2.0 ** rng.randint(-140, 100)
        square = mid * mid
        values += [square, math.nextafter(square, 0.0), math.nextafter(square, math.inf)]
    values = [v for v in values if 0.0 <= v <= 2.0**254]
    monkeypatch.setattr(transcendental, "HOST_MAX", 0)
    want = cr_sqrt(torch.tensor(values, dtype=torch.float64)).tolist()
    got = [_host.sqrt_float32(v) for v in values]
    assert [struct.pack("<f", g) for g in got] == [struct.pack("<f", w) for w in want]


def test_cr_sqrt_host_route_is_the_tensor_route_errors_included():
    """`cr_sqrt` up to `HOST_MAX` CPU elements (Python floats) against its tensor route: every float32 class in
    blocks of the largest size the host route takes, float64 squares of midpoints (ties), and the errors of the
    values it hands over to the checks."""
    rng = np.random.default_rng(11)
    bits = np.concatenate([[0, 1, 2, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0x80000000]] + [
        rng.integers(0, 0x7F800000, 4000, dtype=np.int64)
    ]).astype(np.uint32)  # fmt: skip
    values = bits.view(np.float32)
    n = transcendental.HOST_MAX
    mids = [((2 * k + 1) * 2.0**-24 + 1.0) ** 2 for k in range(n)]  # (1 + odd * 2**-24)**2: exact float64 ties
    blocks = [torch.from_numpy(values[i : i + n].copy()).reshape(-1, 1) for i in range(0, len(values), n)]
    blocks += [torch.tensor(mids, dtype=torch.float64), torch.zeros(0, 3), torch.tensor(2.0)]

    def tensor_route(x):
        saved, transcendental.HOST_MAX = transcendental.HOST_MAX, -1
        try:
            return cr_sqrt(x)
        finally:
            transcendental.HOST_MAX = saved

    for block in blocks:
        _same(cr_sqrt(block), tensor_route(block))
    for bad in (float("inf"), float("nan"), -1.0, -1e-45):
        x = torch.tensor([4.0, bad])
        with pytest.raises(ValueError) as want:
            tensor_route(x)
        with pytest.raises(ValueError) as got:
            cr_sqrt(x)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("groups", [1, 4])
def test_adaround_per_group_scales_match_the_reference(groups):
    """AdaRound's scales and zero points per group broadcast (one group) or repeat (more) against the weights; the
    weights sit on integers and midpoints of `w / s`, with both zeros and clipped codes, and Adam's square roots
    take `cr_sqrt`'s tensor route beyond its `HOST_MAX` weights."""
    import reference as R
    import torch_backend as T

    rng = np.random.default_rng(groups)
    out_f, d = 16, 64
    scale = rng.choice(np.float32([0.5, 0.25, 0.1, 3.0]), (out_f, groups)).astype(np.float32)
    steps = rng.integers(-12, 12, (out_f, d)).astype(np.float32) * rng.choice(np.float32([1.0, 0.5]), (out_f, d))
    w = (steps * np.repeat(scale, d // groups, axis=1)).astype(np.float32)
    w[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    zero = rng.integers(-3, 4, (out_f, groups)).astype(np.int32)
    v = (rng.standard_normal((out_f, d)) * 3).astype(np.float32)
    v[1, :3] = [0.0, -0.0, 1e-40]
    m = (rng.standard_normal((out_f, d)) * 1e-3).astype(np.float32)
    s = np.abs(rng.standard_normal((out_f, d)) * 1e-4).astype(np.float32)
    h = rng.standard_normal((d, d))
    h = (h @ h.T).astype(np.float64)
    t = _torch
    _same(T.adaround_init(*t(w, scale)), R.adaround_init(w, scale))
    kw = {"qmin": -8, "qmax": 7}
    _same(T.adaround_quantize(*t(w, v, scale, zero), **kw), R.adaround_quantize(w, v, scale, zero, **kw))
    for beta in (None, 4.0):
        kw = {"step": 3, "qmin": -8, "qmax": 7, "beta": beta}
        got = T.adaround_step(*t(w, h, v, m, s, scale, zero), **kw)
        _same(tuple(got), tuple(R.adaround_step(w, h, v, m, s, scale, zero, **kw)))


def _adaround_v(n, seed, spread):
    """`n` float32 rounding variables around the clip's interval: its ends and their neighbours exactly, signed
    zeros, subnormals, and a `spread`-wide cloud (wide: few pass the clip, the subset route; narrow: the full one)."""
    from torch_backend.posttraining import adaround

    rng = np.random.default_rng(seed)
    v = (rng.standard_normal(n) * spread).astype(np.float32)
    specials = [0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38]
    for zeta, gamma in ((1.1, -0.1), (1.5, -0.5)):
        c, g = np.float32(zeta - gamma), np.float32(gamma)
        lo, hi = adaround._interval(float(c), float(g))
        for x in (lo, hi):
            specials += [x, float(np.nextafter(np.float32(x), np.float32(np.inf))),
                         float(np.nextafter(np.float32(x), np.float32(-np.inf)))]  # fmt: skip
    v[: len(specials)] = specials
    return v


@pytest.mark.parametrize("subset_max", [-1.0, 0.5, 2.0])
@pytest.mark.parametrize("spread", [1.0, 300.0])
def test_adaround_clip_interval_routes_match_the_reference(subset_max, spread, monkeypatch):
    """The sigmoid computed only inside the clip's interval (`adaround._interval`, found by bisection) gives the
    reference's bits, at the interval's ends and just outside, for every VJP and the step; forced both ways."""
    import reference as R
    import torch_backend as T
    from torch_backend.posttraining import adaround

    monkeypatch.setattr(adaround, "SUBSET_MIN", 1024)
    monkeypatch.setattr(adaround, "SUBSET_MAX", subset_max)
    monkeypatch.setattr(adaround, "SAMPLE_STEP", 7)
    n = 1 << 12
    v = _adaround_v(n, 7, spread).reshape(64, 64)
    rng = np.random.default_rng(3)
    grad = rng.standard_normal(v.shape).astype(np.float32)
    grad[0, :4] = [0.0, -0.0, 1e-45, -3.0]
    for kw in ({}, {"zeta": 1.5, "gamma": -0.5}):
        _same(T.rectified_sigmoid(*_torch(v), **kw), R.rectified_sigmoid(v, **kw))
        _same(T.rectified_sigmoid_vjp(*_torch(grad, v), **kw), R.rectified_sigmoid_vjp(grad, v, **kw))
        for g0 in (np.float32(1.0), np.float32(-2.5), np.float32(0.0)):
            for beta in (1.0, 2.5):
                want = R.adaround_regularizer_vjp(g0, v, beta=beta, **kw)
                _same(T.adaround_regularizer_vjp(torch.tensor(g0), torch.from_numpy(v), beta=beta, **kw), want)
    out_f, d, groups = 64, 64, 4
    scale = rng.choice(np.float32([0.5, 0.25, 0.1, 3.0]), (out_f, groups)).astype(np.float32)
    w = (rng.integers(-12, 12, (out_f, d)) * np.repeat(scale, d // groups, axis=1)).astype(np.float32)
    zero = rng.integers(-3, 4, (out_f, groups)).astype(np.int32)
    m = (rng.standard_normal((out_f, d)) * 1e-3).astype(np.float32)
    s = np.abs(rng.standard_normal((out_f, d)) * 1e-4).astype(np.float32)
    h = rng.standard_normal((d, d))
    h = (h @ h.T).astype(np.float64)
    for beta in (None, 4.0):
        kw = {"step": 3, "qmin": -8, "qmax": 7, "beta": beta, "lam": 0.5}
        got = T.adaround_step(*_torch(w, h, v, m, s, scale, zero), **kw)
        _same(tuple(got), tuple(R.adaround_step(w, h, v, m, s, scale, zero, **kw)))


def test_adaround_clip_interval_is_exact():
    """The interval's ends pass the clip and their outer neighbours do not (the bisection's claim, checked
    directly by the reference)."""
    import reference as R
    from torch_backend.posttraining import adaround

    for zeta, gamma in ((1.1, -0.1), (1.5, -0.5), (100.0, -100.0), (1.0000001, -1e-6)):
        c, g = np.float32(zeta - gamma), np.float32(gamma)
        lo, hi = adaround._interval(float(c), float(g))
        lo, hi = np.float32(lo), np.float32(hi)
        inside = np.float32([lo, hi])
        outside = np.float32([np.nextafter(lo, np.float32(-np.inf)), np.nextafter(hi, np.float32(np.inf))])
        ones = np.ones(2, np.float32)
        assert np.all(R.rectified_sigmoid_vjp(ones, inside, zeta=zeta, gamma=gamma) != 0)
        assert np.all(R.rectified_sigmoid_vjp(ones, outside, zeta=zeta, gamma=gamma) == 0)
        assert list(R.rectified_sigmoid(outside, zeta=zeta, gamma=gamma)) == [0.0, 1.0]


@pytest.mark.parametrize("quantize_min", [0, 1 << 30])
@pytest.mark.parametrize(("qmin", "qmax"), [(-8, 7), (0, 255), (-(2**15), 2**16 - 1), (0, 0), (-(2**15), -(2**15))])
@pytest.mark.parametrize("groups", [1, 2, 64])
def test_adaround_quantize_float32_route_matches_the_reference(quantize_min, qmin, qmax, groups, monkeypatch):
    """`adaround_quantize` in float32 over groups (floor clamped first) against the float64 reference, with
    huge, tiny, zero and signed-zero weights, subnormal scales (`w / s` overflowing to inf) and v = +-0."""
    import reference as R
    import torch_backend as T
    from torch_backend.posttraining import adaround

    monkeypatch.setattr(adaround, "QUANTIZE_MIN", quantize_min)
    rng = np.random.default_rng(groups)
    rows = np.float32([1e-30, 1, 1e30, 3.4e38, 1e-45, 0, 1, -0.0])
    w = ((rng.random((8, 64 * groups)) * 2 - 1) * rows[:, None]).astype(np.float32)
    srows = np.float32([1, 1e-40, 1, 1e-3, 1, 1, 1e-38, 1])
    scale = (rng.random((8, groups)) * srows[:, None] + np.float32(1e-45)).astype(np.float32)
    zero = rng.integers(qmin, qmax + 1, (8, groups)).astype(np.int32)
    v = rng.standard_normal(w.shape).astype(np.float32)
    v[0, :3] = [-0.0, 0.0, -1e-45]
    kw = {"qmin": qmin, "qmax": qmax}
    _same(T.adaround_quantize(*_torch(w, v, scale, zero), **kw), R.adaround_quantize(w, v, scale, zero, **kw))


@pytest.mark.parametrize("alpha", [0.0, 1e-46, 2.0**-150, 2.0**-149, 0.5, 1.0])
def test_awq_scales_zero_exponent_is_all_ones(alpha):
    """`awq_scales` returns ones without powers exactly when fl32(alpha) = 0 (alpha = 0, 1e-46, 2**-150: a tie
    rounded to the even 0), and takes the powers otherwise (2**-149, the smallest subnormal, is not 0); zeros,
    -0.0, subnormals and large activation scales, against the reference."""
    import reference.posttraining as RP
    import torch_backend.posttraining as TP

    rng = np.random.default_rng(3)
    s = rng.choice(np.float32([0.0, -0.0, 1e-45, 3e-39, 1e-4, 0.5, 1.0, 7.0, 3e38]), size=(1 << 14) + 3)
    s = np.where(rng.random(s.size) < 0.3, rng.random(s.size).astype(np.float32) * 100, s).astype(np.float32)
    for x in (s, np.float32([0.0]), np.float32([-0.0, 2.0])):
        _same(TP.awq_scales(torch.from_numpy(x), alpha), RP.awq_scales(x, alpha))
    bad = s.copy()
    bad[5] = np.float32(-1.0)
    for a in (alpha, 2.0):
        with pytest.raises(ValueError) as want:
            RP.awq_scales(bad, a)
        with pytest.raises(ValueError) as got:
            TP.awq_scales(torch.from_numpy(bad), a)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("words_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("bits", list(range(1, 9)))
def test_pack_quantized_words_match_the_reference(words_min, bits, monkeypatch):
    """`pack_quantized` by whole words (periods of lcm(bits, 32) bits) forced both ways, along both dims, for
    lengths that end mid-period and mid-word, every code (the extremes included), and its error past the range."""
    from torch_backend.codecs import compressed_tensors

    if words_min is not None:
        monkeypatch.setattr(compressed_tensors, "WORDS_MIN", words_min)
    rng = np.random.default_rng(bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for shape in ((1, 2), (3, 33), (37, 5), (1000, 7), (129, 70)):
        q = rng.integers(lo, hi + 1, shape).astype(np.int8)
        q.reshape(-1)[:2] = [lo, hi]
        for dim in (0, 1):
            got = TC.pack_quantized(torch.from_numpy(q), bits=bits, packed_dim=dim)
            _same(got, RC.pack_quantized(q, bits=bits, packed_dim=dim))
            back = TC.unpack_quantized(got, bits=bits, shape=shape, packed_dim=dim)
            _same(back, q)
    q = rng.integers(lo, hi + 1, (300, 20)).astype(np.int8)
    q[123, 4] = hi + 1 if bits < 8 else lo  # past the range (8 bits: every int8 is valid)
    outcomes = []
    for fn, arg in ((RC.pack_quantized, q), (TC.pack_quantized, torch.from_numpy(q))):
        try:
            outcomes.append(("ok", _bits(fn(arg, bits=bits, packed_dim=0))))
        except ValueError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("live_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("mix", ["saturated", "mixed", "live"])
def test_adaround_regularizer_skips_saturated_terms(live_min, mix, monkeypatch):
    """`adaround_regularizer` takes powers only where u = |2h - 1| != 1 (forced both ways): all saturated (the sum
    of nothing: +0.0), mixed (h = 0, h = 1, h just inside, and h so small that 2h - 1 rounds to -1), all live;
    several exponents, against the reference."""
    import reference.posttraining as RP
    import torch_backend.posttraining as TP
    from torch_backend.posttraining import adaround

    if live_min is not None:
        monkeypatch.setattr(adaround, "LIVE_MIN", live_min)
    rng = np.random.default_rng(len(mix))
    n = (1 << 14) + 11
    if mix == "saturated":
        v = rng.choice(np.float32([-30.0, -4.5, -0.0, 30.0, 8.0]), size=n)
        v[v == 0] = np.float32(-50.0)
    elif mix == "mixed":
        edges = np.float32([-2.3978953, -2.3978951, -2.3978949, 2.3978953, 2.3978951, 2.397895, 0.0, -0.0, -5, 5])
        v = np.where(rng.random(n) < 0.5, rng.choice(edges, size=n), rng.standard_normal(n) * 3).astype(np.float32)
    else:
        v = (rng.standard_normal(n) * 0.5).astype(np.float32)
    v = v.astype(np.float32).reshape(-1, 1)
    for beta in (1.0, 2.0, 20.0, 999.0):
        _same(TP.adaround_regularizer(torch.from_numpy(v), beta=beta), RP.adaround_regularizer(v, beta=beta))


@pytest.mark.parametrize("memo", [True, False])
@pytest.mark.parametrize(
    "kw",
    [
        {"sparsity": 0.5, "blocksize": 8},
        {"sparsity": 0.7, "blocksize": 1, "bits": 4, "group_size": 1, "symmetric": True},
        {"sparsity": 0.3, "blocksize": 5, "bits": 3, "group_size": 6},
        {"n": 2, "m": 4, "bits": 4, "group_size": 12},
        {"n": 1, "m": 3},
    ],
)
def test_sparsegpt_column_memo_matches_the_reference(kw, memo, monkeypatch):
    """The columns `_Columns.current` returns again as leading columns of its last result (`memo`), or always
    recomputed, for block sizes and group sizes that do and do not line up, N:M and quantized, against the
    reference; GPTQ (which asks for the group's columns, then the column) too."""
    import reference.posttraining as RP
    import torch_backend.posttraining as TP
    from torch_backend.posttraining import obs

    if not memo:
        monkeypatch.setattr(obs._Columns, "current", lambda self, k, stop: self._current(k, min(stop, self.u.shape[1])))
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((40, 24)) * rng.choice([1e-3, 1.0, 30.0], size=(40, 1))).astype(np.float32)
    w[:, 7] = 0.0
    x = rng.standard_normal((64, 24)).astype(np.float32)
    x[:, 5] = 0.0  # a dead input: its column is zeroed
    h = RP.gptq_hessian(x)
    tw, th = torch.from_numpy(w), torch.from_numpy(h)

    def bits(result):
        return [None if v is None else _bits(v) for v in result]

    assert bits(TP.sparsegpt(tw, th, percdamp=0.1, **kw)) == bits(RP.sparsegpt(w, h, percdamp=0.1, **kw))
    gw = {"bits": 3, "group_size": 6, "block_size": 5}
    assert bits(TP.gptq(tw, th, **gw)) == bits(RP.gptq(w, h, **gw))
