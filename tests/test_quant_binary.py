"""Binary and ternary quantization against peers, exact arithmetic and the papers' own formulas.

Where a peer computes the same thing (torch autograd through a float64 composite, the XNOR-Net PyTorch port's
gradient rule, the TTQ authors' TensorFlow rule emulated in torch), it must agree; where it is known to differ
(torch.sign(0) = 0, hardtanh's exclusive gradient at +-1, float32 means, the TTQ code's |w| = delta slip), the
divergence is asserted on a fixed input, so that a change on either side shows up.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as R
import torch_backend as T
from spec import strategies as S

F32 = np.float32


def _bits(a):
    return np.array(a, dtype=F32).view(np.uint32)


def _t(a):
    return torch.from_numpy(np.array(a, dtype=F32))


def _exact_mean(values):
    return sum((Fraction(float(v)) for v in values), Fraction(0)) / len(values)


def _nearest_float32(q: Fraction) -> F32:
    """The float32 nearest to a rational (ties to even), by comparing with the two float32 neighbours."""
    y = F32(float(q))
    for other in (np.nextafter(y, F32(np.inf)), np.nextafter(y, F32(-np.inf))):
        d_other, d_y = abs(Fraction(float(other)) - q), abs(Fraction(float(y)) - q)
        if d_other < d_y or (d_other == d_y and int(_bits(other)) % 2 == 0):
            y = other
    return y


# ------------------------------------------------------------------------------------------------------------
# binarize: torch.sign and the straight-through estimators of torch
# ------------------------------------------------------------------------------------------------------------


@given(S.float32_arrays())
def test_binarize_differs_from_torch_sign_exactly_at_zeros(x):
    """torch.sign maps +-0 to 0; binarize maps them to +1; every other element agrees."""
    ours = R.binarize(x)
    theirs = torch.sign(_t(x)).numpy()
    zero = x == 0
    assert np.array_equal(_bits(ours[~zero]), _bits(theirs[~zero]))
    assert np.all(ours[zero] == 1) and np.all(theirs[zero] == 0)


def test_binarize_sign_of_zero_recorded():
    x = F32([0.0, -0.0, 1e-45, -1e-45])
    assert R.binarize(x).tolist() == [1, 1, 1, -1]
    assert torch.sign(_t(x)).tolist() == [0, 0, 1, -1]
    assert np.sign(x).tolist() == [0, 0, 1, -1]


def test_clipped_ste_is_clamp_not_hardtanh_at_the_boundary():
    """BNN's 1_{|x| <= 1} is inclusive: torch.clamp's gradient agrees; hardtanh's is 0 at exactly +-1."""
    x = F32([-1.0, 1.0, 0.5, 1.0000001, -3.0])
    g = F32([1, 2, 3, 4, 5])
    ours = R.binarize_vjp(g, x)
    assert ours.tolist() == [1, 2, 3, 0, 0]
    for op, expected in ((lambda v: torch.clamp(v, -1, 1), [1, 2, 3, 0, 0]), (torch.nn.functional.hardtanh, None)):
        leaf = _t(x).requires_grad_(True)
        (grad,) = torch.autograd.grad(op(leaf), leaf, _t(g))
        if expected is not None:
            assert np.array_equal(_bits(grad.numpy()), _bits(ours))
        else:
            assert grad.tolist() == [0, 0, 3, 0, 0], "hardtanh blocks the gradient at +-1"


@given(S.binarize_cases(with_grad=True))
def test_binarize_vjp_matches_clamp_autograd(case):
    """The clipped estimator is the gradient of clamp(x, -1, 1); the identity one is that of x itself."""
    grad, x = case.args
    leaf = _t(x).requires_grad_(True)
    y = torch.clamp(leaf, -1, 1) if case.kwargs["ste"] == "clipped" else leaf * 1.0
    (theirs,) = torch.autograd.grad(y, leaf, _t(grad))
    ours = R.binarize_vjp(grad, x, ste=case.kwargs["ste"])
    assert np.array_equal(ours, theirs.numpy())  # values: clamp's backward may give -0.0 where pqref gives +0.0


# ------------------------------------------------------------------------------------------------------------
# BinaryConnect: the stochastic rule is exact
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("w", [0.0, -0.0, 0.5, -0.5, 1e-30, -1e-30, 1.4e-45, 0.99999994, -0.99999994, 0.3])
def test_stochastic_rule_is_exact_over_every_uniform_value(w):
    """Over all 2**24 values u can take, w > 2u - 1 (float32) selects exactly the u < (w + 1) / 2 (rationals),
    so P(+1) = ceil(2**24 (w + 1) / 2) / 2**24."""
    u = np.arange(2**24, dtype=np.int64).astype(F32) * F32(2.0**-24)
    ours = F32(w) > u * F32(2) - F32(1)
    p = (Fraction(float(F32(w))) + 1) / 2
    count = int(np.count_nonzero(ours))
    assert count == -((-p * 2**24).__floor__())  # ceil(2**24 p)
    # the set is a prefix of the grid: u_k selected iff k < 2**24 p
    assert ours[:count].all() and not ours[count:].any()


def test_stochastic_frequency_follows_hard_sigmoid():
    w = np.repeat(F32([-0.5, 0.0, 0.5, 0.9]), 4096)
    out = R.binary_connect(w, stochastic=True, key=(3, 4)).reshape(4, 4096)
    freq = (out == 1).mean(axis=1)
    p = np.array([0.25, 0.5, 0.75, 0.95])
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / 4096))


def test_stochastic_draws_depend_on_the_key_and_match_torch():
    w = np.zeros(64, dtype=F32)
    a = R.binary_connect(w, stochastic=True, key=(1, 2))
    b = R.binary_connect(w, stochastic=True, key=(1, 3))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, T.binary_connect(_t(w), stochastic=True, key=(1, 2)).numpy())


# ------------------------------------------------------------------------------------------------------------
# XNOR-Net / BWN
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _dyadic_weights(draw):
    """Weights whose |w| sums are exact in float64 and whose means are exact in float32: k * 2**e, n = 2**j."""
    rows = draw(st.sampled_from([1, 2, 3]))
    cols = draw(st.sampled_from([1, 2, 4, 8]))
    e = draw(st.integers(-6, 6))
    ks = draw(hnp.arrays(np.int64, (rows, cols), elements=st.integers(-64, 64)))
    return (ks * 2.0**e).astype(F32)


@given(_dyadic_weights())
def test_xnor_scale_equals_the_float64_mean_when_it_is_exact(w):
    assert np.array_equal(R.xnor_scale(w), F32(np.mean(np.abs(w).astype(np.float64))))
    assert np.array_equal(R.xnor_scale(w, axis=0), np.mean(np.abs(w).astype(np.float64), axis=1).astype(F32))


@given(S.float32_arrays(min_side=1, max_side=5, elements=st.floats(-1e6, 1e6, width=32)))
def test_xnor_scale_is_the_correctly_rounded_mean_when_the_tree_sum_is_exact(w):
    """Whenever the float64 tree sum of |w| is exact, the scale is the float32 nearest the exact mean (the two
    roundings, S / n to float64 then to float32, can only disagree within 2**-53 relative of a float32 midpoint)."""
    a = np.abs(w).astype(np.float64)
    exact = _exact_mean(a.reshape(-1))
    if Fraction(float(R.tree_sum(a))) != exact * a.size:
        return
    nearest = _nearest_float32(exact)
    got = R.xnor_scale(w)
    if _bits(got) != _bits(nearest):
        other = np.nextafter(nearest, got)
        midpoint = (Fraction(float(nearest)) + Fraction(float(other))) / 2
        assert abs(exact - midpoint) <= exact * Fraction(1, 2**52), "not a double-rounding case"


def test_xnor_scale_differs_from_torch_float32_mean_recorded():
    """torch's float32 `w.abs().mean()` (what the XNOR-Net PyTorch ports use) rounds the partial sums to float32."""
    w = F32([3.3, 1.1, 0.7])
    ours = R.xnor_scale(w)
    theirs = _t(w).abs().mean().numpy()
    assert _bits(ours) == _bits(_nearest_float32(_exact_mean(w)))
    assert _bits(ours) != _bits(theirs)
    assert ours == F32(1.7) and theirs == np.nextafter(F32(1.7), F32(0))


def _port_grad(w, g):
    """updateBinaryGradWeight of the XNOR-Net PyTorch port (jiecaoyu/XNOR-Net-PyTorch), in float64, for a 2-D
    weight (out, in), divided by its learning-rate factor n (1 - 1/in)."""
    w, g = torch.from_numpy(w.astype(np.float64)), torch.from_numpy(g.astype(np.float64))
    n, s = w[0].nelement(), w.size()
    m = w.norm(1, 1, keepdim=True).div(n).expand(s).clone()
    m[w.lt(-1.0)] = 0
    m[w.gt(1.0)] = 0
    m = m.mul(g)
    m_add = w.sign().mul(g).sum(1, keepdim=True).div(n).expand(s).mul(w.sign())
    return m.add(m_add).numpy()


@st.composite
def _port_cases(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    nonzero = st.floats(float(F32(0.01)), 3, width=32).flatmap(lambda v: st.sampled_from([v, -v, 1.0, -1.0]))
    w = draw(hnp.arrays(F32, shape, elements=nonzero))
    g = draw(hnp.arrays(F32, shape, elements=st.floats(-4, 4, width=32)))
    return w, g


@given(_port_cases())
def test_xnor_vjp_matches_the_xnor_net_port_without_zeros(wg):
    """Away from w = 0 (where torch.sign gives 0) the port's rule is our chain rule; float64 vs one rounding."""
    w, g = wg
    ours = R.xnor_binarize_vjp(g, w, axis=0).astype(np.float64)
    theirs = _port_grad(w, g)
    scale = np.abs(np.asarray(R.xnor_scale(w, axis=0), dtype=np.float64))[:, None] * np.abs(g) + np.abs(g).max()
    assert np.all(np.abs(ours - theirs) <= 4 * 2.0**-24 * scale + 1e-30)


def test_xnor_vjp_differs_from_the_port_at_zero_recorded():
    """At w = 0 the port's torch.sign(0) = 0 drops the element from the mean term and from its own gradient."""
    w, g = F32([[0.0, 1.0]]), F32([[1.0, 1.0]])
    ours = R.xnor_binarize_vjp(g, w, axis=0)
    assert ours.tolist() == [[1.5, 1.5]]  # alpha 0.5, both pass: 0.5 + mean(b * g) = 0.5 + 1
    assert _port_grad(w, g).tolist() == [[0.5, 1.0]]


@given(S.xnor_cases(with_grad=True))
def test_xnor_vjp_matches_autograd_of_a_float64_composite(case):
    """torch autograd through alpha(w) * STE(b(w)), in float64: alpha = mean(w * b) (so d alpha / dw = b / n),
    STE = b + clamp(w) - clamp(w).detach() (or + w - w.detach()). Ours rounds the same float64 value once."""
    grad, w = case.args
    axis, ste = case.kwargs["axis"], case.kwargs["ste"]
    leaf = torch.from_numpy(w.astype(np.float64)).requires_grad_(True)
    b = torch.where(leaf >= 0, 1.0, -1.0).to(torch.float64).detach()
    k = None if axis is None else axis % w.ndim
    dims = tuple(i for i in range(w.ndim) if i != k) if k is not None else tuple(range(w.ndim))
    alpha = (leaf * b).mean(dim=dims, keepdim=True) if dims else (leaf * b)
    alpha_fwd = torch.from_numpy(np.asarray(R.xnor_scale(w, axis=axis), dtype=np.float64))
    if k is not None:
        alpha_fwd = alpha_fwd.reshape(tuple(-1 if i == k else 1 for i in range(w.ndim)))
    alpha = alpha_fwd + (alpha - alpha.detach())  # the forward value of pqref, the float64 derivative b / n
    soft = torch.clamp(leaf, -1, 1) if ste == "clipped" else leaf
    y = alpha * (b + (soft - soft.detach()))
    (theirs,) = torch.autograd.grad(y, leaf, torch.from_numpy(grad.astype(np.float64)))
    ours = R.xnor_binarize_vjp(grad, w, axis=axis, ste=ste).astype(np.float64)
    theirs = theirs.numpy()
    with np.errstate(over="ignore"):
        theirs32 = theirs.astype(F32).astype(np.float64)
    mag = np.abs(alpha_fwd.numpy() * grad) + np.abs(grad).max(initial=0)  # float64 sums differ in order
    close = np.abs(ours - theirs32) <= 2.0**-22 * mag + 2.0**-52 * w.size * mag + 1e-44
    assert np.all(close | (np.isinf(ours) & (np.abs(theirs) >= 3.4e38)))


# ------------------------------------------------------------------------------------------------------------
# TWN
# ------------------------------------------------------------------------------------------------------------


@given(_dyadic_weights())
def test_twn_matches_a_plain_float64_implementation_on_exact_inputs(w):
    """delta = 0.7 * mean|w|, kept |w| > delta, alpha = mean of the kept: numpy float64 on exact sums."""
    a = np.abs(w).astype(np.float64)
    delta = F32(0.7 * a.mean())
    kept = np.abs(w) > delta
    alpha = F32(a[kept].mean()) if kept.any() else F32(0)
    d, al = R.twn_params(w)
    assert _bits(d) == _bits(delta) and _bits(al) == _bits(alpha)
    expected = np.where(kept, np.where(w > 0, alpha, -alpha), F32(0))
    assert np.array_equal(_bits(R.twn_ternarize(w)), _bits(expected))


def test_twn_float32_peer_keeps_a_weight_that_pqref_prunes_recorded():
    """A typical implementation `d = 0.7 * w.abs().mean()` in float32 lands one ulp lower on this input; pqref
    rounds 0.7 mean (float64) once to float32, which lands exactly on w[2], and prunes it (strict). The exact
    rational 0.7 mean is below w[2] by 1.2e-9, so this is the price of a float32 threshold that callers can
    reproduce, and it is pinned."""
    w = F32([0.1, 2.5, 0.791304349899292])
    delta, _ = R.twn_params(w)
    peer_delta = (0.7 * _t(w).abs().mean()).numpy()
    assert delta == w[2] and peer_delta == np.nextafter(w[2], F32(0))
    assert R.twn_ternarize(w).tolist()[2] == 0.0
    assert (_t(w).abs() > 0.7 * _t(w).abs().mean()).tolist() == [False, True, True]
    assert Fraction(7, 10) * _exact_mean(w) < Fraction(float(w[2]))


def test_twn_threshold_is_strict_and_seventy_percent():
    w = F32([2.0, -0.875, 0.875])  # mean 1.25, 0.7 * 1.25 = 0.875
    assert R.twn_ternarize(w).tolist() == [2.0, 0.0, 0.0]
    w = F32([2.0, -0.875, 0.87500006])
    assert R.twn_ternarize(w).tolist()[2] != 0.0


# ------------------------------------------------------------------------------------------------------------
# TTQ: the authors' TensorFlow rule, emulated in torch
# ------------------------------------------------------------------------------------------------------------


def _authors_ttq(w, wp, wn, t, g):
    """`tw_ternarize` of czhu95/ternarynet in torch: Sign -> Identity and Mul -> Add gradients, float32."""
    x = _t(w).requires_grad_(True)
    p = torch.tensor(float(wp), requires_grad=True)
    n = torch.tensor(float(wn), requires_grad=True)
    thre_x = (x.abs().max() * t).detach()
    ones = torch.ones_like(x)
    mask_p = torch.where(x > thre_x, ones * p, ones)
    mask_np = torch.where(x < -thre_x, ones * n, mask_p)
    mask_z = torch.where((x < thre_x) & (x > -thre_x), torch.zeros_like(x), ones)
    s = (torch.sign(x) * mask_z).detach() + (x - x.detach())  # forward sign * mask_z, gradient identity
    y = s * mask_np
    grads = torch.autograd.grad(y, (x, p, n), _t(g))
    return y.detach().numpy(), tuple(v.numpy() for v in grads)


@st.composite
def _ttq_peer_cases(draw):
    """Grid weights (exact thresholds for t in {1/8, 1/4, 1/2}) and small-integer cotangents (exact sums)."""
    shape = draw(S.shapes(min_dims=1, max_dims=2, min_side=1, max_side=6))
    w = draw(hnp.arrays(np.int64, shape, elements=st.integers(-8, 8))).astype(F32) / F32(4)
    g = draw(hnp.arrays(np.int64, shape, elements=st.integers(-9, 9))).astype(F32)
    t = draw(st.sampled_from([0.125, 0.25, 0.5]))
    wp = F32(draw(st.sampled_from([0.5, 1.0, 1.5, 3.0])))
    wn = F32(draw(st.sampled_from([0.25, 1.0, 2.0])))
    return w, wp, wn, t, g


@given(_ttq_peer_cases())
def test_ttq_matches_the_authors_code_off_the_boundary(case):
    w, wp, wn, t, g = case
    delta = F32(t) * np.abs(w).max()
    on_boundary = np.abs(w) == delta
    (y, (gw, gp, gn)) = _authors_ttq(w, wp, wn, t, g)
    ours = R.ttq_quantize(w, np.array(wp), np.array(wn), t=t)
    ours_gw, ours_gp, ours_gn = R.ttq_quantize_vjp(g, w, np.array(wp), np.array(wn), t=t)
    off = ~on_boundary
    assert np.array_equal(ours[off], y[off])
    assert np.array_equal(ours_gw, gw), "Eq. 8 gradient to w (on the boundary both give g)"
    if not on_boundary.any():
        assert ours_gp == gp and ours_gn == gn, "scale gradients: +sum over I_p, -sum over I_n"
    else:  # the code's boundary weights are sign(w) (mask_z = 1, mask_np = 1), pqref's are 0
        assert np.array_equal(y[on_boundary], np.sign(w[on_boundary])) and np.all(ours[on_boundary] == 0)


def test_ttq_boundary_and_scale_sign_recorded():
    """On |w| = delta the authors' code outputs +-1 where the paper (and pqref) output 0; the negative scale's
    gradient is -sum over I_n (the code, the chain rule), where the paper's Eq. 7 prints +sum."""
    w, g = F32([4.0, -1.0, 1.0, -2.0]), F32([1.0, 1.0, 1.0, 1.0])
    y, (_, gp, gn) = _authors_ttq(w, 1.5, 0.5, 0.25, g)
    assert y.tolist() == [1.5, -1.0, 1.0, -0.5]
    assert R.ttq_quantize(w, F32(1.5), F32(0.5), t=0.25).tolist() == [1.5, 0.0, 0.0, -0.5]
    _, ours_gp, ours_gn = R.ttq_quantize_vjp(g, w, F32(1.5), F32(0.5), t=0.25)
    paper_eq7 = float(g[w < -1].sum())
    assert float(ours_gn) == float(gn) == -1.0 and paper_eq7 == 1.0
    assert float(ours_gp) == float(gp) == 1.0


def test_ttq_threshold_rounds_once_from_float64_recorded():
    """delta = fl32(t * max|w|) with t a float64: for max|w| = 9, t = 0.05 that is 0.45 (the exact product,
    rounded); float32 arithmetic (the authors' TF code, torch) gives fl32(fl32(0.05) * 9) = 0.45000002, one ulp
    higher, and zeroes the weights at 0.45000002 that exceed the exact threshold."""
    w = F32([9.0, 0.45000002, -0.45000002])
    assert F32(0.05 * 9.0) == F32(0.45) and F32(0.05) * F32(9.0) == F32(0.45000002)
    assert R.ttq_quantize(w, F32(2), F32(3), t=0.05).tolist() == [2.0, 2.0, -3.0]
    y, _ = _authors_ttq(w, 2.0, 3.0, 0.05, F32([1, 1, 1]))
    assert y.tolist() == [2.0, 1.0, -1.0]  # the code's boundary slip: |w| = its delta gives sign(w)
