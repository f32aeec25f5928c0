"""Strategies of valid inputs for the entries of `reference.posttraining.obs`: `calibration_inputs`,
`hessian_cases`, `hessian_matrix_cases`, `damped_hessian_cases`, `gptq_cases`, `sparsegpt_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

__all__ = [
    "calibration_inputs",
    "hessian_cases",
    "hessian_matrix_cases",
    "damped_hessian_cases",
    "gptq_cases",
    "sparsegpt_cases",
]


F32 = np.float32
VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -0.25, 3.0]),
    st.floats(-4, 4, width=32, allow_subnormal=False),
    st.floats(-1e3, 1e3, width=32, allow_subnormal=False),
)


@st.composite
def calibration_inputs(draw, d=None, max_rows=10):
    """A float32 `(rows, d)` input: some columns dead (all zeros), some repeated."""
    d = d or draw(st.integers(1, 6))
    rows = draw(st.integers(1, max_rows))
    x = draw(hnp.arrays(F32, (rows, d), elements=VALUES))
    for j in range(d):
        kind = draw(st.sampled_from(["keep", "keep", "keep", "dead", "copy"]))
        if kind == "dead":
            x[:, j] = 0
        elif kind == "copy" and j:
            x[:, j] = x[:, draw(st.integers(0, j - 1))]
    return x


def _hessian(x):
    from reference.posttraining.obs import gptq_hessian

    return gptq_hessian(x)


def hessian_cases():
    """`(x,)` for `gptq_hessian`."""
    return calibration_inputs(max_rows=12).map(lambda x: Case((x,)))


@st.composite
def hessian_matrix_cases(draw, with_percdamp=False):
    """`(h,)` (and `percdamp`) for `gptq_damp`, `gptq_order`, `gptq_factor`: the Hessian of calibration inputs,
    damped for `gptq_factor` so that it is positive definite (or, rarely, not: then both backends fail alike)."""
    h = _hessian(draw(calibration_inputs()))
    if with_percdamp:
        return Case((h,), {"percdamp": draw(st.sampled_from([0.0, 0.01, 0.1, 1.0]))})
    return Case((h,))


@st.composite
def damped_hessian_cases(draw):
    """`(h,)` for `gptq_factor`: a calibration Hessian damped as `gptq_damp` does."""
    from reference.posttraining.obs import gptq_damp

    h = _hessian(draw(calibration_inputs()))
    return Case((gptq_damp(h, draw(st.sampled_from([0.01, 0.1, 1.0])))[0],))


@st.composite
def _layer(draw):
    d = draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
    out = draw(st.integers(1, 4))
    w = draw(hnp.arrays(F32, (out, d), elements=VALUES))
    h = _hessian(draw(calibration_inputs(d=d)))
    return w, h


def _divisor(draw, d):
    return draw(st.sampled_from([g for g in range(1, d + 1) if d % g == 0]))


@st.composite
def gptq_cases(draw):
    """`(w, h)` and the options of `gptq`."""
    w, h = draw(_layer())
    d = w.shape[1]
    kw = {
        "bits": draw(st.sampled_from([2, 3, 4, 8])),
        "group_size": draw(st.one_of(st.none(), st.just(_divisor(draw, d)))),
        "symmetric": draw(st.booleans()),
        "act_order": draw(st.booleans()),
        "static_groups": draw(st.booleans()),
        "percdamp": draw(st.sampled_from([0.01, 0.1, 1.0])),
        "block_size": draw(st.sampled_from([1, 2, 3, 128])),
        "scale_dtype": draw(st.sampled_from(["float32", "float32", "float16"])),
    }
    return Case((w, h), kw)


@st.composite
def sparsegpt_cases(draw):
    """`(w, h)` and the options of `sparsegpt`: unstructured or N:M, with or without joint quantization."""
    w, h = draw(_layer())
    d = w.shape[1]
    if draw(st.booleans()):
        kw = {
            "sparsity": draw(st.sampled_from([0.0, 0.25, 0.5, 0.7, 1.0])),
            "blocksize": draw(st.sampled_from([1, 2, 4, 128])),
        }
    else:
        m = _divisor(draw, d)
        kw = {"n": draw(st.integers(0, m)), "m": m}
    kw["percdamp"] = draw(st.sampled_from([0.01, 0.1]))
    if draw(st.booleans()):
        kw.update(bits=draw(st.sampled_from([2, 4, 8])), group_size=draw(st.one_of(st.none(), st.just(_divisor(draw, d)))),
                  symmetric=draw(st.booleans()))  # fmt: skip
    return Case((w, h), kw)
