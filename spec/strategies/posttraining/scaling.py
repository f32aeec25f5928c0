"""Strategies of valid inputs for the entries of `reference.posttraining.scaling`: `act_scale_cases`,
`awq_scales_cases`, `awq_cases`, `smoothquant_scales_cases`, `smoothquant_cases`.

Layers are small (the invariants recompute every candidate's loss with Fractions); calibration inputs have dead
channels, repeated channels (tied losses) and outliers; weights have ties and zero columns.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.posttraining.obs import VALUES, calibration_inputs

__all__ = ["act_scale_cases", "awq_scales_cases", "awq_cases", "smoothquant_scales_cases", "smoothquant_cases"]

F32 = np.float32
MAGNITUDES = st.one_of(
    st.sampled_from((0.0, 1.0, 4.0, 0.5, 1e-4, 3.0)), st.floats(0, 1e3, width=32), st.floats(0, 1.0000000150474662e30, width=32)
)


def act_scale_cases():
    """`(x,)` for `awq_act_scale`."""
    return calibration_inputs(max_rows=12).map(lambda x: Case((x,)))


@st.composite
def awq_scales_cases(draw):
    """`(act_scale, alpha)` for `awq_scales`."""
    d = draw(st.integers(1, 6))
    a = draw(hnp.arrays(F32, (d,), elements=MAGNITUDES))
    alpha = draw(st.one_of(st.integers(0, 20).map(lambda k: k / 20), st.floats(0, 1)))
    return Case((a, alpha))


@st.composite
def awq_cases(draw):
    """`(w, h, act_scale)` and the options of `awq`: H and the statistic from one set of calibration rows."""
    from reference.posttraining.obs import gptq_hessian
    from reference.posttraining.scaling import awq_act_scale

    d = draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
    x = draw(calibration_inputs(d=d, max_rows=8))
    w = draw(hnp.arrays(F32, (draw(st.integers(1, 3)), d), elements=VALUES))
    kw = {
        "bits": draw(st.sampled_from([2, 3, 4, 8])),
        "group_size": draw(st.one_of(st.none(), st.sampled_from([g for g in range(1, d + 1) if d % g == 0]))),
        "symmetric": draw(st.booleans()),
        "grid": draw(st.sampled_from([1, 2, 5, 20])),
        "clip": draw(st.booleans()),
        "max_shrink": draw(st.sampled_from([0.0, 0.25, 0.5, 0.9])),
        "clip_grid": draw(st.sampled_from([1, 4, 20])),
    }
    return Case((w, gptq_hessian(x), awq_act_scale(x)), kw)


@st.composite
def smoothquant_scales_cases(draw):
    """`(act_max, w)` and `alpha` for `smoothquant_scales`."""
    d = draw(st.integers(1, 6))
    a = draw(hnp.arrays(F32, (d,), elements=MAGNITUDES))
    w = draw(hnp.arrays(F32, (draw(st.integers(0, 3)), d), elements=VALUES))
    return Case((a, w), {"alpha": draw(st.sampled_from([0.0, 0.5, 0.75, 0.85, 1.0]))})


@st.composite
def smoothquant_cases(draw):
    """`(w, act_max)` and the options of `smoothquant`."""
    case = draw(smoothquant_scales_cases())
    a, w = case.args
    if w.shape[0] == 0:
        w = np.zeros((1, a.shape[0]), dtype=F32)
    return Case((w, a), {**case.kwargs, "bits": draw(st.sampled_from([4, 8, 8]))})
