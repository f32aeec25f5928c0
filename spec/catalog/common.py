"""Helpers that several catalog modules share: array literals, rule sentences and citations that several entries state,
and invariant checks that several entries run. Each section names the catalog modules that use it; they import a
helper under the local name it had before the catalog was laid out one-to-one with `reference/` (`from
spec.catalog.common import array as _a`), so the entries read as they did.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

from spec.entry import Case

F = np.float32
F_MAX = float(np.finfo(np.float32).max)


# ---- used by codecs.gguf, codecs.gptq, codecs.nvfp4, core.random, core.reduce, core.rounding, core.select,
#      pruning.lottery, pruning.magnitude, pruning.random, pruning.regularization, pruning.saliency, pruning.schedules,
#      pruning.slimming, pruning.sparse_formats, pruning.structured, quantization.binary, quantization.codebook,
#      quantization.conventions, quantization.dorefa, quantization.floats, quantization.lsq, quantization.mx,
#      quantization.nf4, quantization.observers, quantization.packing, quantization.pact, quantization.power_of_two,
#      quantization.ternary


def array(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


# ---- used by core.exact, core.linalg --------------------------------------------------------------------------------


def array64(values, dtype=np.float64):
    return np.array(values, dtype=dtype)


OVERFLOW = Fraction(2**1024 - 2**970)


def fl(q: Fraction) -> float:
    """IEEE rounding of an exact rational to float64, ties to even (CPython's int / int is correctly rounded)."""
    if q == 0:
        return 0.0
    if abs(q) >= OVERFLOW:
        return math.inf if q > 0 else -math.inf
    return float(q)


def check_bits(got, want, where):
    got, want = np.asarray(got, dtype=np.float64).reshape(-1), np.asarray(want, dtype=np.float64).reshape(-1)
    assert got.shape == want.shape, f"{where}: shape {got.shape} vs {want.shape}"
    for i, (g, w) in enumerate(zip(got.tolist(), want.tolist(), strict=True)):
        assert struct.pack("<d", g) == struct.pack("<d", w), f"{where}[{i}]: got {g!r}, exact rounding gives {w!r}"


def fraction_dot(p, q) -> Fraction:
    return sum((Fraction(float(u)) * Fraction(float(v)) for u, v in zip(p, q, strict=True)), Fraction(0))


# ---- used by quantization.binary, quantization.ternary --------------------------------------------------------------

FINITE_RULE = "Non-finite inputs (weights, cotangents, scales) raise ValueError with the flat index of the first."


AXIS_RULE = "axis=None: one slice (the whole tensor); axis=k: one slice per index along k (moveaxis(w, k, 0) rows)."


def float32_bits(a):
    """float32 bit patterns, same shape (0-d included), so that -0.0 != +0.0."""
    return np.array(a, dtype=np.float32).view(np.uint32)


def rows(a, axis):
    if axis is None:
        return a.reshape(1, -1)
    a = np.moveaxis(a, axis, 0)
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


def spacing(v):
    """One float32 ulp at |v| (at least the smallest subnormal)."""
    return float(np.spacing(np.abs(np.float32(v))))


def exact_mean(row):
    return math.fsum(float(v) for v in row) / len(row)


def tree_error(values):
    """A bound on |tree_mean - exact mean| of float64 `values`: one 2**-53 per tree level, relative to sum |v|."""
    n = max(len(values), 1)
    return max(1, math.ceil(math.log2(n))) * 2.0**-53 * math.fsum(np.abs(values).tolist()) / n * 1.0000001


# ---- used by quantization.binary, quantization.lsq, quantization.nf4, quantization.observers, quantization.pact,
#      quantization.ternary


def scalar(v):
    return np.array(v, dtype=np.float32)


# ---- used by pruning.regularization, pruning.slimming, quantization.dorefa, quantization.lsq, quantization.pact -----


def bits_of(a):
    return np.ascontiguousarray(a, dtype=F).view(np.uint32)


# ---- used by quantization.dorefa, quantization.lsq, quantization.pact -----------------------------------------------


def in_levels(out, levels):
    assert np.all(np.isin(bits_of(out.reshape(-1)), bits_of(levels))), "an output is not one of the levels"


def grad_or_zero(call, case, out):
    grad = case.args[0]
    got = out[0] if isinstance(out, tuple) else out
    passed = bits_of(got) == bits_of(grad)
    blocked = bits_of(got) == np.uint32(0)
    assert np.all(passed | blocked), "the input gradient must be the cotangent or +0.0"


def linear_in_cotangent(call, case, out):
    """Doubling the cotangent doubles every gradient exactly (float64 arithmetic and one rounding scale by 2),
    wherever the doubled float32 result is normal and finite."""
    grad = case.args[0]
    if np.any(np.abs(grad) > F(F_MAX / 2)):
        return
    doubled = call(Case((grad * F(2), *case.args[1:]), case.kwargs))
    outs = out if isinstance(out, tuple) else (out,)
    twice = doubled if isinstance(doubled, tuple) else (doubled,)
    for o, d in zip(outs, twice, strict=True):
        with np.errstate(over="ignore"):
            expected = o * F(2)
        ok = (np.abs(expected) >= F(2.0**-125)) & np.isfinite(expected) & (np.abs(o) < F(F_MAX / 2))
        assert np.array_equal(bits_of(d)[ok], bits_of(expected)[ok]), "gradient not linear in the cotangent"


# ---- used by quantization.dorefa, quantization.pact -----------------------------------------------------------------


def monotone(call, case, out):
    x = case.args[0]
    if x.size > 1:
        order = np.argsort(x.reshape(-1), kind="stable")
        assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "must be monotone in the input"


# ---- used by quantization.floats, quantization.mx -------------------------------------------------------------------

STE = "Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432"


def float_format(fmt):
    from reference.quantization.floats import FORMATS

    return FORMATS[fmt]


def decode_codes(codes, fmt):
    from reference.quantization.floats import float_decode

    return float_decode(np.asarray(codes, dtype=np.uint8), fmt)


# ---- used by codecs.gguf, codecs.nibbles, codecs.nvfp4, quantization.codebook, quantization.floats, quantization.mx,
#      quantization.nf4, quantization.packing, quantization.power_of_two


def u8(values):
    return np.array(values, dtype=np.uint8)


# ---- used by quantization.codebook, quantization.nf4, quantization.power_of_two -------------------------------------


def raw_bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


# ---- used by quantization.codebook, quantization.power_of_two -------------------------------------------------------


def same_raw_bits(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(raw_bits(a), raw_bits(b)), what


# ---- used by quantization.observers, quantization.power_of_two ------------------------------------------------------


def plus_zeros(a, what):
    assert not np.any((a == 0) & np.signbit(a)), f"{what}: zeros must be +0.0"


# ---- used by quantization.codebook, quantization.nf4 ----------------------------------------------------------------


def exact_nearest(w, c):
    """Index of the nearest entry by exact rational distance, ties to the lower index."""
    entries = [Fraction(float(v)) for v in c]
    out = []
    for v in w.reshape(-1):
        d = [abs(Fraction(float(v)) - e) for e in entries]
        out.append(d.index(min(d)))
    return np.array(out, dtype=np.uint8).reshape(w.shape)


# ---- used by pruning.lottery, pruning.magnitude, pruning.random, pruning.saliency, pruning.schedules,
#      pruning.slimming, pruning.sparse_formats, pruning.structured


def mask(values):
    return np.array(values, dtype=bool)


# ---- used by pruning.magnitude, pruning.random ----------------------------------------------------------------------


def kept_count(w, sparsity):
    return w.size - round(sparsity * w.size)


# ---- used by pruning.magnitude, pruning.structured ------------------------------------------------------------------


def magnitude_order(w, mask):
    """Every kept |w| >= every pruned |w|, and at the boundary value lower indices are kept first."""
    a = np.abs(w).reshape(-1)
    m = mask.reshape(-1)
    if m.any() and (~m).any():
        assert a[m].min() >= a[~m].max(), "a pruned weight is larger than a kept one"
        tied = np.flatnonzero(a == a[m].min())
        assert np.all(np.diff(m[tied].astype(int)) <= 0), "among ties a higher index was kept over a lower one"


COUNT_RULE = "Pruned count k = round_half_even(sparsity * n) in float64, as torch.nn.utils.prune."


# ---- used by pruning.regularization, pruning.slimming ---------------------------------------------------------------

LIU = "Liu et al., 2017. Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519"


def to_float32(x):
    """A float64 value rounded once to float32 (inf beyond the range), as a Python float."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def plus_zeros_float32(out, what):
    a = np.asarray(out, dtype=np.float32)
    assert not np.any(bits_of(a) == np.uint32(0x80000000)), f"{what}: a zero of the result is -0.0"


PLUS_ZERO = "Every zero of the result is +0.0."
STRENGTH = "lam and lr are real numbers >= 0 (negative, NaN or infinite ones are rejected)."


# ---- used by pruning.lottery, pruning.saliency ----------------------------------------------------------------------

TIE_RULE = "The largest scores are kept (keep_largest); equal scores go to the lower flat index; +0.0 and -0.0 tie."


def ranked(scores, keep):
    """Every kept score >= every pruned one; among scores equal to the smallest kept one, lower indices kept first."""
    s, k = scores.reshape(-1), keep.reshape(-1)
    assert k.dtype == bool
    if k.any() and (~k).any():
        assert s[k].min() >= s[~k].max(), "a pruned score is larger than a kept one"
        tied = np.flatnonzero(s == s[k].min())
        assert np.all(np.diff(k[tied].astype(int)) <= 0), "among ties a higher index was kept over a lower one"


def kept(n, sparsity):
    return n - round(sparsity * n)


# ---- used by pruning.saliency, pruning.sparse_formats ---------------------------------------------------------------


def same_float32_bits(a, b, what):
    """Same dtype, shape and bits (floats compared as bit patterns, so -0.0 != +0.0)."""
    assert a.dtype == b.dtype and a.shape == b.shape, what
    bits = (lambda v: v.view(np.uint32)) if a.dtype == np.float32 else (lambda v: v)
    assert np.array_equal(bits(a), bits(b)), what
