"""AWQ and SmoothQuant beyond the generic suite: the exact comparison path gives the certified choices, the results
do not depend on batching, and each method does what it is for on a layer with outlier channels."""

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.posttraining import _certified as ref_certified
from torch_backend.posttraining import _certified as tb_certified


def _layer(out=24, d=32, rows=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, d)).astype(np.float32)
    x[:, 3] *= 30  # outlier channels, as in large language models
    x[:, 7] *= 10
    x[:, 5] = 0  # a dead channel
    w = (rng.standard_normal((out, d)) * 0.05).astype(np.float32)
    return w, x


def _bits(result):
    return [np.asarray(v).tobytes() for v in result]


def _tb(result):
    return [v.numpy().tobytes() for v in result]


def _output_error(w, x, wq):
    d = w.astype(np.float64) - wq.astype(np.float64)
    return float(np.sum((x.astype(np.float64) @ d.T) ** 2))


@pytest.mark.parametrize("kw", [{"bits": 3, "group_size": 8}, {"bits": 4, "group_size": 16, "symmetric": True}])
def test_awq_exact_comparisons_give_the_certified_choice(kw, monkeypatch):
    """With the error bounds made useless, every comparison goes through exact integers, in both backends; the
    result is the same bits."""
    w, x = _layer(out=4, d=16, rows=48)
    h, s_x = R.gptq_hessian(x), R.awq_act_scale(x)
    kw = {**kw, "grid": 6, "clip_grid": 8}
    want = _bits(R.awq(w, h, s_x, **kw))
    assert _tb(T.awq(torch.from_numpy(w), torch.from_numpy(h), torch.from_numpy(s_x), **kw)) == want
    monkeypatch.setattr(ref_certified, "EPS", 2.0**-10)
    monkeypatch.setattr(tb_certified, "EPS", 2.0**-10)
    assert _bits(R.awq(w, h, s_x, **kw)) == want
    assert _tb(T.awq(torch.from_numpy(w), torch.from_numpy(h), torch.from_numpy(s_x), **kw)) == want


def test_awq_does_not_depend_on_batching():
    w, x = _layer()
    shuffled = x[np.random.default_rng(1).permutation(len(x))]
    a = R.awq(w, R.gptq_hessian(x), R.awq_act_scale(x), bits=4, group_size=8)
    b = T.awq(
        torch.from_numpy(w),
        T.gptq_hessian(torch.from_numpy(shuffled)),
        T.awq_act_scale(torch.from_numpy(shuffled)),
        bits=4,
        group_size=8,
    )
    assert _bits(a) == _tb(b)


def test_awq_lowers_the_output_error_of_round_to_nearest():
    w, x = _layer()
    a = R.awq(w, R.gptq_hessian(x), R.awq_act_scale(x), bits=3, group_size=8)
    scale, zero = R.minmax_qparams(w, qmin=-4, qmax=3, axis=1, group_size=8)
    rtn = R.fake_quantize(w, scale, zero, qmin=-4, qmax=3, axis=1, group_size=8)
    assert float(a.alpha) > 0, "the outlier channels call for scaling"
    assert _output_error(w, x, a.weight) < 0.8 * _output_error(w, x, rtn)


def test_smoothquant_moves_the_outliers_into_the_weight():
    """After smoothing, the activation's channel maxima are flatter and W8A8 with per-token activations errs less
    than without smoothing; before quantization, X / s @ (W * s)^T is X W^T up to float32 rounding."""
    w, x = _layer()
    a = np.abs(x).max(axis=0)
    r = R.smoothquant(w, a, alpha=0.5)
    smoothed = x / r.smooth[None, :]
    assert np.abs(smoothed).max(axis=0).std() < a.std()
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    ws = (w * r.smooth[None, :]).astype(np.float64)
    assert np.allclose(smoothed.astype(np.float64) @ ws.T, exact, rtol=1e-5, atol=1e-5)
    y = R.per_token_fake_quantize(smoothed).astype(np.float64) @ r.weight.astype(np.float64).T
    plain = R.smoothquant(w, np.ones_like(a), alpha=1.0)  # s = 1 ** 1 / m ** 0 = 1: no smoothing
    assert np.all(plain.smooth == 1)
    y0 = R.per_token_fake_quantize(x).astype(np.float64) @ plain.weight.astype(np.float64).T
    assert np.sum((y - exact) ** 2) < np.sum((y0 - exact) ** 2)
