"""DoReFa, PACT, LSQ, LSQ+ beyond the generic registry tests.

- tanh exactness: "float64 tanh rounded once" is the float32 nearest the exact tanh. The hardest inputs found by
  an exhaustive scan are checked against mpmath on both backends; one whole binade is re-scanned here; the full
  scan of all 2**32 inputs runs with PQREF_EXHAUSTIVE=1 (about 16 minutes on 2 CPU cores).
- The reference VJPs are what autograd computes for the papers' formulas (float64 torch, straight-through
  rounding written with `detach`), to float64 rounding.
- torch.ao's `_LearnableFakeQuantize` as an oracle for LSQ: agreement where the semantics coincide, and its four
  known divergences asserted on fixed inputs.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize
from torch.ao.quantization.observer import PerChannelMinMaxObserver

import reference as R
import torch_backend as T
from reference.core.reduce import tree_sum
from reference.quantization import dorefa as ref_dorefa
from spec import strategies as S
from tests.helpers import DEVICE_PARAMS
from tests.peer_record import observe
from torch_backend import _reduce as torch_reduce
from torch_backend.quantization import dorefa as torch_dorefa

F32 = np.float32


def _bits(a):
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def _t(a):
    return torch.from_numpy(np.array(a, dtype=F32))


def _t64(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))


# ------------------------------------------------------------------------------------------------------------
# tanh: float64, rounded once
# ------------------------------------------------------------------------------------------------------------

# Every float32 w > 0 whose float64 tanh (NumPy's or torch's) lies within 64 float64 ulps of a float32 rounding
# midpoint: the complete list from a scan of all 2**31 non-negative float32 inputs (numpy 2.4, torch 2.13 CPU).
HARD_TANH_BITS = (
    0x39B89BA2, 0x39B89BA3, 0x3A27BA3B, 0x3A5E773A, 0x3ABC6065, 0x3AC37DE2, 0x3ADBC904, 0x3BC11B0B, 0x3BC8B605,
    0x3BE46E2B, 0x3C4E34B0, 0x3C96AE2E, 0x3CA1E990, 0x3CD41B91, 0x3D7C3055, 0x3DA99442, 0x3DC95DB7, 0x3DEE483B,
    0x3E150CD4, 0x3EEE0566, 0x3EF6AFEE, 0x3F172BE6, 0x3F20B67F, 0x3F325D3B, 0x3F97FBC7, 0x3FB3C82A, 0x3FF8BC7E,
    0x4013CD84, 0x4053EEA7, 0x40A6EF82, 0x40ACB4D0, 0x40C5E8CA, 0x40C7B05F,
)  # fmt: skip


def _exact_tanh_and_distance(x):
    """The float32 nearest tanh(x) (by mpmath at 200 bits) and the distance of tanh(x) from the nearest float32
    rounding midpoint, in float64 ulps."""
    mpmath.mp.prec = 200
    exact = mpmath.tanh(mpmath.mpf(float(x)))
    guess = F32(float(exact))
    candidates = [np.nextafter(guess, F32(-2)), guess, np.nextafter(guess, F32(2))]
    nearest = min(candidates, key=lambda c: abs(mpmath.mpf(float(c)) - exact))
    mids = [(mpmath.mpf(float(nearest)) + mpmath.mpf(float(np.nextafter(nearest, F32(d))))) / 2 for d in (-2, 2)]
    mid = min(mids, key=lambda m: abs(m - exact))
    ulp = mpmath.mpf(float(np.spacing(abs(np.float64(float(mid))))))
    return nearest, float(abs(exact - mid) / ulp)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_tanh_hardest_inputs_are_correctly_rounded_on_both_backends(device):
    x = np.array(HARD_TANH_BITS, dtype=np.uint32).view(F32)
    x = np.concatenate([x, -x])
    results = [_exact_tanh_and_distance(v) for v in x]
    nearest = np.array([r[0] for r in results], dtype=F32)
    distances = np.array([r[1] for r in results])
    ref = ref_dorefa._tanh32(x)
    mine = torch_dorefa._tanh32(torch.from_numpy(x).to(device)).cpu().numpy()
    np.testing.assert_array_equal(_bits(ref), _bits(nearest))
    np.testing.assert_array_equal(_bits(mine), _bits(nearest))
    # the recorded facts: the closest approach is 5.04 ulps at +-0.0014914835, the next 9.14 at +-0.46488494
    order = np.argsort(distances, kind="stable")
    assert 5.0 < distances[order[0]] < 5.1 and float(abs(x[order[0]])) == float(F32(0.0014914835))
    assert 9.1 < distances[order[2]] < 9.2 and float(abs(x[order[2]])) == float(F32(0.46488494))
    assert tuple(float(F32(v)) for v in S.HARD_TANH) == tuple(float(abs(x[order[2 * i]])) for i in range(8))


def _midpoint_distance_ulps(y64):
    """Distance of float64 values from the nearest float32 rounding midpoint, in float64 ulps (as integers)."""
    y32 = y64.astype(F32)
    b = y64.view(np.int64)
    up = ((y32.astype(np.float64) + np.nextafter(y32, F32(np.inf)).astype(np.float64)) / 2).view(np.int64)
    down = ((y32.astype(np.float64) + np.nextafter(y32, F32(-np.inf)).astype(np.float64)) / 2).view(np.int64)
    return np.minimum(np.abs(b - up), np.abs(b - down))


def _scan(lo, hi, device, chunk=1 << 23):
    """Both backends' float64 tanh over the float32 bit patterns [lo, hi), torch on `device`: (float64
    differences, float32 differences, (the smallest midpoint distance in ulps, the input where it occurs))."""
    diff64 = diff32 = 0
    best = (np.iinfo(np.int64).max, None)
    for start in range(lo, hi, chunk):
        x = np.arange(start, min(start + chunk, hi), dtype=np.uint64).astype(np.uint32).view(F32)
        x = x[np.isfinite(x)]
        a = np.tanh(x.astype(np.float64))
        b = torch.tanh(_t64(x).to(device)).cpu().numpy()
        diff64 += int(np.count_nonzero(a.view(np.uint64) != b.view(np.uint64)))
        diff32 += int(np.count_nonzero(_bits(a.astype(F32)) != _bits(b.astype(F32))))
        d = np.minimum(_midpoint_distance_ulps(a), _midpoint_distance_ulps(b))
        i = int(np.argmin(d))
        if d[i] < best[0]:
            best = (int(d[i]), x[i])
    return diff64, diff32, best


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_tanh_binade_of_the_hardest_input_exhaustively(device):
    """All 2**23 float32 in [2**-10, 2**-9): the backends' float64 tanh differ in the last bit (on the CPU),
    never after the rounding; the closest approach to a midpoint is 5 ulps at 0.0014914835."""
    lo = int(np.array(2.0**-10, F32).view(np.uint32))
    hi = int(np.array(2.0**-9, F32).view(np.uint32))
    diff64, diff32, (ulps, where) = _scan(lo, hi, device)
    assert diff64 > 0 or device != "cpu"
    assert diff32 == 0
    assert ulps == 5 and float(where) == float(F32(0.0014914835))


@pytest.mark.skipif(not os.environ.get("PQREF_EXHAUSTIVE"), reason="all 2**32 inputs: set PQREF_EXHAUSTIVE=1")
@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_tanh_all_float32_inputs_exhaustively(device):
    """Measured on the CPU (numpy 2.4, torch 2.13): 104 238 612 of the 4 278 190 080 finite inputs have
    different float64 tanh in the two libraries, none after the rounding; the closest approach to a midpoint is
    5 ulps, at +-0.0014914835."""
    diff64, diff32, (ulps, where) = _scan(0, 2**32, device, chunk=1 << 24)
    assert diff32 == 0
    assert ulps == 5 and abs(float(where)) == float(F32(0.0014914835))
    assert diff64 == 104_238_612 or device != "cpu"


def test_tanh_float64_differs_between_numpy_and_torch_but_not_after_rounding():
    """Recorded: on normal(0, 1) inputs about 20% of the float64 tanh values of NumPy and torch's (vectorised) CPU
    tanh differ by one ulp, and none of the differences survives the rounding to float32."""
    x = np.random.default_rng(0).standard_normal(1 << 18).astype(F32).astype(np.float64)
    a, b = np.tanh(x), torch.tanh(torch.from_numpy(x)).numpy()
    differ = a.view(np.uint64) != b.view(np.uint64)
    assert 0.1 < differ.mean() < 0.3
    assert int(np.max(np.abs(a.view(np.int64)[differ] - b.view(np.int64)[differ]))) == 1
    assert np.array_equal(_bits(a.astype(F32)), _bits(b.astype(F32)))


# ------------------------------------------------------------------------------------------------------------
# The reference VJPs are autograd of the papers' formulas (float64 torch, tolerance for float64 rounding)
# ------------------------------------------------------------------------------------------------------------


def _ste_round(v):
    return v + (torch.round(v) - v).detach()


@given(S.dorefa_weight_cases(with_grad=True))
def test_dorefa_weight_vjp_is_autograd_of_the_formula(case):
    grad, w, bits = case.args
    if bits == 1 or w.size == 0 or not np.any(w != 0) or np.any(np.abs(grad) > 1e30):
        return
    t = torch.tanh(_t64(w)).to(torch.float32).to(torch.float64).requires_grad_(True)
    n = 2**bits - 1
    r = t / (2 * torch.abs(t).max()) + 0.5  # torch's max() splits its gradient evenly among ties
    out = 2 * (_ste_round(n * r) / n) - 1
    (dt,) = torch.autograd.grad(out, t, _t64(grad))
    theirs = (dt * (1 - t.detach() ** 2)).numpy()
    ours = R.dorefa_weight_vjp(grad, w, bits).astype(np.float64)
    # beyond the float32 range pqref's result is +-inf with the sign of the float64 value
    huge = np.abs(theirs) > 3.5e38
    assert np.all(np.isinf(ours[huge]) & (np.sign(ours[huge]) == np.sign(theirs[huge])))
    keep = np.abs(theirs) < 3.3e38
    scale = np.max(np.abs(grad.astype(np.float64))) / float(torch.abs(t).max()) * max(w.size, 1)
    # the float32 rounding of a subnormal result errs by up to half the smallest subnormal, 2**-150
    np.testing.assert_allclose(ours[keep], theirs[keep], rtol=1e-6, atol=1e-6 * scale + 2.0**-149)


@given(S.lsq_cases(plus=True, with_grad=True))
def test_lsq_plus_vjp_is_autograd_of_the_formula(case):
    grad, x, scale, offset = case.args
    kw = case.kwargs
    if np.any(np.abs(grad) > 1e30) or np.any(np.abs(x) > 1e30) or np.any(np.abs(offset) > 1e30):
        return
    qn, qp = (2 ** (kw["bits"] - 1), 2 ** (kw["bits"] - 1) - 1) if kw["signed"] else (0, 2 ** kw["bits"] - 1)
    axis = kw["axis"]
    view = () if axis is None else tuple(-1 if i == axis % x.ndim else 1 for i in range(x.ndim))
    n_step = x.size if axis is None else x.size // max(x.shape[axis], 1)
    gs = R.lsq_grad_scale(n_step, qp)
    s = _t64(scale).requires_grad_(True)
    b = _t64(offset).requires_grad_(True)
    xt = _t64(x).requires_grad_(True)
    # the LSQ gradient-scale trick: forward value p, gradient times gs
    s_g = s * gs + (s - s * gs).detach()
    b_g = b * gs + (b - b * gs).detach()
    s_v, b_v = s_g.reshape(view), b_g.reshape(view)
    v = (xt - b_v) / s_v
    # v computed in float32 decides the pass region in pqref: use its float32 value, gradients from float64
    v32 = _t64((x - offset.reshape(view)) / scale.reshape(view))
    v = v + (v32 - v).detach()
    out = _ste_round(torch.clamp(v, -qn, qp)) * s_v + b_v
    theirs = torch.autograd.grad(out, (xt, s, b), _t64(grad))
    ours = R.lsq_plus_quantize_vjp(grad, x, scale, offset, **kw)
    np.testing.assert_allclose(ours[0].astype(np.float64), theirs[0].numpy(), rtol=1e-12, atol=0)
    for o, t in zip(ours[1:], theirs[1:], strict=True):
        tol = 1e-5 * (np.sum(np.abs(grad.astype(np.float64))) * (qp + qn + 1) * gs + 1e-30)
        np.testing.assert_allclose(o.astype(np.float64), t.numpy(), rtol=1e-5, atol=tol)


# ------------------------------------------------------------------------------------------------------------
# Exact helpers
# ------------------------------------------------------------------------------------------------------------


def test_lsq_grad_scale_is_the_nearest_float32():
    mpmath.mp.prec = 100
    # (numel, qp): numel is at most 2**40, so 2**40 + 1 = 257 * 4278255361 comes as a product
    for numel, qp in [*((m, 1) for m in range(1, 2000)), (4278255361, 257), (3 * 4**17, 1), (10**12 + 39, 1)]:
        m = numel * qp
        exact = 1 / mpmath.sqrt(m)
        got = R.lsq_grad_scale(numel, qp)
        y = F32(got)
        for other in (np.nextafter(y, F32(0)), np.nextafter(y, F32(2))):
            assert abs(mpmath.mpf(float(y)) - exact) < abs(mpmath.mpf(float(other)) - exact), m
        assert T.lsq_grad_scale(numel, qp) == got


def test_torch_backward_tree_sum_is_the_core_tree():
    rng = np.random.default_rng(1)
    for shape in [(0,), (1,), (3,), (7, 5), (4, 0), (2, 9)]:
        a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-30, 30, shape)).astype(np.float64)
        ours = torch_reduce.tree(torch.from_numpy(a)).numpy()
        assert ours.tobytes() == tree_sum(a).tobytes()
        if a.ndim == 2:
            assert torch_reduce.tree(torch.from_numpy(a), axis=1).numpy().tobytes() == tree_sum(a, 1).tobytes()


def test_backward_lets_a_nonfinite_cotangent_through():
    """In training, a NaN cotangent propagates through the backward pass (IEEE) instead of raising."""
    x = _t([0.5, 2.0]).requires_grad_(True)
    alpha = _t(1.0).requires_grad_(True)
    T.pact_quantize(x, alpha, 2).backward(_t([np.nan, 1.0]))
    assert torch.isnan(x.grad[0]) and bool(alpha.grad == 1.0)


# ------------------------------------------------------------------------------------------------------------
# torch.ao _LearnableFakeQuantize as an oracle for LSQ
# ------------------------------------------------------------------------------------------------------------


def _ao_per_tensor(x, scale, zero_point, qmin, qmax, grad, grad_factor=1.0):
    """torch.ao's learnable per-tensor fake quantization: (output, dX, dScale, dZeroPoint)."""
    xt = torch.from_numpy(x).requires_grad_(True)
    s = torch.tensor([float(scale)], requires_grad=True)
    z = torch.tensor([float(zero_point)], requires_grad=True)
    y = torch._fake_quantize_learnable_per_tensor_affine(xt, s, z, qmin, qmax, grad_factor)
    y.backward(torch.from_numpy(grad))
    return y.detach().numpy(), xt.grad.numpy(), s.grad.numpy()[0], z.grad.numpy()[0]


@st.composite
def _coinciding_cases(draw):
    """Where torch.ao and LSQ mean the same: per tensor, zero point 0, a power-of-two step (x * (1/s) = x / s),
    x on the half-grid but not in (Qp, Qp + 1/2] or [-Qn - 1/2, -Qn) (rounded inside, clipped outside), small
    integer cotangents and bits <= 8 (every float32 product and sum in torch.ao is exact)."""
    signed = draw(st.booleans())
    bits = draw(st.integers(2, 8))
    qn, qp = (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    s = F32(2.0 ** draw(st.integers(-10, 10)))
    shape = draw(S.shapes(min_side=1, max_side=5))
    half = st.integers(-2 * qn - 8, 2 * qp + 8).filter(
        lambda j: not (2 * qp < j <= 2 * qp + 1 or -2 * qn - 1 <= j < -2 * qn)
    )
    v = draw(hnp.arrays(F32, shape, elements=half.map(lambda j: j / 2)))
    grad = draw(hnp.arrays(F32, shape, elements=st.integers(-16, 16).map(float)))
    return np.asarray(v * s), s, grad, signed, bits, qn, qp


@given(_coinciding_cases())
def test_lsq_definition_and_torch_ao_where_the_semantics_coincide(case):
    x, s, grad, signed, bits, qn, qp = case
    kw = {"bits": bits, "signed": signed}
    ours = R.lsq_quantize(x, np.array(s), **kw)
    grad_x, grad_scale = R.lsq_quantize_vjp(grad, x, np.array(s), **kw)
    # LSQ's definition with a power-of-two step (every operation exact): clip(rint(x / s), -Qn, Qp) * s; the
    # gradient passes to x inside [-Qn, Qp] (+0.0 elsewhere), the step gets gs * sum(g * (q - v) inside, or the
    # clipped bound outside)
    v = x.astype(np.float64) / np.float64(s)
    q = np.clip(np.rint(v), -qn, qp)
    np.testing.assert_array_equal(_bits(ours), _bits((q * np.float64(s) + 0.0).astype(F32)))
    inside = (v >= -qn) & (v <= qp)
    np.testing.assert_array_equal(_bits(grad_x), _bits(np.where(inside, grad, F32(0))))
    gs = R.lsq_grad_scale(x.size, qp)
    step = float(np.sum(grad.astype(np.float64) * np.where(inside, q - v, q)))  # exact: small dyadic terms
    assert grad_scale == F32(step * gs)
    # torch.ao's _LearnableFakeQuantize, recorded: the same output; the same x gradient up to the sign of zero
    # (it multiplies by the mask); its float32 scale sum is exact here, times pqref's factor, which is its own
    # 1 / (numel * quant_max) ** 0.5 rounded to float32
    out, dx, dscale, _ = _ao_per_tensor(x, s, 0, -qn, qp, grad)
    observe("torch", _bits(out) != _bits(ours), what="_LearnableFakeQuantize output")
    observe("torch", dx != grad_x, what="_LearnableFakeQuantize dX")
    observe("torch", [F32(np.float64(dscale) * gs) != grad_scale], what="_LearnableFakeQuantize dScale")
    assert float(F32(1.0 / (x.size * qp) ** 0.5)) == gs


def test_torch_ao_zero_point_rounding_recorded():
    """pqref's LSQ never rounds an offset: at zero point 0, x = 100.5, s = 1 the step gradient is -0.5 * gs.
    torch.ao 2.13, zero_point = 0.5, recorded: the forward uses nearbyint(0.5) = 0 (half to even), the backward
    0.5 + 0.5 truncated = 1, so code 100 (q - v = -0.5) forward but a scale gradient of +0.5, the opposite sign."""
    x, g = np.array([100.5], F32), np.array([1.0], F32)
    ours_y = R.lsq_quantize(x, np.array(1.0, F32), bits=8, signed=False)
    _, ours = R.lsq_quantize_vjp(g, x, np.array(1.0, F32), bits=8, signed=False)
    assert float(ours_y[0]) == 100.0 and float(ours) == float(F32(-0.5 * R.lsq_grad_scale(1, 255)))
    out, dx, dscale, _ = _ao_per_tensor(x, 1.0, 0.5, 0, 255, g)
    theirs = [float(out[0]) != 100.0, float(dscale) != 0.5]  # differ from the recorded torch 2.13 values
    observe("torch", theirs, predicted=True, known={"2.13": 0}, what="zero point 0.5 forward / backward")


def test_torch_ao_per_channel_grad_factor_recorded():
    """4 channels of 4 elements, every element clipped at Qp = 1: pqref's factor is 1 / sqrt(4 * 1) = 1/2 (the
    elements that share one step); torch.ao 2.13's is 1 / sqrt(16 * 1) = 1/4 for every channel (the whole tensor)."""
    x = np.full((4, 4), 10.0, F32)
    g = np.ones((4, 4), F32)
    _, ours = R.lsq_quantize_vjp(g, x, np.ones(4, F32), bits=1, signed=False, axis=0)
    np.testing.assert_array_equal(ours, np.full(4, 2.0, F32))  # 4 elements * Qp * 1/2
    fq = _LearnableFakeQuantize(
        observer=PerChannelMinMaxObserver, quant_min=0, quant_max=1, channel_len=4, use_grad_scaling=True,
        ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine,
    )  # fmt: skip
    fq.enable_param_learning()
    with torch.no_grad():
        fq.scale.fill_(1.0)
        fq.zero_point.fill_(0.0)
    fq(torch.from_numpy(x)).backward(torch.from_numpy(g))
    theirs = fq.scale.grad.numpy()
    observe("torch", theirs != ours, predicted=True, known={"2.13": 4}, what="per-channel grad factor")


def test_torch_ao_reciprocal_of_the_scale_recorded():
    """s = 0.1 (not a power of two), int8, x within 4 ulps of every rounding midpoint (k + 1/2) s: pqref divides,
    rne(x / s); torch.ao's rne(x * fl(1/s)) rounds to the other neighbour for 32 of these 2295 inputs (torch 2.13
    CPU), exactly where the reciprocal formula does."""
    s = F32(0.1)
    mid = ((np.arange(-128, 127, dtype=F32) + F32(0.5)) * s).astype(F32)
    b = mid.view(np.uint32).astype(np.int64)[:, None]
    offsets = np.arange(-4, 5)
    x = np.unique(np.where(mid[:, None] >= 0, b + offsets, b - offsets).astype(np.uint32).view(F32).reshape(-1))
    assert x.size == 2295
    ours = R.lsq_quantize(x, np.array(s), bits=8, signed=True)
    codes = np.clip(np.rint(x / s), -128, 127)  # IEEE float32 division
    np.testing.assert_array_equal(_bits(ours), _bits(np.where(codes == 0, F32(0), codes) * s))
    r_codes = np.clip(np.rint(x * (F32(1) / s)), -128, 127)
    recip = np.where(r_codes == 0, F32(0), r_codes) * s  # integer codes: code 0 is +0.0
    out, *_ = _ao_per_tensor(x, s, 0, -128, 127, np.ones_like(x))
    predicted = _bits(recip) != _bits(ours)
    observe("torch", _bits(out) != _bits(ours), predicted=predicted, known={"2.13": 32}, what="scale 0.1")


def test_torch_ao_pass_region_recorded():
    """v = x / s in (Qp, Qp + 1/2] rounds to Qp: pqref clips first (v > Qp is outside): no gradient to x, Qp to
    the scale. torch.ao 2.13 decides after rounding, recorded: it passes dY to x and gives the scale Qp - v.
    Unsigned 4 bits, s = 1, v = 15.25."""
    x, g = np.array([15.25, 15.0], F32), np.array([1.0, 1.0], F32)
    grad_x, grad_scale = R.lsq_quantize_vjp(g, x, np.array(1.0, F32), bits=4, signed=False)
    np.testing.assert_array_equal(grad_x, [0.0, 1.0])
    assert float(grad_scale) == float(F32(15 * R.lsq_grad_scale(2, 15)))  # Qp + 0
    _, dx, dscale, _ = _ao_per_tensor(x, 1.0, 0, 0, 15, g)
    theirs = [dx[0] != 1.0, dx[1] != 1.0, float(dscale) != -0.25]  # differ from the recorded torch 2.13 values
    observe("torch", theirs, predicted=True, known={"2.13": 0}, what="pass region after rounding")


def test_dorefa_levels_are_symmetric_unlike_tensorpacks_composition():
    """tensorpack and Distiller compute 2 * fl(c / n) - 1 (two roundings); pqref the nearest float32 of the level.
    Recorded: for k = 2 the composition gives -0.3333333 and 0.33333337, pqref -+0.33333334 (symmetric); over
    k = 2..8, 264 of the 508 levels differ, by up to 127 ulps (the levels next to 0, where - 1 cancels)."""
    differ = worst = 0
    for k in range(2, 9):
        n = 2**k - 1
        w = np.tanh(np.linspace(-3, 3, 4 * n + 1)).astype(F32)  # reaches every code
        w = np.arctanh(w.astype(np.float64)).astype(F32)
        ours = R.dorefa_weight(w, k)
        levels = np.unique(ours)
        assert levels.size == n + 1
        np.testing.assert_array_equal(_bits(levels), _bits(-levels[::-1]))
        composed = F32(2) * (np.arange(n + 1, dtype=F32) / F32(n)) - F32(1)
        differ += int(np.count_nonzero(_bits(composed) != _bits(levels)))
        worst = max(worst, int(np.max(np.abs(composed.view(np.int32).astype(np.int64) - levels.view(np.int32)))))
        if k == 2:
            assert composed.tolist() == [-1.0, float(F32(-0.3333333)), float(F32(0.33333337)), 1.0]
    assert differ == 264 and worst == 127


def test_pact_top_level_can_exceed_alpha():
    """Recorded: the top level n * fl(alpha / n) differs from alpha for about 15% of alpha at k = 2."""
    alpha = (np.random.default_rng(2).random(1 << 16) * 10 + 1e-3).astype(F32)
    top = F32(3) * (alpha / F32(3))
    assert 0.1 < np.mean(top != alpha) < 0.2
    assert float(R.pact_quantize(np.array([5.0], F32), np.array(0.1, F32), 2)[0]) == float(F32(0.10000001))
    assert math.isclose(float(np.mean(top > alpha)), float(np.mean(top < alpha)), rel_tol=0.1)
