"""Peer libraries as oracles: torch.nn.utils.prune, the ONNX reference evaluator, and torch.ao fake quantization.

Each test first asserts pqref against pqref's own definition, written out in the test (the pinned ranking rule
by brute force, `clip(rint(x / s) + z)` with IEEE float32 division, `(q - z) * s`). The peer's result is then
recorded with its version (`tests.peer_record.observe`): where the semantics coincide (no ties in pruning,
IEEE division in ONNX, power-of-two scales in torch.ao) a peer that differs shows a new divergence; where they
are known to differ (topk among ties, `x * (1/s)`, the ONNX evaluator's int32 cast) the count measured with
each listed version is kept, and any other version may differ only where the divergence predicts.
"""

from __future__ import annotations

import functools
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from torch import nn
from torch.nn.utils import prune

import reference as R
import torch_backend as T
from spec import strategies as S
from tests.peer_record import observe

F32 = np.float32


def _bits(a):
    """Float32 bit patterns, so that -0.0 != +0.0."""
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def _differ(a, b):
    return int((_bits(a) != _bits(b)).sum())


# ------------------------------------------------------------------------------------------------------------
# torch.nn.utils.prune
# ------------------------------------------------------------------------------------------------------------


class _Holder(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.array(w, dtype=F32)))


def _module(kind, w):
    """A module whose `weight` is a copy of `w`: nn.Linear, nn.Conv2d or a bare holder."""
    if kind == "linear":
        m = nn.Linear(w.shape[1], w.shape[0], bias=False)
    elif kind == "conv":
        m = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=w.shape[2:], bias=False)
    else:
        return _Holder(w)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(w))
    return m


@st.composite
def _module_shapes(draw, min_dims=1):
    """(kind, shape): a Linear weight (out, in), a Conv2d weight (out, in, kh, kw), or any holder shape."""
    kinds = ["linear", "conv", "holder"]
    kind = draw(st.sampled_from(kinds))
    side = st.integers(1, 6)
    if kind == "linear":
        return kind, (draw(side), draw(side))
    if kind == "conv":
        return kind, (draw(side), draw(side), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return kind, draw(S.shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=6))


@st.composite
def _distinct_magnitudes(draw, n):
    """n float32 values with pairwise distinct, nonzero magnitudes: a permutation of 1..n, random signs, a factor."""
    perm = np.array(draw(st.permutations(range(1, n + 1))), dtype=np.float64)
    signs = np.where(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool), -1.0, 1.0)
    c = draw(st.floats(2.0**-10, 2.0**10, width=32))
    w = (perm * signs * c).astype(F32)
    assert np.unique(np.abs(w)).size == n
    return w


def _sparsities(n):
    """Sparsities for n units, mostly ones that prune some but not all (spec's fractions_for often gives 0 or n)."""
    if n < 2:
        return S.fractions_for(n)
    inner = st.integers(1, n - 1).map(lambda k: k / n)
    return st.one_of(inner, inner, S.fractions_for(n))  # the first branch is what Hypothesis tries most


@st.composite
def _unstructured_cases(draw):
    kind, shape = draw(_module_shapes())
    n = int(np.prod(shape))
    return kind, draw(_distinct_magnitudes(n)).reshape(shape)


def _pinned_rule(scores, count):
    """keep_i iff #{j : s_j > s_i} + #{j < i : s_j = s_i} < count, by brute force (float64 scores)."""
    s = scores.reshape(-1).astype(np.float64)
    idx = np.arange(s.size)
    rank = (s[None, :] > s[:, None]).sum(1) + ((s[None, :] == s[:, None]) & (idx[None, :] < idx[:, None])).sum(1)
    return (rank < count).reshape(scores.shape)


def _kept(sparsity, n):
    """pqref's count: n - round_half_even(sparsity * n), the product in float64 (Python's round is half-even)."""
    return n - round(float(sparsity) * n)


@given(_unstructured_cases(), st.data())
def test_magnitude_mask_definition_and_l1_unstructured(case, data):
    kind, w = case
    sparsity = data.draw(_sparsities(w.size), label="sparsity")
    ours = R.magnitude_mask(w, sparsity)
    np.testing.assert_array_equal(ours, _pinned_rule(np.abs(w), _kept(sparsity, w.size)))
    np.testing.assert_array_equal(T.magnitude_mask(torch.from_numpy(w), sparsity).numpy(), ours)
    m = _module(kind, w)
    prune.l1_unstructured(m, "weight", amount=float(sparsity))
    # distinct magnitudes: no tie for topk to break, so torch's mask is pqref's
    observe("torch", m.weight_mask.bool().numpy() != ours, what="l1_unstructured, distinct magnitudes")


@given(_unstructured_cases(), st.data())
def test_magnitude_mask_by_count_definition_and_l1_unstructured(case, data):
    kind, w = case
    count = data.draw(st.integers(0, w.size), label="count")
    ours = R.magnitude_mask_by_count(w, count)
    np.testing.assert_array_equal(ours, _pinned_rule(np.abs(w), w.size - count))
    np.testing.assert_array_equal(T.magnitude_mask_by_count(torch.from_numpy(w), count).numpy(), ours)
    m = _module(kind, w)
    prune.l1_unstructured(m, "weight", amount=count)  # an int amount is a count
    observe("torch", m.weight_mask.bool().numpy() != ours, what="l1_unstructured by count, distinct magnitudes")


@st.composite
def _global_cases(draw):
    specs = draw(st.lists(_module_shapes(), min_size=1, max_size=4))
    sizes = [int(np.prod(shape)) for _, shape in specs]
    flat = draw(_distinct_magnitudes(sum(sizes)))  # distinct across all tensors, not just within each
    bounds = np.cumsum([0] + sizes)
    ws = [flat[a:b].reshape(shape) for (_, shape), a, b in zip(specs, bounds[:-1], bounds[1:], strict=True)]
    return [kind for kind, _ in specs], ws


@given(_global_cases(), st.data())
def test_global_magnitude_masks_definition_and_global_unstructured(case, data):
    kinds, ws = case
    n = sum(w.size for w in ws)
    sparsity = data.draw(_sparsities(n), label="sparsity")
    ours = R.global_magnitude_masks(ws, sparsity)
    flat = _pinned_rule(np.concatenate([np.abs(w).reshape(-1) for w in ws]), _kept(sparsity, n))
    np.testing.assert_array_equal(np.concatenate([o.reshape(-1) for o in ours]), flat)
    mine = T.global_magnitude_masks([torch.from_numpy(w) for w in ws], sparsity)
    for t, o in zip(mine, ours, strict=True):
        np.testing.assert_array_equal(t.numpy(), o)
    modules = [_module(kind, w) for kind, w in zip(kinds, ws, strict=True)]
    prune.global_unstructured(
        [(m, "weight") for m in modules], pruning_method=prune.L1Unstructured, amount=float(sparsity)
    )
    theirs = np.concatenate([m.weight_mask.bool().numpy().reshape(-1) for m in modules])
    observe("torch", theirs != flat, what="global_unstructured, distinct magnitudes")


@st.composite
def _structured_cases(draw):
    """Slices along `axis` whose L1 and L2 norms are both separated by a factor of at least 1.5."""
    kind, shape = draw(_module_shapes(min_dims=2))
    shape = tuple(shape)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    k = axis % len(shape)
    channels = shape[k]
    # Each slice: magnitudes in [1, 2] with random signs (norm within a factor 2 of the same value for every
    # slice), times 3**rank for a random rank: neighbouring norms differ by a factor >= 3 / 2.
    base = draw(hnp.arrays(F32, shape, elements=st.floats(1, 2, width=32)))
    signs = draw(hnp.arrays(np.bool_, shape))
    ranks = np.array(draw(st.permutations(range(channels))), dtype=np.float64)
    view = tuple(-1 if i == k else 1 for i in range(len(shape)))
    w = (np.where(signs, -1.0, 1.0) * base * (3.0**ranks).reshape(view)).astype(F32)
    sparsity = draw(_sparsities(channels))
    return kind, w, sparsity, axis


def _exact_slice_scores(w, p, axis):
    """Per slice along `axis`: sum |w| (p = 1) or sum w**2 (p = 2, the same order as the norm), as exact Fractions
    mapped to their rank order (float64 of the rank)."""
    from fractions import Fraction

    rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    exact = [
        sum((Fraction(float(v)) ** p if p == 2 else abs(Fraction(float(v))) for v in row), Fraction(0)) for row in rows
    ]
    order = sorted(set(exact))
    return np.array([order.index(e) for e in exact], dtype=np.float64)


@pytest.mark.parametrize("p", [1, 2])
@given(_structured_cases())
def test_ln_structured_mask_definition_and_ln_structured(p, case):
    kind, w, sparsity, axis = case
    ours = R.ln_structured_mask(w, sparsity, p=p, axis=axis)
    channels = w.shape[axis]
    keep = _pinned_rule(_exact_slice_scores(w, p, axis), _kept(sparsity, channels))
    view = tuple(-1 if i == axis % w.ndim else 1 for i in range(w.ndim))
    np.testing.assert_array_equal(ours, np.broadcast_to(keep.reshape(view), w.shape))
    np.testing.assert_array_equal(T.ln_structured_mask(torch.from_numpy(w), sparsity, p=p, axis=axis).numpy(), ours)
    m = _module(kind, w)
    prune.ln_structured(m, "weight", amount=float(sparsity), n=p, dim=axis)
    # norms a factor 1.5 apart: torch's float32 norms rank them alike
    observe("torch", m.weight_mask.bool().numpy() != ours, what=f"ln_structured n={p}, separated norms")


@pytest.mark.parametrize(
    ("w", "sparsity", "recorded"),
    [
        # All 64 weights tie. torch 2.13 CPU (topk, largest=False) prunes flat indices 33..48; the pinned rule
        # prunes 48..63: 30 mask elements differ (15 each way). Same with 1, 2 and 16 threads.
        pytest.param(np.ones(64, F32), 0.25, {"2.13": 30}, id="ones64"),
        # All 1000 tie: torch prunes 501..750, 876..891, 900, 901, 906..937 (300); 398 mask elements differ.
        pytest.param(np.ones(1000, F32), 0.3, {"2.13": 398}, id="ones1000"),
    ],
)
def test_l1_unstructured_ties_recorded(w, sparsity, recorded):
    ours = R.magnitude_mask(w, sparsity)
    kept = _kept(sparsity, w.size)
    np.testing.assert_array_equal(ours, _pinned_rule(np.abs(w), kept))
    np.testing.assert_array_equal(np.flatnonzero(ours), np.arange(kept))  # all tie: the lowest indices stay
    np.testing.assert_array_equal(T.magnitude_mask(torch.from_numpy(w), sparsity).numpy(), ours)
    m = _module("holder", w)
    prune.l1_unstructured(m, "weight", amount=sparsity)
    theirs = m.weight_mask.bool().numpy()
    # torch keeps as many (its count is the same rounding), but topk's order among ties is unspecified: any
    # version may pick another set among the tied weights (here: all of them)
    ties = np.abs(w) == np.abs(w)[ours].min()
    observe("torch", theirs != ours, predicted=ties, known=recorded, what="l1_unstructured among ties")


# ------------------------------------------------------------------------------------------------------------
# ONNX QuantizeLinear / DequantizeLinear (onnx.reference.ReferenceEvaluator, opset 21)
# ------------------------------------------------------------------------------------------------------------

ONNX_OPSET = 21  # block_size on QuantizeLinear / DequantizeLinear, int4 / uint4


def _int4_types():
    """The numpy dtypes the installed onnx takes for INT4 / UINT4: its own structured dtypes in older releases
    (1.16 has `onnx.reference.custom_element_types`), ml_dtypes' in newer ones (1.23)."""
    try:
        from onnx.reference import custom_element_types as custom
    except ImportError:
        return ml_dtypes.uint4, ml_dtypes.int4
    return custom.uint4, custom.int4


# ONNX element type -> (numpy dtype, qmin, qmax)
ONNX_TYPES = {
    TensorProto.UINT8: (np.uint8, 0, 255),
    TensorProto.INT8: (np.int8, -128, 127),
    TensorProto.UINT16: (np.uint16, 0, 65535),
    TensorProto.INT16: (np.int16, -32768, 32767),
    TensorProto.UINT4: (_int4_types()[0], 0, 15),
    TensorProto.INT4: (_int4_types()[1], -8, 7),
}


@functools.cache
def _onnx_op(op, qtype, axis, block_size):
    """A ReferenceEvaluator for one QuantizeLinear or DequantizeLinear node with inputs x, scale, zero point."""
    attrs = {}
    if axis is not None:
        attrs["axis"] = axis
    if block_size is not None:
        attrs["block_size"] = block_size
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    return ReferenceEvaluator(model)


def _to_onnx(a, qtype):
    """int32 codes as the evaluator's input dtype (through int8 / uint8 for onnx 1.16's structured int4)."""
    np_type = np.dtype(ONNX_TYPES[qtype][0])
    if np_type.fields:
        return a.astype(np_type.fields[next(iter(np_type.fields))][0]).view(np_type)
    return a.astype(np_type)


def _from_onnx(y):
    """The evaluator's integer output as int32 (onnx 1.16's structured int4 through its int8 / uint8 field)."""
    y = np.asarray(y)
    if y.dtype.fields:
        y = y.view(y.dtype.fields[next(iter(y.dtype.fields))][0])
    return y.astype(np.int32)


def _onnx_run(op, qtype, x, scale, zero_point, axis, group_size):
    ev = _onnx_op(op, qtype, axis, group_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the evaluator's float -> int32 cast (see below)
        (y,) = ev.run(None, {"x": x, "s": scale, "z": _to_onnx(zero_point, qtype)})
    return y


def _expand(p, shape, axis, group_size):
    """A scale or zero point broadcast to x's shape for a granularity (np.repeat along `axis` for blocks)."""
    if axis is None:
        return np.broadcast_to(p, shape)
    if group_size is None:
        return np.broadcast_to(p.reshape(tuple(-1 if i == axis % len(shape) else 1 for i in range(len(shape)))), shape)
    return np.repeat(p, group_size, axis=axis)


def _near_grid(draw, s_full, z_full, qmin, qmax):
    """float32 x shaped like `s_full`: on the grid (t - z) * s, t a multiple of 1/2 around the code range (so
    x / s is often exactly an integer or a .5 midpoint), or anywhere finite (ties, zeros, subnormals, huge)."""
    shape = s_full.shape
    t = draw(hnp.arrays(F32, shape, elements=st.integers(2 * qmin - 6, 2 * qmax + 6).map(lambda k: k / 2)))
    with np.errstate(over="ignore"):
        grid = (t - z_full.astype(F32)) * s_full
    anywhere = draw(S.float32_arrays(shape=st.just(shape)))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), grid, anywhere).astype(F32)
    return np.where(np.isfinite(x), x, F32(0))


@st.composite
def _onnx_cases(draw, granularity):
    """(qtype, x, scale, zero_point, axis, group_size) for one granularity; x on and off the grid.

    "tensor": scalar scale; "axis": 1-D scale and the `axis` attribute; "block": scale of x's rank with
    x.shape[axis] // block_size at `axis` and the `block_size` attribute (ours: `group_size`). Axes may be
    negative, as ONNX allows.
    """
    qtype = draw(st.sampled_from(sorted(ONNX_TYPES)))
    _, qmin, qmax = ONNX_TYPES[qtype]
    shape = draw(S.shapes(min_dims=0 if granularity == "tensor" else 1, max_dims=3, min_side=1, max_side=6))
    axis = group_size = None
    sshape = ()
    if granularity != "tensor":
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        n = shape[axis]
        sshape = (n,)
        if granularity == "block":
            group_size = draw(st.sampled_from([d for d in range(2, n + 1) if n % d == 0] or [1]))
            sshape = tuple(shape[i] // group_size if i == axis % len(shape) else shape[i] for i in range(len(shape)))
    scale = draw(hnp.arrays(F32, sshape, elements=S.scales()))
    zero_point = draw(hnp.arrays(np.int32, sshape, elements=st.integers(qmin, qmax)))
    x = _near_grid(
        draw, _expand(scale, shape, axis, group_size), _expand(zero_point, shape, axis, group_size), qmin, qmax
    )
    return qtype, x, scale, zero_point, axis, group_size


GRANULARITIES = ("tensor", "axis", "block")


def _quantize_def(x, s_full, z_full, qmin, qmax):
    """pqref's quantize, spelled out: clip(rint(x / s) + z, qmin, qmax), x / s an IEEE float32 division."""
    with np.errstate(over="ignore"):
        v = np.rint(x / s_full).astype(np.float64) + z_full
    return np.clip(v, qmin, qmax).astype(np.int32)


@pytest.mark.parametrize("granularity", GRANULARITIES)
@given(st.data())
def test_quantize_definition_and_onnx_quantize_linear(granularity, data):
    qtype, x, scale, zero_point, axis, group_size = data.draw(_onnx_cases(granularity), label="case")
    _, qmin, qmax = ONNX_TYPES[qtype]
    ours = R.quantize(x, scale, zero_point, qmin=qmin, qmax=qmax, axis=axis, group_size=group_size)
    s_full = _expand(scale, x.shape, axis, group_size)
    z_full = _expand(zero_point, x.shape, axis, group_size)
    np.testing.assert_array_equal(ours, _quantize_def(x, s_full, z_full, qmin, qmax))
    mine = T.quantize(
        torch.from_numpy(x), torch.from_numpy(scale), torch.from_numpy(zero_point),
        qmin=qmin, qmax=qmax, axis=axis, group_size=group_size,
    )  # fmt: skip
    np.testing.assert_array_equal(mine.numpy(), ours)
    theirs = _from_onnx(_onnx_run("QuantizeLinear", qtype, x, scale, zero_point, axis, group_size))
    assert theirs.shape == ours.shape
    # The evaluator divides in float32 (IEEE, as pqref does) and rounds with np.rint, but casts to int32 before
    # adding the zero point and clipping: around and beyond |x / s| = 2**31 the cast is invalid (recorded in
    # test_onnx_quantize_linear_beyond_int32_recorded). That region is the predicted divergence.
    with np.errstate(over="ignore"):
        beyond = ~(np.abs(x / s_full) < F32(2.0**30))
    observe("onnx", theirs != ours, predicted=beyond, what=f"QuantizeLinear per {granularity}")


@pytest.mark.parametrize("granularity", GRANULARITIES)
@given(st.data())
def test_dequantize_definition_and_onnx_dequantize_linear(granularity, data):
    qtype, x, scale, zero_point, axis, group_size = data.draw(_onnx_cases(granularity), label="case")
    _, qmin, qmax = ONNX_TYPES[qtype]
    q = data.draw(hnp.arrays(np.int32, x.shape, elements=st.integers(qmin, qmax)), label="q")
    ours = R.dequantize(q, scale, zero_point, axis=axis, group_size=group_size)
    # pqref's dequantize: fl32(q - z) (exact: |q - z| < 2**17) times s, one float32 multiplication
    z_full = _expand(zero_point, x.shape, axis, group_size).astype(np.int64)
    want = (q.astype(np.int64) - z_full).astype(F32) * _expand(scale, x.shape, axis, group_size)
    assert ours.dtype == np.float32 and _differ(ours, want) == 0
    mine = T.dequantize(
        torch.from_numpy(q), torch.from_numpy(scale), torch.from_numpy(zero_point), axis=axis, group_size=group_size
    )
    assert _differ(mine.numpy(), ours) == 0
    theirs = _onnx_run("DequantizeLinear", qtype, _to_onnx(q, qtype), scale, zero_point, axis, group_size)
    theirs = np.asarray(theirs, dtype=F32).reshape(ours.shape)
    observe("onnx", _bits(theirs) != _bits(ours), what=f"DequantizeLinear per {granularity}")


def test_onnx_quantize_linear_beyond_int32_recorded():
    # ONNX's spec saturates, and so does pqref. onnx 1.23's reference evaluator computes
    # `np.rint(x / s).astype(np.int32)`, then `+= zero_point` (wrapping in int32), then clips. On x86-64 an
    # out-of-range float -> int32 cast gives INT32_MIN, so: uint8, zp 0: +3e9 -> 0 (ours 255); int8, zp -3:
    # -3e9 -> INT32_MIN - 3 wraps to 2**31 - 3 -> 127 (ours -128). Measured on x86-64: 4 of the 8 elements
    # below differ for uint8 zp=0 (every positive one) and 4 for int8 zp=-3 (every negative one), with onnx
    # 1.16 and 1.23 alike.
    x = np.array([2.0**31, 3e9, 1e20, 3e38, -(2.0**31), -3e9, -1e20, -3e38], F32)
    one = np.array(1, F32)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        # the cause, probed on its own: on x86-64 (cvttss2si) every out-of-range float -> int32 gives INT32_MIN
        x86_cast = bool(np.all(np.array([3e9, -3e9, 3e38], F32).astype(np.int32) == np.iinfo(np.int32).min))
    for qtype, zp in [(TensorProto.UINT8, 0), (TensorProto.INT8, -3)]:
        _, qmin, qmax = ONNX_TYPES[qtype]
        z = np.array(zp, np.int32)
        ours = R.quantize(x, one, z, qmin=qmin, qmax=qmax)
        np.testing.assert_array_equal(ours, np.where(x > 0, qmax, qmin))  # ours saturates
        theirs = _from_onnx(_onnx_run("QuantizeLinear", qtype, x, one, z, None, None))
        known = {"1.16": 4, "1.23": 4} if x86_cast else None
        observe("onnx", theirs != ours, predicted=True, known=known, what="QuantizeLinear beyond int32")


# ------------------------------------------------------------------------------------------------------------
# torch.ao fake quantization
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _power_of_two_fq_cases(draw):
    qmin, qmax = draw(S.qranges())
    scale = F32(2.0 ** draw(st.one_of(st.integers(-20, 8), st.integers(-126, 127))))
    zero_point = draw(st.integers(qmin, qmax))
    shape = draw(S.shapes(max_dims=3, max_side=6))
    x = _near_grid(draw, np.full(shape, scale), np.full(shape, zero_point, np.int32), qmin, qmax)
    return x, scale, zero_point, qmin, qmax


def _direct(x, scale, zero_point, qmin, qmax):
    """clip(rint(x / s) + z) with float32 division, then fl32(q - z) * s: pqref's formula, spelled out."""
    with np.errstate(over="ignore"):
        q = np.clip(np.rint(x / scale).astype(np.float64) + zero_point, qmin, qmax)
    return (q - zero_point).astype(F32) * scale


@given(_power_of_two_fq_cases())
def test_fake_quantize_definition_and_torch_per_tensor_power_of_two_scale(case):
    x, scale, zero_point, qmin, qmax = case
    ours = R.fake_quantize(x, scale, np.int32(zero_point), qmin=qmin, qmax=qmax)
    assert _differ(ours, _direct(x, scale, zero_point, qmin, qmax)) == 0
    theirs = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(scale), zero_point, qmin, qmax)
    # a power-of-two scale: x * (1/s) is x / s, so torch's kernel computes pqref's formula
    observe("torch", _bits(theirs.numpy()) != _bits(ours), what="fake_quantize_per_tensor_affine, scale 2**k")


@st.composite
def _power_of_two_per_channel_cases(draw):
    qmin, qmax = draw(S.qranges())
    # torch's per-channel kernel rejects empty inputs (it reduces with min()): at least one element
    shape = draw(S.shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    axis = draw(st.integers(0, len(shape) - 1))
    c = shape[axis]
    exps = draw(hnp.arrays(np.int64, (c,), elements=st.integers(-20, 8)))
    scale = (2.0**exps).astype(F32)
    zero_point = draw(hnp.arrays(np.int32, (c,), elements=st.integers(qmin, qmax)))
    x = _near_grid(draw, _expand(scale, shape, axis, None), _expand(zero_point, shape, axis, None), qmin, qmax)
    return x, scale, zero_point, axis, qmin, qmax


@given(_power_of_two_per_channel_cases())
def test_fake_quantize_definition_and_torch_per_channel_power_of_two_scales(case):
    x, scale, zero_point, axis, qmin, qmax = case
    ours = R.fake_quantize(x, scale, zero_point, qmin=qmin, qmax=qmax, axis=axis)
    view = tuple(-1 if i == axis else 1 for i in range(x.ndim))
    s_full, z_full = scale.reshape(view), zero_point.reshape(view).astype(np.float64)
    assert _differ(ours, _direct(x, s_full, z_full, qmin, qmax)) == 0
    theirs = torch.fake_quantize_per_channel_affine(
        torch.from_numpy(x), torch.from_numpy(scale), torch.from_numpy(zero_point), axis, qmin, qmax
    ).numpy()
    # torch 2.13's per-channel kernel casts rint(x * (1/s)) to int64 before clamping: where |x / s| >= 2**63 the
    # cast is invalid and gives qmin for either sign, wrong for positive x (recorded in test_torch_fake_quantize_
    # per_channel_recorded). Hypothesis found it: x = 1.8014399e16, s = 2**-9, qmin 0, qmax 1: torch 0, ours 2**-9.
    with np.errstate(over="ignore"):
        beyond = ~(np.abs(x / s_full) < F32(2.0**62))
    observe("torch", _bits(theirs) != _bits(ours), predicted=beyond, what="fake_quantize_per_channel_affine, 2**k")


def _near_midpoints(scale, lo, hi, ulps=4):
    """float32 values within `ulps` ulps of every rounding midpoint (k + 1/2) * s, k in [lo, hi)."""
    mid = (np.arange(lo, hi, dtype=F32) + F32(0.5)) * F32(scale)
    b = mid.view(np.int32)
    return np.concatenate([(b + d).view(F32) for d in range(-ulps, ulps + 1)])


def _reciprocal(x, scale, zero_point, qmin, qmax):
    """The documented divergence, as a formula: clip(rint(x * fl(1/s)) + z), then (q - z) * s."""
    inv = F32(1) / scale
    with np.errstate(over="ignore"):
        q = np.clip(np.rint(x * inv).astype(np.float64) + zero_point, qmin, qmax)
    return (q - zero_point).astype(F32) * scale


def test_torch_fake_quantize_per_tensor_non_power_of_two_scale_recorded():
    # s = float32(0.1), int8, zp 0, x = the 2295 float32 values within 4 ulps of each midpoint (k + 1/2) * s.
    # pqref divides; torch.ao multiplies by fl(1/s), which differs next to midpoints (x = 1.55: x / s = 15.499999
    # -> 15 -> 1.5, but x * fl(1/s) = 15.5 -> 16 -> 1.6). torch 2.13 CPU differs from pqref on 32 of them, and is
    # exactly the reciprocal formula there. Other scales on the same construction: 0.02 -> 68, 0.3 -> 63,
    # 0.7 -> 26, 0.0173 -> 0.
    s, zp, qmin, qmax = F32(0.1), 0, -128, 127
    x = _near_midpoints(s, qmin, qmax)
    ours = R.fake_quantize(x, s, np.int32(zp), qmin=qmin, qmax=qmax)
    assert _differ(ours, _direct(x, s, zp, qmin, qmax)) == 0
    recip = _reciprocal(x, s, zp, qmin, qmax)
    assert _differ(recip, ours) == 32  # the documented divergence, on these inputs, is 32 elements
    theirs = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), zp, qmin, qmax).numpy()
    predicted = _bits(recip) != _bits(ours)
    observe("torch", _bits(theirs) != _bits(ours), predicted=predicted, known={"2.13": 32}, what="scale 0.1")


def test_torch_fake_quantize_per_channel_recorded():
    # Four channels (axis 0) with scales float32(0.1, 0.0173, 0.3, 0.7), zero points (0, 3, -5, 10), int8; row c
    # holds the 2295 float32 values within 4 ulps of the midpoints (k + 1/2) * s_c, k in [qmin - z_c, qmax - z_c).
    # torch 2.13 CPU (x * (1/s)) differs from pqref on 120 of 9180 elements: 32, 0, 62 and 26 per channel.
    scales = np.array([0.1, 0.0173, 0.3, 0.7], F32)
    zps = np.array([0, 3, -5, 10], np.int32)
    qmin, qmax = -128, 127
    x = np.stack([_near_midpoints(s, qmin - z, qmax - z) for s, z in zip(scales, zps, strict=True)])
    ours = R.fake_quantize(x, scales, zps, qmin=qmin, qmax=qmax, axis=0)
    assert _differ(ours, _direct(x, scales[:, None], zps[:, None], qmin, qmax)) == 0
    recip = _reciprocal(x, scales[:, None], zps[:, None].astype(np.float64), qmin, qmax)
    theirs = torch.fake_quantize_per_channel_affine(
        torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps), 0, qmin, qmax
    ).numpy()
    predicted = _bits(recip) != _bits(ours)
    observe("torch", _bits(theirs) != _bits(ours), predicted=predicted, known={"2.13": 120}, what="4 channels")
    # Beyond int64: for x / s >= 2**63 torch 2.13's per-channel kernel's cast of rint(x * (1/s)) to int64 is
    # invalid (it gives INT64_MIN, clamped to qmin), so the output is (qmin - z) * s where pqref saturates to
    # (qmax - z) * s. The per-tensor kernel saturates. Measured with torch 2.13: 3 of these 8 differ (9.3e18,
    # 1e19, 3e38; 9.2e18 is just below 2**63 = 9.22e18, and the negative ones land on qmin either way).
    big = np.array([9.2e18, 9.3e18, 1e19, 3e38, -9.2e18, -9.3e18, -1e19, -3e38], F32)
    ours = R.fake_quantize(big, F32(1), np.int32(0), qmin=qmin, qmax=qmax)
    np.testing.assert_array_equal(ours, np.where(big > 0, F32(qmax), F32(qmin)))
    one, zero = np.ones(1, F32), np.zeros(1, np.int32)
    theirs = torch.fake_quantize_per_channel_affine(
        torch.from_numpy(big[:, None].copy()), torch.from_numpy(one), torch.from_numpy(zero), 1, qmin, qmax
    ).numpy()[:, 0]
    observe("torch", _bits(theirs) != _bits(ours), predicted=big >= 2.0**63, known={"2.13": 3}, what="beyond int64")
    per_tensor = torch.fake_quantize_per_tensor_affine(torch.from_numpy(big), 1.0, 0, qmin, qmax).numpy()
    observe("torch", _bits(per_tensor) != _bits(ours), what="per tensor beyond int64")
