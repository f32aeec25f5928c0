"""GPTQ and SparseGPT beyond the generic suite: exactness paths, invariance to block size, batch size and threads,
and agreement with a plain float64 transcription of the papers' algorithms (written here, not calling pqref)."""

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.posttraining import obs as ref_obs
from torch_backend.posttraining import obs as tb_obs


def _layer(out=12, d=24, rows=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, d)).astype(np.float32)
    x[:, 3] = 0  # a dead input
    x[:, 5] = x[:, 4]  # a repeated one: only damping makes H positive definite
    w = (rng.standard_normal((out, d)) * 0.1).astype(np.float32)
    return w, x


def _bits(result):
    return [None if v is None else np.asarray(v).tobytes() for v in result]


def _tb(result):
    return [None if v is None else v.numpy().tobytes() for v in result]


CONFIGS = [
    ("gptq", {"bits": 4, "group_size": 8}),
    ("gptq", {"bits": 3, "group_size": 6, "act_order": True}),
    ("gptq", {"bits": 4, "group_size": 8, "act_order": True, "static_groups": True, "symmetric": True}),
    ("sparsegpt", {"sparsity": 0.5, "blocksize": 8}),
    ("sparsegpt", {"n": 2, "m": 4, "bits": 4, "group_size": 12}),
]


def _nothing_certified(approx, magnitude, terms):
    value = approx.astype(np.float32) if isinstance(approx, np.ndarray) else approx.to(torch.float32)
    return value, value != value  # no entry certified: every one takes the exact path


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_both_backends_agree_and_the_exact_path_gives_the_same_bits(name, kw, monkeypatch):
    """The certified fast path and the exact path (every entry through exact_dot) give the same bits."""
    w, x = _layer()
    h = R.gptq_hessian(x)
    want = _bits(getattr(R, name)(w, h, **kw))
    assert _tb(getattr(T, name)(torch.from_numpy(w), torch.from_numpy(h), **kw)) == want
    w = w[:3]  # a few rows keep the exact path fast
    fast = _bits(getattr(R, name)(w, h, **kw))
    monkeypatch.setattr(ref_obs._certified, "certify", _nothing_certified)
    monkeypatch.setattr(tb_obs._certified, "certify", _nothing_certified)
    assert _bits(getattr(R, name)(w, h, **kw)) == fast
    assert _tb(getattr(T, name)(torch.from_numpy(w), torch.from_numpy(h), **kw)) == fast


@pytest.mark.parametrize("block", [1, 2, 5, 7, 16, 24, 4096])
def test_gptq_does_not_depend_on_the_block_size(block):
    w, x = _layer(out=16, d=48, rows=96, seed=1)
    h = T.gptq_hessian(torch.from_numpy(x))
    base = _tb(T.gptq(torch.from_numpy(w), h, bits=3, group_size=12, block_size=128))
    assert _tb(T.gptq(torch.from_numpy(w), h, bits=3, group_size=12, block_size=block)) == base


def test_the_hessian_does_not_depend_on_batching_or_threads():
    _, x = _layer(d=16, rows=200, seed=2)
    whole = T.gptq_hessian(torch.from_numpy(x))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = T.gptq_hessian(torch.from_numpy(x))
    finally:
        torch.set_num_threads(threads)
    assert one.numpy().tobytes() == whole.numpy().tobytes()
    assert R.gptq_hessian(x).tobytes() == whole.numpy().tobytes()
    shuffled = x[np.random.default_rng(3).permutation(len(x))]
    assert T.gptq_hessian(torch.from_numpy(shuffled)).numpy().tobytes() == whole.numpy().tobytes()


def test_gptq_does_not_depend_on_the_thread_count():
    w, x = _layer(out=16, d=32, rows=80, seed=4)
    h = T.gptq_hessian(torch.from_numpy(x))
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(_tb(T.gptq(torch.from_numpy(w), h, bits=4, group_size=8, act_order=True)))
    finally:
        torch.set_num_threads(threads)
    assert results[0] == results[1]


# ---- the papers' algorithms, transcribed in plain float64 (no pqref) -----------------------------------------


def _plain_qparams(cols, bits):
    """pqref's asymmetric min-max rule on the signed range [-2**(b-1), 2**(b-1) - 1], written out."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    lo = np.minimum(cols.min(axis=1), 0.0)
    hi = np.maximum(cols.max(axis=1), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    scale = np.where(scale > 0, scale, 1.0)
    zero = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    return scale, zero, qmin, qmax


def _plain_gptq(w, x, bits, g, percdamp=0.01):
    """Algorithm 1 of Frantar et al. (2023) in float64 numpy, one column at a time, group parameters from the
    updated weights when a group starts."""
    w = w.astype(np.float64).copy()
    h = 2 * x.astype(np.float64).T @ x.astype(np.float64) / len(x)
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += percdamp * np.mean(np.diag(h)) * np.eye(len(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper factor of H^-1
    codes = np.zeros(w.shape, dtype=np.int64)
    q = np.zeros_like(w)
    for k in range(w.shape[1]):
        if k % g == 0:
            scale, zero, qmin, qmax = _plain_qparams(w[:, k : k + g], bits)
        c = np.clip(np.round(w[:, k] / scale) + zero, qmin, qmax)
        codes[:, k] = c
        q[:, k] = (c - zero) * scale
        err = (w[:, k] - q[:, k]) / u[k, k]
        w[:, k:] -= np.outer(err, u[k, k:])
    return codes, q


def test_exact_gptq_agrees_with_the_plain_float64_transcription():
    """On well-conditioned random layers the exact GPTQ and the float64 transcription pick the same codes almost
    everywhere (they differ only where float64 rounding flips a code), and reconstruct equally well."""
    same = total = 0
    errors = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((512, 64)).astype(np.float32)
        w = (rng.standard_normal((32, 64)) * 0.05).astype(np.float32)
        got = T.gptq(torch.from_numpy(w), T.gptq_hessian(torch.from_numpy(x)), bits=4, group_size=16)
        codes, q = _plain_gptq(w, x, bits=4, g=16)
        same += int((got.codes.numpy() == codes).sum())
        total += codes.size
        xd = x.astype(np.float64)
        e_exact = np.sum((xd @ (w - got.weight.numpy()).T.astype(np.float64)) ** 2)
        e_plain = np.sum((xd @ (w - q).T) ** 2)
        errors.append(abs(e_exact - e_plain) / e_plain)
    print(f"codes identical: {same} of {total} ({same / total:.4%}); reconstruction error differences {errors}")
    assert same / total >= 0.999
    assert max(errors) <= 0.001


def test_gptq_beats_round_to_nearest():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((256, 32)) @ rng.standard_normal((32, 32))).astype(np.float32)  # correlated inputs
    w = rng.standard_normal((16, 32)).astype(np.float32)
    h = T.gptq_hessian(torch.from_numpy(x))
    qmin, qmax = T.integer_range(3, True, False)
    wt = torch.from_numpy(w)
    rtn = T.fake_quantize(wt, *T.minmax_qparams(wt, qmin=qmin, qmax=qmax, axis=0), qmin=qmin, qmax=qmax, axis=0)
    gptq = T.gptq(wt, h, bits=3).weight
    xd = torch.from_numpy(x).double()

    def err(q):
        return float(((xd @ (wt - q).double().T) ** 2).sum())

    assert err(gptq) < 0.8 * err(rtn)


def test_the_certificate_without_nextafter_is_never_looser_than_the_references():
    """`torch_backend.posttraining._certified.certify` bounds by `fl(a -+ 4 max(A, 2**-999))` instead of the
    reference's `nextafter(fl(a -+ fl(A + floor)))`: wherever it certifies, the reference certifies the same
    float32 (its interval lies inside), on float64 values near float32 midpoints, tiny and subnormal ones, huge
    ones past float32's range, with small and large magnitudes and term counts."""
    from reference.posttraining import _certified as rc
    from torch_backend.posttraining import _certified as tc

    rng = np.random.default_rng(11)
    f32 = rng.standard_normal(20000).astype(np.float32) * np.exp2(rng.integers(-140, 120, 20000)).astype(np.float32)
    mid = (f32.astype(np.float64) + np.nextafter(f32, np.float32(np.inf)).astype(np.float64)) / 2
    approx = np.concatenate(
        [
            mid + mid * rng.uniform(-1e-12, 1e-12, mid.size),  # near a midpoint: often uncertified
            f32.astype(np.float64) * (1 + rng.uniform(-1e-9, 1e-9, f32.size)),
            rng.standard_normal(2000) * 2.0**-1060,  # float64 subnormals
            rng.standard_normal(2000) * 1e300,
            [0.0, -0.0, 2.0**-1074, 3.5e38, -3.5e38],
        ]
    )
    for terms in (1, 16, 5000):
        for spread in (0.0, 1.0, 1e6):
            magnitude = np.abs(approx) * spread
            want_value, want_ok = rc.certify(approx, magnitude, terms)
            value, ok = tc.certify(torch.from_numpy(approx), torch.from_numpy(magnitude), terms)
            ok = ok.numpy()
            assert not (ok & ~want_ok).any(), (terms, spread, approx[ok & ~want_ok][:3])
            assert np.array_equal(value.numpy()[ok].view(np.uint32), want_value[ok].view(np.uint32))
            assert ok.sum() > 0.3 * ok.size or spread > 1  # it still certifies most values
