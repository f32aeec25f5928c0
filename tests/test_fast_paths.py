"""The torch backend's size-dependent fast paths, on inputs large enough to take them, against the reference.

The registry's strategies draw small arrays, so `test_properties` exercises the small-input routes only. These
tests pin the large-input routes bit for bit (`nm_mask`'s pairwise ranks from 2**13 elements, `apply_mask`'s
bit-AND from 2**14, `keep_largest`'s radix select from 2**14, fake quantize's float32 in-place route, the
one-reduction input checks), on values full of ties, signed zeros and x.5 midpoints, with the gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from torch_backend import _arrays
from torch_backend.pruning import structured


def _bits(a) -> bytes:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint8).tobytes() if a.dtype.kind == "f" else a.tobytes()


def _tied(shape, seed):
    """float32 values from a small set (many ties), both zeros, and some spread."""
    rng = np.random.default_rng(seed)
    levels = np.float32([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 2.0, -2.0, 3.0])
    x = rng.choice(levels, size=shape).astype(np.float32)
    spread = rng.standard_normal(shape).astype(np.float32)
    return np.where(rng.random(shape) < 0.3, spread, x).astype(np.float32)


@pytest.mark.parametrize(("n", "m"), [(1, 2), (2, 4), (1, 4), (3, 4), (2, 8), (4, 8), (7, 8)])
@pytest.mark.parametrize("axis", [-1, 0])
def test_nm_mask_pairwise_route_matches_the_reference(n, m, axis):
    w = _tied((128, 256), seed=n * 10 + m)
    assert w.size >= structured._PAIRWISE_MIN and m <= structured._PAIRWISE_M  # the route under test
    assert _bits(T.nm_mask(torch.from_numpy(w), n, m, axis=axis)) == _bits(R.nm_mask(w, n, m, axis=axis))


def test_apply_mask_bit_and_route_keeps_every_kept_bit_and_gives_plus_zero():
    w = _tied((128, 256), seed=1)
    w[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    mask = np.random.default_rng(2).random(w.shape) < 0.5
    mask[0, :4] = True
    mask[1, :4] = False
    w[1, :4] = [np.nan, -np.inf, -0.0, -3.0]
    assert w.size >= _arrays.WHERE_KEPT_MIN
    t = torch.from_numpy(w).requires_grad_(True)
    out = T.apply_mask(t, torch.from_numpy(mask))
    assert _bits(out) == _bits(R.apply_mask(w, mask))
    g = _tied(w.shape, seed=3)
    (grad,) = torch.autograd.grad(out, t, torch.from_numpy(g))
    assert _bits(grad) == _bits(R.apply_mask_vjp(g, w, mask))


def test_where_kept_equals_where_on_large_float32():
    x = torch.from_numpy(_tied((1 << 15,), seed=4))
    x[:3] = torch.tensor([float("nan"), -0.0, float("-inf")])
    mask = torch.from_numpy(np.random.default_rng(5).random(x.shape) < 0.5)
    assert _bits(_arrays.where_kept(mask, x)) == _bits(torch.where(mask, x, 0.0))


@pytest.mark.parametrize(
    ("axis", "group_size"), [(None, None), (0, None), (1, None), (1, 128)], ids=["tensor", "axis0", "axis1", "g128"]
)
@pytest.mark.parametrize(("qmin", "qmax"), [(-128, 127), (0, 255), (-8, 7)])
def test_fake_quantize_large_route_matches_the_reference_with_its_gradient(axis, group_size, qmin, qmax):
    rng = np.random.default_rng(qmax)
    x = (_tied((64, 512), seed=6) * np.float32(7.3)).astype(np.float32)
    x[0, :8] = np.float32([0.5, -0.5, 1.5, -2.5, -0.0, 0.0, 1e30, -1e30])  # midpoints, zeros, clipping
    kw = {"qmin": qmin, "qmax": qmax, "axis": axis, "group_size": group_size}
    scale, zero = R.minmax_qparams(x, qmin=qmin, qmax=qmax, axis=axis, group_size=group_size)
    if axis is None:
        scale = np.float32(1.0)  # x / s exactly at the midpoints above
    ts, tz = torch.as_tensor(scale), torch.as_tensor(zero)
    got = T.minmax_qparams(torch.from_numpy(x), qmin=qmin, qmax=qmax, axis=axis, group_size=group_size)
    want = R.minmax_qparams(x, qmin=qmin, qmax=qmax, axis=axis, group_size=group_size)
    assert [_bits(a) for a in got] == [_bits(a) for a in want]
    t = torch.from_numpy(x).requires_grad_(True)
    out = T.fake_quantize(t, ts, tz, **kw)
    assert _bits(out) == _bits(R.fake_quantize(x, scale, zero, **kw))
    assert _bits(T.quantize(torch.from_numpy(x), ts, tz, **kw)) == _bits(R.quantize(x, scale, zero, **kw))
    g = rng.standard_normal(x.shape).astype(np.float32)
    (grad,) = torch.autograd.grad(out, t, torch.from_numpy(g))
    assert _bits(grad) == _bits(R.fake_quantize_vjp(g, x, scale, zero, **kw))


def test_the_one_reduction_checks_still_name_the_first_bad_element():
    x = np.zeros(1 << 15, dtype=np.float32)
    x[1000], x[2000] = np.inf, np.nan
    x[500] = np.float32(3e38)  # large finite values: the sum overflows without any non-finite input
    x[501] = np.float32(3e38)
    for fn, args in ((R.nm_mask, (2, 4)), (T.nm_mask, (2, 4))):
        arr = x if fn is R.nm_mask else torch.from_numpy(x)
        with pytest.raises(ValueError) as e:
            fn(arr, *args)
        assert "1000" in str(e.value), str(e.value)
    ok = np.full(1 << 15, 3e38, dtype=np.float32)  # an overflowing sum of finite values is not an error
    assert _bits(T.nm_mask(torch.from_numpy(ok), 2, 4)) == _bits(R.nm_mask(ok, 2, 4))


def test_to_bitmask_large_matches_the_reference():
    w = _tied((64, 512), seed=7)
    mask = np.random.default_rng(8).random(w.shape) < 0.3
    got = T.to_bitmask(torch.from_numpy(w), torch.from_numpy(mask))
    want = R.to_bitmask(w, mask)
    assert [_bits(a) for a in got] == [_bits(a) for a in want]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_keep_largest_large_route_matches_the_reference(dtype):
    """From `RADIX_MIN` scores, `keep_largest` (and the magnitude masks built on it) take radix select instead of a
    stable sort: the same mask, ties to the lower index (long runs of equal scores, both zeros, infinities)."""
    from torch_backend.core import select

    n = select.RADIX_MIN + 123
    scores = _tied((n,), seed=9)
    if dtype == np.int64:
        scores = np.round(scores * 3).astype(np.int64)
    else:
        scores = scores.astype(dtype)
        scores[[5, 77]] = [np.inf, -np.inf]
    for count in (0, 1, 17, n // 3, n // 2, n - 1, n):
        got = T.keep_largest(torch.from_numpy(scores), count)
        assert _bits(got) == _bits(R.keep_largest(scores, count)), count
    w = _tied((128, 200), seed=10)
    assert w.size >= select.RADIX_MIN
    for fn, arg in ((T.magnitude_mask, 0.7), (T.magnitude_mask_by_count, 9000)):
        ref = getattr(R, fn.__name__)
        assert _bits(fn(torch.from_numpy(w), arg)) == _bits(ref(w, arg)), fn.__name__


def test_keep_largest_large_route_raises_the_references_errors():
    from torch_backend.core import select

    scores = np.zeros(select.RADIX_MIN, dtype=np.float32)
    scores[300] = np.nan
    for count in (5, -1, 10**9):
        want = pytest.raises(ValueError)
        with want as e_ref:
            R.keep_largest(scores, count)
        with pytest.raises(ValueError) as e_torch:
            T.keep_largest(torch.from_numpy(scores), count)
        assert str(e_ref.value) == str(e_torch.value)
    with pytest.raises(ValueError) as e_ref:
        R.keep_largest(np.zeros(select.RADIX_MIN, np.float32), -1)
    with pytest.raises(ValueError) as e_torch:
        T.keep_largest(torch.zeros(select.RADIX_MIN), -1)
    assert str(e_ref.value) == str(e_torch.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_large_magnitude_masks_find_a_non_finite_weight_as_the_reference_does(bad):
    """From `RADIX_MIN` weights the magnitude masks skip the separate finiteness pass (the radix histogram finds a
    NaN or Inf): the same error as the reference, also when the sparsity or count is bad as well, and for every
    tensor of a global list."""
    from torch_backend.core import select

    w = _tied((select.RADIX_MIN + 5,), seed=11)
    w[select.RADIX_MIN - 3] = bad
    small = _tied((40,), seed=12)
    calls = [
        ("magnitude_mask", (w, 0.5)),
        ("magnitude_mask", (w, 1.5)),
        ("magnitude_mask_by_count", (w, 7)),
        ("magnitude_mask_by_count", (w, 0)),
        ("magnitude_mask_by_count", (w, -1)),
        ("global_magnitude_masks", ([small, w], 0.25)),
        ("global_magnitude_masks", ([small, w], 0.0)),
        ("global_magnitude_masks", ([small, w], "x")),
        ("global_magnitude_masks", ([w, small], 1.0)),
    ]
    for name, (a, arg) in calls:
        with pytest.raises((TypeError, ValueError)) as e_ref:
            getattr(R, name)(a, arg)
        t = [torch.from_numpy(x) for x in a] if isinstance(a, list) else torch.from_numpy(a)
        with pytest.raises(type(e_ref.value)) as e_torch:
            getattr(T, name)(t, arg)
        assert str(e_torch.value) == str(e_ref.value), (name, arg)


def test_large_magnitude_masks_on_constant_and_narrow_weights():
    """All weights equal (zeros of both signs) and weights within a few ulps: the radix select's shortcuts."""
    from torch_backend.core import select

    n = select.RADIX_MIN * 2 + 1
    zeros = np.zeros(n, np.float32)
    zeros[1::2] = -0.0
    narrow = np.float32(-3.0) * (1 + np.float32(2**-23) * np.random.default_rng(13).integers(0, 3, n)).astype(
        np.float32
    )
    for w in (zeros, narrow, narrow.reshape(-1, 1)[: n - 1].reshape(2, -1)):
        t = torch.from_numpy(w)
        for count in (0, 1, n // 3, w.size - 1):
            assert _bits(T.magnitude_mask_by_count(t, count)) == _bits(R.magnitude_mask_by_count(w, count))
        for sparsity in (0.3, 0.999):
            assert _bits(T.magnitude_mask(t, sparsity)) == _bits(R.magnitude_mask(w, sparsity))
            got = T.global_magnitude_masks([t, t[:5]], sparsity)
            want = R.global_magnitude_masks([w, w[:5]], sparsity)
            assert [_bits(g) for g in got] == [_bits(x) for x in want]


def test_large_schedule_masks_rank_integer_keys_as_the_reference():
    """`prune_remaining_mask` and `prune_total_mask` from `RADIX_MIN` weights rank integer keys (|w|'s bit
    pattern, -1 where pruned): ties, both zeros, a transposed (non-contiguous) weight."""
    from torch_backend.core import select

    w = _tied((130, 129), seed=14)
    assert w.size >= select.RADIX_MIN
    rng = np.random.default_rng(15)
    for mask in (rng.random(w.shape) < 0.6, np.ones(w.shape, bool), w != 0):
        for a, m, tw in ((w, mask, torch.from_numpy(w)), (w.T, mask.T, torch.from_numpy(w).T)):
            tm = torch.from_numpy(np.ascontiguousarray(m))
            for fraction in (0.0, 0.1, 0.5, 0.999):
                got = T.prune_remaining_mask(tw, tm, fraction)
                assert _bits(got) == _bits(R.prune_remaining_mask(a, m, fraction)), fraction
            for fraction in (0.0, 0.2):
                got = T.prune_total_mask(tw, tm, fraction)
                assert _bits(got) == _bits(R.prune_total_mask(a, m, fraction)), fraction


@pytest.mark.parametrize("python_max", [0, 10**6])
@pytest.mark.parametrize("little", [True, False])
def test_to_bitmask_packs_every_length_offset_and_byte_order(little, python_max, monkeypatch):
    """The mask is packed by one int64 multiply per run of 8 (little-endian) or by shifts (big-endian), or on the
    host (`PYTHON_MAX` forced both ways): every length mod 8, a mask that starts inside a run (storage offset), a
    transposed mask, all-True and all-False."""
    from torch_backend.pruning import sparse_formats

    monkeypatch.setattr(sparse_formats, "_LITTLE", little)
    monkeypatch.setattr(sparse_formats, "PYTHON_MAX", python_max)
    rng = np.random.default_rng(16)
    base = rng.random(8 * 40 + 7) < 0.5
    w = _tied(base.shape, seed=17)
    for n in range(1, 20):
        for start in (0, 1, 3, 8):
            m, x = base[start : start + n], w[start : start + n]
            got = T.to_bitmask(torch.from_numpy(w)[start : start + n], torch.from_numpy(base)[start : start + n])
            assert [_bits(a) for a in got] == [_bits(a) for a in R.to_bitmask(x, m)], (n, start)
    m2 = rng.random((24, 13)) < 0.3
    w2 = _tied((13, 24), seed=18)
    got = T.to_bitmask(torch.from_numpy(w2), torch.from_numpy(m2).T)
    assert [_bits(a) for a in got] == [_bits(a) for a in R.to_bitmask(w2, np.ascontiguousarray(m2.T))]
    for m3 in (np.ones(64, bool), np.zeros(64, bool)):
        got = T.to_bitmask(torch.from_numpy(w[:64]), torch.from_numpy(m3))
        assert [_bits(a) for a in got] == [_bits(a) for a in R.to_bitmask(w[:64], m3)]


def test_scalar_qparams_in_python_floats_match_the_tensor_route_and_the_reference():
    """Per-tensor `qparams_from_range` and `minmax_qparams` on CPU compute in Python floats: the same bits as the
    tensor route and the reference, on ranges drawn over float32's whole range (subnormals, zeros of both signs,
    a scale that overflows to infinity with two codes, zero points clipped from far outside the code range)."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from torch_backend.quantization import affine

    f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
    special = st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1.0, -2.5])

    @settings(max_examples=400, deadline=None)
    @example(-8.780837, 7.8668466, (0, 255), False)  # the zero point needs the scale rounded to float32 first
    @example(-0.21875, 15.71875, (0, 255), False)  # lo / scale = -3.5 exactly: ties to even (-4), zero point 4
    @example(-3.4028235e38, 3.4028235e38, (0, 1), False)  # the scale overflows to infinity
    @given(
        st.one_of(f32, special),
        st.one_of(f32, special),
        st.sampled_from([(-128, 127), (0, 255), (0, 1), (-1, 1), (-8, 7), (-(2**15), 2**16 - 1), (5, 9)]),
        st.booleans(),
    )
    def check(a, b, codes, symmetric):
        lo, hi = np.float32(min(a, b)), np.float32(max(a, b))
        qmin, qmax = codes
        kw = {"qmin": qmin, "qmax": qmax, "symmetric": symmetric}
        try:
            want = R.qparams_from_range(lo, hi, **kw)
        except ValueError:  # too few codes for the scheme
            return
        got = {}
        for route in (True, False):
            affine.SCALAR_ROUTE = route
            try:
                got[route] = T.qparams_from_range(torch.tensor(lo), torch.tensor(hi), **kw)
                x = torch.tensor([lo, hi])
                mm = T.minmax_qparams(x, **kw)
            finally:
                affine.SCALAR_ROUTE = True
            assert [_bits(v) for v in mm] == [_bits(v) for v in got[route]]
            assert [_bits(v) for v in got[route]] == [_bits(v) for v in want], (route, lo, hi, codes, symmetric)
            assert [tuple(v.shape) for v in got[route]] == [(), ()]

    check()


@pytest.mark.parametrize("python_max", [0, 10**9])
def test_threefry_on_python_integers_and_on_tensors_gives_the_references_words(python_max, monkeypatch):
    """Up to `PYTHON_MAX` CPU words Threefry runs on Python integers: each route, forced at every size, gives the
    reference's words (the extreme words 0 and 2**32 - 1, keys at both ends), and so do the functions built on it
    (the tensor route computes on int32 words: wrapping addition, the sign bits of `>>` masked)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from torch_backend.core import random as trandom

    monkeypatch.setattr(trandom, "PYTHON_MAX", python_max)
    word = st.one_of(st.sampled_from([0, 1, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1))

    @settings(max_examples=60, deadline=None)
    @given(st.tuples(word, word), st.lists(st.tuples(word, word), max_size=40), st.integers(0, 2**32 - 1))
    def check(key, pairs, data):
        shape = (len(pairs) // 2, 2) if len(pairs) % 2 == 0 else (len(pairs),)  # 1-D and 2-D words
        x0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(shape)
        x1 = np.array([p[1] for p in pairs], dtype=np.int64).reshape(shape)
        got = T.threefry2x32(key, torch.from_numpy(x0), torch.from_numpy(x1))
        assert [_bits(g) for g in got] == [_bits(w) for w in R.threefry2x32(key, x0, x1)]
        assert T.fold_in(key, data) == R.fold_in(key, data)
        assert T.split(key, 3) == R.split(key, 3)
        assert _bits(T.random_bits(key, (len(pairs), 3))) == _bits(R.random_bits(key, (len(pairs), 3)))
        assert _bits(T.uniform(key, (3, len(pairs)))) == _bits(R.uniform(key, (3, len(pairs))))

    check()


def test_symmetric_scales_divide_in_float32_with_the_float64_bits():
    """Symmetric qparams and `symmetric_scale` divide `amax` in float32: the float32 quotient equals the
    reference's float64 quotient rounded to float32 (rounding twice through float64 is innocuous for a quotient).
    Checked on every divisor of 2 to 16 bits (`2**(b-1) - 1` and `(2**b - 1) / 2`), for a million subnormals and
    two million random finite patterns."""
    rng = np.random.default_rng(19)
    patterns = np.concatenate([np.arange(1, 1 << 20), rng.integers(1, 0x7F800000, 1 << 21)]).astype(np.uint32)
    amax = patterns.view(np.float32)
    divisors = [2 ** (b - 1) - 1 for b in range(2, 17)] + [(2**b - 1) / 2 for b in range(2, 17)]  # qmax and half
    for d in divisors:
        want = (amax.astype(np.float64) / np.float64(d)).astype(np.float32)
        got = torch.from_numpy(amax) / torch.tensor(float(d))
        assert np.array_equal(got.numpy().view(np.uint32), want.view(np.uint32)), d


def _both_routes(name, python_max, monkeypatch, modules, extra=(), attr="PYTHON_MAX"):
    """The registry's cases and bad inputs of entry `name` (and `extra` cases) through the torch backend with
    `attr` set to `python_max` in each of `modules`: 0 forces the tensor route, a large value the host route."""
    import importlib

    from hypothesis import given, settings

    from spec.backends import TORCH
    from spec.conformance import check_case
    from spec.registry import REGISTRY

    for module in modules:
        monkeypatch.setattr(importlib.import_module(module), attr, python_max)
    entry = REGISTRY[name]

    @settings(max_examples=80, deadline=None)
    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, "cpu")

    check()
    for case in [bad.case for bad in entry.bad] + list(extra):
        check_case(entry, case, TORCH, "cpu")


@pytest.mark.parametrize("python_max", [0, 10**6])
@pytest.mark.parametrize(
    "name",
    [
        "keep_largest",
        "magnitude_mask",
        "magnitude_mask_by_count",
        "global_magnitude_masks",
        "prune_total_mask",
        "prune_remaining_mask",
        "score_mask",
        "imp_mask",
    ],
)
def test_selection_on_the_host_and_by_torch_sort_give_the_references_masks(name, python_max, monkeypatch):
    """Up to `PYTHON_MAX` CPU scores `keep_largest` (and the magnitude and schedule masks, with |w| taken on the
    host) sort in Python: each route forced on the registry's own cases (ties, both zeros, infinities, NaN and bad
    counts)."""
    modules = ["torch_backend.core.select", "torch_backend.pruning.magnitude", "torch_backend.pruning.schedules"]
    _both_routes(name, python_max, monkeypatch, modules)


@pytest.mark.parametrize("python_max", [0, 10**6])
@pytest.mark.parametrize("name", ["tree_sum", "tree_mean"])
def test_tree_sums_on_python_floats_and_on_tensors_give_the_references_bits(name, python_max, monkeypatch):
    """Up to `PYTHON_MAX` CPU elements the canonical tree adds Python floats, along every axis: each route forced
    on the registry's own cases (cancellation, both zeros, float32 and float64, bad inputs) and on each axis of
    3-d tensors (with a zero-length axis, a NaN with a bad axis: the NaN is named first in `tree_sum`)."""
    from spec.entry import Case

    x = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 11.5) * 3.0 ** np.arange(-4, 20).reshape(2, 3, 4)
    x.reshape(-1)[5] = -0.0
    extra = [Case((x.astype(dtype),), {"axis": axis}) for dtype in (np.float32, np.float64) for axis in (-3, 0, 1, 2)]
    extra += [Case((np.zeros((2, 0, 3), np.float32),), {"axis": axis}) for axis in (0, 1, 2, None)]
    extra += [Case((np.float32([[1.0, np.nan]]),), {"axis": 5})]
    _both_routes(name, python_max, monkeypatch, ["torch_backend.core.reduce"], extra)
    assert T.tree_sum(torch.tensor([-0.0])).item() == 0.0 and np.signbit(T.tree_sum(torch.tensor([-0.0])).item())


@pytest.mark.parametrize("python_max", [0, 10**6])
@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("pack_bits", "torch_backend.quantization.packing"),
        ("unpack_bits", "torch_backend.quantization.packing"),
        ("to_bitmask", "torch_backend.pruning.sparse_formats"),
        ("from_bitmask", "torch_backend.pruning.sparse_formats"),
    ],
)
def test_bit_streams_as_python_integers_and_as_tensors_give_the_references_bits(name, module, python_max, monkeypatch):
    """Up to `PYTHON_MAX` CPU elements the bit packers and the bitmask codecs work on one Python integer: each
    route forced on the registry's own cases and bad inputs (set padding bits, wrong value counts), and on
    several set padding bits (the error names the lowest)."""
    from spec.entry import Case

    several = {
        "unpack_bits": [Case((np.uint8([0b01101001, 0b10100000]), 3, 3))],
        "from_bitmask": [Case((np.uint8([0b11001101]), np.float32([1.0, 2.0]), (3,)))],
    }
    _both_routes(name, python_max, monkeypatch, [module], several.get(name, ()))


@pytest.mark.parametrize("small", [0, 10**6])
def test_state_combination_on_python_integers_and_on_limbs_give_the_references_state(small, monkeypatch):
    """Up to `SMALL_STATES` CPU states `exact_sum_combine` checks and adds them as Python integers: each route
    forced on the registry's own cases and bad inputs, and on a non-canonical limb in a later state and row, a
    total past the state's range, several rows and an empty batch."""
    from spec.entry import Case

    def state(*values):
        return np.stack([R.exact_sum_state(np.float64([v])) for v in values])

    bad_limb = state(1.0, 2.0)
    bad_limb[1, 5] = -1
    top = np.zeros((1, 68), np.int64)
    top[0, 67] = 2**31 - 1
    extra = [
        Case(([state(1.0, -3.5), bad_limb],)),
        Case(([top, top, top],)),
        Case(([state(1e308, -(2.0**-1074), 0.5), state(1e308, 2.0**-1074, -0.5), state(-1.0, 3.0, 0.25)],)),
        Case(([np.zeros((0, 68), np.int64), np.zeros((0, 68), np.int64)],)),
    ]
    _both_routes("exact_sum_combine", small, monkeypatch, ["torch_backend.core.exact"], extra, "SMALL_STATES")


@pytest.mark.parametrize("host_max", [0, 10**6])
def test_dorefa_activation_vjp_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    """Up to `HOST_MAX` CPU elements the direct activation VJP passes `grad` on Python floats: each route forced on
    the registry's cases and bad inputs, and on the edges of [0, 1] (both zeros, the neighbours of 0 and 1,
    subnormals) with a `grad` holding -0.0, a subnormal and the largest float32."""
    from spec.entry import Case

    edges = np.float32([-0.0, 0.0, 1.0, np.nextafter(np.float32(1), 2), np.nextafter(np.float32(0), -1), 1e-45, -1])
    grad = np.float32([-0.0, 3.0, -2.5, 7.0, 1.0, -1e-45, np.finfo(np.float32).max])
    extra = [Case((grad, edges, 3)), Case((grad.reshape(7, 1), edges.reshape(7, 1), 1))]
    _both_routes(
        "dorefa_activation_vjp", host_max, monkeypatch, ["torch_backend.quantization.dorefa"], extra, "HOST_MAX"
    )


@pytest.mark.parametrize("host_max", [0, 10**6])
def test_group_scores_on_python_numbers_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    """Up to `HOST_MAX` CPU entries `group_scores` sums each unit's terms on Python numbers: each route forced on
    the registry's cases and bad inputs, and on units held by several slices or none, Taylor terms that are -0.0
    or cancel, extremes whose squares overflow float32, an empty list of slices and a unit out of range."""
    from spec.entry import Case

    big = np.float32(np.finfo(np.float32).max)
    values = [np.float32([1.5, -0.0, big, 3.0]), np.float32([-2.0, 7.0, 1e-45, -0.0])]
    units = [np.int64([0, 2, 2, 0]), np.int64([2, 0, 4, 5])]
    grads = [np.float32([2.0, 5.0, -1.0, -1.0]), np.float32([1.5, -0.0, 1e-45, 3.0])]
    extra = [Case((values, units, 6), {"criterion": c, "reduction": r}) for c in ("l1", "l2") for r in ("sum", "mean")]
    extra += [Case((values, units, 6, "taylor", r, grads)) for r in ("sum", "mean")]
    extra += [Case(([], [], 3), {}), Case((values, [units[0], np.int64([2, 0, 6, 1])], 6), {})]
    _both_routes("group_scores", host_max, monkeypatch, ["torch_backend.pruning.groups"], extra, "HOST_MAX")


@pytest.mark.parametrize("rounding", ["half_even", "half_away", "floor", "ceil"])
def test_quantize_adds_the_zero_point_in_float32_with_the_references_codes(rounding):
    """`quantize` adds the zero point to the rounded float32 value in float32 (the reference in float64): the same
    codes at the edge of exactness (sums just below, at and above `2**24`), at the extremes (`x / s` overflowing
    to infinity), for both zeros and halves, with zero points at the ends of the widest ranges, per tensor and
    per channel."""
    edge = [2.0**24 - 1, 2.0**24, 2.0**24 + 2, 2.0**25 + 4, 3e38, 0.5, 1.5, 2.5, -0.0, 0.0, 12345.5, 65535.5]
    x = np.float32(edge + [-v for v in edge])
    for qmin, qmax in ((-(2**15), 2**15 - 1), (0, 2**16 - 1), (-(2**15), 2**16 - 1), (0, 1)):
        for zero in sorted({qmin, qmax, 0, 1, -1} & set(range(qmin, qmax + 1))):
            for scale in (np.float32(1.0), np.float32(1e-38)):
                args = (x, scale, np.int32(zero))
                kw = {"qmin": qmin, "qmax": qmax, "rounding": rounding}
                want = R.quantize(*args, **kw)
                got = T.quantize(*(torch.from_numpy(np.asarray(a)) for a in args), **kw)
                assert _bits(got) == _bits(want), (qmin, qmax, zero, scale)
    xc = x.reshape(2, 12)
    s, z = np.float32([1.0, 0.5]), np.int32([2**15 - 1, -(2**15)])
    kw = {"qmin": -(2**15), "qmax": 2**15 - 1, "axis": 0, "rounding": rounding}
    got = T.quantize(torch.from_numpy(xc), torch.from_numpy(s), torch.from_numpy(z), **kw)
    assert _bits(got) == _bits(R.quantize(xc, s, z, **kw))


@pytest.mark.parametrize("host_max", [0, 10**6])
def test_hadamard_transform_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    """Up to `HOST_MAX` products a CPU Hadamard transform runs on Python floats with the same certificate: each
    route forced on the registry's cases and bad inputs, and on rows that cancel to zero, rows of signed zeros,
    subnormals whose outputs round to zero or to the smallest float32 (the uncertified outputs), extremes, with
    and without a key, forward and inverse."""
    from spec.entry import Case

    tiny = np.float32(1e-45)
    rows = np.float32(
        [
            [1.0, 1.0, 1.0, 1.0],
            [-0.0, 0.0, -0.0, -0.0],
            [tiny, tiny, 0.0, -tiny],
            [3e38, -3e38, 3e38, 3e38],
            [2 * tiny, -tiny, 3 * tiny, tiny],
            [1.0, 2.0**-24, -(2.0**-24), 0.5],
        ]
    )
    extra = [Case((rows,), {"key": k, "inverse": i}) for k in (None, (7, 9)) for i in (False, True)]
    extra += [Case((np.float32([[-0.0], [tiny], [-3.0]]),), {"key": (1, 2)}), Case((rows[:, :2].copy(),), {})]
    _both_routes(
        "hadamard_transform", host_max, monkeypatch, ["torch_backend.posttraining.rotation"], extra, "HOST_MAX"
    )


@pytest.mark.parametrize("host_max", [0, 10**6])
def test_rectified_sigmoid_vjp_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    """Up to `VJP_HOST_MAX` CPU elements the rectified sigmoid's VJP runs on Python floats: each route forced on
    the registry's cases and bad inputs, and on sigmoids that saturate (0, 1, exp overflowing), the edges of the
    clip (pre exactly 0 and 1 with zeta = 1.5, gamma = -0.5, and a gamma that rounds to -0.0), zeros and extremes
    in `grad`."""
    from spec.entry import Case

    v = np.float32([-1000.0, -88.7, -16.6, -0.0, 0.0, 1e-45, 0.5, 16.6, 88.7, 3e38, -3e38, 1.0986123])
    grad = np.float32([1.0, -0.0, 3e38, -3e38, 1e-45, 2.5, -1.0, 0.0, 7.0, -2.0, 1.5, 0.25])
    extra = [Case((grad, v), {}), Case((grad, v), {"zeta": 1.5, "gamma": -0.5})]
    extra += [Case((grad.reshape(3, 4), v.reshape(3, 4)), {"zeta": 1.0 + 1e-7, "gamma": -1e-300})]
    modules = ["torch_backend.posttraining.adaround"]
    _both_routes("rectified_sigmoid_vjp", host_max, monkeypatch, modules, extra, "VJP_HOST_MAX")


@pytest.mark.parametrize("stack_min", [0, 10**9])
def test_awq_pack_by_byte_planes_and_by_a_byte_transpose_give_the_references_words(stack_min, monkeypatch):
    """`awq_pack`'s words from interleaved byte planes (from `STACK_MIN` codes) or a byte-wise transpose: each
    forced, on several shapes (one and many words per row, one row), a transposed and a sliced `codes`, every
    code value in every position, against the reference."""
    from torch_backend.codecs import _bytes, awq

    monkeypatch.setattr(awq, "STACK_MIN", stack_min)
    monkeypatch.setattr(_bytes, "HOST_MAX", 0)
    monkeypatch.setattr(awq, "HOST_MAX", 0)
    rng = np.random.default_rng(20)
    for out_f, in_f, groups in ((8, 1, 1), (8, 16, 2), (16, 8, 8), (64, 48, 3), (256, 32, 4)):
        codes = rng.integers(0, 16, (out_f, in_f)).astype(np.uint8)
        codes.reshape(-1)[: min(codes.size, 16)] = np.arange(min(codes.size, 16))
        scales = rng.random((out_f, groups)).astype(np.float16)
        zeros = rng.integers(0, 16, (out_f, groups)).astype(np.int32)
        want = R.awq_pack(codes, scales, zeros)
        views = [torch.from_numpy(codes), torch.from_numpy(np.ascontiguousarray(codes.T)).T]
        views.append(torch.from_numpy(np.concatenate([codes, codes], axis=1))[:, in_f:])
        for tc in views:
            got = T.awq_pack(tc, torch.from_numpy(scales), torch.from_numpy(zeros))
            assert [_bits(g) for g in got] == [_bits(w) for w in want], (out_f, in_f)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_one_element_checks_read_the_element_with_the_same_errors(shape):
    """`finite`, `positive` and `within` read a lone CPU element with `item` instead of reducing: the same
    verdicts and the same messages as the reduction route (the element padded with a valid one, checked first)."""
    import math

    from torch_backend import _arrays

    def verdict(check, value, pad, dtype):
        one = torch.tensor(value, dtype=dtype).reshape(shape)
        two = torch.tensor([value, pad], dtype=dtype)
        out = []
        for x in (one, two):
            try:
                check(x)
                out.append("ok")
            except ValueError as exc:
                out.append(str(exc).replace("[0]", "").replace("index 0", ""))
        assert out[0] == out[1], (value, out)
        return out[0]

    finite = lambda x: _arrays.finite("scale", x)  # noqa: E731
    positive = lambda x: _arrays.positive("scale", x)  # noqa: E731
    within = lambda x: _arrays.within("zero_point", x, -128, 127)  # noqa: E731
    for value in (1.5, 0.0, -0.0, -2.0, math.inf, -math.inf, math.nan, 2.0**-149):
        for dtype in (torch.float32, torch.float64, torch.float16):
            verdict(finite, value, 1.0, dtype)
            verdict(positive, value, 1.0, dtype)
    for value in (-129, -128, 0, 127, 128):
        assert (verdict(within, value, 0, torch.int32) == "ok") == (-128 <= value <= 127)
    assert verdict(finite, 1.0, 1.0, torch.float32) == verdict(positive, 1.0, 1.0, torch.float32) == "ok"
    assert verdict(positive, 0.0, 1.0, torch.float32) != "ok" and verdict(finite, math.nan, 1.0, torch.float32) != "ok"


@pytest.mark.parametrize("host_max", [None, 0, 1 << 40])
def test_sqrt_to_float32_on_python_floats_and_on_tensors_gives_the_references_bits(host_max, monkeypatch):
    """`_reduce.sqrt_to_float32` (the norms' float32 square root of a float64 sum) on Python floats and by tensors,
    forced both ways: zeros of both signs, subnormals, squares of float32 midpoints and their float64 neighbours
    (ties to even and just off them), values past `2**254` up to the largest float64 (around the square of the
    point halfway between the largest float32 and `2**128`: finite below it, infinity from it), in 0-d and 1-D."""
    from reference import _reduce as RR
    from torch_backend import _reduce
    from torch_backend.core import _host

    if host_max is not None:
        monkeypatch.setattr(_reduce, "HOST_MAX", host_max)
    rng = np.random.default_rng(8)
    f = np.concatenate([rng.uniform(0, 3e38, 300), np.exp2(rng.uniform(-149, 127, 300))]).astype(np.float32)
    g = np.nextafter(f, np.float32(np.inf))
    mids = (f.astype(np.float64) + g.astype(np.float64)) / 2
    squares = mids * mids
    edge = _host.HALFWAY**2
    values = np.concatenate(
        [
            squares,
            np.nextafter(squares, 0),
            np.nextafter(squares, np.inf),
            [0.0, -0.0, 5e-324, 1e-310, 2.0**254, 2.0**254 * 1.5, edge, np.nextafter(edge, 0), np.nextafter(edge, 2)],
            [np.finfo(np.float64).max, float(np.finfo(np.float32).max) ** 2, 1e300],
            np.exp2(rng.uniform(-1074, 1023, 400)),
        ]
    )
    for chunk in np.array_split(values, len(values) // 7):
        with np.errstate(over="ignore"):
            want = RR.sqrt_to_float32(chunk)
        assert _bits(_reduce.sqrt_to_float32(torch.from_numpy(chunk))) == _bits(want)
    for v in values[::37]:
        with np.errstate(over="ignore"):
            want = RR.sqrt_to_float32(np.float64(v))
        assert _bits(_reduce.sqrt_to_float32(torch.tensor(v, dtype=torch.float64))) == _bits(want)
