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
