"""The host routes of small CPU inputs (Python ints and floats instead of tensor operations) of TTQ, the low-bit
float codes and the MX formats, against the reference, bit for bit, errors included.

Each route is forced both ways (`HOST_MAX` as it is, 0: every input on tensors, and huge: every input on the
host), on signed zeros, subnormals, values at and next to rounding midpoints, thresholds and saturation bounds,
NaN and Inf where accepted, one-element shapes and every axis, and on invalid inputs (the same error).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.quantization.floats import FORMATS
from reference.quantization.mx import MX_FORMATS
from tests.helpers import bits, checked_outcome, same_on_cpu
from torch_backend import _arrays
from torch_backend.quantization import _floats, ternary

F32 = np.float32
ROUTES = [None, 0, 1 << 40]  # the threshold as it is, and each route forced


def _check(ref_fn, torch_fn, args, kwargs, *, tensors):
    """Call both with the same arguments (those at the `tensors` positions as torch tensors, copies of the
    NumPy arrays) and compare outcomes; the torch inputs are not changed."""
    targs = [torch.from_numpy(np.array(a, copy=True)) if i in tensors else a for i, a in enumerate(args)]
    before = [bits(a) if isinstance(a, torch.Tensor) else None for a in targs]
    with np.errstate(all="ignore"):
        ref = checked_outcome(ref_fn, *args, **kwargs)
    got = checked_outcome(torch_fn, *targs, **kwargs)
    assert ref[0] == got[0], (ref, got)
    if ref[0] == "ok":
        same_on_cpu(ref[1], got[1])
    else:
        assert ref[1] == got[1]
    assert before == [bits(a) if isinstance(a, torch.Tensor) else None for a in targs]  # inputs untouched
    return got


def _words(values) -> np.ndarray:
    return np.uint32(values).view(F32)


# every float32 class: zeros of both signs, the smallest and largest subnormals, the smallest normal, the
# largest finite, infinities, quiet and signalling NaNs with payloads and both signs
SPECIAL = _words(
    [0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF]
    + [0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFC12345]
)


def _pool(values, seed, n=4000):
    """`values`, their float32 neighbours, their float64 midpoints rounded both ways, the specials, and values
    times powers of two (MX shifts move every midpoint), shuffled."""
    v = np.unique(F32(values)[np.isfinite(F32(values))])
    mids = (v[:-1].astype(np.float64) + v[1:].astype(np.float64)) / 2
    m32 = mids.astype(F32)
    with np.errstate(over="ignore"):
        parts = [v, -v, np.nextafter(v, F32(np.inf)), np.nextafter(v, F32(-np.inf)), m32, -m32]
        parts += [np.nextafter(m32, F32(np.inf)), np.nextafter(m32, F32(-np.inf)), SPECIAL]
    base = np.concatenate(parts).astype(F32)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (rng.choice(base, n) * F32(2.0) ** rng.integers(-140, 120, n).astype(F32)).astype(F32)
    return np.concatenate([base, scaled]).astype(F32)


def _decoded(fmt):
    form = FORMATS[fmt]
    return R.float_decode(np.arange(2**form.bits, dtype=np.uint8), fmt)


# ---- TTQ ----------------------------------------------------------------------------------------------------


def _ttq_inputs():
    """(w, wp, wn, t) cases: thresholds exactly on elements, one ulp off, signed zeros, subnormal thresholds and
    weights, and scales whose products with the gradient overflow or underflow."""
    big, tiny = F32(3.4e38), F32(1e-45)
    w1 = F32([1.0, -0.5, 0.05, -0.04, 0.0, -0.0, 0.05000001, -0.05, 1e-45, -1e-45])
    yield w1, F32(2.0), F32(3.0), 0.05
    yield w1, F32(2.0), F32(3.0), 0.0
    yield w1, F32(2.0), F32(3.0), -0.0
    yield w1, F32(2.0), F32(3.0), 1.0
    yield w1 * F32(1e-38), tiny, big, 0.5  # subnormal threshold
    yield F32([[0.0, -0.0], [-0.0, 0.0]]), F32(1.5), F32(0.25), 0.3
    yield F32(-2.5).reshape(()), F32(1.0), F32(7.0), 0.5
    yield F32([7.0]), big, tiny, 1.0 - 2.0**-53
    yield F32([3.0, -3.0, 2.9999998, -3.0000002]).reshape(2, 2, 1), F32(1.0), F32(1.0), 1.0
    rng = np.random.default_rng(3)
    for n in (1, 2, 63, 64, 65, 130):
        w = _pool([0.5, 1.0, 2.0, 1e-40], seed=n, n=n)[-n:]
        w = np.where(np.isfinite(w), w, F32(0.75)).astype(F32)
        yield w, F32(rng.uniform(0.5, 2)), F32(rng.uniform(0.5, 2)), float(rng.uniform(0, 1))
    yield np.nextafter(F32([0.25, -0.25, 5.0]), F32(1)), F32(1.0), F32(2.0), 0.05  # delta = fl32(0.25) above?


@pytest.mark.parametrize("host_max", ROUTES)
def test_ttq_routes_match_the_reference(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(ternary, "HOST_MAX", host_max)
    rng = np.random.default_rng(7)
    for w, wp, wn, t in _ttq_inputs():
        _check(R.ttq_quantize, T.ttq_quantize, (w, wp, wn), {"t": t}, tensors={0, 1, 2})
        grads = [rng.standard_normal(w.shape).astype(F32), np.full(w.shape, F32(3e38)), np.full(w.shape, F32(-1e-45))]
        grads.append(np.where(rng.random(w.shape) < 0.5, F32(-0.0), F32(0.0)).astype(F32))
        for g in grads:
            _check(R.ttq_quantize_vjp, T.ttq_quantize_vjp, (g, w, wp, wn), {"t": t}, tensors={0, 1, 2, 3})
            with _arrays.vjps_by_autograd():
                _check(R.ttq_quantize_vjp, T.ttq_quantize_vjp, (g, w, wp, wn), {"t": t}, tensors={0, 1, 2, 3})


@pytest.mark.parametrize("host_max", ROUTES)
def test_ttq_records_gradients_on_every_route(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(ternary, "HOST_MAX", host_max)
    w0 = F32([1.0, -0.5, 0.05, -0.04, -0.0])
    g = F32([1.0, 2.0, -3.0, 0.5, -0.0])
    w, wp, wn = torch.tensor(w0, requires_grad=True), torch.tensor(2.0), torch.tensor(3.0, requires_grad=True)
    out = T.ttq_quantize(w, wp, wn, t=0.05)
    assert out.requires_grad
    same_on_cpu(R.ttq_quantize(w0, F32(2), F32(3), t=0.05), out)
    gw, gwn = torch.autograd.grad(out, (w, wn), torch.from_numpy(g))
    ref = R.ttq_quantize_vjp(g, w0, F32(2), F32(3), t=0.05)
    same_on_cpu((ref[0], ref[2]), (gw, gwn))
    with torch.no_grad():
        same_on_cpu(R.ttq_quantize(w0, F32(2), F32(3), t=0.05), T.ttq_quantize(w, wp, wn, t=0.05))


@pytest.mark.parametrize("host_max", ROUTES)
def test_ttq_errors_match_the_reference(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(ternary, "HOST_MAX", host_max)
    ok, one = F32([1.0, -2.0, 0.5]), F32(1.0)
    bad_w = [F32([1.0, np.nan, 2.0]), F32([np.inf, -1.0]), F32([1.0, 2.0, -np.inf]), np.zeros((0, 3), F32)]
    bad_w += [np.float64([1.0, 2.0]), F32([[np.nan]])]
    for w in bad_w:
        _check(R.ttq_quantize, T.ttq_quantize, (w, one, one), {}, tensors={0, 1, 2})
        _check(
            R.ttq_quantize_vjp, T.ttq_quantize_vjp, (np.ones(w.shape, w.dtype), w, one, one), {}, tensors={0, 1, 2, 3}
        )
    for s in (F32(0.0), F32(-0.0), F32(-1.0), F32(np.nan), F32(np.inf), F32([1.0]), np.float64(1.0)):
        _check(R.ttq_quantize, T.ttq_quantize, (ok, s, one), {}, tensors={0, 1, 2})
        _check(R.ttq_quantize, T.ttq_quantize, (ok, one, s), {}, tensors={0, 1, 2})
        _check(R.ttq_quantize, T.ttq_quantize, (F32([np.nan]), s, one), {}, tensors={0, 1, 2})  # w's error first
    for t in (1.5, -0.1, float("nan"), "0.5"):
        _check(R.ttq_quantize, T.ttq_quantize, (F32([np.nan]), one, one), {"t": t}, tensors={0, 1, 2})
    for g in (F32([1.0, np.nan, 0.0]), F32([1.0, 2.0]), F32([np.inf, 0.0, 0.0])):
        _check(R.ttq_quantize_vjp, T.ttq_quantize_vjp, (g, ok, one, one), {}, tensors={0, 1, 2, 3})
    with pytest.raises(TypeError):
        T.ttq_quantize(torch.ones(3), 1.0, torch.tensor(1.0))


# ---- low-bit floats -----------------------------------------------------------------------------------------


FLOAT_CASES = [(fmt, sat) for fmt in FORMATS for sat in (True, False)]


@pytest.mark.parametrize("host_max", ROUTES)
@pytest.mark.parametrize(("fmt", "saturate"), FLOAT_CASES)
def test_float_routes_match_the_reference(fmt, saturate, host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    pool = _pool(_decoded(fmt), seed=len(fmt))
    rng = np.random.default_rng(11)
    shapes = [(), (1,), (1, 1), (3, 4), (64,), (65,), (2, 3, 5)]
    for mode, key in (("half_even", None), ("stochastic", (7, 2**32 - 1)), ("stochastic", (0, 1))):
        kwargs = {"saturate": saturate, "rounding": mode, "key": key}
        for start in range(0, pool.size, 64):
            x = pool[start : start + 64]
            for fn in ("float_encode", "float_quantize"):
                _check(getattr(R, fn), getattr(T, fn), (x, fmt), kwargs, tensors={0})
            g = rng.standard_normal(x.shape).astype(F32)
            _check(R.float_quantize_vjp, T.float_quantize_vjp, (g, x, fmt), kwargs, tensors={0, 1})
        for shape in shapes:
            x = rng.choice(pool, shape).astype(F32)
            for fn in ("float_encode", "float_quantize"):
                _check(getattr(R, fn), getattr(T, fn), (x, fmt), kwargs, tensors={0})
            g = np.where(rng.random(shape) < 0.5, F32(np.nan), F32(-0.0)).astype(F32)  # grad is not checked
            _check(R.float_quantize_vjp, T.float_quantize_vjp, (g, x, fmt), kwargs, tensors={0, 1})
            with _arrays.vjps_by_autograd():
                _check(R.float_quantize_vjp, T.float_quantize_vjp, (g, x, fmt), kwargs, tensors={0, 1})


@pytest.mark.parametrize("host_max", ROUTES)
def test_float_quantize_records_gradients_on_every_route(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    x0 = F32([1.0, 500.0, -0.0, 1e-45, 3.0])
    x = torch.tensor(x0, requires_grad=True)
    out = T.float_quantize(x, "float8_e4m3fn")
    assert out.requires_grad
    same_on_cpu(R.float_quantize(x0, "float8_e4m3fn"), out)
    g = F32([1.0, 2.0, 3.0, 4.0, 5.0])
    (grad,) = torch.autograd.grad(out, x, torch.from_numpy(g))
    same_on_cpu(R.float_quantize_vjp(g, x0, "float8_e4m3fn"), grad)


@pytest.mark.parametrize("host_max", ROUTES)
def test_float_errors_match_the_reference(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    for fmt in FORMATS:
        for x in (F32([1.0, 2.0, np.nan]), _words([0x7F800000, 0xFFC00001]), F32([[np.nan]]), np.float64([1.0])):
            for fn in ("float_encode", "float_quantize"):
                _check(getattr(R, fn), getattr(T, fn), (x, fmt), {}, tensors={0})
            _check(R.float_quantize_vjp, T.float_quantize_vjp, (np.ones(x.shape, F32), x, fmt), {}, tensors={0, 1})
            _check(R.float_quantize_vjp, T.float_quantize_vjp, (F32([1.0]), x, fmt), {}, tensors={0, 1})
        _check(R.float_encode, T.float_encode, (F32([1.0]), fmt), {"saturate": False}, tensors={0})
        _check(R.float_encode, T.float_encode, (F32([1.0]), fmt), {"rounding": "stochastic"}, tensors={0})


# ---- MX -----------------------------------------------------------------------------------------------------


def _mx_pool(fmt):
    elem = MX_FORMATS[fmt]
    if elem.float_format is None:
        values = np.arange(-128, 128, dtype=F32) * F32(2.0**-6)
    else:
        values = _decoded(elem.float_format)
    return _pool(values, seed=len(fmt))


MX_SHAPES = [((1,), 0, 1), ((4,), -1, 2), ((8,), 0, 8), ((2, 4), 0, 2), ((3, 4), 1, 4), ((2, 3, 4), 0, 1)]
MX_SHAPES += [((2, 2, 8), 2, 8), ((4, 2, 2), -3, 4), ((64,), 0, 32), ((2, 32), 1, 32), ((4, 4, 4), 1, 2)]
MX_SHAPES += [((66,), 0, 2), ((2, 0, 4), 1, 4)]


@pytest.mark.parametrize("host_max", ROUTES)
@pytest.mark.parametrize("fmt", list(MX_FORMATS))
def test_mx_routes_match_the_reference(fmt, host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    pool = _mx_pool(fmt)
    finite = pool[np.isfinite(pool)]
    rng = np.random.default_rng(13)
    for rule in ("floor", "ceil", "even", "ceil_pow2"):
        for rounding in ("half_even", "half_away"):
            for shape, axis, bs in MX_SHAPES:
                for nonfinite in ("raise", "nan"):
                    x = rng.choice(pool if nonfinite == "nan" else finite, shape).astype(F32)
                    scale = F32(2.0) ** F32(rng.integers(-30, 30))
                    if rng.random() < 0.5 and x.size:
                        with np.errstate(over="ignore", invalid="ignore"):
                            x = (x * scale).astype(F32)
                        if nonfinite == "raise":
                            x = np.where(np.isfinite(x), x, F32(-0.0)).astype(F32)
                    kwargs = {"axis": axis, "block_size": bs, "scale_rule": rule, "rounding": rounding}
                    kwargs["nonfinite"] = nonfinite
                    for fn in ("mx_quantize", "mx_fake_quantize"):
                        _check(getattr(R, fn), getattr(T, fn), (x, fmt), kwargs, tensors={0})
                    g = rng.standard_normal(shape).astype(F32)
                    _check(R.mx_fake_quantize_vjp, T.mx_fake_quantize_vjp, (g, x, fmt), kwargs, tensors={0, 1})


@pytest.mark.parametrize("host_max", ROUTES)
def test_mx_extreme_blocks_match_the_reference(host_max, monkeypatch):
    """Blocks of zeros (either sign), subnormals only, the largest float32 (scale exponents clipped at +-127),
    and NaN or Inf with nonfinite="nan" (the NaN scale and filler codes)."""
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    blocks = [
        F32([0.0, -0.0, 0.0, -0.0]),
        _words([1, 0x80000001, 0x007FFFFF, 0]),
        _words([0x7F7FFFFF, 0xFF7FFFFF, 0x7F000000, 1]),
        F32([np.nan, 1.0, 2.0, 3.0]),
        F32([-np.inf, -0.0, 5.0, 6.0]),
        F32([448.0, 464.0, 480.0, -57344.0]),
        F32([7.5, 7.75, 6.0, 6.5]),
    ]
    x = np.concatenate(blocks).astype(F32)
    for fmt in MX_FORMATS:
        for rule in ("floor", "ceil", "even", "ceil_pow2"):
            for rounding in ("half_even", "half_away"):
                kwargs = {"block_size": 4, "scale_rule": rule, "rounding": rounding, "nonfinite": "nan"}
                for fn in ("mx_quantize", "mx_fake_quantize"):
                    _check(getattr(R, fn), getattr(T, fn), (x, fmt), kwargs, tensors={0})
                    _check(
                        getattr(R, fn),
                        getattr(T, fn),
                        (x.reshape(7, 4).T.copy(), fmt),
                        {**kwargs, "axis": 0},
                        tensors={0},
                    )


@pytest.mark.parametrize("host_max", ROUTES)
def test_mx_errors_and_gradients_match_the_reference(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    cases = [
        ((F32([1.0, np.nan, 2.0, 3.0]), "mxint8"), {"block_size": 2}),
        ((F32([1.0, 2.0, 3.0, -np.inf]), "mxfp8_e4m3"), {"block_size": 3}),  # x's error first
        ((F32([1.0, 2.0, 3.0]), "mxfp8_e4m3"), {"block_size": 2}),
        ((F32([1.0, 2.0]), "mxfp8_e4m3"), {"block_size": 2, "axis": 1}),
        ((F32(1.0).reshape(()), "mxfp4_e2m1"), {"block_size": 1}),
        ((np.float64([1.0, 2.0]), "mxint8"), {"block_size": 2}),
        ((F32([1.0, 2.0]), "mxfp9"), {"block_size": 2}),
        ((F32([1.0, 2.0]), "mxint8"), {"block_size": 2, "scale_rule": "round"}),
    ]
    for args, kwargs in cases:
        for fn in ("mx_quantize", "mx_fake_quantize"):
            _check(getattr(R, fn), getattr(T, fn), args, kwargs, tensors={0})
        _check(R.mx_fake_quantize_vjp, T.mx_fake_quantize_vjp, (F32([1.0, 1.0]),) + args, kwargs, tensors={0, 1})
    x0 = F32([0.3, -1.0, 2.5, 1e-40])
    x = torch.tensor(x0, requires_grad=True)
    out = T.mx_fake_quantize(x, "mxint8", block_size=2)
    assert out.requires_grad
    same_on_cpu(R.mx_fake_quantize(x0, "mxint8", block_size=2), out)
    (grad,) = torch.autograd.grad(out, x, torch.full((4,), -0.0))
    same_on_cpu(R.mx_fake_quantize_vjp(np.full(4, F32(-0.0)), x0, "mxint8", block_size=2), grad)


@pytest.mark.parametrize("host_max", ROUTES)
def test_float_outputs_do_not_share_the_decode_table(host_max, monkeypatch):
    """A 0-d code used to index the cached decode table returned a view of it: writing into the result changed
    every later decoding. Each result is now a tensor of its own, on every route."""
    if host_max is not None:
        monkeypatch.setattr(_floats, "HOST_MAX", host_max)
    fmt = "float8_e4m3fn"
    for make in (
        lambda: T.float_decode(torch.tensor(0x3C, dtype=torch.uint8), fmt),
        lambda: T.float_quantize(torch.tensor(1.5), fmt),
    ):
        out = make()
        assert out.untyped_storage().resizable() and out.untyped_storage().nbytes() == 4
        out.add_(100.0)
        same_on_cpu(R.float_decode(np.uint8(0x3C), fmt), make())
