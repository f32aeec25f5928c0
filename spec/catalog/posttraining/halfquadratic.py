"""Registry entries for `reference.posttraining.halfquadratic` and its torch twin: hqq_shrink, hqq."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

HQQ = (
    "Badri and Shaji, 2023. Half-Quadratic Quantization of Large Machine Learning Models. Mobius Labs, "
    "https://mobiusml.github.io/hqq_blog/ (code: github.com/mobiusml/hqq, hqq/core/optimize.py)"
)


def _shrink_formula(call, case, out):
    from reference.core.transcendental import cr_pow

    (x,) = case.args
    beta, p = case.kwargs["beta"], case.kwargs["p"]
    inv = np.float32(1.0 / beta)
    with np.errstate(over="ignore", invalid="ignore"):
        t = inv * cr_pow(np.abs(x), np.array(np.float32(p - 1.0)))
        want = np.sign(x) * np.maximum(np.abs(x) - t, np.float32(0))
    assert out.tobytes() == want.tobytes()
    assert np.all(np.abs(out) <= np.abs(x)), "shrinkage never grows a value"


def _hqq_consistent(call, case, out):
    (w,) = case.args
    kw = case.kwargs
    g, bits = kw.get("group_size", 64), kw.get("bits", 4)
    n_groups = w.shape[1] // g
    assert out.codes.dtype == np.int32 and out.codes.min() >= 0 and out.codes.max() <= 2**bits - 1
    zero = np.repeat(out.zero, g, axis=1)
    scale = np.repeat(out.scale, g, axis=1)
    assert out.weight.tobytes() == ((out.codes.astype(np.float32) - zero) * scale).tobytes(), "HQQ's dequantize"
    assert out.scale.shape == out.zero.shape == (w.shape[0], n_groups)
    assert 0 <= out.iterations <= (kw.get("iters", 20) if kw.get("optimize", True) else 0)


def _hqq_result(weight, codes, scale, zero, iterations):
    from reference.posttraining.halfquadratic import HQQResult

    return HQQResult(_a(weight), _a(codes, np.int32), _a(scale), _a(zero), iterations)


ENTRIES = [
    Entry(
        name="hqq_shrink",
        family="quantization",
        module="posttraining.halfquadratic",
        summary="HQQ's l_p shrinkage: sign(x) * max(|x| - |x|**(p - 1) / beta, 0), float32, correctly rounded power.",
        strategy=S.shrink_cases,
        semantics=(
            "t = fl32(fl32(1/beta) * cr_pow(|x|, fl32(p - 1))); result = sign(x) * max(|x| - t, 0), each op float32.",
            "x = 0 gives +0.0; a negative x shrunk to nothing gives -0.0 (sign(x) * 0, as the paper's code).",
        ),
        invariants=(Invariant("the formula; never grows a value", _shrink_formula),),
        golden=(
            Golden(
                Case((_a([4, -1, 0]),), {"beta": 1.0, "p": 0.5}),
                _a([3.5, -0.0, 0.0]),
                "|x|**-0.5 = [0.5, 1, inf]: 4 - 0.5, max(1 - 1, 0) * -1 = -0.0, 0 - inf clipped to 0",
            ),  # fmt: skip
            Golden(
                Case((_a([2, -0.5, 0.25]),), {"beta": 2.0, "p": 1.0}),
                _a([1.5, -0.0, 0.0]),
                "p = 1: soft thresholding at 1/beta = 0.5",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"beta": 0.0, "p": 0.5}), ValueError, "beta must be in (0.0, inf], got 0.0"),
            Bad(Case((_a([1.0]),), {"beta": 1.0, "p": 1.5}), ValueError, "p must be in (0.0, 1.0], got 1.5"),
        ),
        paper=HQQ,
    ),
    Entry(
        name="hqq",
        family="quantization",
        module="posttraining.halfquadratic",
        summary="HQQ: min-max init, the half-quadratic zero-point solver (fixed iterations, early stop), HQQ's codes.",
        strategy=S.hqq_cases,
        semantics=(
            "Groups: group_size consecutive input columns per output row. sigma = min(fl32(qmax / fl32(max - min)), "
            "2e4), zero = fl32(-min * sigma), qmax = 2**bits - 1; a zero min or max counts as +0.0 (the sign of a "
            "zero extreme is left open by min/max).",
            "Each iteration: W_q = clip(rne(W sigma + z), 0, qmax); W_r = (W_q - z) / sigma; W_e = hqq_shrink(W - W_r, "
            "beta_i, p); z = fl32(fl64(exact_sum(W_q - (W - W_e) sigma) / g)); beta_{i+1} = beta_i * kappa (Python "
            "floats); float32 ops left to right.",
            "Stop after the update of the first iteration whose error fl64(exact_sum|W - W_r| / numel) is not below the "
            "best so far (initially 1e4), as the paper's code (the worse update is kept).",
            "codes = clip(rne(W sigma + z), 0, qmax); scale = fl32(1 / sigma) (HQQ stores the inverse); weight = "
            "fl32(codes - z) * scale.",
        ),
        invariants=(Invariant("HQQ's dequantize, ranges, iteration count", _hqq_consistent),),
        golden=(
            Golden(
                Case((_a([[0, 1, 2, 3]]),), {"bits": 2, "group_size": 4, "optimize": False}),
                _hqq_result([[0, 1, 2, 3]], [[0, 1, 2, 3]], [[1]], [[-0.0]], 0),
                "range [0, 3] on [0, 3]: sigma = 1, zero = -(0 * 1) = -0.0 (as -_min * scale in the code)",
            ),  # fmt: skip
            Golden(
                Case((_a([[0, 1, 2, 3]]),), {"bits": 2, "group_size": 4, "iters": 5}),
                _hqq_result([[0, 1, 2, 3]], [[0, 1, 2, 3]], [[1]], [[0.0]], 2),
                "exact from the start: W_r = W, W_e = 0, the zero becomes the exact mean of zeros, +0.0; the error 0 "
                "beats 1e4, then 0 does not beat 0: the loop stops after 2 iterations",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_a([[1.0, 2.0, 3.0]]),), {"group_size": 2}), ValueError, "group_size=2 must divide in_features=3"
            ),
            Bad(Case((_a([[1.0, 2.0]]),), {"group_size": 2, "kappa": 0.5}), ValueError, "kappa must be in [1.0, inf]"),
            Bad(Case((_a([[1.0, 2.0]]),), {"group_size": 2, "bits": 9}), ValueError, "bits must be in [1, 8], got 9"),
            Bad(
                Case((_a([[-3e38, 3e38]]),), {"group_size": 2}),
                ValueError,
                "group 0 of w spans more than the float32 range",
            ),  # fmt: skip
        ),
        paper=HQQ,
    ),
]
