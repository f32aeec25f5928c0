"""Strategies of valid inputs for the entries of `reference.posttraining.adaround`: `rectified_cases`,
`rectified_vjp_cases`, `regularizer_cases`, `regularizer_vjp_cases`, `beta_cases`, `adaround_init_cases`,
`adaround_step_cases`, `adaround_quantize_cases`.

V is drawn around the clip points of the rectified sigmoid (|V| near 2.4, where h reaches 0 or 1) and at 0 (h = 0.5,
where the regularizer's gradient vanishes); layers are small, with scales from min-max calibration.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import shapes
from spec.strategies.posttraining.obs import VALUES, calibration_inputs

__all__ = [
    "rectified_cases", "rectified_vjp_cases", "regularizer_cases", "regularizer_vjp_cases", "beta_cases",
    "adaround_init_cases", "adaround_step_cases", "adaround_quantize_cases",
]  # fmt: skip

F32 = np.float32
V_VALUES = st.one_of(
    st.sampled_from((0.0, -0.0, 2.3978953, -2.3978953, 2.4, -2.4, 10.0, -10.0, 1.0)),
    st.floats(-5, 5, width=32),
    st.floats(-1e3, 1e3, width=32),
)
STRETCH = st.sampled_from([{}, {}, {"zeta": 1.1, "gamma": -0.1}, {"zeta": 1.5, "gamma": -0.5}])


def _v(draw, shape=None):
    shape = draw(shapes(max_dims=2, max_side=5)) if shape is None else shape
    return draw(hnp.arrays(F32, shape, elements=V_VALUES))


@st.composite
def rectified_cases(draw):
    return Case((_v(draw),), draw(STRETCH))


@st.composite
def rectified_vjp_cases(draw):
    v = _v(draw)
    grad = draw(hnp.arrays(F32, v.shape, elements=VALUES))
    return Case((grad, v), draw(STRETCH))


@st.composite
def regularizer_cases(draw):
    return Case((_v(draw),), {"beta": draw(st.sampled_from([1.0, 2.0, 2.5, 11.0, 20.0])), **draw(STRETCH)})


@st.composite
def regularizer_vjp_cases(draw):
    case = draw(regularizer_cases())
    grad = np.array(draw(st.sampled_from([1.0, 0.01, -3.0, 0.0])), dtype=F32)
    return Case((grad, *case.args), case.kwargs)


@st.composite
def beta_cases(draw):
    iterations = draw(st.integers(1, 2000))
    kw = {}
    if draw(st.booleans()):
        kw = {
            "warmup": draw(st.sampled_from([0.0, 0.2, 0.5, 0.99])),
            "start": 20.0,
            "end": draw(st.sampled_from([2.0, 1.0])),
        }
    return Case((draw(st.integers(0, iterations)), iterations), kw)


@st.composite
def _layer(draw):
    from reference.quantization.affine import integer_range, minmax_qparams

    d = draw(st.sampled_from([1, 2, 4]))
    w = draw(hnp.arrays(F32, (draw(st.integers(1, 3)), d), elements=VALUES))
    groups = draw(st.sampled_from([k for k in range(1, d + 1) if d % k == 0]))
    bits = draw(st.sampled_from([2, 4]))
    qmin, qmax = integer_range(bits, True, False)
    scale, zero = minmax_qparams(w, qmin=qmin, qmax=qmax, axis=1, group_size=d // groups)
    return w, scale, zero, qmin, qmax


@st.composite
def adaround_init_cases(draw):
    w, scale, _, _, _ = draw(_layer())
    return Case((w, scale), draw(STRETCH))


@st.composite
def adaround_step_cases(draw):
    from reference.posttraining.obs import gptq_hessian

    w, scale, zero, qmin, qmax = draw(_layer())
    h = gptq_hessian(draw(calibration_inputs(d=w.shape[1], max_rows=6)))
    v = _v(draw, w.shape)
    m = draw(hnp.arrays(F32, w.shape, elements=st.floats(-1, 1, width=32)))
    s = draw(hnp.arrays(F32, w.shape, elements=st.floats(0, 1, width=32)))
    kw = {
        "step": draw(st.integers(0, 1000)),
        "qmin": qmin,
        "qmax": qmax,
        "beta": draw(st.sampled_from([None, 2.0, 20.0])),
        "lam": draw(st.sampled_from([0.0, 0.01, 1.0])),
        "lr": draw(st.sampled_from([1e-3, 0.1])),
    }
    return Case((w, h, v, m, s, scale, zero), kw)


@st.composite
def adaround_quantize_cases(draw):
    w, scale, zero, qmin, qmax = draw(_layer())
    return Case((w, _v(draw, w.shape), scale, zero), {"qmin": qmin, "qmax": qmax})
