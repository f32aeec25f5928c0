"""Low-bit floats and MX: exhaustive code enumerations, exact definitions, and peers recorded as oracles.

Every test first asserts pqref against pqref's own definition, written out here with exact float64 arithmetic
(`_magnitudes`, `_decode_def`, `_encode_def`: the format table's formula, nearest value by exact midpoint
comparison, ties to the even code, E8M0's tie up). Peers (ml_dtypes, torch's float8 / e8m0 casts, the ONNX
reference evaluator) are then compared and recorded with their versions (`tests.peer_record.observe`): a peer may
agree, or differ where a documented divergence predicts it; it never defines a result.
"""

from __future__ import annotations

import functools
import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import reference as R
import torch_backend as T
from reference.core.random import random_bits
from reference.quantization.floats import FORMATS
from reference.quantization.mx import MX_FORMATS
from spec import strategies as S
from tests.helpers import torch_devices
from tests.peer_record import observe, version

F32 = np.float32
FMTS = list(FORMATS)
# ml_dtypes names every format as pqref does; versions before 0.5 lack the FP6 / FP4 / E8M0 dtypes
PEER = {name: getattr(ml_dtypes, name, None) for name in FMTS}
DEVICES = torch_devices()


def _u32(a):
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def _codes(fmt):
    return np.arange(2 ** FORMATS[fmt].bits, dtype=np.uint8)


def _peer(fmt):
    """The ml_dtypes dtype of a format, or a skip naming the installed version that lacks it."""
    if PEER[fmt] is None:
        pytest.skip(f"ml_dtypes {version('ml_dtypes')} has no {fmt} dtype (added in 0.5)")
    return PEER[fmt]


def _peer_mode(fmt):
    """The `saturate` that matches ml_dtypes' casts: non-saturating where the format has Inf or NaN."""
    form = FORMATS[fmt]
    return not (form.has_inf or form.has_nan)


@functools.cache
def _boundary_inputs(fmt):
    """Every boundary value of the format with both signs, plus zeros, float32 subnormals, huge values, +-Inf."""
    b = np.array(S.lowbit_boundaries(fmt), dtype=F32)
    extra = np.array([0.0, 1.4e-45, 1e-40, 2.0**-126, 1e-20, 1e20, 1e38, np.finfo(F32).max, np.inf], F32)
    v = np.concatenate([b, extra])
    return np.concatenate([v, -v])


def _torch(a, device="cpu"):
    return torch.from_numpy(np.array(a, copy=True)).to(device)


# ------------------------------------------------------------------------------------------------------------
# pqref's definitions, written out independently of reference/quantization/floats.py
# ------------------------------------------------------------------------------------------------------------


@functools.cache
def _magnitudes(fmt):
    """float64 value of every finite magnitude code 0 .. max_code, and of max_code + 1 (the overflow slot).

    Signed formats: exponent field e, fraction field m; e = 0 is subnormal, m * 2**(1 - bias - M), otherwise
    (2**M + m) * 2**(e - bias - M). E8M0: code c is 2**(c - 127). All exact in float64, and so are the midpoints
    of neighbours (one more bit).
    """
    form = FORMATS[fmt]
    c = np.arange(form.max_code + 2, dtype=np.int64)
    if not form.signed:
        return np.ldexp(1.0, (c - form.bias).astype(np.int32))
    e, m = c >> form.mbits, c & (2**form.mbits - 1)
    sub = np.ldexp(m.astype(np.float64), np.int32(1 - form.bias - form.mbits))
    normal = np.ldexp((m + 2**form.mbits).astype(np.float64), (e - form.bias - form.mbits).astype(np.int32))
    return np.where(e == 0, sub, normal)


def _decode_def(codes, fmt):
    """float64 values of codes by the format table's definition (NaN codes give NaN, E5M2's Inf codes +-Inf)."""
    form = FORMATS[fmt]
    c = codes.astype(np.int64)
    mags = _magnitudes(fmt)
    if not form.signed:
        return np.where(c == 255, np.nan, mags[np.minimum(c, form.max_code)])
    mag = c & (2 ** (form.bits - 1) - 1)
    v = np.where(mag <= form.max_code, mags[np.minimum(mag, form.max_code)], np.nan)
    if form.has_inf:
        v = np.where(mag == form.inf_code, np.inf, v)
    return np.where(c >> (form.bits - 1) == 1, -v, v)


def _encode_def(x, fmt, saturate):
    """pqref's round-to-nearest encoding, by exact comparison with the midpoints of neighbouring magnitudes.

    Ties go to the even code (E8M0: up); a result past the largest finite magnitude overflowed: max with
    `saturate`, else Inf (E5M2) or NaN (E4M3FN, E8M0). Signed formats keep the sign bit of x (zeros included);
    E8M0 gives code 0 below 2**-127 and NaN (255) for zero, negatives and NaN.
    """
    form = FORMATS[fmt]
    mags = _magnitudes(fmt)
    with np.errstate(invalid="ignore"):  # signalling NaN bit patterns
        a = np.abs(x.astype(np.float64))
    nan = np.isnan(a)
    a = np.where(nan, 0.0, a)
    i = np.clip(np.searchsorted(mags, a, side="right") - 1, 0, mags.size - 2)  # mags[i] <= a < mags[i + 1]
    mid = (mags[i] + mags[i + 1]) / 2  # exact
    tie_up = np.ones_like(i, dtype=bool) if not form.signed else (i % 2 == 1)  # to the even code
    mag = i + ((a > mid) | ((a == mid) & tie_up))
    overflow_code = form.max_code if saturate else (form.inf_code if form.has_inf else form.nan_code)
    mag = np.where(mag > form.max_code, overflow_code, mag)
    if not form.signed:
        return np.where(nan | (x <= 0), 255, mag).astype(np.uint8)
    if form.has_nan:
        mag = np.where(nan, form.nan_code, mag)
    return ((np.signbit(x).astype(np.int64) << (form.bits - 1)) | mag).astype(np.uint8)


def test_the_definitions_reproduce_the_format_table():
    for fmt, form in FORMATS.items():
        mags = _magnitudes(fmt)
        assert mags[form.max_code] == form.max_finite, fmt
        assert np.all(np.diff(mags) > 0), fmt
    assert _magnitudes("float8_e4m3fn")[[1, 8, 0x7F]].tolist() == [2.0**-9, 2.0**-6, 480.0]
    assert _magnitudes("float8_e5m2")[[1, 4, 0x7C]].tolist() == [2.0**-16, 2.0**-14, 65536.0]
    assert _magnitudes("float4_e2m1fn").tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6, 8]
    assert _magnitudes("float8_e8m0fnu")[[0, 127, 254]].tolist() == [2.0**-127, 1.0, 2.0**127]


# ------------------------------------------------------------------------------------------------------------
# Exhaustive: every code, against the definition; ml_dtypes recorded
# ------------------------------------------------------------------------------------------------------------


def _observe_values(dist, ours, theirs, *, predicted=None, known=None, what=""):
    """observe() for float results: NaN matches NaN (payloads aside), everything else bit for bit."""
    ours, theirs = np.asarray(ours, F32), np.asarray(theirs, F32)
    both_nan = np.isnan(ours) & np.isnan(theirs)
    return observe(dist, ~both_nan & (_u32(ours) != _u32(theirs)), predicted=predicted, known=known, what=what)


@pytest.mark.parametrize("fmt", FMTS)
def test_decode_every_code_follows_the_definition(fmt):
    codes = _codes(fmt)
    ours = R.float_decode(codes, fmt)
    want = _decode_def(codes, fmt)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(_u32(ours)[~nan], _u32(want[~nan].astype(F32)))
    # our NaNs are the quiet NaN 0x7FC00000 with the code's sign bit
    sign = (codes[nan] >> (FORMATS[fmt].bits - 1)).astype(np.uint32) if FORMATS[fmt].signed else 0
    np.testing.assert_array_equal(_u32(ours)[nan], np.uint32(0x7FC00000) | (sign << np.uint32(31)))
    for device in DEVICES:
        np.testing.assert_array_equal(_u32(T.float_decode(_torch(codes, device), fmt).cpu().numpy()), _u32(ours))
    # ml_dtypes decodes every code alike (NaN payloads aside); a difference would be a new divergence
    _observe_values("ml_dtypes", ours, codes.view(_peer(fmt)).astype(F32), what=f"decode {fmt}")


@pytest.mark.parametrize("fmt", FMTS)
def test_every_code_decoded_and_reencoded_is_itself(fmt):
    codes = _codes(fmt)
    values = R.float_decode(codes, fmt)
    nan = np.isnan(values)
    for saturate in {True, _peer_mode(fmt)}:
        again = R.float_encode(values, fmt, saturate=saturate)
        np.testing.assert_array_equal(again, _encode_def(values, fmt, saturate))
        keep = np.isfinite(values) | (~nan & (not saturate))  # saturate=True sends E5M2's Inf to max
        np.testing.assert_array_equal(again[keep], codes[keep])
        # every NaN code re-encodes as the canonical NaN code, sign kept
        form = FORMATS[fmt]
        if not form.has_nan:
            continue
        sign = (codes[nan] >> (form.bits - 1)) << (form.bits - 1) if form.signed else 0
        np.testing.assert_array_equal(again[nan], np.uint8(form.nan_code) | sign)
    # ml_dtypes casts every non-NaN value back to its code
    theirs = values[~nan].astype(_peer(fmt)).view(np.uint8)
    observe("ml_dtypes", theirs != codes[~nan], what=f"re-encode {fmt}")


@pytest.mark.parametrize("fmt", FMTS)
def test_the_format_table_agrees_with_ml_dtypes_finfo(fmt):
    form = FORMATS[fmt]
    assert R.float_decode(np.uint8([form.max_code]), fmt)[0] == form.max_finite == _magnitudes(fmt)[form.max_code]
    info = ml_dtypes.finfo(_peer(fmt))
    observe("ml_dtypes", [float(info.max) != form.max_finite, info.bits != form.bits], what=f"finfo {fmt}")


# ------------------------------------------------------------------------------------------------------------
# Boundaries: the definition decides, torch_backend bit for bit, ml_dtypes recorded
# ------------------------------------------------------------------------------------------------------------

E8M0_SUBNORMAL_TIE = (F32(2.0**-127), F32(1.5 * 2.0**-127))


def _e8m0_subnormal_interval(x):
    """The documented E8M0 divergence: float32 subnormals in (2**-127, 1.5 * 2**-127), nearer 2**-127 (code 0),
    which ml_dtypes up to 0.6 and torch's CPU cast (2.13) send to 2**-126 (code 1)."""
    lo, hi = E8M0_SUBNORMAL_TIE
    return (x > lo) & (x < hi)


@pytest.mark.parametrize("fmt", FMTS)
def test_encode_follows_the_definition_at_every_rounding_boundary(fmt):
    """Representable values, midpoints, subnormal and overflow boundaries, each with its float32 neighbours."""
    x = _boundary_inputs(fmt)
    ours = R.float_encode(x, fmt, saturate=_peer_mode(fmt))
    np.testing.assert_array_equal(ours, _encode_def(x, fmt, _peer_mode(fmt)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = x.astype(_peer(fmt)).view(np.uint8)
    # ml_dtypes 0.6 sent the 2 boundary inputs inside the E8M0 subnormal interval to code 1; 0.7 agrees
    known = {"0.6": 2, "0.7": 0} if fmt == "float8_e8m0fnu" else None
    predicted = _e8m0_subnormal_interval(x) if fmt == "float8_e8m0fnu" else None
    observe("ml_dtypes", ours != theirs, predicted=predicted, known=known, what=f"encode {fmt} at boundaries")


@pytest.mark.parametrize("fmt", FMTS)
def test_encode_follows_the_definition_on_a_sweep_of_float32_bit_patterns(fmt):
    """Every 4099th float32 bit pattern (about a million values, NaN excluded for FP6 / FP4)."""
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(F32)
    if not FORMATS[fmt].has_nan:
        x = x[~np.isnan(x)]
    ours = R.float_encode(x, fmt, saturate=_peer_mode(fmt))
    np.testing.assert_array_equal(ours, _encode_def(x, fmt, _peer_mode(fmt)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = x.astype(_peer(fmt)).view(np.uint8)
    predicted = _e8m0_subnormal_interval(x) if fmt == "float8_e8m0fnu" else None
    observe("ml_dtypes", ours != theirs, predicted=predicted, what=f"encode {fmt} on a sweep")


@pytest.mark.parametrize("fmt", FMTS)
def test_torch_backend_matches_reference_at_every_boundary(fmt):
    x = _boundary_inputs(fmt)
    if FORMATS[fmt].has_nan:
        x = np.concatenate([x, np.array([np.nan, -np.nan], F32)])
    grad = np.arange(x.size, dtype=F32)
    modes = [True, False] if (FORMATS[fmt].has_inf or FORMATS[fmt].has_nan) else [True]
    for device in DEVICES:
        for saturate in modes:
            for rounding, key in [("half_even", None), ("stochastic", (7, 11))]:
                kw = {"saturate": saturate, "rounding": rounding, "key": key}
                ref = R.float_encode(x, fmt, **kw)
                if rounding == "half_even":
                    np.testing.assert_array_equal(ref, _encode_def(x, fmt, saturate))
                np.testing.assert_array_equal(T.float_encode(_torch(x, device), fmt, **kw).cpu().numpy(), ref)
                ref_q = R.float_quantize(x, fmt, **kw)
                got_q = T.float_quantize(_torch(x, device), fmt, **kw).cpu().numpy()
                np.testing.assert_array_equal(_u32(got_q), _u32(ref_q))
                ref_g = R.float_quantize_vjp(grad, x, fmt, **kw)
                got_g = T.float_quantize_vjp(_torch(grad, device), _torch(x, device), fmt, **kw).cpu().numpy()
                np.testing.assert_array_equal(_u32(got_g), _u32(ref_g))


def test_overflow_thresholds_and_pass_regions():
    """The exact float32 where each format overflows under round-to-nearest-even, and the VJP's pass region."""
    for fmt, threshold, tie_goes_up in [
        ("float8_e4m3fn", 464.0, False),  # 464 ties between 448 (even) and 480 (odd, the NaN slot): down
        ("float8_e5m2", 61440.0, True),  # 61440 ties between 57344 (odd) and 65536: up, overflow
        ("float6_e3m2fn", 30.0, True),  # 28 = 1.11b * 2**4 is odd
        ("float6_e2m3fn", 7.75, True),  # 7.5 = 1.111b * 2**2 is odd
        ("float4_e2m1fn", 7.0, True),  # 6 = 1.1b * 2**2 is odd
    ]:
        t = F32(threshold)
        x = np.array([np.nextafter(t, F32(0)), t, np.nextafter(t, F32(np.inf))], F32)
        overflowed = R.float_quantize_vjp(np.ones(3, F32), x, fmt) == 0
        np.testing.assert_array_equal(overflowed, [False, tie_goes_up, True], err_msg=fmt)
        assert np.all(R.float_quantize(x, fmt) == F32(FORMATS[fmt].max_finite)), fmt


# ------------------------------------------------------------------------------------------------------------
# Policies where peers differ: pqref's pinned codes asserted, the peers recorded with their versions
# ------------------------------------------------------------------------------------------------------------


def test_fp6_fp4_reject_nan_ml_dtypes_recorded():
    # pqref rejects NaN for formats without a NaN encoding. ml_dtypes 0.5 - 0.7 cast a NaN to a zero whose sign
    # bit is the inverse of the NaN's (+NaN -> 0x20 / 0x08, -NaN -> 0x00): recorded, never required.
    nan = np.array([np.nan, -np.nan], F32)
    for fmt, sign in [("float6_e3m2fn", 0x20), ("float6_e2m3fn", 0x20), ("float4_e2m1fn", 0x08)]:
        with pytest.raises(ValueError, match="has no NaN encoding"):
            R.float_encode(nan, fmt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            theirs = nan.astype(_peer(fmt)).view(np.uint8)
        # differ from the recorded inverse-sign zeros: 0 elements with the versions measured
        observe("ml_dtypes", theirs != [sign, 0x00], predicted=True, known={"0.5": 0, "0.7": 0}, what=fmt)


def test_float8_saturation_policies_ml_dtypes_is_non_saturating():
    x = np.array([465.0, 1e6, np.inf, -np.inf, 61440.0, 3.4e38], F32)
    e4_nonsat, e5_nonsat = [0x7F, 0x7F, 0x7F, 0xFF, 0x7F, 0x7F], [0x5F, 0x7C, 0x7C, 0xFC, 0x7C, 0x7C]
    np.testing.assert_array_equal(R.float_encode(x, "float8_e4m3fn", saturate=False), e4_nonsat)  # NaN: no Inf
    np.testing.assert_array_equal(R.float_encode(x, "float8_e5m2", saturate=False), e5_nonsat)  # Inf
    np.testing.assert_array_equal(R.float_encode(x, "float8_e4m3fn"), [0x7E, 0x7E, 0x7E, 0xFE, 0x7E, 0x7E])
    np.testing.assert_array_equal(R.float_encode(x, "float8_e5m2"), [0x5F, 0x7B, 0x7B, 0xFB, 0x7B, 0x7B])
    for fmt in ("float8_e4m3fn", "float8_e5m2"):
        for saturate in (True, False):
            np.testing.assert_array_equal(R.float_encode(x, fmt, saturate=saturate), _encode_def(x, fmt, saturate))
    # ml_dtypes' casts are pqref's saturate=False (0.4 - 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        e4 = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
        e5 = x.astype(ml_dtypes.float8_e5m2).view(np.uint8)
    observe("ml_dtypes", e4 != e4_nonsat, what="float8_e4m3fn out of range")
    observe("ml_dtypes", e5 != e5_nonsat, what="float8_e5m2 out of range")


def test_e8m0_float32_subnormals_round_to_the_nearest_power_of_two():
    # Every positive float32 subnormal in (2**-127, 1.5 * 2**-127), bits 0x400001..0x5FFFFF (2,097,151 values),
    # is nearer 2**-127 (code 0) than 2**-126 (code 1): pqref gives code 0; 1.5 * 2**-127 and above go to code 1.
    # Recorded: ml_dtypes 0.6 gave code 1 on all 2,097,151 (0.7 agrees with pqref); torch 2.13's CPU cast gives 1.
    bits = np.arange(1, 0x800000, dtype=np.uint32)
    x = bits.view(F32)
    ours = R.float_encode(x, "float8_e8m0fnu")
    np.testing.assert_array_equal(ours, np.where(bits < 0x600000, 0, 1).astype(np.uint8))
    np.testing.assert_array_equal(ours, _encode_def(x, "float8_e8m0fnu", True))
    interval = _e8m0_subnormal_interval(x)
    assert int(interval.sum()) == 2_097_151
    ml = x.astype(_peer("float8_e8m0fnu")).view(np.uint8)
    observe("ml_dtypes", ours != ml, predicted=interval, known={"0.6": 2_097_151, "0.7": 0}, what="E8M0 subnormals")
    tc = torch.from_numpy(x).to(torch.float8_e8m0fnu).view(torch.uint8).numpy()
    observe("torch", ours != tc, predicted=interval, known={"2.13": 2_097_151}, what="CPU E8M0 cast of subnormals")


def test_e8m0_nan_policy():
    x = np.array([0.0, -0.0, -1.0, -np.inf, np.nan, np.inf, 3.4e38, 2.0**127], F32)
    nonsat = [0xFF] * 7 + [0xFE]
    np.testing.assert_array_equal(R.float_encode(x, "float8_e8m0fnu", saturate=False), nonsat)
    np.testing.assert_array_equal(R.float_encode(x, "float8_e8m0fnu"), [0xFF] * 5 + [0xFE, 0xFE, 0xFE])
    for saturate in (True, False):
        np.testing.assert_array_equal(
            R.float_encode(x, "float8_e8m0fnu", saturate=saturate), _encode_def(x, "float8_e8m0fnu", saturate)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ml = x.astype(_peer("float8_e8m0fnu")).view(np.uint8)
    observe("ml_dtypes", ml != nonsat, what="E8M0 zero, negatives, NaN, Inf, overflow")  # saturate=False's policy


# ------------------------------------------------------------------------------------------------------------
# torch's casts, recorded
# ------------------------------------------------------------------------------------------------------------

TORCH_FP8 = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}


@pytest.mark.parametrize("fmt", list(TORCH_FP8))
def test_fp8_torch_casts_on_clamped_inputs(fmt):
    m = F32(FORMATS[fmt].max_finite)
    x = np.clip(_boundary_inputs(fmt), -m, m)
    want = _encode_def(x, fmt, True)
    for saturate in (True, False):
        np.testing.assert_array_equal(R.float_encode(x, fmt, saturate=saturate), want)
    theirs = torch.from_numpy(x).to(TORCH_FP8[fmt]).view(torch.uint8).numpy()
    observe("torch", theirs != want, what=f"CPU {fmt} cast of values within range")


def test_torch_cpu_float8_policies_out_of_range():
    # pqref's codes, from its definition; then torch's CPU casts recorded. torch 2.13 CPU: E4M3FN saturates
    # out-of-range values and Inf to +-448 (pqref's saturate=True; CUDA torch 2.11 gives NaN for |x| > 464, see
    # EXACTNESS.md); E5M2 overflows to Inf (pqref's saturate=False) but writes NaN as 0x7F where pqref writes 0x7E;
    # E8M0 maps zero to code 0 and ignores the sign of negative values, where pqref gives NaN (255).
    x = np.array([465.0, 1e6, -1e6, np.inf, -np.inf, 3.4e38], F32)
    e4_sat = R.float_encode(x, "float8_e4m3fn", saturate=True)
    e4_nonsat = R.float_encode(x, "float8_e4m3fn", saturate=False)
    e5_nonsat = R.float_encode(x, "float8_e5m2", saturate=False)
    np.testing.assert_array_equal(e4_sat, [0x7E, 0x7E, 0xFE, 0x7E, 0xFE, 0x7E])
    np.testing.assert_array_equal(e4_nonsat, [0x7F, 0x7F, 0xFF, 0x7F, 0xFF, 0x7F])
    np.testing.assert_array_equal(e5_nonsat, [0x5F, 0x7C, 0xFC, 0x7C, 0xFC, 0x7C])
    nan = np.array([np.nan, -np.nan], F32)
    assert R.float_encode(nan, "float8_e5m2").tolist() == [0x7E, 0xFE]
    e8 = np.array([0.0, -0.0, -4.0], F32)
    assert R.float_encode(e8, "float8_e8m0fnu").tolist() == [0xFF, 0xFF, 0xFF]

    e4 = torch.from_numpy(x).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
    # the out-of-range policy is version- and device-dependent: saturating or NaN, both pqref policies
    observe("torch", (e4 != e4_sat) & (e4 != e4_nonsat), what="E4M3FN out of range")
    e5 = torch.from_numpy(x).to(torch.float8_e5m2).view(torch.uint8).numpy()
    observe("torch", e5 != e5_nonsat, what="E5M2 out of range")
    e5_nan = torch.from_numpy(nan).to(torch.float8_e5m2).view(torch.uint8).numpy()
    observe("torch", e5_nan != [0x7E, 0xFE], predicted=True, known={"2.13": 2}, what="E5M2 NaN code (0x7F)")
    e8_t = torch.from_numpy(e8).to(torch.float8_e8m0fnu).view(torch.uint8).numpy()
    observe("torch", e8_t != 0xFF, predicted=True, known={"2.13": 3}, what="E8M0 of zeros and negatives")


# ------------------------------------------------------------------------------------------------------------
# Stochastic rounding: the definition, checked with exact rational arithmetic
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FMTS)
def test_stochastic_rounding_follows_its_definition_exactly(fmt):
    """Round up iff floor(f * 2**32) + R >= 2**32, f the exact fraction of |x| between its two neighbours."""
    form = FORMATS[fmt]
    grid = np.unique(R.float_decode(_codes(fmt), fmt).astype(np.float64))
    grid = grid[np.isfinite(grid) & (grid >= 0)]
    rng = np.random.default_rng(0)
    mags = np.exp2(rng.uniform(np.log2(grid[1]) - 3, np.log2(grid[-1]), 1500))
    if not form.signed:
        x = mags.astype(F32)
    else:
        x = (mags * rng.choice([-1.0, 1.0], mags.size)).astype(F32)
    x = x[(np.abs(x) <= grid[-1]) & (np.abs(x) >= (grid[0] if not form.signed else 0))]
    key = (3, 5)
    ours = R.float_decode(R.float_encode(x, fmt, rounding="stochastic", key=key), fmt)
    bits = random_bits(key, x.shape)
    for i, v in enumerate(x.tolist()):
        a = abs(v)
        j = int(np.searchsorted(grid, a, side="right")) - 1
        lo = grid[j]
        if lo == a:
            want = lo
        else:
            hi = grid[j + 1]
            f = (Fraction(a) - Fraction(lo)) / (Fraction(hi) - Fraction(lo))
            want = hi if (f * 2**32).__floor__() + int(bits[i]) >= 2**32 else lo
        assert abs(float(ours[i])) == want, (fmt, v, float(ours[i]), want)
        assert np.signbit(ours[i]) == np.signbit(x[i]) or not form.signed


def test_stochastic_rounding_is_unbiased():
    x = np.full(20000, F32(1.0 + 2.0**-5), F32)  # E4M3: between 1 and 1.125, a quarter of the way up
    y = R.float_quantize(x, "float8_e4m3fn", rounding="stochastic", key=(1, 2))
    assert set(np.unique(y).tolist()) == {1.0, 1.125}
    up = float(np.mean(y == F32(1.125)))
    assert abs(up - 0.25) < 4 * np.sqrt(0.25 * 0.75 / x.size), up
    z = R.float_quantize(x, "float8_e4m3fn", rounding="stochastic", key=(1, 3))
    assert not np.array_equal(y, z), "another key, another rounding"


# ------------------------------------------------------------------------------------------------------------
# ONNX QuantizeLinear / DequantizeLinear to FP8 (scale 1: the cast itself)
# ------------------------------------------------------------------------------------------------------------

ONNX_FP8 = {"float8_e4m3fn": TensorProto.FLOAT8E4M3FN, "float8_e5m2": TensorProto.FLOAT8E5M2}


@functools.cache
def _onnx(op, qtype, saturate):
    attrs = {"saturate": saturate} if op == "QuantizeLinear" else {}
    x_type, y_type = (TensorProto.FLOAT, qtype) if op == "QuantizeLinear" else (qtype, TensorProto.FLOAT)
    node = helper.make_node(op, ["x", "s", "z"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op,
        [
            helper.make_tensor_value_info("x", x_type, None),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", qtype, None),
        ],
        [helper.make_tensor_value_info("y", y_type, None)],
    )
    return ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))


def _onnx_zero(fmt):
    """A zero point of the FP8 type as the installed onnx takes it: its own structured dtypes in older releases
    (1.16 has `onnx.reference.custom_element_types`), ml_dtypes' dtypes in newer ones (1.23)."""
    try:
        from onnx.reference import custom_element_types as custom
    except ImportError:
        return np.zeros((), PEER[fmt])
    return np.zeros((), {"float8_e4m3fn": custom.float8e4m3fn, "float8_e5m2": custom.float8e5m2}[fmt])


# QuantizeLinear to FP8, elements that differ from pqref, measured with onnx 1.16 (its reference evaluator's
# non-saturating conversion: E4M3FN 480 -> 448 where round-to-nearest overflows to NaN; E5M2 61440 .. 65536 ->
# NaN 0x7F where it overflows to Inf; E5M2 NaN -> 0x7F where pqref writes 0x7E) and with onnx 1.23 (none).
ONNX_FP8_RECORD = {
    ("float8_e4m3fn", True): {"1.16": 0, "1.23": 0},
    ("float8_e4m3fn", False): {"1.16": 4, "1.23": 0},
    ("float8_e5m2", True): {"1.16": 1, "1.23": 0},
    ("float8_e5m2", False): {"1.16": 7, "1.23": 0},
}


@pytest.mark.parametrize("fmt", list(ONNX_FP8))
def test_onnx_quantize_linear_fp8_recorded(fmt):
    x = np.concatenate([_boundary_inputs(fmt), np.array([np.nan], F32)])
    for saturate in (True, False):
        ours = R.float_encode(x, fmt, saturate=saturate)
        np.testing.assert_array_equal(ours, _encode_def(x, fmt, saturate))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            (y,) = _onnx("QuantizeLinear", ONNX_FP8[fmt], int(saturate)).run(
                None, {"x": x, "s": np.array(1, F32), "z": _onnx_zero(fmt)}
            )
        # the documented policy region: NaN, and values that overflow under round-to-nearest-even
        policy = np.isnan(x) | (_encode_def(np.abs(x), fmt, False) > FORMATS[fmt].max_code)
        observe(
            "onnx",
            np.asarray(y).view(np.uint8) != ours,
            predicted=policy,
            known=ONNX_FP8_RECORD[fmt, saturate],
            what=f"QuantizeLinear {fmt} saturate={saturate}",
        )


@pytest.mark.parametrize("fmt", list(ONNX_FP8))
def test_onnx_dequantize_linear_fp8_recorded(fmt):
    codes = _codes(fmt)
    ours = R.float_decode(codes, fmt)
    zero = _onnx_zero(fmt)
    (y,) = _onnx("DequantizeLinear", ONNX_FP8[fmt], 1).run(
        None, {"x": codes.view(zero.dtype), "s": np.array(1, F32), "z": zero}
    )
    _observe_values("onnx", ours, y, what=f"DequantizeLinear {fmt}")


# ------------------------------------------------------------------------------------------------------------
# MX: an independent float64 model of the OCP conversion, elements by the exact definition above
# ------------------------------------------------------------------------------------------------------------


def _mx_model(x, fmt, bs, rule):
    """OCP MX in float64: e from frexp(amax) (ceil: the smallest e with amax <= max * 2**e; even: torchao's bit
    trick on amax), elements encoded by `_encode_def` from x / 2**e clipped to +-max."""
    elem = MX_FORMATS[fmt]
    blocks = x.reshape(-1, bs).astype(np.float64)
    amax = np.abs(blocks).max(axis=1)
    top = 127 / 64 if elem.float_format is None else FORMATS[elem.float_format].max_finite
    _, ex = np.frexp(amax)
    e = ex - 1 - elem.emax
    if rule == "ceil":
        e = e + (amax > top * np.exp2(e))
    elif rule == "even":
        sigma = 2 * np.frexp(amax)[0]  # the significand of amax in [1, 2), subnormals normalized
        e = e + (sigma >= 2 - 2.0 ** -(elem.mbits + 1))
        normal = amax >= 2.0**-126
        np.testing.assert_array_equal(e[normal], _torchao_even(amax, elem)[normal])
    e = np.clip(np.where(amax == 0, -127, e), -127, 127)
    y = np.clip(blocks / np.exp2(e)[:, None], -top, top)
    if elem.float_format is None:
        codes = np.rint(y * 64).astype(np.int8)
    else:
        codes = _encode_def(y.astype(F32), elem.float_format, True)
    return (e + 127).astype(np.uint8), codes.reshape(x.shape)


def _torchao_even(amax, elem):
    """torchao's ScaleCalculationMode.EVEN: add half an element ulp to the float32 bits of amax, keep the exponent."""
    bits = amax.astype(F32).view(np.uint32).astype(np.int64)
    return ((bits + (1 << (22 - elem.mbits))) >> 23) - 127 - elem.emax  # biased exponent 255 is 2**128


def test_mx_even_rule_differs_from_torchaos_bit_trick_on_subnormal_amax():
    # For a float32-subnormal amax the trick rounds the 23-bit field, one bit coarser than the normalized
    # significand pqref rounds. Only MXINT8 (emax 0) can see it: amax = 127/64 * 2**-127 has significand
    # 1.984375 < 2 - 2**-7, so pqref keeps e = -127; the trick carries (the field is 0x7F0000 + 0x10000) to -126.
    elem = MX_FORMATS["mxint8"]
    amax = np.array([127 / 64 * 2.0**-127], np.float64)
    assert _torchao_even(amax, elem).tolist() == [-126]
    x = np.zeros(32, F32)
    x[0] = F32(amax[0])
    scales, codes = R.mx_quantize(x, "mxint8", scale_rule="even")
    assert scales.tolist() == [0] and codes[0] == 127
    assert R.mx_quantize(x, "mxint8", scale_rule="floor")[0].tolist() == [0]


def _mx_inputs(fmt, n_blocks=64, bs=32, seed=0):
    """Blocks of element boundary values times 2**t, t over the whole float32 range; zero and subnormal blocks."""
    rng = np.random.default_rng(seed)
    table = np.array(S.mx_element_boundaries(fmt))
    v = table[rng.integers(0, table.size, (n_blocks, bs))] * rng.choice([-1.0, 1.0], (n_blocks, bs))
    t = rng.integers(-150, 120, (n_blocks, 1))
    t[:4] = [[-149], [-140], [-127], [0]]
    with np.errstate(over="ignore"):
        x = (v * np.exp2(t.astype(np.float64))).astype(F32)
    x[4] = 0
    x[5] = -0.0
    return np.where(np.isfinite(x), x, F32(0)).reshape(-1)


@pytest.mark.parametrize("rule", ["floor", "ceil", "even"])
@pytest.mark.parametrize("fmt", list(MX_FORMATS))
def test_mx_quantize_matches_a_float64_model_of_ocp(fmt, rule):
    x = _mx_inputs(fmt)
    scales, codes = R.mx_quantize(x, fmt, scale_rule=rule)
    want_s, want_c = _mx_model(x, fmt, 32, rule)
    np.testing.assert_array_equal(scales, want_s)
    np.testing.assert_array_equal(codes, want_c)
    for device in DEVICES:
        ts, tc = T.mx_quantize(_torch(x, device), fmt, scale_rule=rule)
        np.testing.assert_array_equal(ts.cpu().numpy(), scales)
        np.testing.assert_array_equal(tc.cpu().numpy(), codes)


@pytest.mark.parametrize("fmt", list(MX_FORMATS))
def test_mx_dequantize_matches_a_float64_model(fmt):
    elem = MX_FORMATS[fmt]
    rng = np.random.default_rng(1)
    scales = rng.integers(0, 256, 64).astype(np.uint8)
    scales[:3] = [0, 254, 255]
    if elem.float_format is None:
        codes = rng.integers(-128, 128, (64, 32)).astype(np.int8)
        values = codes.astype(np.float64) / 64
    else:
        codes = rng.integers(0, 2 ** FORMATS[elem.float_format].bits, (64, 32)).astype(np.uint8)
        values = _decode_def(codes, elem.float_format)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (values * np.exp2(scales.astype(np.float64) - 127)[:, None]).astype(F32)
    want[scales == 255] = np.nan
    ours = R.mx_dequantize(scales, codes.reshape(-1), fmt)
    nan = np.isnan(want.reshape(-1))
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(_u32(ours)[~nan], _u32(want.reshape(-1))[~nan])
    for device in DEVICES:
        got = T.mx_dequantize(_torch(scales, device), _torch(codes.reshape(-1), device), fmt).cpu().numpy()
        np.testing.assert_array_equal(_u32(got), _u32(ours))


@pytest.mark.parametrize("fmt", [f for f in MX_FORMATS if f != "mxint8"])
def test_mx_elements_are_float_encode_of_the_exactly_scaled_value(fmt):
    """Where x / 2**e is a normal float32 (exact), the MX element is float_encode of it, saturating."""
    x = _mx_inputs(fmt, seed=2)
    scales, codes = R.mx_quantize(x, fmt)
    e = np.repeat(scales.astype(np.float64) - 127, 32)
    y = x.astype(np.float64) / np.exp2(e)
    ok = (np.abs(y) >= 2.0**-126) | (y == 0)
    direct = R.float_encode(y.astype(F32), MX_FORMATS[fmt].float_format, saturate=True)
    np.testing.assert_array_equal(codes[ok], direct[ok])


def test_mx_fake_quantize_vjp_is_the_identity_through_autograd():
    x = _mx_inputs("mxfp4_e2m1", n_blocks=8)
    g = np.linspace(-3, 3, x.size, dtype=F32)
    leaf = torch.from_numpy(x.copy()).requires_grad_(True)
    T.mx_fake_quantize(leaf, "mxfp4_e2m1").backward(torch.from_numpy(g))
    np.testing.assert_array_equal(_u32(leaf.grad.numpy()), _u32(g))
