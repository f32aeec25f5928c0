"""Hadamard rotations beyond the generic suite: the layer's output is preserved within the stated bound, the matrix
is the one QuaRot's butterfly computes, and the exact path gives the certified bits."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.posttraining import rotation as ref_rotation
from torch_backend.posttraining import rotation as tb_rotation

U = 2.0**-24


def _exact_dot(a, b):
    return sum((Fraction(float(p)) * Fraction(float(q)) for p, q in zip(a, b, strict=True)), Fraction(0))


def _bound(x, w, n):
    nx, nw = math.sqrt(_exact_dot(x, x)), math.sqrt(_exact_dot(w, w))
    return ((2 * U + U * U) * nx * nw + 2.0**-149 * math.sqrt(n) * (nx + nw) + n * 2.0**-298) * (1 + 1e-12)


def _worst(x, w, xr, wr, n):
    """The largest ratio |x' . w'_o - x . w_o| / bound over rows and outputs (exact dot products)."""
    worst = 0.0
    for r in range(x.shape[0]):
        for o in range(w.shape[0]):
            err = abs(_exact_dot(xr[r], wr[o]) - _exact_dot(x[r], w[o]))
            worst = max(worst, float(err) / _bound(x[r], w[o], n))
    return worst


@pytest.mark.parametrize("n", [16, 12, 20, 40, 48])
def test_rotation_preserves_the_layer_output_within_the_stated_bound(n):
    """x' = T(x), W' = T(W) with one key: every exact x' . w'_o is within the entry's bound of x . w_o, on inputs
    with outliers (the case rotations are for), in both backends (the same bits)."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((6, n)).astype(np.float32)
    x[:, 1] *= 100  # an outlier channel
    w = (rng.standard_normal((5, n)) * 0.05).astype(np.float32)
    key = (7, n)
    xr, wr = R.hadamard_transform(x, key=key), R.hadamard_transform(w, key=key)
    assert np.array_equal(
        T.hadamard_transform(torch.from_numpy(x), key=key).numpy().view(np.uint32), xr.view(np.uint32)
    )
    assert _worst(x, w, xr, wr, n) <= 1.0
    assert np.abs(xr).max() < np.abs(x).max() / 2, "the outlier is spread over the channels"


def test_the_bound_check_can_fail():
    """Rotating the weight with another key than the input breaks the function: the check sees it."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 16)).astype(np.float32), rng.standard_normal((3, 16)).astype(np.float32)
    xr, wr = R.hadamard_transform(x, key=(1, 1)), R.hadamard_transform(w, key=(1, 2))
    assert _worst(x, w, xr, wr, 16) > 1e3


def _quarot_matmul_had(x, had_k):
    """QuaRot's `matmul_hadU` (fake_quant/hadamard_utils.py) transcribed to NumPy float64, without the 1/sqrt(n):
    a radix-2 butterfly down to K rows, then the K x K table."""
    n = x.shape[-1]
    k = had_k.shape[0] if had_k is not None else 1
    inp = x.reshape(-1, n, 1).astype(np.float64)
    out = inp.copy()
    while inp.shape[1] > k:
        inp = inp.reshape(inp.shape[0], inp.shape[1] // 2, 2, inp.shape[2])
        out = out.reshape(inp.shape)
        out[:, :, 0, :] = inp[:, :, 0, :] + inp[:, :, 1, :]
        out[:, :, 1, :] = inp[:, :, 0, :] - inp[:, :, 1, :]
        out = out.reshape(inp.shape[0], inp.shape[1], -1)
        inp, out = out, inp
    if k > 1:
        inp = had_k.astype(np.float64).reshape(1, k, k) @ inp
    return inp.reshape(x.shape)


@pytest.mark.parametrize(("n", "k"), [(8, 1), (12, 12), (48, 12), (20, 20), (40, 40), (160, 40)])
def test_the_matrix_is_quarots(n, k):
    """QuaRot picks a K x K table (12, 20, or 40 = kron(S_2, H_20), its get_had40) and butterflies the rest;
    applied to the identity, its transform is H^T for pqref's H."""
    had_k = (
        None if k == 1 else (R.hadamard_matrix(k) if k != 40 else np.kron(R.hadamard_matrix(2), R.hadamard_matrix(20)))
    )
    got = _quarot_matmul_had(np.eye(n), had_k)
    assert np.array_equal(got, R.hadamard_matrix(n).T.astype(np.float64))


def test_the_exact_path_gives_the_certified_bits(monkeypatch):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 24)) * rng.choice([1e-20, 1.0, 1e10], (8, 24))).astype(np.float32)
    want = R.hadamard_transform(x, key=(2, 9), inverse=True)
    monkeypatch.setattr(ref_rotation, "EPS", 2.0**-26)  # every bound too wide: all entries take the exact path
    monkeypatch.setattr(tb_rotation, "EPS", 2.0**-26)
    got_ref = R.hadamard_transform(x, key=(2, 9), inverse=True)
    got_tb = T.hadamard_transform(torch.from_numpy(x), key=(2, 9), inverse=True).numpy()
    assert np.array_equal(got_ref.view(np.uint32), want.view(np.uint32))
    assert np.array_equal(got_tb.view(np.uint32), want.view(np.uint32))


def test_the_certificate_without_the_subnormal_floor_is_never_looser_than_the_references():
    """`_certified` bounds by `2 max(A, 2**-999)` instead of the reference's `fl(A + TINY)`: wherever it
    certifies, the reference certifies the same float32, on values near float32 midpoints, tiny, subnormal and
    huge ones, and zero magnitudes."""
    rng = np.random.default_rng(5)
    f32 = rng.standard_normal(20000).astype(np.float32) * np.exp2(rng.integers(-140, 120, 20000)).astype(np.float32)
    mid = (f32.astype(np.float64) + np.nextafter(f32, np.float32(np.inf)).astype(np.float64)) / 2
    approx = np.concatenate([mid * (1 + rng.uniform(-1e-12, 1e-12, mid.size)), f32.astype(np.float64),
                             rng.standard_normal(2000) * 2.0**-1060, [0.0, -0.0, 2.0**-1074, 3.5e38]])  # fmt: skip
    approx = approx.reshape(-1, 1)
    for n, spread in ((2, 0.0), (64, 1.0), (4096, 1e3)):
        magnitude = np.abs(approx) * spread
        root = np.sqrt(np.float64(n))
        want_value, want_ok = ref_rotation._certified(approx, magnitude, n, root)
        value, ok = tb_rotation._certified(torch.from_numpy(approx), torch.from_numpy(magnitude), n, torch.tensor(root))
        ok = ok.numpy()
        assert not (ok & ~want_ok).any()
        assert np.array_equal(value.numpy()[ok].view(np.uint32), want_value[ok].view(np.uint32))
        assert ok.mean() > 0.3
