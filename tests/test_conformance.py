"""The generic bitwise test: for every registry entry and every device, torch_backend == reference, bit for bit.

Outputs are compared as bit patterns (signed zeros and NaN payloads count), with the same dtype and shape;
exceptions must match in type and message; neither backend may change its inputs.
"""

import pytest
from hypothesis import given

from spec.backends import TORCH
from spec.conformance import check_case
from spec.entry import resolve
from tests.helpers import DEVICE_PARAMS, ENTRIES, ENTRY_PARAMS
from torch_backend import _arrays

# The VJP entries: the torch backend applies most of their autograd functions' backward directly (without the
# forward); this checks the autograd route too, which training uses, against the same reference.
VJP_NAMES = {e.vjp for e in ENTRIES if e.vjp}
VJP_PARAMS = [p for p in ENTRY_PARAMS if p.values[0].name in VJP_NAMES]

# Extra implementations of an entry (fused kernels): checked by the same function against the same reference.
EXTRA_PARAMS = [pytest.param(e, target, id=f"{e.name}-{impl}") for e in ENTRIES for impl, target in e.extra]


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_torch_matches_reference_bitwise(entry, device):
    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, device)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(("entry", "target"), EXTRA_PARAMS)
def test_extra_implementation_matches_reference_bitwise(entry, target, device):
    fn = resolve(target)

    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, device, fn=fn)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", VJP_PARAMS)
def test_vjp_by_autograd_matches_reference_bitwise(entry, device):
    @given(entry.strategy())
    def check(case):
        with _arrays.vjps_by_autograd():
            check_case(entry, case, TORCH, device)

    check()


def test_every_vjp_entry_is_checked_by_autograd():
    assert len(VJP_PARAMS) == len(VJP_NAMES) >= 19
