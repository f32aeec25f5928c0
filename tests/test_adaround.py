"""AdaRound beyond the generic suite: the VJPs are autograd of the paper's formulas, the certified gradient of
the reconstruction loss equals its exact path, and a short optimization does what AdaRound is for."""

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.posttraining import _certified as ref_certified
from torch_backend.posttraining import _certified as tb_certified

ZETA, GAMMA = 1.1, -0.1


def _h64(v):
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def test_rectified_sigmoid_vjp_is_autograd_of_the_formula():
    v = np.random.default_rng(0).uniform(-4, 4, 500).astype(np.float32)
    grad = np.random.default_rng(1).standard_normal(500).astype(np.float32)
    t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    (want,) = torch.autograd.grad(_h64(t), t, torch.tensor(grad, dtype=torch.float64))
    got = R.rectified_sigmoid_vjp(grad, v)
    inside = np.abs(_h64(t).detach().numpy() - 0.5) < 0.5 - 1e-6
    assert np.allclose(got[inside], want.numpy()[inside], rtol=1e-5, atol=1e-30)
    assert np.all(got[~inside & (np.abs(v) > 2.5)] == 0)


@pytest.mark.parametrize("beta", [1.0, 2.0, 7.5, 20.0])
def test_regularizer_vjp_is_autograd_of_the_formula(beta):
    v = np.random.default_rng(2).uniform(-3, 3, 400).astype(np.float32)
    t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    reg = (1 - (2 * _h64(t) - 1).abs() ** beta).sum()
    (want,) = torch.autograd.grad(reg * 0.5, t)
    got = R.adaround_regularizer_vjp(np.array(0.5, np.float32), v, beta=beta)
    assert np.allclose(got, want.numpy(), rtol=1e-4, atol=1e-7)
    total = float(reg.detach())
    assert abs(float(R.adaround_regularizer(v, beta=beta)) - total) <= 1e-5 * total + 1e-3


def _layer(seed=0, out=16, d=32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, d)).astype(np.float32)
    x[:, 2] *= 5
    w = (rng.standard_normal((out, d)) * 0.1).astype(np.float32)
    scale, zero = R.minmax_qparams(w, qmin=-8, qmax=7, axis=1, group_size=8)
    return w, R.gptq_hessian(x), scale, zero


def test_the_step_gradient_is_autograd_of_the_loss():
    """With lr tiny and Adam's first step, V moves by -lr * sign(G): its sign is the sign of autograd's gradient of
    0.5 sum_o D_o H D_o (float64) wherever that gradient is not tiny."""
    w, h, scale, zero = _layer()
    v = np.random.default_rng(3).uniform(-1, 1, w.shape).astype(np.float32)
    zeros = np.zeros_like(w)
    state = R.adaround_step(w, h, v, zeros, zeros, scale, zero, step=0, qmin=-8, qmax=7, lr=1e-6)
    tv = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(np.repeat(scale, 8, axis=1), dtype=torch.float64)
    z = torch.tensor(np.repeat(zero, 8, axis=1), dtype=torch.float64)
    tw = torch.tensor(w, dtype=torch.float64)
    soft = (torch.clamp(torch.floor(tw / s) + _h64(tv) + z, -8, 7) - z) * s
    dd = soft - tw
    loss = 0.5 * torch.einsum("oi,ij,oj->", dd, torch.tensor(h), dd)
    (g,) = torch.autograd.grad(loss, tv)
    g = g.numpy()
    big = np.abs(g) > 1e-3 * np.abs(g).max()
    assert big.sum() > 10
    assert np.all(np.sign(v - state.v)[big] == np.sign(g)[big])


def test_matmul32_exact_path_gives_the_certified_bits(monkeypatch):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 20)) * rng.choice([1e-8, 1, 1e8], (6, 20))
    b = rng.standard_normal((20, 5))
    want = ref_certified.matmul32(a, b)
    monkeypatch.setattr(ref_certified, "EPS", 2.0**-20)
    monkeypatch.setattr(tb_certified, "EPS", 2.0**-20)
    assert ref_certified.matmul32(a, b).tobytes() == want.tobytes()
    assert tb_certified.matmul32(torch.from_numpy(a), torch.from_numpy(b)).numpy().tobytes() == want.tobytes()


def test_adaround_beats_round_to_nearest_and_hardens():
    w, h, scale, zero = _layer(seed=5)
    v = R.adaround_init(w, scale)
    m = s = np.zeros_like(w)
    tv, tm, ts = (torch.from_numpy(a.copy()) for a in (v, m, s))
    steps = 200
    for t in range(steps):
        beta = None if t < 40 else R.adaround_beta(t, steps)
        v, m, s = R.adaround_step(w, h, v, m, s, scale, zero, step=t, qmin=-8, qmax=7, beta=beta, lr=0.03)
        if t < 5:  # the torch twin, bit for bit, on a few steps
            tv, tm, ts = T.adaround_step(*(torch.from_numpy(a) for a in (w, h)), tv, tm, ts, torch.from_numpy(scale),
                                         torch.from_numpy(zero), step=t, qmin=-8, qmax=7, beta=beta, lr=0.03)  # fmt: skip
            assert tv.numpy().tobytes() == v.tobytes()
    codes = R.adaround_quantize(w, v, scale, zero, qmin=-8, qmax=7)
    wq = R.dequantize(codes, scale, zero, axis=1, group_size=8)
    rtn = R.fake_quantize(w, scale, zero, qmin=-8, qmax=7, axis=1, group_size=8)

    def err(q):
        d = w.astype(np.float64) - q
        return float(np.einsum("oi,ij,oj->", d, h, d))

    assert err(wq) < err(rtn)
    hard = R.rectified_sigmoid(v)
    assert np.mean((hard == 0) | (hard == 1)) > 0.5, "the annealed regularizer pushes h to 0 or 1"
