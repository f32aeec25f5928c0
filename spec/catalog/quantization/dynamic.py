"""Registry entries for `reference.quantization.dynamic` and its torch twin: per_token_fake_quantize."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
SMOOTHQUANT = (
    "Xiao, Lin, Seznec, Wu, Demouth and Han, 2023. SmoothQuant: Accurate and Efficient Post-Training Quantization "
    "for Large Language Models. ICML. arXiv:2211.10438"
)


def _row_by_row(call, case, out):
    """The definition: minmax_qparams and fake_quantize of each token on its own (the reference's functions)."""
    from reference.quantization.affine import fake_quantize, integer_range, minmax_qparams

    (x,) = case.args
    bits, symmetric = case.kwargs.get("bits", 8), case.kwargs.get("symmetric", True)
    qmin, qmax = integer_range(bits, True, symmetric)
    rows, got = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
    assert out.dtype == np.float32 and out.shape == x.shape
    for r in range(rows.shape[0]):
        s, z = minmax_qparams(rows[r], qmin=qmin, qmax=qmax, symmetric=symmetric)
        want = fake_quantize(rows[r], s, z, qmin=qmin, qmax=qmax)
        assert want.tobytes() == got[r].tobytes(), f"token {r}"


S127 = F(1) / F(127)

ENTRIES = [
    Entry(
        name="per_token_fake_quantize",
        family="quantization",
        module="quantization.dynamic",
        summary="Dynamic per-token fake quantization: min-max parameters of each row, computed at run time.",
        strategy=S.per_token_cases,
        semantics=(
            "Each token (row of the last axis): (s, z) = minmax_qparams of the row with "
            "integer_range(bits, signed=True, narrow_range=symmetric), then fake_quantize (ties to even, x / s).",
            "Symmetric: z = 0, s = amax / (2**(bits-1) - 1) (SmoothQuant's per-token absmax); a zero token gives zeros.",
        ),
        invariants=(Invariant("each token by minmax_qparams + fake_quantize", _row_by_row),),
        golden=(
            Golden(
                Case((_a([[1, -0.5, 0.25], [0, 0, 0]]),)),
                _a([[1, F(-64) * S127, F(32) * S127], [0, 0, 0]]),
                "s = fl32(1/127); -0.5 / s = -63.5 rounds to even, -64; 0.25 / s = 31.75 -> 32; the zero token: zeros",
            ),  # fmt: skip
            Golden(
                Case((_a([[2, 1, 0.2]]),), {"bits": 4, "symmetric": False}),
                _a([[F(15) * (F(2) / F(15)), F(7) * (F(2) / F(15)), F(2) * (F(2) / F(15))]]),
                "range [0, 2] on [-8, 7]: s = fl32(2/15), z = -8; 2 / s = 15, 1 / s = 7.4999995 -> 7, 0.2 / s = 1.5 in float32: a tie, to even 2; codes 7, -1, -6: values 15s, 7s, 2s",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a(1.0),)), ValueError, "x must have shape (..., features) with features >= 1, got ()"),
            Bad(Case((_a([[1.0]]),), {"bits": 1}), ValueError, "bits must be in [2, 16], got 1"),
            Bad(Case((_a([[1.0, np.inf]]),)), ValueError, "x must be finite, got inf at flat index 1"),
        ),
        paper=SMOOTHQUANT,
    ),
]
