"""The torch backend's quantization fast paths, on inputs that take them, against the reference, bit for bit.

The registry's strategies draw small arrays, so `test_properties` exercises the small-input routes only. These
tests pin the routes that depend on the size or on the parameters: the key counts of `codebook_assign`,
`kmeans_codebook` and `nf4_quantize` (one pass per key from `LOOP_MIN` values, else `searchsorted`), the
per-entry exact sums of `codebook_decode_vjp` and `kmeans_codebook` (masked rows up to `PAD_MAX` pairs, else a
sort), the order statistics of `percentile_amax` (radix select from `SELECT_MIN`), the blockwise NF4 products
with a short last block, the bit-pattern rounding of the power-of-two codes (x scaled by 2**64 when
emin <= -126), and the host-side checks of PACT and LSQ at the float32 overflow boundary. Inputs are full of
ties at exact midpoints, signed zeros, subnormals and boundaries; each route is also forced on the other side
of its threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from torch_backend.quantization import _codes, observers
from torch_backend.quantization import codebook as codebook_module

F32 = np.float32


def _bits(a) -> bytes:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint8).tobytes() if a.dtype.kind == "f" else a.tobytes()


def _same(ref, got):
    ref, got = (ref, got) if isinstance(ref, tuple) else ((ref,), (got,))
    assert len(ref) == len(got)
    for r, g in zip(ref, got, strict=True):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.from_numpy(np.asarray(r)).dtype
        assert tuple(g.shape) == np.asarray(r).shape
        assert _bits(g) == _bits(r)


def _outcome(fn, *args, **kwargs):
    try:
        return "ok", fn(*args, **kwargs)
    except ValueError as exc:
        return "error", str(exc)


def _around(values, n, seed):
    """`n` float32 values drawn from `values`, their neighbours one ulp away and their exact float64
    midpoints rounded both ways, both zeros, subnormals and some spread."""
    rng = np.random.default_rng(seed)
    v = np.float32(values)
    mids = (v[:-1].astype(np.float64) + v[1:].astype(np.float64)) / 2
    with np.errstate(over="ignore"):
        pool = np.concatenate(
            [
                v,
                np.nextafter(v, F32(np.inf)),
                np.nextafter(v, F32(-np.inf)),
                mids.astype(F32),
                np.nextafter(mids.astype(F32), F32(np.inf)),
                np.nextafter(mids.astype(F32), F32(-np.inf)),
                F32([0.0, -0.0, 1e-45, -1e-45, 1.2e-38, -1.2e-38, 5.9e-39]),
            ]
        ).astype(F32)
    x = rng.choice(pool[np.isfinite(pool)], size=n).astype(F32)
    spread = (rng.standard_normal(n) * min(float(np.max(np.abs(v))) or 1.0, 1e37)).astype(F32)
    return np.where(rng.random(n) < 0.2, spread, x).astype(F32)


CODEBOOKS = {
    "ties and repeats": [-2.0, -0.5, -0.0, 0.0, 0.0, 0.75, 0.75, 1.0, 3.0],
    "wide exponents": [-1e30, -1e-30, 1e-38, 3e-38, 1e30],  # midpoints not exact in float64
    "subnormal": [-1e-45, 0.0, 1e-45, 3e-45, 1e-44],
    "extremes": [-3.4028235e38, -1.0, 1.0, 3.4028235e38],
    "many keys": list(np.linspace(-4, 4, 64, dtype=F32)),  # past LOOP_KEYS: binary search on large inputs
}


@pytest.mark.parametrize("name", list(CODEBOOKS))
@pytest.mark.parametrize("loop_min", [None, 0, 1 << 40])  # the thresholds as they are, and each route forced
def test_codebook_assign_routes_match_the_reference(name, loop_min, monkeypatch):
    if loop_min is not None:
        monkeypatch.setattr(_codes, "LOOP_MIN", loop_min)
    c = F32(CODEBOOKS[name])
    w = _around(c, 1 << 15, seed=len(name))
    assert w.size >= _codes.LOOP_MIN or loop_min is not None
    _same(R.codebook_assign(w, c), T.codebook_assign(torch.from_numpy(w), torch.from_numpy(c)))
    small = w[:37].reshape(37, 1)
    _same(R.codebook_assign(small, c), T.codebook_assign(torch.from_numpy(small), torch.from_numpy(c)))


@pytest.mark.parametrize("pad_max", [None, 0, 1 << 40])
@pytest.mark.parametrize("k", [2, 3, 7, 40])
def test_kmeans_codebook_large_matches_the_reference(k, pad_max, monkeypatch):
    if pad_max is not None:
        monkeypatch.setattr(codebook_module, "PAD_MAX", pad_max)
    w = _around(CODEBOOKS["ties and repeats"], (1 << 14) + 5, seed=k)
    w[: 1 << 12] = F32(0.5)  # a heavy tie
    _same(R.kmeans_codebook(w, k, iterations=3), T.kmeans_codebook(torch.from_numpy(w), k, iterations=3))


@pytest.mark.parametrize("pad_max", [None, 0, 1 << 40])
def test_codebook_decode_vjp_entry_sums_match_the_reference(pad_max, monkeypatch):
    if pad_max is not None:
        monkeypatch.setattr(codebook_module, "PAD_MAX", pad_max)
    rng = np.random.default_rng(5)
    n = (1 << 15) + 3
    c = F32([-1.0, 0.0, 0.5, 2.0, 7.0, 9.0])
    indices = rng.choice(np.uint8([0, 1, 3, 4, 5]), size=n).astype(np.uint8)  # entry 2 unused: +0.0
    g = _around([-3.0, -1e-40, -0.0, 0.0, 1e30, 2.0**-149], n, seed=6)
    g[indices == 4] = F32(-0.0)  # an all -0.0 entry sums to +0.0
    got = T.codebook_decode_vjp(torch.from_numpy(g), torch.from_numpy(indices), torch.from_numpy(c))
    _same(R.codebook_decode_vjp(g, indices, c), got)
    t = torch.from_numpy(c).requires_grad_(True)
    (grad,) = torch.autograd.grad(T.codebook_decode(torch.from_numpy(indices), t), t, torch.from_numpy(g))
    _same(R.codebook_decode_vjp(g, indices, c), grad)


def _nf4_inputs(n, seed):
    """The NF4 values, their midpoints and neighbours, signed zeros, a zero block and spread values, times a
    power of two (u = x exactly, absmax 1) or 3 per run of 64 elements, so that neighbouring blocks differ."""
    x = _around(R.quantization.nf4.NF4, n, seed=seed)
    x = np.clip(x, -1, 1).astype(F32)
    x[::64] = F32(1.0)
    x[128:192] = F32(-0.0)
    scales = F32([1.0, 0.5, 2.0, 3.0, 2.0**-20])  # per run of 64 elements: the blocks' absmax differ
    return (x * scales[(np.arange(n) // 64 + n // 64) % 5]).astype(F32)


@pytest.mark.parametrize("loop_min", [None, 0, 1 << 40])
@pytest.mark.parametrize(("n", "block_size"), [(1 << 15, 64), ((1 << 15) + 37, 64), ((1 << 14) + 1, 1 << 14), (9, 64)])
def test_nf4_routes_match_the_reference(loop_min, n, block_size, monkeypatch):
    if loop_min is not None:
        monkeypatch.setattr(_codes, "LOOP_MIN", loop_min)
    x = _nf4_inputs(n, seed=n)
    ref = R.nf4_quantize(x, block_size=block_size)
    _same(ref, T.nf4_quantize(torch.from_numpy(x), block_size=block_size))
    codes, absmax = ref
    absmax = (absmax * F32(3.25)).astype(F32)
    got = T.nf4_dequantize(torch.from_numpy(codes), torch.from_numpy(absmax), block_size=block_size)
    _same(R.nf4_dequantize(codes, absmax, block_size=block_size), got)
    q, scale, offset = R.nf4_double_quantize(absmax, block_size=3)
    _same((q, scale, offset), T.nf4_double_quantize(torch.from_numpy(absmax), block_size=3))
    got = T.nf4_double_dequantize(torch.from_numpy(q), torch.from_numpy(scale), torch.from_numpy(offset), block_size=3)
    _same(R.nf4_double_dequantize(q, scale, offset, block_size=3), got)


@pytest.mark.parametrize("select_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("percentile", [0.0, 12.5, 50.0, 77.94117647058823, 99.99, 100.0])
def test_percentile_amax_routes_match_the_reference(select_min, percentile, monkeypatch):
    if select_min is not None:
        monkeypatch.setattr(observers, "SELECT_MIN", select_min)
    rng = np.random.default_rng(7)
    x = rng.choice(F32([0.0, -0.0, 0.5, -0.5, 1.5, 3.0, 1e-45]), size=(1 << 12, 7)).astype(F32)
    x[:, 3] = rng.standard_normal(1 << 12).astype(F32)
    for axis in (None, 0, 1):
        got = T.percentile_amax(torch.from_numpy(x), percentile, axis=axis)
        _same(R.percentile_amax(x, percentile, axis=axis), got)
    ties = np.full((1 << 13,), F32(2.5))  # every order statistic equal
    ties[-1] = F32(3.0)
    _same(R.percentile_amax(ties, percentile), T.percentile_amax(torch.from_numpy(ties), percentile))


def _pow2_inputs(n, seed):
    """Powers of two, their 1.5 and sqrt(2) midpoints and neighbours, subnormals, both zeros, FLT_MAX."""
    e = np.arange(-149, 128)
    p = np.ldexp(1.0, e)
    pool = np.concatenate([p, 1.5 * p, 1.4142135 * p, 1.4142137 * p, [3.4028235e38, 1e-45, 0.0]])
    pool = pool[np.abs(pool) <= 3.4028235e38].astype(F32)
    with np.errstate(over="ignore"):
        pool = np.concatenate([pool, np.nextafter(pool, F32(0)), np.nextafter(pool, F32(np.inf))]).astype(F32)
    pool = pool[np.isfinite(pool)]
    rng = np.random.default_rng(seed)
    x = rng.choice(pool, size=n).astype(F32)
    x = np.where(rng.random(n) < 0.5, -x, x).astype(F32)
    x[:2] = [0.0, -0.0]
    return x


@pytest.mark.parametrize(
    ("bits", "emax", "levels"),
    [(8, 0, "dense"), (8, -23, "dense"), (6, -105, "dense"), (5, -142, "inq"), (2, -149, "inq"), (8, 127, "dense"),
     (4, 0, "inq"), (3, -124, "dense"), (3, -123, "dense")],
)  # fmt: skip
@pytest.mark.parametrize("rounding", ["linear", "log"])
def test_pow2_bit_pattern_rounding_matches_the_reference(bits, emax, levels, rounding):
    x = _pow2_inputs(1 << 14, seed=bits * 1000 + emax)
    kw = {"bits": bits, "emax": emax, "levels": levels, "rounding": rounding}
    t = torch.from_numpy(x)
    _same(R.pow2_quantize(x, **kw), T.pow2_quantize(t, **kw))
    codes = R.pow2_encode(x, **kw)
    _same(codes, T.pow2_encode(t, **kw))
    del kw["rounding"]
    _same(R.pow2_decode(codes, **kw), T.pow2_decode(torch.from_numpy(codes), **kw))
    kw["rounding"] = rounding
    g = _pow2_inputs(x.size, seed=1)
    _same(R.pow2_quantize_vjp(g, x, **kw), T.pow2_quantize_vjp(torch.from_numpy(g), t, **kw))
    t = t.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(T.pow2_quantize(t, **kw), t, torch.from_numpy(g))
    _same(R.pow2_quantize_vjp(g, x, **kw), grad)


def test_pow2_decode_names_the_first_invalid_code_and_every_code_decodes():
    for bits, emax, levels in [(8, 0, "inq"), (5, -3, "dense"), (3, -148, "inq"), (8, -20, "dense")]:
        codes = np.arange(256, dtype=np.uint8)
        kw = {"bits": bits, "emax": emax, "levels": levels}
        for c in (codes, codes[: 2**bits], np.uint8([0, 2 ** (bits - 1)])):
            ref = _outcome(R.pow2_decode, c, **kw)
            got = _outcome(T.pow2_decode, torch.from_numpy(c), **kw)
            assert ref[0] == got[0]
            if ref[0] == "error":
                assert ref[1] == got[1]
            else:
                _same(ref[1], got[1])


def test_binarize_large_keeps_signed_zeros_positive():
    x = _pow2_inputs(1 << 15, seed=3)
    _same(R.binarize(x), T.binarize(torch.from_numpy(x)))
    _same(R.binary_connect(x), T.binary_connect(torch.from_numpy(x)))


def _around_boundary(v, count):
    """`2 * count` consecutive positive float32 values centred on `v` (at most the largest float32)."""
    b = np.float32(v).view(np.int32) + np.arange(count, -count, -1, dtype=np.int32)
    return b[b <= np.float32(3.4028235e38).view(np.int32)].view(F32)


@pytest.mark.parametrize("bits", [2, 3, 5, 8, 16])  # 5: alpha = FLT_MAX puts 31 * s on the tie, which overflows
def test_pact_top_level_overflow_boundary_matches_the_reference(bits):
    x = F32([0.0, 1.0, 3e38])
    n = 2**bits - 1
    # alphas whose step s = alpha / n puts n * s around the float32 overflow threshold, and the smallest steps
    alphas = np.concatenate([_around_boundary(3.4028235e38, 3000), _around_boundary(n * 2.0**-126, 8), F32([1e-45])])
    for a in alphas:
        ref = _outcome(R.pact_quantize, x, F32(a), bits)
        got = _outcome(T.pact_quantize, torch.from_numpy(x), torch.tensor(a), bits)
        assert ref[0] == got[0], a
        if ref[0] == "error":
            assert ref[1] == got[1]
        else:
            _same(ref[1], got[1])


@pytest.mark.parametrize(("bits", "signed"), [(2, True), (8, True), (8, False), (16, True)])
def test_lsq_level_overflow_boundary_matches_the_reference(bits, signed):
    x = F32([0.0, -1.0, 2.5, 3e38])
    qn, qp = R.quantization.lsq.checks.lsq_bounds(bits, signed)
    scales = _around_boundary(3.4028235e38 / max(qn, qp), 100)
    for s in scales:
        for offset in (None, F32(0.0), F32(-3e38), F32(2e31), F32(3.4028235e38)):
            kw = {"bits": bits, "signed": signed}
            if offset is None:
                ref = _outcome(R.lsq_quantize, x, F32(s), **kw)
                got = _outcome(T.lsq_quantize, torch.from_numpy(x), torch.tensor(s), **kw)
            else:
                ref = _outcome(R.lsq_plus_quantize, x, F32(s), offset, **kw)
                got = _outcome(T.lsq_plus_quantize, torch.from_numpy(x), torch.tensor(s), torch.tensor(offset), **kw)
            assert ref[0] == got[0], (s, offset)
            if ref[0] == "error":
                assert ref[1] == got[1]
            else:
                _same(ref[1], got[1])


# ---- bit-pattern selections, per-channel layouts and lookups (`torch_backend.quantization._fast` and users) -----


def _nasty(n, seed, scale=1.0):
    """Float32 values with both zeros, subnormals, +-1 and their neighbours, the float32 extremes and spread."""
    pool = F32(
        [0.0, -0.0, 1e-45, -1e-45, 1.2e-38, -5.9e-39, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 3.4028235e38, -3.4028235e38]
    )
    with np.errstate(over="ignore"):
        pool = np.concatenate([pool, np.nextafter(pool, F32(np.inf)), np.nextafter(pool, F32(-np.inf))]).astype(F32)
    return _around(pool[np.isfinite(pool)] * F32(scale), n, seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("select_min", [None, 0, 1 << 40])
def test_select_is_where_bit_for_bit(dtype, select_min, monkeypatch):
    from torch_backend.quantization import _fast

    if select_min is not None:
        monkeypatch.setattr(_fast, "SELECT_MIN", select_min)
    n = (1 << 14) + 7
    rng = np.random.default_rng(1)
    a = torch.from_numpy(_nasty(n, 2)).to(dtype)
    b = torch.from_numpy(_nasty(n, 3)).to(dtype)
    a[::97] = torch.nan
    b[::89] = -torch.inf
    mask = torch.from_numpy(rng.random(n) < 0.5)
    for x, y in [(a, b), (a, 0.0), (-0.0, b), (a, torch.tensor(-0.0, dtype=dtype))]:
        got = _fast.select(mask, x, y)
        x_, y_ = (t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=dtype) for t in (x, y))
        assert _bits(got) == _bits(torch.where(mask, x_, y_))


def _lsq_inputs(shape, axis, seed, plus):
    """x on the levels, their midpoints and neighbours, signed zeros, and values whose x - offset overflows."""
    rng = np.random.default_rng(seed)
    c = shape[axis]
    scale = F32(rng.choice(F32([0.25, 0.5, 3.0, 1e-3, 2.0**-20]), size=c))
    offset = F32(rng.choice(F32([0.0, -0.0, 0.375, -1.5, 3e38]), size=c)) if plus else None
    levels = np.arange(-9, 9, dtype=F32)
    x = _around(np.concatenate([levels * 0.25, levels * 0.5, levels * 3.0]), math.prod(shape), seed).reshape(shape)
    x.reshape(-1)[::1009] = F32(-3e38)  # x - 3e38 overflows to -inf: clipped
    return x, scale, offset


@pytest.mark.parametrize("flat_min", [None, 0, 1 << 40])
@pytest.mark.parametrize(("shape", "axis"), [((2048, 3, 5), 1), ((1024, 6, 4), -2), ((4096, 7), 1), ((3, 2048, 3), 0)])
@pytest.mark.parametrize(("bits", "signed"), [(3, True), (4, False)])
def test_lsq_per_channel_layouts_match_the_reference(flat_min, shape, axis, bits, signed, monkeypatch):
    from torch_backend.quantization import _fast

    if flat_min is not None:
        monkeypatch.setattr(_fast, "FLAT_MIN", flat_min)
    opts = {"bits": bits, "signed": signed, "axis": axis}
    for plus in (False, True):
        x, s, b = _lsq_inputs(shape, axis, seed=bits + len(shape), plus=plus)
        g = _nasty(x.size, 9).reshape(x.shape)
        tx, ts, tg = torch.from_numpy(x), torch.from_numpy(s), torch.from_numpy(g)
        if plus:
            tb = torch.from_numpy(b)
            _same(R.lsq_plus_quantize(x, s, b, **opts), T.lsq_plus_quantize(tx, ts, tb, **opts))
            _same(R.lsq_plus_quantize_vjp(g, x, s, b, **opts), T.lsq_plus_quantize_vjp(tg, tx, ts, tb, **opts))
        else:
            _same(R.lsq_quantize(x, s, **opts), T.lsq_quantize(tx, ts, **opts))
            _same(R.lsq_quantize_vjp(g, x, s, **opts), T.lsq_quantize_vjp(tg, tx, ts, **opts))


@pytest.mark.parametrize("select_min", [None, 0, 1 << 40])
def test_lsq_per_tensor_vjp_and_autograd_match_the_reference(select_min, monkeypatch):
    from torch_backend.quantization import _fast

    if select_min is not None:
        monkeypatch.setattr(_fast, "SELECT_MIN", select_min)
    x, _, _ = _lsq_inputs((1 << 15,), 0, seed=4, plus=False)
    g = _nasty(x.size, 5)
    g[::3] = F32(-0.0)
    s, b = F32(0.5), F32(-0.25)
    opts = {"bits": 4, "signed": True}
    _same(
        R.lsq_quantize_vjp(g, x, s, **opts), T.lsq_quantize_vjp(*map(torch.from_numpy, (g, x, np.asarray(s))), **opts)
    )
    want = R.lsq_plus_quantize_vjp(g, x, s, b, **opts)
    _same(want, T.lsq_plus_quantize_vjp(*map(torch.from_numpy, (g, x, np.asarray(s), np.asarray(b))), **opts))
    tx, ts, tb = (torch.from_numpy(np.asarray(v)).requires_grad_(True) for v in (x, s, b))
    y = T.lsq_plus_quantize(tx, ts, tb, **opts)
    _same(R.lsq_plus_quantize(x, s, b, **opts), y)
    _same(want, torch.autograd.grad(y, (tx, ts, tb), torch.from_numpy(g)))


@pytest.mark.parametrize("take_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("binned", [True, False])
def test_codebook_decode_vjp_binned_and_sorted_sums_agree(binned, take_min, monkeypatch):
    if take_min is not None:
        monkeypatch.setattr(codebook_module, "TAKE_MIN", take_min)
    if not binned:
        monkeypatch.setattr(codebook_module, "grouped_sums_f32", lambda *a: None)
    rng = np.random.default_rng(7)
    n = (1 << 15) + 11
    c = F32([-1.0, 0.0, 0.5, 2.0])
    indices = rng.choice(np.uint8([0, 1, 3]), size=(n // 11, 11)).astype(np.uint8)
    g = _nasty(indices.size, 8).reshape(indices.shape)
    g[indices == 3] = F32(3.4028235e38)  # the entry's sum is beyond float32: +inf
    _same(R.codebook_decode_vjp(g, indices, c), T.codebook_decode_vjp(*map(torch.from_numpy, (g, indices, c))))
    _same(R.codebook_decode(indices, c), T.codebook_decode(torch.from_numpy(indices), torch.from_numpy(c)))
    # non-finite cotangents through autograd: IEEE's infinities and NaN, as the sorted route gives them
    t = torch.from_numpy(c).requires_grad_(True)
    tg = torch.from_numpy(g).clone()
    tg[0, 0], tg[1, 1] = torch.inf, -torch.inf
    (got,) = torch.autograd.grad(T.codebook_decode(torch.from_numpy(indices), t), t, tg)
    monkeypatch.setattr(codebook_module, "grouped_sums_f32", lambda *a: None)
    (want,) = torch.autograd.grad(T.codebook_decode(torch.from_numpy(indices), t), t, tg)
    assert _bits(got) == _bits(want)


@pytest.mark.parametrize("segment", [1 << 14, 1 << 15])
def test_grouped_sums_flushed_in_segments_give_the_exact_sums(segment, monkeypatch):
    """`grouped_sums_f32` flushes its bins into digits every `SEGMENT` elements (here every chunk, or every other
    one): each group's sum is still the exact sum rounded once, the reference's entry sums."""
    from torch_backend.core import _exact

    monkeypatch.setattr(_exact, "SEGMENT", segment)
    rng = np.random.default_rng(3)
    n = 5 * (1 << 14) + 7
    groups = rng.integers(0, 6, n).astype(np.uint8)
    g = _nasty(n, 4)
    want = R.codebook_decode_vjp(g, groups, F32([0, 1, 2, 3, 4, 5]))
    got = _exact.grouped_sums_f32(torch.from_numpy(g), torch.from_numpy(groups), 6).to(torch.float32)
    assert _bits(got) == _bits(want)


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_minmax_observers_one_pass_checks_match_the_reference(axis):
    x = _nasty(3 * 4096, 10, scale=1.0).reshape(3, 4096)
    x[:, 0] = F32(3.4028235e38)  # sums overflow: the minima and maxima still prove x finite
    x[:, 1] = F32(-3.4028235e38)
    state = (F32([0.5, -0.0, 1.0])[: 1 if axis is None else x.shape[axis]].reshape(() if axis is None else -1),) * 2
    if axis == -1:
        state = (np.zeros(4096, F32), np.zeros(4096, F32))
    for fn in ("minmax_observer", "ema_minmax_observer"):
        kwargs = {"axis": axis}
        _same(getattr(R, fn)(x, **kwargs), getattr(T, fn)(torch.from_numpy(x), **kwargs))
        if fn == "ema_minmax_observer":
            want = getattr(R, fn)(x, state, averaging_constant=0.25, **kwargs)
            got = getattr(T, fn)(
                torch.from_numpy(x), tuple(map(torch.from_numpy, state)), averaging_constant=0.25, **kwargs
            )
            _same(want, got)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[2, 77] = F32(bad)
        for fn in ("minmax_observer", "ema_minmax_observer"):
            for ax in (axis, 5):  # an invalid axis too: the finiteness error comes first
                assert _outcome(getattr(R, fn), y, axis=ax) == _outcome(getattr(T, fn), torch.from_numpy(y), axis=ax)
    empty = np.zeros((0, 3), F32)
    for ax in (None, 1, 5):
        assert _outcome(R.ema_minmax_observer, empty, axis=ax) == _outcome(
            T.ema_minmax_observer, torch.from_numpy(empty), axis=ax
        )


@pytest.mark.parametrize("t", [0.0, -0.0, 0.05, 0.5, 1.0])
def test_ttq_bit_pattern_regions_match_the_reference(t):
    w = _nasty((1 << 14) + 9, 11)
    w[5] = F32(0.75)  # max|w| stays finite; exact +-delta values below
    amax = float(np.max(np.abs(w)))
    delta = F32(np.float64(t) * np.float64(amax))
    above = np.nextafter(delta, F32(np.inf)) if delta < F32(3.4028235e38) else delta
    w[:4] = [delta, -delta, above, -above]
    wp, wn = F32(2.0), F32(0.375)
    g = _nasty(w.size, 12)
    args = tuple(map(torch.from_numpy, (w, np.asarray(wp), np.asarray(wn))))
    _same(R.ttq_quantize(w, wp, wn, t=t), T.ttq_quantize(*args, t=t))
    want = R.ttq_quantize_vjp(g, w, wp, wn, t=t)
    _same(want, T.ttq_quantize_vjp(torch.from_numpy(g), *args, t=t))
    leaves = tuple(a.clone().requires_grad_(True) for a in args)
    y = T.ttq_quantize(*leaves, t=t)
    _same(R.ttq_quantize(w, wp, wn, t=t), y)
    _same(want, torch.autograd.grad(y, leaves, torch.from_numpy(g)))
    bad = w.copy()
    bad[7] = F32(np.nan)
    assert _outcome(R.ttq_quantize, bad, wp, wn, t=t) == _outcome(T.ttq_quantize, torch.from_numpy(bad), *args[1:], t=t)


def test_percentile_amax_per_channel_sorts_bit_patterns():
    x = _nasty(64 * 35, 13).reshape(64, 35)
    x[0] = F32(-0.0)
    x[1, ::2] = F32(0.0)
    x[2] = F32(1e-45)
    for p in (0.0, 33.3, 77.94117647058823, 100.0):
        for axis in (0, 1):
            _same(R.percentile_amax(x, p, axis=axis), T.percentile_amax(torch.from_numpy(x), p, axis=axis))


@pytest.mark.parametrize("words_min", [None, 1, 1 << 40])
@pytest.mark.parametrize("order", ["low_first", "high_first"])
def test_unpack_nibbles_words_match_the_reference(order, words_min, monkeypatch):
    from torch_backend.codecs import nibbles

    if words_min is not None:
        monkeypatch.setattr(nibbles, "WORDS_MIN", words_min)
    every = np.arange(256, dtype=np.uint8)
    for packed in (every, np.tile(every, (64, 3)), np.tile(every, (5, 7, 2)).transpose(2, 0, 1), every[:0]):
        _same(R.unpack_nibbles(packed, order=order), T.unpack_nibbles(torch.from_numpy(packed), order=order))
        if packed.size:  # the word route itself, beside the `stack` route that big-endian hosts take
            low, high = torch.from_numpy(packed) & 0xF, torch.from_numpy(packed) >> 4
            pair = [low, high] if order == "low_first" else [high, low]
            want = torch.stack(pair, dim=-1).reshape(*packed.shape[:-1], 2 * packed.shape[-1])
            assert torch.equal(nibbles._unpack_words(torch.from_numpy(packed), order), want)


@pytest.mark.parametrize("select_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("ste", ["clipped", "identity"])
def test_straight_through_bit_masks_match_the_reference(select_min, ste, monkeypatch):
    from torch_backend.quantization import _fast

    if select_min is not None:
        monkeypatch.setattr(_fast, "SELECT_MIN", select_min)
    x = _nasty((1 << 14) + 3, 14)
    g = _nasty(x.size, 15)
    g[::5] = F32(-0.0)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    _same(R.binarize_vjp(g, x, ste=ste), T.binarize_vjp(tg, tx, ste=ste))
    _same(R.binary_connect_vjp(g, x, ste=ste), T.binary_connect_vjp(tg, tx, ste=ste))
    leaf = tx.clone().requires_grad_(True)
    (got,) = torch.autograd.grad(T.binarize(leaf, ste=ste), leaf, tg)
    _same(R.binarize_vjp(g, x, ste=ste), got)


@pytest.mark.parametrize("bytes_min", [0, 1 << 30])
@pytest.mark.parametrize("bits", list(range(1, 17)))
def test_pack_bits_byte_columns_match_the_reference(bytes_min, bits, monkeypatch):
    """`pack_bits` by byte columns over whole periods of lcm(bits, 8) bits, for every width, counts that end
    mid-period and mid-byte, every code value (0 and 2**bits - 1 included), and its error for a code too large."""
    from torch_backend.quantization import packing

    monkeypatch.setattr(packing, "BYTES_MIN", bytes_min)
    rng = np.random.default_rng(bits)
    dtype = np.uint8 if bits <= 8 else np.uint16
    for n in (65, 1000, 1001, 1003, 4099):
        codes = rng.integers(0, 2**bits, n).astype(dtype)
        codes[:2] = [0, 2**bits - 1]
        _same(R.pack_bits(codes, bits), T.pack_bits(torch.from_numpy(codes), bits))
        packed = R.pack_bits(codes, bits)
        _same(R.unpack_bits(packed, bits, n), T.unpack_bits(T.pack_bits(torch.from_numpy(codes), bits), bits, n))
    if bits not in (8, 16):
        codes = rng.integers(0, 2**bits, 3000).astype(dtype)
        codes[1234] = 2**bits
        assert _outcome(T.pack_bits, torch.from_numpy(codes), bits) == _outcome(R.pack_bits, codes, bits)


def _unit_edges(n, seed):
    """float32 values at every edge of `0 <= x <= 1` and of its int32 bit-pattern form: both zeros, the
    smallest subnormals either side, 1 and its neighbours, the pattern INT_MIN + 0x3F800000 / 2 (the one whose
    `|i - H|` wraps), patterns just past it, and huge and random values."""
    rng = np.random.default_rng(seed)
    special = np.array([0x80000000, 0x00000000, 0x80000001, 0x00000001, 0x3F800000, 0x3F800001, 0x3F7FFFFF,
                        0x9FC00000, 0x9FC00001, 0x9FBFFFFF, 0x1FC00000, 0xBF800000, 0x7F7FFFFF, 0xFF7FFFFF,
                        0x807FFFFF, 0x007FFFFF, 0x40000000, 0xC0000000], dtype=np.uint32).view(F32)  # fmt: skip
    x = rng.choice(special, size=n).astype(F32)
    spread = (rng.standard_normal(n) * 0.75 + 0.5).astype(F32)
    return np.where(rng.random(n) < 0.3, spread, x).astype(F32)


@pytest.mark.parametrize("passed_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("block", [None, 7])
def test_dorefa_activation_vjp_bit_masks_match_the_reference(passed_min, block, monkeypatch):
    """`dorefa_activation_vjp`'s int32 form of `where(0 <= x <= 1, g, +0.0)`, by blocks (one block, or blocks of
    7 with a short last one) and forced both ways, and the autograd route, against the reference."""
    from torch_backend.quantization import _fast, dorefa

    if passed_min is not None:
        monkeypatch.setattr(dorefa, "PASSED_MIN", passed_min)
    if block is not None:
        monkeypatch.setattr(_fast, "BLOCK", block)
    x = _unit_edges(3 * ((1 << 13) + 7) if block is None else 3 * 41, 21).reshape(-1, 3)
    g = _nasty(x.size, 22).reshape(x.shape)
    g[::4] = F32(-0.0)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    _same(R.dorefa_activation_vjp(g, x, 3), T.dorefa_activation_vjp(tg, tx, 3))
    _same(R.dorefa_activation_vjp(g, x, 3), T.dorefa_activation_vjp(tg, tx.t().contiguous().t(), 3))
    leaf = tx.clone().requires_grad_(True)
    (got,) = torch.autograd.grad(T.dorefa_activation(leaf, 3), leaf, tg)
    _same(R.dorefa_activation_vjp(g, x, 3), got)
    assert _bits(tx) == _bits(x)


@pytest.mark.parametrize("blocked_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("case", ["ties at both signs", "saturated", "subnormal", "one max"])
def test_dorefa_weight_vjp_blocks_match_the_reference(blocked_min, case, monkeypatch):
    """`dorefa_weight_vjp`'s blocked backward (products and tie count, then the per-element formula, in blocks of
    `_fast.BLOCK // 2` with a short last block) forced both ways, direct and by autograd, against the reference:
    ties of |t| = m of both signs, t = +-1 (factor 1 - t t = 0: signed zeros), subnormal weights, one maximum."""
    from torch_backend.quantization import _fast, dorefa

    if blocked_min is not None:
        monkeypatch.setattr(dorefa, "BLOCKED_MIN", blocked_min)
    monkeypatch.setattr(_fast, "BLOCK", 10 if blocked_min == 0 else _fast.BLOCK)
    n = (1 << 14) + 5 if blocked_min is None else 3 * 37
    rng = np.random.default_rng(len(case))
    w = _nasty(n, 31, scale=0.25)
    if case == "ties at both signs":
        w[rng.random(n) < 0.1] = F32(1.5)
        w[rng.random(n) < 0.1] = F32(-1.5)
        w = np.clip(w, F32(-1.5), F32(1.5)).astype(F32)
    elif case == "saturated":
        w[rng.random(n) < 0.3] = F32(30.0)
        w[rng.random(n) < 0.3] = F32(-30.0)
    elif case == "subnormal":
        w = rng.choice(F32([1e-45, -1e-45, 0.0, -0.0, 3e-45, -3e-45]), size=n).astype(F32)
    else:
        w = np.clip(w, F32(-1.0), F32(1.0)).astype(F32)
        w[n // 2] = F32(2.0)
    g = _nasty(n, 32)
    g[::7] = F32(-0.0)
    w, g = w.reshape(-1, 1), g.reshape(-1, 1)
    tw, tg = torch.from_numpy(w), torch.from_numpy(g)
    for bits in (2, 5):
        want = R.dorefa_weight_vjp(g, w, bits)
        _same(want, T.dorefa_weight_vjp(tg, tw, bits))
        leaf = tw.clone().requires_grad_(True)
        (got,) = torch.autograd.grad(T.dorefa_weight(leaf, bits), leaf, tg)
        _same(want, got)
    assert _bits(tw) == _bits(w) and _bits(tg) == _bits(g)


@pytest.mark.parametrize("blocked_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("scale", [0.5, 1e-38])
def test_lsq_blocked_backward_matches_the_reference(blocked_min, signed, scale, monkeypatch):
    """The per-tensor LSQ/LSQ+ backward in blocks (bit-pattern pass mask, step factor by bits) forced both ways,
    with blocks of 5 and a short last one, signed (Qn > 0) and unsigned (Qn = 0: negative v clips to a zero of
    either sign), -0.0 inputs and gradients, codes at and next to -Qn and Qp, and v overflowing to +-inf (a
    subnormal-sized step), direct and by autograd, against the reference."""
    from torch_backend.quantization import _fast, lsq

    if blocked_min is not None:
        monkeypatch.setattr(lsq, "BLOCKED_MIN", blocked_min)
    if blocked_min == 0:
        monkeypatch.setattr(_fast, "BLOCK", 10)
    n = (1 << 14) + 9 if blocked_min is None else 203
    opts = {"bits": 3, "signed": signed}
    qn, qp = (4, 3) if signed else (0, 7)
    s, b = F32(scale), F32(-0.25 * scale)
    levels = F32([-qn - 0.5, -qn, -qn + 0.5, 0.0, 0.5, 1.5, qp - 0.5, qp, qp + 0.5]) * s
    x = _around(levels, n, seed=7)
    x[::11] = F32(-0.0)
    x[5::13] = F32(3e38)
    x[6::13] = F32(-3e38)
    g = _nasty(n, 8)
    g[::3] = F32(-0.0)
    tg, tx, ts, tb = map(torch.from_numpy, (g, x, np.asarray(s), np.asarray(b)))
    _same(R.lsq_quantize_vjp(g, x, s, **opts), T.lsq_quantize_vjp(tg, tx, ts, **opts))
    want = R.lsq_plus_quantize_vjp(g, x, s, b, **opts)
    _same(want, T.lsq_plus_quantize_vjp(tg, tx, ts, tb, **opts))
    lx, ls, lb = (t.clone().requires_grad_(True) for t in (tx, ts, tb))
    _same(want, torch.autograd.grad(T.lsq_plus_quantize(lx, ls, lb, **opts), (lx, ls, lb), tg))
    assert _bits(tx) == _bits(x) and _bits(tg) == _bits(g)


@pytest.mark.parametrize("chunked_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8"])
def test_mx_quantize_chunks_match_the_reference(chunked_min, fmt, monkeypatch):
    """`mx_quantize` (and `mx_fake_quantize`) chunk by chunk of whole MX blocks, forced both ways, with chunks
    that are not a multiple of the block size (rounded down to whole blocks) and a short last chunk, blocks along
    the last axis (chunked) and along the first (not), NaN and Inf blocks, every scale rule and rounding."""
    from torch_backend.quantization import mx

    if chunked_min is not None:
        monkeypatch.setattr(mx, "CHUNKED_MIN", chunked_min)
    if chunked_min == 0:
        monkeypatch.setattr(mx, "CHUNK", 100)  # 96 elements (3 blocks of 32: not 100), or one block of 64
    rows = 24 if chunked_min is not None else 1032  # 132096 elements: chunks of 65536, a short last one
    x = _nasty(rows * 128, 41, scale=3.0).reshape(rows, 128)
    x[3, 5] = F32(np.nan)
    x[7, 40] = F32(np.inf)
    x[9, 64:96] = F32(0.0)
    tx = torch.from_numpy(x)
    for axis, bs in ((-1, 32), (-1, 64), (0, 8)):
        for rule in ("floor", "ceil", "even"):
            for rounding in ("half_even", "half_away"):
                opts = {"axis": axis, "block_size": bs, "scale_rule": rule, "rounding": rounding, "nonfinite": "nan"}
                _same(R.mx_quantize(x, fmt, **opts), T.mx_quantize(tx, fmt, **opts))
        _same(R.mx_fake_quantize(x, fmt, **opts), T.mx_fake_quantize(tx, fmt, **opts))
    assert _bits(tx) == _bits(x)


@pytest.mark.parametrize("tanh_min", [None, 0, 1 << 40])
def test_dorefa_tanh_blocks_match_the_reference(tanh_min, monkeypatch):
    """`_tanh32` block by block (blocks of 9 with a short last one, or of `_fast.BLOCK // 2`) forced both ways:
    `dorefa_weight` and its VJP against the reference, on zeros of both signs, subnormals, values whose tanh rounds
    to +-1 in float32, and a spread; a non-contiguous input too."""
    from torch_backend.quantization import _fast, dorefa

    if tanh_min is not None:
        monkeypatch.setattr(dorefa, "TANH_BLOCKED_MIN", tanh_min)
    if tanh_min == 0:
        monkeypatch.setattr(_fast, "BLOCK", 18)
    n = 3 * ((1 << 16) // 3 + 1) if tanh_min is None else 3 * 41  # default: just past TANH_BLOCKED_MIN
    w = _nasty(n, 51, scale=2.0)
    w[:8] = F32([0.0, -0.0, 1e-45, -1e-45, 9.1, -9.1, 30.0, -3e38])
    w = w.reshape(-1, 3)
    g = _nasty(n, 52).reshape(w.shape)
    tw, tg = torch.from_numpy(w), torch.from_numpy(g)
    for bits in (1, 2, 7):
        _same(R.dorefa_weight(w, bits), T.dorefa_weight(tw, bits))
        _same(R.dorefa_weight(w, bits), T.dorefa_weight(tw.t().contiguous().t(), bits))
        _same(R.dorefa_weight_vjp(g, w, bits), T.dorefa_weight_vjp(tg, tw, bits))
    assert _bits(tw) == _bits(w)


@pytest.mark.parametrize("chunked_min", [None, 0, 1 << 40])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn", "float8_e8m0fnu"])
def test_float_encode_chunks_match_the_reference(chunked_min, fmt, monkeypatch):
    """`_floats.encode` chunk by chunk (chunks of 7 with a short last one, or of `CHUNK`) forced both ways: codes,
    values and the straight-through gradient, saturating or not, nearest and stochastic (one key: the random
    words drawn for the whole shape, then cut), on NaN, +-Inf, both zeros, subnormals and overflowing values, and
    the NVFP4 codec (which encodes through it), against the reference."""
    from torch_backend.quantization import _floats

    if chunked_min is not None:
        monkeypatch.setattr(_floats, "CHUNKED_MIN", chunked_min)
    if chunked_min == 0:
        monkeypatch.setattr(_floats, "CHUNK", 7)
    n = (1 << 16) + 16 if chunked_min is None else 16 * 13
    x = _nasty(n, 61, scale=40.0)
    x[:8] = F32([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3e38, -3e38])
    x = x.reshape(-1, 16)
    g = _nasty(n, 62).reshape(x.shape)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    for saturate in (True, False):
        for opts in ({"rounding": "half_even"}, {"rounding": "stochastic", "key": R.make_key(9)}):
            kw = {"saturate": saturate, **opts}
            assert _result(T.float_encode, tx, fmt, **kw) == _result(R.float_encode, x, fmt, **kw)
            assert _result(T.float_quantize, tx, fmt, **kw) == _result(R.float_quantize, x, fmt, **kw)
            got = _result(T.float_quantize_vjp, tg, tx, fmt, **kw)
            assert got == _result(R.float_quantize_vjp, g, x, fmt, **kw)
    finite = np.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0)
    for direction in ("encode", "decode"):
        scale = R.nvfp4_global_scale(finite, direction=direction)
        want = R.nvfp4_quantize(finite, scale, direction=direction)
        _same(
            want, T.nvfp4_quantize(torch.from_numpy(finite), torch.from_numpy(np.asarray(scale)), direction=direction)
        )
    assert _bits(tx) == _bits(x)


def _result(fn, *args, **kwargs):
    """`_outcome` with an output as its dtype and bits (comparable across the two backends)."""
    kind, out = _outcome(fn, *args, **kwargs)
    if kind == "error":
        return kind, out
    dtype = out.dtype if isinstance(out, np.ndarray) else torch.empty(0, dtype=out.dtype).numpy().dtype
    return kind, str(dtype), tuple(out.shape), _bits(out)
