"""Golden vectors, bad inputs, invariants and corrupted inputs: every entry, on the reference and on torch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spec.backends import TORCH
from spec.conformance import Mismatch, check_case, numpy_call, same_bits
from spec.entry import Case
from tests.helpers import BACKEND_PARAMS, DEVICE_PARAMS, ENTRIES, ENTRY_PARAMS

GOLDEN_PARAMS = [pytest.param(e, i, id=f"{e.name}-{i}") for e in ENTRIES for i in range(len(e.golden))]
BAD_PARAMS = [pytest.param(e, i, id=f"{e.name}-{i}") for e in ENTRIES for i in range(len(e.bad))]
INVARIANT_PARAMS = [pytest.param(e, inv, id=f"{e.name}-{inv.name}") for e in ENTRIES for inv in e.invariants]


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@pytest.mark.parametrize(("entry", "i"), GOLDEN_PARAMS)
def test_golden_vector(entry, i, backend_device):
    backend, device = backend_device
    golden = entry.golden[i]
    got = numpy_call(backend, backend.function(entry), device)(golden.case)
    same_bits(golden.expected, got, f"{entry.name} golden {i} ({golden.why})")


@pytest.mark.parametrize(("entry", "i"), BAD_PARAMS)
def test_bad_input_raises_the_same_error_everywhere(entry, i):
    bad = entry.bad[i]
    messages = set()
    for param in BACKEND_PARAMS:
        backend, device = param.values[0]
        with pytest.raises(bad.error) as info:
            numpy_call(backend, backend.function(entry), device)(bad.case)
        assert type(info.value) is bad.error
        assert bad.match in str(info.value), f"{backend.name}: {info.value}"
        messages.add(str(info.value))
    assert len(messages) == 1, f"messages differ between backends: {messages}"


@pytest.mark.parametrize("backend_device", BACKEND_PARAMS)
@pytest.mark.parametrize(("entry", "invariant"), INVARIANT_PARAMS)
def test_invariant(entry, invariant, backend_device):
    backend, device = backend_device
    call = numpy_call(backend, backend.function(entry), device)

    @given(entry.strategy())
    def check(case):
        invariant.check(call, case, call(case))

    check()


# ---- corrupted inputs: NaN / Inf and wrong dtypes must be handled identically by both backends ---------------

SWAPS = {
    "float32": ["float64", "float16"],
    "float64": ["float32"],
    "int32": ["int64"],
    "int64": ["int32"],
    "bool": ["uint8"],
}


def _arrays_in(value, path=()):
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _arrays_in(v, (*path, i))


def _replace(value, path, new):
    if not path:
        return new
    items = list(value)
    items[path[0]] = _replace(items[path[0]], path[1:], new)
    return type(value)(items)


@st.composite
def corrupted(draw, entry):
    case = draw(entry.strategy())
    slots = list(_arrays_in(case.args))
    if not slots:
        return case
    path, a = draw(st.sampled_from(slots))
    how = draw(st.sampled_from(["nonfinite", "dtype"]))
    if how == "nonfinite" and a.dtype.kind == "f" and a.size:
        b = a.copy()
        b.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif a.dtype.name in SWAPS:
        b = a.astype(draw(st.sampled_from(SWAPS[a.dtype.name])))
    else:
        return case
    return Case(_replace(case.args, path, b), case.kwargs)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_corrupted_inputs_fail_identically(entry, device):
    @given(corrupted(entry))
    def check(case):
        check_case(entry, case, TORCH, device)

    check()


def test_check_case_catches_a_one_bit_difference():
    """The comparison itself can fail: -0.0 against +0.0, and an off-by-one-ulp value."""
    with pytest.raises(Mismatch):
        same_bits(np.float32([0.0]), np.float32([-0.0]))
    with pytest.raises(Mismatch):
        same_bits(np.float32([1.0]), np.nextafter(np.float32([1.0]), np.float32(2)))
    with pytest.raises(Mismatch):
        same_bits(np.float32([1.0]), np.float64([1.0]))
    with pytest.raises(Mismatch):
        same_bits((1, 2), [1, 2])
    same_bits(np.float32([np.nan]), np.float32([np.nan]))
