"""The generic bitwise test: for every registry entry and every device, torch_backend == reference, bit for bit.

Outputs are compared as bit patterns (signed zeros and NaN payloads count), with the same dtype and shape;
exceptions must match in type and message; neither backend may change its inputs.
"""

import pytest
from hypothesis import given

from spec.backends import TORCH
from spec.conformance import check_case
from tests.helpers import DEVICE_PARAMS, ENTRY_PARAMS


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_torch_matches_reference_bitwise(entry, device):
    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, device)

    check()
