"""The host routes of the torch observers on small CPU inputs (`observers.HOST_MAX`), against the reference, bit
for bit, errors included: `minmax_observer`, `ema_minmax_observer` (with states near the float32 overflow) and
`percentile_amax`, per tensor and per channel, each forced both ways (threshold 0: the tensor route; 2**40: the
host route at every size) and left as it is. Inputs are full of signed zeros, subnormals and float32 extremes;
NaN and Inf (rejected), empty shapes, bad axes and bad states take the error paths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from tests.helpers import bits, checked_outcome, same_on_cpu
from torch_backend.kernels import deferred_checks
from torch_backend.quantization import observers

F32 = np.float32
MAX = float(np.finfo(F32).max)
TINY_SUB = float(np.float32(2.0**-149))
EDGE = [0.0, -0.0, TINY_SUB, -TINY_SUB, 2.0**-126, -(2.0**-126), 1.0, -1.0, 0.1, -0.3, 3.4e38, MAX, -MAX, 1e-40]


@pytest.fixture(params=[None, 0, 1 << 40], ids=["as-is", "tensor", "host"])
def host_max(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(observers, "HOST_MAX", request.param)
    return request.param


def _arrays(seed):
    """Small float32 arrays of several shapes, drawn from the edge values and some spread."""
    rng = np.random.default_rng(seed)
    pool = np.float32(EDGE + list(rng.standard_normal(8) * 10.0 ** rng.integers(-40, 36, 8)))
    out = [np.float32(v) for v in EDGE]  # 0-d
    for shape in [(1,), (7,), (3, 4), (2, 3, 4), (1, 1, 1), (4, 1), (8, 8), (9, 9)]:
        for _ in range(3):
            out.append(rng.choice(pool, size=shape).astype(F32))
    out.append(np.full((5,), -0.0, dtype=F32))
    out.append(np.full((2, 3), MAX, dtype=F32))
    return out


def _axes(a):
    return [None] + list(range(a.ndim)) + ([-1] if a.ndim else []) + [a.ndim]  # a.ndim: invalid


def _pair(ref_fn, torch_fn, args, kwargs):
    """Runs both backends on copies; checks the outcome and that the torch inputs were not changed."""
    t_args = [torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray | np.float32) else a for a in args]
    t_args = [tuple(torch.from_numpy(np.array(s)) for s in a) if isinstance(a, tuple) else a for a in t_args]
    before = [bits(a) if isinstance(a, torch.Tensor) else None for a in t_args]
    kr, r = checked_outcome(ref_fn, *args, **kwargs)
    kt, t = checked_outcome(torch_fn, *t_args, **kwargs)
    assert kt == kr, (kr, r, kt, t)
    if kr == "ok":
        same_on_cpu(r, t)
    else:
        assert t == r
    after = [bits(a) if isinstance(a, torch.Tensor) else None for a in t_args]
    assert before == after


@pytest.mark.parametrize("seed", range(3))
def test_minmax_observers_first_batch(host_max, seed):
    for a in _arrays(seed):
        for axis in _axes(a):
            _pair(R.minmax_observer, T.minmax_observer, (a,), {"axis": axis})
            _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a,), {"axis": axis, "averaging_constant": 0.3})


def _states(a, axis, rng):
    k = None if axis is None else axis % a.ndim
    shape = () if axis is None else (a.shape[k],)
    pool = np.float32(EDGE)
    lo = rng.choice(pool, size=shape).astype(F32)
    hi = rng.choice(pool, size=shape).astype(F32)
    ordered = (np.minimum(lo, hi).astype(F32), np.maximum(lo, hi).astype(F32))
    return [
        ordered,
        (lo, hi),  # maybe unordered: minmax rejects it, ema accepts it
        (np.full(shape, -MAX, F32), np.full(shape, MAX, F32)),  # the difference overflows
        (np.full(shape, MAX, F32), np.full(shape, -MAX, F32)),
        (np.full(shape, np.nan, F32), np.full(shape, 1.0, F32)),
        (np.full(shape, -1.0, F32), np.full(shape, np.inf, F32)),
        (np.zeros(shape + (1,), F32), np.zeros(shape + (1,), F32)),  # wrong shape
        (np.zeros(shape, np.float64), np.zeros(shape, np.float64)),  # wrong dtype
        (ordered[0],),  # not a pair
    ]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("c", [1e-2, 0.5, 1.0, 1e-45, 0.7])
def test_minmax_observers_with_state(host_max, seed, c):
    rng = np.random.default_rng(seed)
    for a in _arrays(seed):
        for axis in [None] + list(range(a.ndim)) + ([-1] if a.ndim else []):
            for state in _states(a, axis, rng):
                _pair(R.minmax_observer, T.minmax_observer, (a, state), {"axis": axis})
                kwargs = {"axis": axis, "averaging_constant": c}
                _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a, state), kwargs)


def test_observers_reject_bad_x_and_state(host_max):
    bad = [
        np.float32([1.0, np.nan, 2.0]),
        np.float32([[1.0, -np.inf], [0.0, 2.0]]),
        np.float32(np.inf),
        np.zeros((0,), F32),
        np.zeros((2, 0), F32),
        np.float64([1.0, 2.0]),
        np.int32([1, 2]),
    ]
    for a in bad:
        for axis in [None, 0, 1, 5]:
            _pair(R.minmax_observer, T.minmax_observer, (a,), {"axis": axis})
            _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a,), {"axis": axis})
            _pair(R.percentile_amax, T.percentile_amax, (a, 50.0), {"axis": axis})
    a = np.float32([1.0, 2.0])
    for state in [[F32(0), F32(1)], (F32(0), F32(1), F32(2)), (F32(3), F32(1))]:
        _pair(R.minmax_observer, T.minmax_observer, (a, state), {})
        _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a, state), {})
    _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a,), {"averaging_constant": 0.0})
    _pair(R.percentile_amax, T.percentile_amax, (a, 100.5), {})
    _pair(R.percentile_amax, T.percentile_amax, (np.float32([np.nan]), 101.0), {})


def test_ema_state_overflows_then_is_rejected(host_max):
    a = np.float32([-MAX, MAX])
    state = (np.float32(MAX), np.float32(-MAX))
    r = R.ema_minmax_observer(a, state, averaging_constant=1.0)
    t = T.ema_minmax_observer(torch.from_numpy(a), tuple(torch.tensor(float(s)) for s in state), averaging_constant=1.0)
    same_on_cpu(r, t)
    assert np.isinf(r[0]) and np.isinf(r[1])
    _pair(R.ema_minmax_observer, T.ema_minmax_observer, (a, (np.float32(r[0]), np.float32(r[1]))), {})


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("p", [0.0, 1e-300, 12.5, 50.0, 1.0 / 3.0 * 100.0, 99.99, 100.0, 62.5])
def test_percentile_amax(host_max, seed, p):
    for a in _arrays(seed):
        for axis in _axes(a):
            _pair(R.percentile_amax, T.percentile_amax, (a, p), {"axis": axis})


def test_strided_grad_neg_and_deferred(host_max):
    rng = np.random.default_rng(7)
    a = rng.choice(np.float32(EDGE), size=(4, 6)).astype(F32)
    t = torch.from_numpy(a.copy()).t()  # not contiguous
    for axis in [None, 0, 1]:
        same_on_cpu(R.minmax_observer(a.T, axis=axis), T.minmax_observer(t, axis=axis))
        same_on_cpu(R.percentile_amax(a.T, 75.0, axis=axis), T.percentile_amax(t, 75.0, axis=axis))
    g = torch.from_numpy(a.copy()).requires_grad_(True)
    lo, hi = T.ema_minmax_observer(g, (torch.tensor(-1.0), torch.tensor(1.0)), averaging_constant=0.5)
    same_on_cpu(R.ema_minmax_observer(a, (F32(-1), F32(1)), averaging_constant=0.5), (lo, hi))
    assert not lo.requires_grad and not hi.requires_grad
    neg = torch._neg_view(torch.tensor(2.0))  # a negative-bit view: -2.0
    same_on_cpu(R.minmax_observer(a, (F32(-2), F32(4))), T.minmax_observer(g, (neg, torch.tensor(4.0))))
    same_on_cpu(R.minmax_observer(-a), T.minmax_observer(torch._neg_view(torch.from_numpy(a.copy()))))
    with deferred_checks():
        got = T.minmax_observer(torch.from_numpy(a), axis=1)
        got_p = T.percentile_amax(torch.from_numpy(a), 40.0)
    same_on_cpu(R.minmax_observer(a, axis=1), got)
    same_on_cpu(R.percentile_amax(a, 40.0), got_p)
