"""Power-of-two quantization, codebooks, NF4, observers and bit packing: round trips, exhaustive checks and
peers as oracles.

Peers: the ONNX packing of INT4/UINT4/INT2/UINT2/FLOAT4/FLOAT6 tensors (`onnx.numpy_helper`), torch.ao's
`MinMaxObserver` and `MovingAverage(PerChannel)MinMaxObserver`, `np.percentile`, `scipy.cluster.vq.kmeans2`,
and the NF4 encoders of bitsandbytes (its CUDA decision tree, transcribed) and torchao (its constants). The
installed peers (onnx, ml_dtypes, torch, numpy) are compared after pqref is asserted against its own definition,
and recorded with their versions (`tests.peer_record.observe`): agreement where the semantics coincide, the
measured count where they are known to differ.
"""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import numpy_helper
from scipy.cluster.vq import kmeans2, vq
from torch.ao.quantization.observer import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
)

import reference.quantization as R
import torch_backend.quantization as T
from reference.core import tree_sum
from reference.quantization.nf4 import NF4
from spec import strategies as S
from tests.helpers import BACKEND_PARAMS, torch_devices
from tests.peer_record import observe, version

F32 = np.float32
MODULES = {"reference": R, "torch": T}


def _bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def _call(backend_device, name, *args, **kwargs):
    """Call `name` on a backend with NumPy values in and out."""
    backend, device = backend_device
    native = [backend.to_native(a, device) for a in args]
    native_kw = {k: backend.to_native(v, device) for k, v in kwargs.items()}
    return backend.to_numpy(getattr(MODULES[backend.name], name)(*native, **native_kw))


# ------------------------------------------------------------------------------------------------------------
# Bit packing
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(bits=st.integers(1, 8), data=st.data())
def test_pack_unpack_round_trip(backend_device, bits, data):
    codes = data.draw(hnp.arrays(np.uint8, st.integers(0, 40), elements=st.integers(0, 2**bits - 1)))
    packed = _call(backend_device, "pack_bits", codes, bits)
    assert packed.shape == ((codes.size * bits + 7) // 8,)
    assert np.array_equal(_call(backend_device, "unpack_bits", packed, bits, codes.size), codes)


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_unpack_every_byte(backend_device, bits):
    """All 256 byte values unpack in the LSB-first order of ONNX and MX: code j of a byte is its bits
    [j * bits, (j + 1) * bits)."""
    every = np.arange(256, dtype=np.uint8)
    codes = _call(backend_device, "unpack_bits", every, bits, 256 * 8 // bits).reshape(256, 8 // bits)
    expect = (every[:, None] >> (bits * np.arange(8 // bits))) & (2**bits - 1)
    assert np.array_equal(codes, expect)


# ml_dtypes name, bits, signed (None: a sub-byte float, whose codes are its bit patterns)
ONNX_TYPES = [
    ("uint4", 4, False),
    ("int4", 4, True),
    ("uint2", 2, False),
    ("int2", 2, True),
    ("float4_e2m1fn", 4, None),
    ("float6_e2m3fn", 6, None),
    ("float6_e3m2fn", 6, None),
]


def _packed_def(codes, bits):
    """LSB-first packing by its definition: the integer sum of code_i * 2**(bits * i), as little-endian bytes."""
    stream = sum(int(c) << (bits * i) for i, c in enumerate(codes.tolist()))
    return stream.to_bytes((codes.size * bits + 7) // 8, "little")


@pytest.mark.parametrize(("name", "bits", "signed"), ONNX_TYPES, ids=[t[0] for t in ONNX_TYPES])
@given(data=st.data())
def test_pack_bits_definition_and_onnx_tensor_packing(name, bits, signed, data):
    """ONNX stores sub-byte tensors first element in the low bits (6-bit: a LSB-first stream): recorded."""
    codes = data.draw(hnp.arrays(np.uint8, st.integers(0, 33), elements=st.integers(0, 2**bits - 1)))
    ours = R.pack_bits(codes, bits).tobytes()
    assert ours == _packed_def(codes, bits)
    dtype = getattr(ml_dtypes, name, None)
    if dtype is None:
        pytest.skip(f"ml_dtypes {version('ml_dtypes')} has no {name} dtype")
    if signed is None:  # sub-byte floats: the codes are the bit patterns
        array = np.frombuffer(codes.tobytes(), dtype=dtype)
    elif signed:  # two's complement: code = q & (2**bits - 1)
        array = ((codes.astype(np.int16) ^ (1 << (bits - 1))) - (1 << (bits - 1))).astype(dtype)
    else:
        array = codes.astype(dtype)
    try:
        tensor = numpy_helper.from_array(array)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # onnx 1.16 knows no ml_dtypes sub-byte type
        pytest.skip(f"onnx {version('onnx')} cannot store ml_dtypes' {name}: {type(e).__name__}")
    theirs = np.frombuffer(tensor.raw_data, dtype=np.uint8)
    mine = np.frombuffer(ours, dtype=np.uint8)
    observe("onnx", theirs != mine if theirs.shape == mine.shape else True, what=f"{name} packing")


def test_nf4_packing_of_bitsandbytes_and_torchao_is_nibble_swapped():
    """Recorded divergence: bitsandbytes (`qvals[j] = code(2j) << 4 | code(2j+1)`) and torchao put the first
    code in the high nibble; pqref, ONNX and MX put it in the low nibble."""
    codes = np.array([1, 2, 3, 4, 15, 0], dtype=np.uint8)
    ours = R.pack_bits(codes, 4)
    theirs = (codes[0::2] << 4) | codes[1::2]
    assert list(ours) == [0x21, 0x43, 0x0F] and list(theirs) == [0x12, 0x34, 0xF0]
    assert np.array_equal(theirs, (ours << 4) | (ours >> 4))


# ------------------------------------------------------------------------------------------------------------
# Power of two
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(S.pow2_cases())
def test_pow2_decode_of_encode_is_quantize(backend_device, case):
    kw = case.kwargs
    y = _call(backend_device, "pow2_quantize", *case.args, **kw)
    codes = _call(backend_device, "pow2_encode", *case.args, **kw)
    back = _call(backend_device, "pow2_decode", codes, bits=kw["bits"], emax=kw["emax"], levels=kw["levels"])
    assert np.array_equal(_bits(back), _bits(y))


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
def test_pow2_rounding_rules_exhaustively_around_both_boundaries(backend_device):
    """Every float32 in [1.25, 1.75), which holds both boundaries: linear goes up iff m >= 1.5; log iff
    m > sqrt(2) (the float64 sqrt(2) decides correctly: no float32 lies between it and the true value)."""
    m = (np.arange(2**22, dtype=np.int64) + 0x3FA00000).astype(np.int32).view(F32)
    kw = {"bits": 3, "emax": 1}  # INQ's levels 0, 1, 2: nothing flushes or saturates in [1, 2)
    linear = _call(backend_device, "pow2_quantize", m, **kw)
    log = _call(backend_device, "pow2_quantize", m, **kw, rounding="log")
    assert np.array_equal(linear, np.where(m >= 1.5, F32(2), F32(1)))
    assert np.array_equal(log, np.where(m.astype(np.float64) > np.sqrt(2.0), F32(2), F32(1)))
    assert int((linear != log).sum()) == int(0x3FC00000 - 0x3FB504F4), "they differ exactly on [sqrt(2), 1.5)"


def _logquant(x, emin, emax):
    """Miyashita et al.: 0 for x = 0, else sign(x) 2**clip(round(log2|x|), emin, emax), in float64."""
    with np.errstate(divide="ignore"):
        e = np.clip(np.round(np.log2(np.abs(x).astype(np.float64))), emin, emax)
    return np.where(x == 0, 0.0, np.sign(x) * 2.0**e).astype(F32)


def _inq(x, emin, emax):
    """Zhou et al.: beta sgn(x) where (alpha + beta)/2 <= |x| < 3 beta / 2 for adjacent levels alpha < beta."""
    a = np.abs(x).astype(np.float64)
    y = np.zeros(x.shape)
    for e in range(emin, emax + 1):
        beta = 2.0**e
        alpha = beta / 2 if e > emin else 0.0
        y = np.where(((alpha + beta) / 2 <= a) & (a < 1.5 * beta), np.sign(x) * beta, y)
    return (y + 0.0).astype(F32)


@given(S.pow2_cases())
def test_pow2_quantize_matches_logquant_and_inq_where_they_are_defined_alike(case):
    x, kw = case.args[0], case.kwargs
    emin, emax = R.pow2_exponent_range(kw["bits"], kw["emax"], levels=kw["levels"])
    y = R.pow2_quantize(x, **kw)
    if kw["rounding"] == "log":  # LogQuant never flushes: compare where pqref does not
        keep = np.abs(x) >= np.float64(2.0) ** (emin - 1)
        assert np.array_equal(_bits(y[keep]), _bits(_logquant(x, emin, emax)[keep]))
    else:  # INQ sends |x| >= 1.5 * 2**emax to 0: compare below it
        keep = np.abs(x).astype(np.float64) < 1.5 * 2.0**emax
        assert np.array_equal(_bits(y[keep]), _bits(_inq(x, emin, emax)[keep]))


def test_pow2_recorded_divergences_from_logquant_and_inq():
    x = np.array([2.0**-9, 1.6, -100.0], dtype=F32)  # bits 4, emax 0, dense levels: emin = -6
    assert list(R.pow2_quantize(x, bits=4, emax=0, rounding="log", levels="dense")) == [0.0, 1.0, -1.0]
    assert list(_logquant(x, -6, 0)) == [2.0**-6, 1.0, -1.0], "LogQuant clips tiny values up to 2**emin"
    assert list(R.pow2_quantize(x, bits=4, emax=0, levels="dense")) == [0.0, 1.0, -1.0]
    assert list(_inq(x, -6, 0)) == [0.0, 0.0, 0.0], "INQ's formula sends |x| >= 1.5 * 2**emax to 0"


# ------------------------------------------------------------------------------------------------------------
# Codebooks
# ------------------------------------------------------------------------------------------------------------


def test_codebook_assign_is_exact_where_float64_distances_tie():
    w, c = np.array([0.5], dtype=F32), np.array([-(2.0**-60), 1.0], dtype=F32)
    naive = np.abs(w.astype(np.float64)[:, None] - c.astype(np.float64)).argmin(axis=1)
    assert list(naive) == [0], "float64 |w - c| rounds both distances to 0.5: a false tie"
    assert list(R.codebook_assign(w, c)) == [1] and list(
        T.codebook_assign(torch.from_numpy(w), torch.from_numpy(c))
    ) == [1]


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
def test_codebook_too_large_for_uint8_indices(backend_device):
    """(Kept out of the registry's bad inputs, whose 257-entry literal would fill the docs page.)"""
    with pytest.raises(ValueError, match=r"1 to 256 entries \(uint8 indices\), got shape \(257,\)"):
        _call(backend_device, "codebook_assign", np.zeros(1, F32), np.arange(257, dtype=F32))
    with pytest.raises(ValueError, match=r"1 to 256 entries"):
        _call(backend_device, "codebook_decode", np.zeros(1, np.uint8), np.arange(257, dtype=F32))


def test_kmeans_matches_scipy_kmeans2():
    """scipy's kmeans2 started from pqref's float32 initialization, with `missing="warn"` (an empty cluster
    keeps its centroid): on Gaussian weights (sums exact enough that the float32 rounding of the float64 means
    agree) the labels and the centroids agree bit for bit."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, k, iterations = int(rng.integers(5, 200)), int(rng.integers(2, 9)), int(rng.integers(1, 10))
        w = rng.standard_normal(n).astype(F32)
        indices, codebook = R.kmeans_codebook(w, k, iterations=iterations)
        lo, hi = w.min().astype(np.float64), w.max().astype(np.float64)
        j = np.arange(k, dtype=np.float64)
        init = ((lo * (k - 1 - j) + hi * j) / (k - 1)).astype(F32).astype(np.float64)[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs, _ = kmeans2(w.astype(np.float64)[:, None], init, iter=iterations, minit="matrix", missing="warn")
        labels, _ = vq(w.astype(np.float64)[:, None], theirs)
        assert np.array_equal(codebook, theirs[:, 0].astype(F32)) and np.array_equal(indices, labels)


@pytest.mark.parametrize("device", torch_devices())
def test_kmeans_with_256_entries_agrees_across_backends(device):
    w = np.random.default_rng(1).standard_normal((16, 40)).astype(F32)
    ref = R.kmeans_codebook(w, 256, iterations=3)
    got = T.kmeans_codebook(torch.from_numpy(w).to(device), 256, iterations=3)
    assert all(np.array_equal(_bits(a), _bits(b.cpu().numpy())) for a, b in zip(ref, got, strict=True))
    assert np.all(np.diff(ref[1]) >= 0)


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(S.codebook_decode_cases(with_grad=True))
def test_codebook_decode_gradient_through_autograd_or_reference(backend_device, case):
    grad, indices, c = case.args
    out = _call(backend_device, "codebook_decode_vjp", grad, indices, c)
    for j in range(c.size):  # the exact sum of the cotangents of entry j, rounded to float64, then float32
        want = F32(math.fsum(grad[indices == j].astype(np.float64).tolist()) + 0.0)
        assert np.asarray(out[j]).tobytes() == np.asarray(want).tobytes(), (j, out[j], want)


# ------------------------------------------------------------------------------------------------------------
# NF4
# ------------------------------------------------------------------------------------------------------------

# bitsandbytes' `dQuantizeNF4` (csrc/kernels.cu): a decision tree over these float32 literals, `x > t`, after
# `x * (1 / absmax)`. torchao's NF4Tensor: division, then the nearest of 4-decimal constants.
BNB_THRESHOLDS = np.array(
    [
        -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
        -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
        0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
        0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
    ],
    dtype=F32,
)  # fmt: skip
TORCHAO_NF4 = np.array(
    [-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0, 0.0796, 0.1609, 0.2461, 0.3379, 0.4407,
     0.5626, 0.7230, 1.0], dtype=F32,
)  # fmt: skip


def _bnb_encode(x, block_size=64):
    flat = x.reshape(-1)
    codes = np.empty(flat.size, dtype=np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(0, flat.size, block_size):
            block = flat[i : i + block_size]
            u = block * (F32(1) / np.abs(block).max())
            codes[i : i + block_size] = (u[:, None] > BNB_THRESHOLDS).sum(axis=1)
    return codes


def test_nf4_table_and_bitsandbytes_thresholds():
    mid = (NF4[:-1].astype(np.float64) + NF4[1:]) / 2
    assert np.array_equal(BNB_THRESHOLDS, mid.astype(F32)), "the thresholds are the float32 midpoints"
    assert np.all(np.diff(NF4) > 0) and NF4[7] == 0 and NF4[0] == -1 and NF4[15] == 1


def test_nf4_encoding_against_bitsandbytes_rule():
    """Recorded divergences from bitsandbytes' encoder (multiply by 1/absmax, compare with float32 midpoints):
    0 of 1.28M Gaussian values differ, but exactly the six float32 thresholds that round a midpoint up get the
    lower code there, and 1/absmax can move a value across a midpoint."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(64 * 20000).astype(F32)
    assert np.array_equal(R.nf4_quantize(x)[0], _bnb_encode(x))
    mid = (NF4[:-1].astype(np.float64) + NF4[1:]) / 2
    up = BNB_THRESHOLDS.astype(np.float64) > mid
    assert list(np.flatnonzero(up)) == [0, 1, 3, 4, 12, 14]
    ties = np.concatenate([[F32(1)], BNB_THRESHOLDS])  # one block with absmax 1: u = x exactly
    ours, bnb = R.nf4_quantize(ties, block_size=16)[0][1:], _bnb_encode(ties, 16)[1:]
    assert np.array_equal(np.flatnonzero(ours != bnb), np.flatnonzero(up)) and np.all(ours[up] == bnb[up] + 1)
    x = np.array([1.5003048, 1.2924802], dtype=F32)  # x / a = 0.86147845, x * (1 / a) = 0.8614784
    assert list(R.nf4_quantize(x)[0]) == [15, 15] and list(_bnb_encode(x)) == [15, 14]
    zeros = np.zeros(4, dtype=F32)  # bitsandbytes: 0 * (1 / 0) = NaN, which no threshold is below: code 0
    assert list(R.nf4_quantize(zeros)[0]) == [7] * 4 and list(_bnb_encode(zeros)) == [0] * 4


def test_nf4_encoding_against_torchao_constants():
    """Recorded divergence: torchao's 4-decimal NF4 constants move some midpoints (here 0.014% of Gaussian
    values); its dequantization therefore also differs from bitsandbytes' table."""
    x = np.random.default_rng(0).standard_normal(64 * 2000).astype(F32)
    ours, absmax = R.nf4_quantize(x)
    u = x / np.repeat(absmax, 64)
    theirs = np.abs(u[:, None] - TORCHAO_NF4).argmin(axis=1)
    differ = int((ours != theirs).sum())
    assert 0 < differ < x.size // 1000, differ
    assert not np.array_equal(TORCHAO_NF4, NF4)


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(S.nf4_quantize_cases())
def test_nf4_round_trip_error_is_at_most_half_a_gap(backend_device, case):
    x, bs = case.args[0], case.kwargs["block_size"]
    codes, absmax = _call(backend_device, "nf4_quantize", x, block_size=bs)
    y = _call(backend_device, "nf4_dequantize", codes, absmax, block_size=bs)
    a = absmax[np.arange(x.size) // bs].reshape(x.shape).astype(np.float64)
    gap = np.max(np.diff(NF4.astype(np.float64)))
    assert np.all(np.abs(y - x.astype(np.float64)) <= a * (gap / 2 + 2.0**-22) + 2.0**-149)


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(S.nf4_double_quantize_cases())
def test_nf4_double_quantization_round_trip(backend_device, case):
    a, bs = case.args[0], case.kwargs["block_size"]
    q, scale, offset = _call(backend_device, "nf4_double_quantize", a, block_size=bs)
    back = _call(backend_device, "nf4_double_dequantize", q, scale, offset, block_size=bs)
    s = scale[np.arange(a.size) // bs].astype(np.float64)
    slack = 1e-4 * s + (np.abs(a) + np.abs(offset)).astype(np.float64) * 2.0**-22
    assert np.all(np.abs(back.astype(np.float64) - a) <= s / 2 + slack)


# ------------------------------------------------------------------------------------------------------------
# Observers
# ------------------------------------------------------------------------------------------------------------


def _batches(rng, shape, count):
    return [(rng.standard_normal(shape) * rng.uniform(0.1, 10)).astype(F32) for _ in range(count)]


def test_ema_observer_definition_and_torch_ao():
    """pqref's EMA is `m + c * (cur - m)`, three float32 operations with c rounded to float32, written out below;
    torch.ao's `MovingAverage(PerChannel)MinMaxObserver` computes the same three operations (recorded, 1000
    per-tensor and 250 per-channel updates)."""
    rng = np.random.default_rng(0)

    def ema(x, state, c, axis):
        rows = x.reshape(-1)[None] if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        lo, hi = rows.min(axis=1) + F32(0), rows.max(axis=1) + F32(0)
        if axis is None:
            lo, hi = lo[0], hi[0]
        if state is None:
            return lo, hi
        return state[0] + F32(c) * (lo - state[0]), state[1] + F32(c) * (hi - state[1])

    differ = []
    for _ in range(100):
        observer, state, want = MovingAverageMinMaxObserver(averaging_constant=0.01), None, None
        for x in _batches(rng, (50,), 10):
            observer(torch.from_numpy(x))
            state = R.ema_minmax_observer(x, state)
            want = ema(x, want, 0.01, None)
            assert _bits(state[0]) == _bits(want[0]) and _bits(state[1]) == _bits(want[1])
            differ += [
                _bits(observer.min_val.numpy()) != _bits(state[0]),
                _bits(observer.max_val.numpy()) != _bits(state[1]),
            ]
    for _ in range(50):
        observer, state, want = MovingAveragePerChannelMinMaxObserver(averaging_constant=0.3, ch_axis=1), None, None
        for x in _batches(rng, (4, 3, 5), 5):
            observer(torch.from_numpy(x))
            state = R.ema_minmax_observer(x, state, averaging_constant=0.3, axis=1)
            want = ema(x, want, 0.3, 1)
            assert np.array_equal(_bits(state[0]), _bits(want[0])) and np.array_equal(_bits(state[1]), _bits(want[1]))
            differ += list(_bits(observer.min_val.numpy()) != _bits(state[0]))
            differ += list(_bits(observer.max_val.numpy()) != _bits(state[1]))
    observe("torch", np.array(differ), what="EMA min/max observers")


@given(S.observer_cases())
def test_minmax_observer_definition_and_torch_ao(case):
    (x, state), axis = case.args, case.kwargs["axis"]
    ours = R.minmax_observer(x, state, axis=axis)
    # pqref's definition: the running min / max of the state and the batch, zeros written +0.0
    rows = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    if state is not None:
        lo, hi = np.minimum(lo, state[0].reshape(-1)), np.maximum(hi, state[1].reshape(-1))
    assert np.array_equal(_bits(ours[0].reshape(-1)), _bits(lo + F32(0)))
    assert np.array_equal(_bits(ours[1].reshape(-1)), _bits(hi + F32(0)))
    # (torch.ao's per-channel observer needs 2 dimensions: a trailing axis of size 1 changes no statistic)
    observer = MinMaxObserver() if axis is None else PerChannelMinMaxObserver(ch_axis=axis % x.ndim)
    if state is not None:  # torch.ao keeps its state in two buffers
        observer.min_val.resize_(state[0].shape).copy_(torch.from_numpy(state[0]))
        observer.max_val.resize_(state[1].shape).copy_(torch.from_numpy(state[1]))
    observer(torch.from_numpy(x if axis is None else x[..., None]))
    theirs_lo, theirs_hi = observer.min_val.numpy().reshape(-1), observer.max_val.numpy().reshape(-1)
    # the documented divergence: torch.ao keeps the sign of a zero extremum, pqref writes +0.0
    observe("torch", theirs_lo != lo, predicted=lo == 0, what="MinMaxObserver min")
    observe("torch", theirs_hi != hi, predicted=hi == 0, what="MinMaxObserver max")


def test_minmax_observer_sign_of_zero_recorded():
    """pqref returns +0.0 for a zero extremum; torch.ao 2.13 keeps whatever sign `aminmax` returns (-0.0 here)."""
    lo, hi = R.minmax_observer(np.array([0.0, -0.0], dtype=F32))
    assert not np.signbit(lo) and not np.signbit(hi) and lo == 0 and hi == 0
    observer = MinMaxObserver()
    observer(torch.tensor([0.0, -0.0]))
    theirs = np.array([observer.min_val.item(), observer.max_val.item()], F32)
    observe("torch", np.signbit(theirs), predicted=True, known={"2.13": 2}, what="sign of a zero extremum")


def _percentile_def(row, p):
    """percentile_amax's definition, with Python floats (IEEE float64): h = fl(fl(p/100) (n-1)), two-sided lerp."""
    v = sorted(abs(float(e)) for e in row)
    h = (p / 100) * (len(v) - 1)
    i = int(h // 1)
    g = h - i
    hi = v[min(i + 1, len(v) - 1)]
    d = hi - v[i]
    return F32(v[i] + d * g) if g < 0.5 else F32(hi - d * (1 - g))


@given(S.percentile_cases())
def test_percentile_definition_and_numpy_in_float64(case):
    """pqref's definition is NumPy's `linear` percentile of float64 |x|, rounded to float32 (recorded)."""
    (x, p), axis = case.args, case.kwargs["axis"]
    ours = R.percentile_amax(x, p, axis=axis)
    a = np.abs(x).astype(np.float64)
    rows = a.reshape(1, -1) if axis is None else np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    want = np.array([_percentile_def(r, p) for r in rows], F32)
    assert np.array_equal(_bits(np.asarray(ours).reshape(-1)), _bits(want))
    theirs = np.percentile(rows, p, axis=-1, method="linear").astype(F32)
    observe("numpy", _bits(theirs) != _bits(want), what="np.percentile of float64 |x|")


def test_percentile_numpy_on_float32_recorded():
    """NumPy interpolates a float32 array in float32 (gamma rounded to float32): it differs from the float64
    interpolation rounded once by one ulp here (numpy 1.26 and 2.4); 28 of 3000 random cases with numpy 2.4."""
    x = np.array([0.1, 0.7, 1.3, 2.9, 3.3, 100.7, 1e-3], dtype=F32)
    ours = R.percentile_amax(x, 10.1)
    assert _bits(ours) == _bits(_percentile_def(x, 10.1))
    theirs = np.percentile(np.abs(x), 10.1)
    observe("numpy", _bits(F32(theirs)) != _bits(ours), predicted=True, known={"1.26": 1, "2.4": 1}, what="float32")


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@given(S.mse_cases())
def test_mse_amax_error_is_least_among_candidates(backend_device, case):
    """The chosen clip has the least squared error of all candidates (recomputed with the affine module)."""
    x, kw = case.args[0], case.kwargs
    if kw["axis"] is not None or kw["grid"] > 12:
        return
    best = _call(backend_device, "mse_amax", x, **kw)
    q_max = 2 ** (kw["bits"] - 1) - 1

    def error(c):
        s, z = R.qparams_from_range(np.array(-c, F32), np.array(c, F32), qmin=-q_max - 1, qmax=q_max, symmetric=True)
        q = R.quantize(x, s, z, qmin=-q_max - 1, qmax=q_max)
        return float(tree_sum((q.astype(np.float64) * np.float64(s) - x.astype(np.float64)) ** 2))

    amax = np.abs(x).max().astype(np.float64)
    candidates = [F32(amax * i / kw["grid"]) for i in range(1, kw["grid"] + 1)]
    errors = [error(c) for c in candidates]
    assert best == candidates[int(np.argmin(errors))]
