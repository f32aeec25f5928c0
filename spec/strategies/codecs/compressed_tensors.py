"""Strategies of valid inputs for the entries of `reference.codecs.compressed_tensors`: `ct_pack_cases`,
`ct_unpack_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

__all__ = ["ct_pack_cases", "ct_unpack_cases"]


@st.composite
def ct_pack_cases(draw):
    """`(q,)` with `bits` and `packed_dim` for pack_quantized: rows that straddle words (odd widths)."""
    bits = draw(st.integers(1, 8))
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 40)))
    q = draw(hnp.arrays(np.int8, shape, elements=st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)))
    return Case((q,), {"bits": bits, "packed_dim": draw(st.sampled_from([0, 1]))})


@st.composite
def ct_unpack_cases(draw):
    """`(packed,)` with `bits`, `shape` and `packed_dim`: packed codes, with the padding bits left clear."""
    from reference.codecs.compressed_tensors import pack_quantized

    case = draw(ct_pack_cases())
    packed = pack_quantized(*case.args, **case.kwargs)
    return Case((packed,), {"bits": case.kwargs["bits"], "shape": tuple(case.args[0].shape),
                            "packed_dim": case.kwargs["packed_dim"]})  # fmt: skip
