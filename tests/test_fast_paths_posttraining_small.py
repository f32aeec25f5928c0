"""`gptq_order`'s and `gptq_damp`'s host routes for tiny CPU Hessians (`obs.HOST_MAX`), against the reference, bit
for bit.

Forced both ways (`HOST_MAX` patched to 0 and to 2**40, and left as it is), on edge values: ties (equal
diagonals, `-0.0` and `+0.0`), subnormals, huge values, one-element and larger shapes, and invalid inputs
(NaN, Inf, asymmetric, negative diagonal, wrong shape and dtype, empty), which must raise the reference's error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from tests.helpers import bits, outcome, same_on_cpu
from torch_backend.posttraining import obs


@pytest.fixture(params=[None, 0, 1 << 40], ids=["as-is", "tensors", "host"])
def host_max(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(obs, "HOST_MAX", request.param)
    return request.param


def _check(h):
    """`gptq_order(h)` and `gptq_damp(h, percdamp)` (several dampings, one invalid) give the reference's result
    or error, and leave `h` as it was."""
    calls = [("gptq_order", ())] + [("gptq_damp", (p,)) for p in (0.0, 0.01, 1.0, 1e6, -1.0)]
    for name, extra in calls:
        ref = outcome(getattr(R, name), h, *extra)
        th = torch.from_numpy(np.array(h)) if isinstance(h, np.ndarray) else h
        before = bits(th) if isinstance(th, torch.Tensor) else None
        got = outcome(getattr(T, name), th, *extra)
        assert ref[0] == got[0], (name, extra, ref, got)
        if ref[0] == "ok":
            same_on_cpu(ref[1], got[1])
        else:
            assert ref[1] == got[1]
        assert before == (bits(th) if isinstance(th, torch.Tensor) else None)


def _sym(diag, off=0.0):
    d = len(diag)
    h = np.full((d, d), off, dtype=np.float64)
    h[np.arange(d), np.arange(d)] = diag
    return h


TINY = 5e-324  # the smallest subnormal


@pytest.mark.parametrize(
    "diag",
    [
        [0.0],
        [-0.0],
        [3.0],
        [1.0, 3.0, 3.0, 2.0],
        [0.0, -0.0, 0.0, -0.0],
        [-0.0, 0.0, TINY, 0.0],
        [TINY, 2 * TINY, TINY, 0.0, 1e308],
        [1e308, 1e308, 0.0],
        [1e300, -0.0, 3.0],
        [1.0] * 16,
        list(range(16)),
        list(range(16))[::-1],
        [2.0, 1.0] * 8,
    ],
)
def test_gptq_order_valid(host_max, diag):
    _check(_sym(diag))
    _check(_sym(diag, off=-0.0))
    rng = np.random.default_rng(len(diag))
    a = rng.standard_normal((len(diag), len(diag)))
    h = a + a.T
    h[np.arange(len(diag)), np.arange(len(diag))] = diag
    _check(h)


def test_gptq_order_signed_zero_symmetry(host_max):
    h = _sym([1.0, 1.0, 2.0], off=0.0)
    h[0, 1] = -0.0  # -0.0 == +0.0: symmetric
    _check(h)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (1, 2), (2, 1)])
def test_gptq_order_not_finite(host_max, bad, where):
    h = _sym([1.0, 2.0, 3.0])
    h[where] = bad
    _check(h)


def test_gptq_order_invalid(host_max):
    h = _sym([1.0, 2.0, 3.0])
    h[0, 2] = 0.5  # asymmetric
    _check(h)
    h = _sym([1.0, -TINY, -1.0])  # negative diagonal: the first one named
    _check(h)
    _check(_sym([1.0, 2.0]).astype(np.float32))  # dtype
    _check(np.zeros((0, 0)))
    _check(np.zeros((2, 3)))
    _check(np.zeros((4,)))
    _check(np.zeros((1, 1, 1)))
    _check([[1.0]])  # not an array


def test_gptq_order_views(host_max):
    h = torch.from_numpy(_sym([1.0, 5.0, 5.0, 0.0], off=0.25))
    ref = R.gptq_order(h.numpy())
    for view in (h.T, torch._neg_view(-h), h.clone().requires_grad_()):
        same_on_cpu(ref, T.gptq_order(view))
        same_on_cpu(R.gptq_damp(h.numpy(), 0.5), T.gptq_damp(view, 0.5))
