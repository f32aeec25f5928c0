"""The host routes of `hqq`, `hqq_shrink`, `smoothquant`, `adaround_step` and `mse_amax` for tiny CPU inputs
(Python floats), against the reference, bit for bit.

Each route is forced both ways (its `HOST_MAX` patched to 0: tensors; to a huge value: Python floats wherever the
input allows) on the registry's strategy cases and bad inputs, and on edge cases of our own: both zeros, ties,
subnormals, values near the float32 limit (an overflow sends the host route back to the tensors), and invalid
inputs, which must raise the reference's error.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings

from spec.backends import TORCH
from spec.conformance import check_case
from spec.entry import Case
from spec.registry import REGISTRY

F32 = np.float32
SUB = float(np.float32(2.0**-149))  # the smallest float32 subnormal
BIG = float(np.finfo(np.float32).max)
ROUTES = [pytest.param(None, id="as-is"), pytest.param(0, id="tensors"), pytest.param(1 << 40, id="host")]


def _both_routes(name, host_max, monkeypatch, modules, extra=(), examples=150):
    """The registry's cases and bad inputs of entry `name`, and `extra`, through the torch backend with `HOST_MAX`
    set to `host_max` (None: left as it is) in each of `modules`."""
    for module in modules if host_max is not None else ():
        monkeypatch.setattr(importlib.import_module(module), "HOST_MAX", host_max)
    entry = REGISTRY[name]

    @settings(max_examples=examples, deadline=None)
    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, "cpu")

    check()
    for case in [bad.case for bad in entry.bad] + list(extra):
        check_case(entry, case, TORCH, "cpu")


# ---- hqq_shrink, hqq ------------------------------------------------------------------------------------------------

_HQ = "torch_backend.posttraining.halfquadratic"


def _shrink_extra():
    x = F32([0.0, -0.0, SUB, -SUB, 1e-30, -1e-30, 0.5, -0.5, 1.0, -1.0, 4.0, -4.0, 3e38, -3e38, 1e-3, -2.0])
    cases = [
        Case((x,), {"beta": b, "p": p}) for b in (1.0, 10.0, 1e-3, 1e-40, 1e46, 2.0**150) for p in (1.0, 0.5, 1e-9)
    ]
    cases += [Case((x.reshape(4, 4),), {"beta": 1.0, "p": 0.5}), Case((F32(-0.0),), {"beta": 1.0, "p": 0.7})]
    cases += [Case((F32([4097.0, 2.0**-20, 0.25]),), {"beta": 1.0, "p": 0.5})]  # exact powers
    # |x|**(p - 1) that the float64 power does not certify (found by search): settled exactly
    cases += [Case((F32([8828.0546875, -0.06198299303650856, 0.0009679149370640516]),), {"beta": 1e-3, "p": 0.5})]
    cases += [Case((F32([0.00016354148101527244, -1427501219840.0, 1.0096370101426774e-18]),), {"beta": 1.0, "p": 0.7})]
    cases += [Case((np.zeros((0, 3), F32),), {"beta": 1.0, "p": 0.5})]
    cases += [Case((F32([1.0, np.nan]),), {"beta": 1.0, "p": 0.5}), Case((F32([np.inf]),), {"beta": 0.0, "p": 0.5})]
    cases += [Case((F32([1.0]),), {"beta": 1.0, "p": 0.0}), Case((np.float64([1.0]),), {"beta": 1.0, "p": 0.5})]
    cases += [Case(([1.0],), {"beta": 1.0, "p": 0.5}), Case((F32([1.0]),), {"beta": "x", "p": 0.5})]
    return cases


def _hqq_extra():
    rng = np.random.default_rng(0)
    kw = {"bits": 4, "group_size": 4, "iters": 20}
    w = rng.standard_normal((4, 8)).astype(F32)
    cases = [
        Case((w,), dict(kw, lp_norm=p, beta=b, kappa=k)) for p in (0.7, 1.0) for b in (1.0, 1e3) for k in (1.0, 1.5)
    ]
    cases += [Case((w,), {"bits": b, "group_size": 8}) for b in (1, 2, 3, 8)]
    cases += [Case((w,), {"group_size": 2, "optimize": False}), Case((w[:, :4],), {"group_size": 4, "beta": 1e44})]
    cases += [Case((w,), {"group_size": 4, "kappa": 1e10, "iters": 10})]  # beta past 2**150: no shrinkage
    zeros = F32([[0.0, -0.0, 0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [1.0, 1.0, 1.0, 1.0], [SUB, -SUB, 0.0, SUB]])
    cases += [Case((zeros,), {"group_size": g, "iters": i}) for g in (1, 2, 4) for i in (0, 1, 20)]
    cases += [Case((zeros * F32(1e30),), {"group_size": 2}), Case((zeros + F32(3e38),), {"group_size": 2})]
    huge = F32([[1e38, 1e38, -1e38, 1e38], [3e38, 3e38, 3e38, 3e38], [-3e38, -3e38, -3e38, 1e37], [BIG, BIG, 0, 0]])
    cases += [Case((huge,), {"group_size": g, "bits": b}) for g in (1, 2, 4) for b in (1, 8)]
    cases += [Case((F32([[1e-38, 2e-38, 3e-38, SUB]]),), {"group_size": 4, "bits": b}) for b in (1, 8)]
    cases += [Case((F32([[-3e38, 3e38]]),), {"group_size": 1}), Case((F32([[-3e38, 3e38]]),), {"group_size": 2})]
    # groups whose zero-point mean needs the exact sum (a float64 sum left to right differs; found by search)
    for row, kw in (
        (
            [-1.8950897033989372e-23, -9.943634182718597e-08, 0.00015670365246478468, 4.002956479942287e-38],
            {"bits": 1, "lp_norm": 0.5, "beta": 1e9},
        ),
        (
            [
                4.381401197406376e-07,
                -5.422916347745665e-13,
                4.5577555283671245e-05,
                -1.862801305973271e-33,
                8.273157829109871e-30,
                -7.047643319576408e-33,
                1.8447670185797494e-33,
                -1.7035928878873958e-28,
            ],
            {"bits": 8, "lp_norm": 1.0, "beta": 1e9, "iters": 3},
        ),
        ([-2.9431801067403285e-06, -5.558774885391388e-22, 0.0, 9.744844436645508], {"bits": 1, "lp_norm": 1.0}),
    ):
        cases += [Case((F32([row]),), {"group_size": len(row), "kappa": 1.0, **kw})]
    cases += [Case((F32([[np.nan, 1.0]]),), {"group_size": 3}), Case((F32([1.0, 2.0]),), {"group_size": 1})]
    cases += [Case((np.zeros((0, 4), F32),), {"group_size": 2, "iters": i}) for i in (0, 3)]
    cases += [Case((np.zeros((2, 0), F32),), {"group_size": 1}), Case((F32([[1.0, 2.0]]),), {"iters": -1})]
    cases += [Case((F32([[1.0, 2.0]]),), {"group_size": 2, "optimize": 1}), Case((w.astype(np.float64),), {})]
    cases += [Case((rng.standard_normal((8, 16)).astype(F32),), {"group_size": 4})]  # above the threshold
    return cases


@pytest.mark.parametrize("host_max", ROUTES)
@pytest.mark.parametrize("name", ["hqq_shrink", "hqq"])
def test_hqq_on_python_floats_and_on_tensors_give_the_references_bits(name, host_max, monkeypatch):
    extra = _shrink_extra() if name == "hqq_shrink" else _hqq_extra()
    _both_routes(name, host_max, monkeypatch, [_HQ], extra)


# ---- mse_amax ---------------------------------------------------------------------------------------------------------

_OBS = "torch_backend.quantization.observers"


def _mse_extra():
    rng = np.random.default_rng(1)
    ties = F32([3.0, 1.5, -1.5, 4.5, -7.5, 0.5, -0.0, 0.0, 6.0, -6.0])  # x / s on .5 for several candidates
    cases = [Case((ties,), {"bits": b, "grid": g}) for b in (2, 3, 4) for g in (1, 2, 3, 5, 15)]
    # ties to even decide the candidate (rounding half up would choose another; found by search)
    cases += [Case((F32([1.5, -2.5, 4.0, -2.0, 2.5]),), {"bits": 3, "grid": 8})]
    cases += [Case((F32([2.0, -2.5, -1.0]),), {"bits": 3, "grid": 5})]
    cases += [Case((F32([[-3.5, -2.0], [-3.0, -2.5]]),), {"bits": 2, "grid": 3, "axis": a}) for a in (None, 0, 1)]
    cases += [Case((F32([0.0, -0.0]),), {"grid": 7}), Case((F32(-0.0),), {}), Case((F32([SUB, -SUB, 0.0]),), {})]
    cases += [Case((F32([1e-37, -3e-38, SUB]),), {"bits": 16, "grid": 50})]  # s < 2**-126 becomes 1
    cases += [Case((F32([BIG, -BIG, 1.0, -3e38]),), {"bits": b, "grid": 20}) for b in (2, 16)]  # x / s overflows
    x = rng.standard_normal((2, 3, 4)).astype(F32)
    x[0, 1, 2] = -0.0
    cases += [Case((x,), {"axis": a, "grid": 13, "bits": 3}) for a in (None, 0, 1, 2, -1, -3)]
    cases += [Case((rng.standard_normal(128).astype(F32),), {"grid": 9})]
    cases += [Case((rng.standard_normal(129).astype(F32),), {"grid": 9})]  # above MSE_HOST_MAX
    cases += [Case((rng.standard_normal((300,)).astype(F32),), {"grid": 3})]  # above HOST_MAX
    cases += [Case((F32([1.0, np.nan]),), {"axis": 3}), Case((F32([1.0, np.inf]),), {}), Case((F32([]),), {})]
    cases += [Case((np.zeros((2, 0), F32),), {"axis": 0}), Case((np.zeros((2, 0), F32),), {"axis": 1})]
    cases += [Case((F32([1.0]),), {"axis": 1}), Case((F32([[1.0]]),), {"axis": 1.0}), Case((F32([1.0]),), {"grid": 0})]
    cases += [Case((np.float64([1.0]),), {}), Case(([1.0],), {}), Case((F32([np.nan]),), {"bits": 1})]
    return cases


@pytest.mark.parametrize("host_max", ROUTES)
def test_mse_amax_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    if host_max is not None:
        monkeypatch.setattr(importlib.import_module(_OBS), "MSE_HOST_MAX", host_max)
    _both_routes("mse_amax", host_max, monkeypatch, [_OBS], _mse_extra())


# ---- smoothquant ------------------------------------------------------------------------------------------------------

_SC = "torch_backend.posttraining.scaling"


def _smoothquant_extra():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 4)).astype(F32)
    a = np.abs(rng.standard_normal(4)).astype(F32) * F32(10)
    cases = [Case((w, a), {"alpha": al, "bits": b}) for al in (0.0, 0.5, 0.85, 1.0, 1e-300) for b in (2, 8, 16)]
    zeros = F32([[0.0, -0.0, 1.0, 0.0], [-0.0, -0.0, -2.0, 0.0]])
    cases += [Case((zeros, F32([0.0, -0.0, 4.0, 9.0])), {"alpha": al}) for al in (0.0, 0.5, 1.0)]
    cases += [Case((F32([[SUB, -SUB, 1e-38, 0.0]]), F32([SUB, 1e-38, 0.0, 1.0])), {"bits": b}) for b in (2, 8)]
    cases += [Case((F32([[3e38, -3e38, 1.0, BIG]]), F32([1e30, 3e38, BIG, 1.0])), {"alpha": al}) for al in (0.5, 1.0)]
    cases += [
        Case((F32([[4.0, 2.0, -6.0, 1.0]]), F32([16.0, 4.0, 1.0, 0.25])), {"alpha": 0.5, "bits": b}) for b in (2, 3)
    ]
    # alpha = 1: s = act_max, w * s = [4, 2, -3, 1], scale 4: 2 / 4 = 0.5 ties to the even code 0
    cases += [
        Case(
            (F32([[1.0, 1.0, -1.0, 1.0], [0.5, -0.25, 1.0, 0.0]]), F32([4.0, 2.0, 3.0, 1.0])), {"alpha": 1.0, "bits": 2}
        )
    ]
    cases += [Case((rng.standard_normal((8, 16)).astype(F32), a[:1].repeat(16)), {})]  # at HOST_MAX
    cases += [Case((rng.standard_normal((8, 17)).astype(F32), a[:1].repeat(17)), {})]  # above it
    cases += [Case((np.zeros((0, 4), F32), a), {}), Case((w, a[:3]), {}), Case((w, F32([])), {})]
    cases += [Case((w, -a), {}), Case((w, a), {"alpha": 1.5}), Case((w, a), {"bits": 1}), Case((w, a), {"bits": 17})]
    cases += [Case((w * F32(np.nan), -a), {}), Case((w, a * F32(np.inf)), {}), Case((w[0], a), {})]
    cases += [Case((w.astype(np.float64), a), {}), Case((w, a.astype(np.float64)), {}), Case((w, a.reshape(2, 2)), {})]
    cases += [Case(([[1.0]], F32([1.0])), {}), Case((F32([[1.0]]), [1.0]), {}), Case((w, a), {"alpha": np.nan})]
    return cases


@pytest.mark.parametrize("host_max", ROUTES)
def test_smoothquant_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    _both_routes("smoothquant", host_max, monkeypatch, [_SC], _smoothquant_extra())


# ---- adaround_step ----------------------------------------------------------------------------------------------------

_AR = "torch_backend.posttraining.adaround"


def _step_case(w, h, v, m, s, scale, zero, **kw):
    kw = {"step": 3, "qmin": -8, "qmax": 7, **kw}
    return Case((F32(w), np.float64(h), F32(v), F32(m), F32(s), F32(scale), np.int32(zero)), kw)


def _adaround_extra():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 4)).astype(F32)
    x = rng.standard_normal((6, 4))
    h = x.T @ x
    h = h + h.T  # symmetric exactly
    v = F32([[0.0, -0.0, 2.3978953, -2.3978953], [2.4, -2.4, 10.0, -10.0], [1.0, 1e-3, -200.0, 120.0]])
    m, s = rng.uniform(-1, 1, (3, 4)), rng.uniform(0, 1, (3, 4))
    scale, zero = F32([[0.25, 0.5], [0.125, 3.0], [1.0, 0.75]]), np.int32([[0, -8], [7, 3], [-1, 0]])
    base = (w, h, v, m, s, scale, zero)
    cases = [
        _step_case(*base, beta=b, lam=la, lr=lr)
        for b in (None, 1.0, 2.0, 20.0, 1000.0)
        for la in (0.0, 0.01, 1.0)
        for lr in (1e-3, 0.1)
    ]
    cases += [
        _step_case(*base, beta=2.0, zeta=z, gamma=g) for z, g in ((1.5, -0.5), (1.0 + 1e-7, -1e-300), (100.0, -100.0))
    ]
    cases += [_step_case(*base, step=t, beta=2.0) for t in (0, 1, 10**6)]
    # fl32(D H) on a float32 midpoint: D = (1 + 2**-23) - 2**-24 = 1 + 2**-24 ties to the even 1.0 (element 0, h = 1,
    # reaches element 1, where the clip passes, through H)
    tie = (
        [[2.0**-24, 0.0]],
        [[0.0, 1.0], [1.0, 0.0]],
        [[20.0, 0.0]],
        [[0.0, 0.0]],
        [[0.0, 0.0]],
        [[1 + 2.0**-23]],
        [[0]],
    )
    cases += [_step_case(*tie, qmin=-2, qmax=1, lr=0.1)]
    # sigmoids the float64 value does not certify (found by search), with h = sigma (c = fl32(1 + 1e-7), g = -0.0)
    hard = F32([[11.57609748840332, -9.029531478881836, 11.226107597351074, 3.8027923107147217]] * 3)
    cases += [_step_case(w, h, hard, m, s, scale, zero, beta=b, zeta=1.0 + 1e-7, gamma=-1e-300) for b in (None, 2.0)]
    # sigmoids near 0 and 1 (exp(-v) overflows below -709.78), next to weights where the clip passes (v = 0.5, 0)
    far = F32([[-1000.0, 0.5, -3e38, 0.0], [-710.0, 709.5, -709.5, 0.5], [88.7, -88.7, 16.6, -16.6]])
    cases += [_step_case(w, h, far, m, s, scale, zero, beta=b) for b in (None, 2.0)]
    cases += [
        _step_case(w, h, v, m, s, scale[:, :1], zero[:, :1]),
        _step_case(w, h, v, m, s, scale.repeat(2, 1), zero.repeat(2, 1)),
    ]
    cases += [_step_case(w, h, v, m, np.zeros((3, 4)) - 0.0, scale, zero, beta=2.0)]  # s = -0.0
    cases += [_step_case(w, np.zeros((4, 4)), v, m, s, scale, zero, beta=2.0)]  # D H = 0: matmul32 decides
    cases += [_step_case(w, -np.zeros((4, 4)), v, np.zeros((3, 4)), s, scale, zero)]
    cases += [_step_case(w, np.eye(4) * 1e300, v, m, s, scale, zero)]  # D H beyond float32: matmul32's error
    cases += [_step_case(w, np.eye(4) * 1e-300, v, m, s, scale, zero)]  # D H below float32: zeros
    # zeros of D H: exact cancellation (large and tiny products), every product -0.0, a +0.0 among -0.0 products
    # (m = -0.0 and beta None: the sign of a zero gradient shows in m2 = fl32(0.9 m + 0.1 g)). With the tiny
    # products a fused multiply-add leaves the float64 product's rounding error, of either sign: `matmul32` settles
    # every zero exactly (an exact zero is +0.0), so NumPy's and torch's products agree (they did not, before)
    one = ([[0.3, 0.3]], [[1.0, 1.0]], [[-0.0, -0.0]], [[0.2, 0.2]], [[0.25]], [[0]])
    tiny = [[1e-300, -1e-300], [-1e-300, 1e-300]]
    for hc in ([[1.0, -1.0], [-1.0, 1.0]], [[2.0**-60, -(2.0**-60)], [-(2.0**-60), 2.0**-60]], tiny):
        cases += [_step_case(one[0], hc, *one[1:], beta=b) for b in (None, 2.0)]
    d = [[0.0499999523162842, 0.0499999523162842]]
    cases += [_step_case(d, tiny, *one[1:], beta=b) for b in (None, 2.0)]
    neg = (
        [[0.3, 0.7], [0.3, 0.5]],
        [[-10.0, -10.0], [-10.0, 10.0]],
        [[-0.0, -0.0], [-0.0, -0.0]],
        [[0.2, 0.2], [0.2, 0.2]],
    )
    for hc in (
        [[0.0, 0.0], [0.0, 1.0]],
        [[-0.0, 0.0], [0.0, 1.0]],
        [[0.0, -0.0], [-0.0, 1.0]],
        [[0.0, 0.0], [0.0, 0.0]],
    ):
        cases += [_step_case(neg[0], hc, *neg[1:], [[0.25], [0.25]], [[0], [0]])]
    hh = h.copy()
    hh[0, 1] = hh[1, 0] = 1e-30
    hh[2, 3] = hh[3, 2] = -1e20
    cases += [_step_case(w, hh, v, m, s, scale, zero, beta=20.0)]
    cases += [_step_case(w * F32(1e30), h, v, m, s, F32([[1e-30, 1e-38], [3e-38, 1.0], [1e38, 2.0]]), zero)]
    cases += [_step_case(w, h, v, m * 1e30, s * 1e30, scale, zero, lr=0.1)]  # m2, s2 and v2 overflow
    cases += [
        _step_case(w, h, v, m, s, scale, zero, lr=1e300),
        _step_case(w, h, v, m, s, scale, zero, lam=1e300, beta=2.0),
    ]
    cases += [_step_case([[0.3]], [[2.0]], [[0.0]], [[0.0]], [[0.0]], [[0.25]], [[0]], qmin=0, qmax=0)]
    for o, d in ((8, 4), (1, 16), (9, 4), (2, 16)):  # out * in * (in + 8) at HOST_MAX (384), then above it
        z = np.zeros((o, d))
        x = rng.standard_normal((5, d))
        cases += [
            _step_case(
                rng.standard_normal((o, d)), (x.T @ x) + (x.T @ x).T, z, z, z, np.ones((o, 1)), z[:, :1], beta=2.0
            )
        ]
    # invalid inputs, one at a time and two at once (the first in the tensor route's order is named)
    bad_h = h.copy()
    bad_h[0, 2] += 1.0
    cases += [_step_case(w, bad_h, v, m, s, scale, zero), _step_case(w, h, v, m, -s, scale, zero)]
    cases += [_step_case(w, h, v, m, s, -scale, zero), _step_case(w, h, v, m, s, scale, zero + 20)]
    cases += [_step_case(w, h, v, m, -s, scale, zero + 20), _step_case(w, bad_h, v, m * np.nan, s, scale, zero)]
    cases += [
        _step_case(w, h, v, m, s, scale, zero, qmin=5, qmax=1),
        _step_case(w, h, v, m, s, scale, zero + 20, qmin=5, qmax=1),
    ]
    cases += [_step_case(w, h, v, m, s, scale, zero, step=-1), _step_case(w, h, v, m, s, scale, zero, beta=0.5)]
    cases += [_step_case(w, h, v, m, s, scale, zero, lam=-1.0), _step_case(w, h, v, m, s, scale, zero, lr=0.0)]
    cases += [_step_case(w, h, v, m, s, scale, zero, zeta=1.0), _step_case(w, h, v, m, s, scale, zero, gamma=0.0)]
    cases += [_step_case(w, h, v, m, s, scale, zero, step=-1, beta=0.5), _step_case(w, h[:3, :3], v, m, s, scale, zero)]
    cases += [_step_case(w, h, v[:2], m, s, scale, zero), _step_case(w, h, v, m, s, scale[:, :1].repeat(3, 1), zero)]
    cases += [_step_case(w, h, v * np.inf, m, s, scale, zero), _step_case(w * np.nan, h, v, m, s, scale, zero)]
    cases += [Case((w, h.astype(F32), v, F32(m), F32(s), scale, zero), {"step": 0, "qmin": -8, "qmax": 7})]
    cases += [Case((w, h, v, F32(m), F32(s), scale, zero.astype(np.int64)), {"step": 0, "qmin": -8, "qmax": 7})]
    cases += [Case((w, h, v, F32(m), F32(s), scale, zero.astype(F32)), {"step": 0, "qmin": -8, "qmax": 7})]
    cases += [Case((w, h, v, F32(m), F32(s), scale, zero), {"step": 0, "qmin": -8, "qmax": 7, "beta": "x"})]
    return cases


@pytest.mark.parametrize("host_max", ROUTES)
def test_adaround_step_on_python_floats_and_on_tensors_give_the_references_bits(host_max, monkeypatch):
    _both_routes("adaround_step", host_max, monkeypatch, [_AR], _adaround_extra())


def test_matmul32_settles_zeros_exactly_in_both_backends():
    """A zero of `matmul32` is the exact value's: `+0.0` for an exact cancellation (whose float64 approximation is
    the negated rounding error of a product under a fused multiply-add, of either sign), the exact sign for a
    value below float32's range; NumPy's and torch's products agree."""
    import torch

    from reference.posttraining import _certified as rc
    from tests.helpers import bits
    from torch_backend.posttraining import _certified as tc

    d = np.float64([[0.0499999523162842, 0.0499999523162842], [-0.0, 0.0], [1e-30, -1e-30]])
    for h in (np.float64([[1e-300, -1e-300], [-1e-300, 1e-300]]), np.float64([[-1e-300, 1e-300], [0.5, -0.0]])):
        want = rc.matmul32(d, h)
        got = tc.matmul32(torch.from_numpy(d), torch.from_numpy(h))
        assert bits(got) == bits(want)
    assert not np.signbit(rc.matmul32(d[:1], np.float64([[1e-300], [-1e-300]]))).any()


def test_obs_column_values_settle_zeros_exactly_in_both_backends():
    """GPTQ's and SparseGPT's column values are exact values rounded once: a zero is `+0.0` for an exact zero
    (a kept `-0.0` weight, a column that an update cancels exactly), in both backends, whatever the sign of the
    float64 approximation."""
    import torch

    import reference as R
    import torch_backend as T
    from tests.helpers import bits

    w = np.float32([[-0.0, 1.0, 0.5, -0.0], [0.25, -0.0, 2.0, 1.0], [-0.0, -0.0, -0.0, -0.0]])
    h = np.eye(4) * 2.0 + 0.5
    tw, th = torch.from_numpy(w), torch.from_numpy(h)
    want, got = R.sparsegpt(w, h, sparsity=0.25), T.sparsegpt(tw, th, sparsity=0.25)
    assert bits(got.weight) == bits(want.weight) and not np.signbit(want.weight).any()
    for kw in ({"bits": 4}, {"bits": 2, "group_size": 2, "symmetric": True}):
        want, got = R.gptq(w, h, **kw), T.gptq(tw, th, **kw)
        for name in ("weight", "codes", "scale", "zero_point"):
            assert bits(getattr(got, name)) == bits(getattr(want, name)), (kw, name)
