"""Sizes, loop counts and optional arrays at the edge: both backends fail alike, at once, with a clear error.

Every int argument of every registry entry (a block size, a shape, a number of keys, iterations, rounds, steps, a
count, a bit width) is replaced by values far beyond any real use; each backend must then return the same bits or
raise the same `TypeError`/`ValueError`, within seconds and without allocating the impossible. The bounds
themselves live in `reference.common.shapes`.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from reference.common import shapes
from spec.backends import TORCH
from spec.conformance import check_case
from spec.entry import Case
from tests.helpers import DEVICE_PARAMS, ENTRY_PARAMS

HUGE = (shapes.MAX_NUMEL + 1, 2**62, 2**63, 2**64 + 1, 10**30)
SECONDS = 20  # per call; a bounded loop count or size never comes near it


def _int_slots(value, path=()):
    """Paths to the Python ints (not bools) in a case's args or kwargs, inside tuples, lists and dicts."""
    if isinstance(value, int) and not isinstance(value, bool):
        yield path
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _int_slots(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _int_slots(v, (*path, k))


def _replace(value, path, new):
    if not path:
        return new
    if isinstance(value, dict):
        return {**value, path[0]: _replace(value[path[0]], path[1:], new)}
    items = list(value)
    items[path[0]] = _replace(items[path[0]], path[1:], new)
    return type(value)(items)


class _TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise _TookTooLong(f"a call took more than {SECONDS} s")


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_huge_ints_fail_alike_and_at_once(entry, device):
    @settings(max_examples=5)
    @given(entry.strategy())
    def check(case):
        for where in ("args", "kwargs"):
            for path in _int_slots(getattr(case, where)):
                for value in HUGE:
                    args = _replace(case.args, path, value) if where == "args" else case.args
                    kwargs = _replace(case.kwargs, path, value) if where == "kwargs" else case.kwargs
                    previous = signal.signal(signal.SIGALRM, _alarm)
                    signal.alarm(SECONDS)
                    start = time.monotonic()
                    try:
                        check_case(entry, Case(args, kwargs), TORCH, device)
                    finally:
                        signal.alarm(0)
                        signal.signal(signal.SIGALRM, previous)
                    assert time.monotonic() - start < SECONDS

    check()


# ---- the bounds, one by one (each raised the wrong error, or none, or ran for hours, before it existed) --------

BACKENDS = [
    pytest.param(("reference", np.asarray), id="reference"),
    pytest.param(("torch_backend", torch.as_tensor), id="torch"),
]


def _call(backend, name, *args, **kwargs):
    module, array = backend
    fn = getattr(__import__(module), name)
    return fn(*[array(a) if isinstance(a, np.ndarray | np.generic) else a for a in args], **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_size", [2**62, 2**63, shapes.MAX_NUMEL + 1])
def test_nf4_block_size_is_bounded(backend, block_size):
    x = np.float32([1.0, -2.0, 3.0])
    q, s, o = (np.int8([-127, 0, 127]), np.float32([0.5]), np.float32(2.0))
    calls = [
        ("nf4_quantize", (x,)),
        ("nf4_dequantize", (np.uint8([1, 2, 3]), np.float32([1.0]))),
        ("nf4_double_quantize", (np.float32([1.0, 2.0, 3.0]),)),
        ("nf4_double_dequantize", (q, s, o)),
    ]
    for name, args in calls:
        with pytest.raises(ValueError, match=r"block_size must be in \[1, 1099511627776\]"):
            _call(backend, name, *args, block_size=block_size)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_sizes_are_bounded(backend):
    for shape in [(2**41,), (2**32, 2**32), (0, 2**62), (2**31, 2**31, 4)]:
        for name in ("random_bits", "uniform"):
            with pytest.raises(ValueError, match="an array may have at most 2\\*\\*40"):
                _call(backend, name, (1, 2), shape)
    with pytest.raises(ValueError, match=r"num must be in \[1, 1048576\], got 1048577"):
        _call(backend, "split", (1, 2), 2**20 + 1)
    assert len(_call(backend, "split", (1, 2), 3)) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_counts_are_bounded_and_fast(backend):
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"iterations must be in \[0, 10000\], got 2147483648"):
        _call(backend, "kmeans_codebook", np.float32([0.0, 1.0, 5.0]), 2, iterations=2**31)
    with pytest.raises(ValueError, match=r"steps must be in \[0, 10000\], got 10001"):
        _call(backend, "iterative_sparsities", 0.0, 10_001)
    with pytest.raises(ValueError, match=r"rounds must be in \[0, 10000\], got 10001"):
        _call(backend, "imp_schedule", 10, 0.0, 10_001)
    assert time.monotonic() - start < 1.0
    assert len(_call(backend, "iterative_sparsities", 0.0, 10_000)) == 10_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_of_elements_are_bounded(backend):
    with pytest.raises(ValueError, match=r"n must be in \[0, 1099511627776\]"):
        _call(backend, "pruned_count", 0.5, 2**41)
    with pytest.raises(ValueError, match=r"numel must be in \[0, 1099511627776\]"):
        _call(backend, "lsq_grad_scale", 2**41, 3)
    assert _call(backend, "pruned_count", 0.5, shapes.MAX_NUMEL) == 2**39


LARGEST = shapes.MAX_NUMEL
EMPTY = np.zeros((0, 2), np.float32)


@pytest.mark.parametrize(
    ("name", "case"),
    [
        ("nm_mask", Case((EMPTY, 0, LARGEST), {"axis": 0})),
        ("block_scores", Case((EMPTY, (LARGEST, 1)))),
        ("block_mask", Case((EMPTY, 0.5, (LARGEST, 2)))),
        ("minmax_qparams", Case((EMPTY,), {"qmin": 0, "qmax": 255, "axis": 1, "group_size": 1})),
        ("minmax_qparams", Case((EMPTY.T,), {"qmin": 0, "qmax": 255, "axis": 1, "group_size": LARGEST})),
        (
            "fake_quantize",
            Case(
                (EMPTY.T.copy(), np.ones((2, 0), np.float32), np.zeros((2, 0), np.int32)),
                {"qmin": 0, "qmax": 255, "axis": 1, "group_size": LARGEST},
            ),
        ),
        (
            "dequantize",
            Case(
                (np.zeros((2, 0), np.int32), np.ones((2, 0), np.float32), np.zeros((2, 0), np.int32)),
                {"axis": 1, "group_size": LARGEST},
            ),
        ),
        ("nf4_quantize", Case((np.float32([1.0, -2.0, 3.0]),), {"block_size": LARGEST})),
        ("nf4_dequantize", Case((np.uint8([1, 2, 3]), np.float32([2.0])), {"block_size": LARGEST})),
        ("nf4_double_quantize", Case((np.float32([1.0, 2.0, 3.0]),), {"block_size": LARGEST})),
        (
            "nf4_double_dequantize",
            Case((np.int8([-127, 0, 127]), np.float32([0.5]), np.float32(2.0)), {"block_size": LARGEST}),
        ),
        ("random_bits", Case(((1, 2), (0, LARGEST)))),
        ("pruned_count", Case((0.5, LARGEST))),
        ("lsq_grad_scale", Case((LARGEST, 3))),
        ("imp_schedule", Case((LARGEST, 0.5, 3))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_the_largest_sizes_work_on_small_and_empty_arrays(name, case, device):
    """At the bound itself, a size that the data do not need (a block of an empty axis, one block for three values)
    costs nothing: both backends return the same bits."""
    from spec.registry import REGISTRY

    check_case(REGISTRY[name], case, TORCH, device)


def test_lsq_plus_needs_an_offset_in_both_backends():
    """`offset=None` was a TypeError deep inside the reference (`x - None`) and a silent LSQ in torch."""
    x, s = np.float32([0.2, 0.8, 5.0]), np.float32(0.5)
    for backend in [p.values[0] for p in BACKENDS]:
        for name, args in (("lsq_plus_quantize", (x, s, None)), ("lsq_plus_quantize_vjp", (x, x, s, None))):
            with pytest.raises(TypeError, match="^offset must be an array .* got NoneType$"):
                _call(backend, name, *args, bits=4, signed=True)


def test_huge_int_sweep_can_fail():
    """The sweep's comparison is the conformance check: a backend that raises another error fails it."""
    from spec.registry import REGISTRY

    entry = REGISTRY["nf4_quantize"]
    case = Case((np.float32([1.0]),), {"block_size": 2**63})

    def torch_accepts_anything(x, *, block_size):
        return TORCH.function(entry)(x, block_size=1)

    with pytest.raises(AssertionError):
        check_case(entry, case, TORCH, "cpu", fn=torch_accepts_anything)
