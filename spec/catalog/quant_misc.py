"""Registry entries: power-of-two quantization, codebooks (k-means weight sharing), NF4, observers and
calibration, bit packing."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
LOGQUANT = (
    "Miyashita et al., 2016. Convolutional Neural Networks using Logarithmic Data Representation. arXiv:1603.01025"
)
INQ = (
    "Zhou et al., 2017. Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR. "
    "arXiv:1702.03044"
)
DEEP = (
    "Han et al., 2016. Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and "
    "Huffman Coding. ICLR. arXiv:1510.00149"
)
QLORA = "Dettmers et al., 2023. QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS. arXiv:2305.14314"
JACOB = (
    "Jacob et al., 2018. Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
    "Inference. CVPR. arXiv:1712.05877"
)
WU = (
    "Wu et al., 2020. Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation. "
    "arXiv:2004.09602"
)
MX = "Rouhani et al., 2023. Microscaling Data Formats for Deep Learning. arXiv:2310.10537 (OCP MX v1.0 packing order)"
STE = "Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432"
P4 = {"bits": 4, "emax": 0, "levels": "dense"}  # emin = -6 (INQ's 4-bit levels: emin = -3)
INQ4 = {"bits": 4, "emax": 0}


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _u8(values):
    return np.array(values, dtype=np.uint8)


def _s(v):
    return np.array(v, dtype=np.float32)


def _bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _same(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(_bits(a), _bits(b)), what


def _plus_zeros(a, what):
    assert not np.any((a == 0) & np.signbit(a)), f"{what}: zeros must be +0.0"


# ---- invariants: power of two --------------------------------------------------------------------------------


def _pow2_count(bits, levels):
    """Exponents of a code, from INQ's n2 = n1 + 1 - 2**(b-1) / 2, or the dense 2**(bits-1) - 1."""
    return 2 ** (bits - 1) // 2 if levels == "inq" else 2 ** (bits - 1) - 1


def _pow2_emin(kw):
    return kw["emax"] + 1 - _pow2_count(kw["bits"], kw.get("levels", "inq"))


def _pow2_levels(call, case, out):
    x, kw = case.args[-1], case.kwargs
    emin = _pow2_emin(kw)
    assert out.dtype == np.float32 and out.shape == x.shape
    _plus_zeros(out, "pow2_quantize")
    nz = out != 0
    m, e = np.frexp(np.abs(out[nz]))
    assert np.all(m == 0.5) and np.all((emin <= e - 1) & (e - 1 <= kw["emax"])), "levels are 2**e, emin <= e <= emax"
    assert np.all(np.signbit(out[nz]) == np.signbit(x[nz])), "the sign of a nonzero result is the sign of x"


def _pow2_idempotent(call, case, out):
    _same(out, call(Case((out,), case.kwargs)), "pow2_quantize must be idempotent")


def _pow2_monotone(call, case, out):
    x = case.args[0].reshape(-1)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "pow2_quantize must be monotone"


def _grad_or_zero(call, case, out):
    grad = case.args[0]
    assert np.all((_bits(out) == _bits(grad)) | (_bits(out) == 0)), "the gradient must be the cotangent or +0.0"


def _pow2_range(call, case, out):
    bits, emax = case.args
    count = _pow2_count(bits, case.kwargs.get("levels", "inq"))
    assert out[1] == emax and emax - out[0] + 1 == count and out[0] >= -149


def _pow2_emax_bracket(call, case, out):
    s = Fraction(float(np.max(np.abs(case.args[0]))))
    assert -149 <= out <= 127
    assert Fraction(3, 4) * Fraction(2) ** out <= s, "3/4 * 2**n1 <= max|x|"
    assert out == 127 or s < Fraction(3, 4) * Fraction(2) ** (out + 1), "n1 is the largest such exponent"


def _codes_fit(call, case, out):
    bits = case.kwargs["bits"]
    assert out.dtype == np.uint8 and np.all(out < 2**bits) and not np.any(out == 2 ** (bits - 1)), "codes"


def _pow2_decoded_levels(call, case, out):
    kw = case.kwargs
    emin = _pow2_emin(kw)
    _plus_zeros(out, "pow2_decode")
    m, e = np.frexp(np.abs(out[out != 0]))
    assert np.all(m == 0.5) and np.all((emin <= e - 1) & (e - 1 <= kw["emax"])), "decoded levels"


# ---- invariants: codebooks -----------------------------------------------------------------------------------


def _exact_nearest(w, c):
    """Index of the nearest entry by exact rational distance, ties to the lower index."""
    entries = [Fraction(float(v)) for v in c]
    out = []
    for v in w.reshape(-1):
        d = [abs(Fraction(float(v)) - e) for e in entries]
        out.append(d.index(min(d)))
    return np.array(out, dtype=np.uint8).reshape(w.shape)


def _assign_is_exact_nearest(call, case, out):
    w, c = case.args
    assert out.dtype == np.uint8 and out.shape == w.shape
    assert np.array_equal(out, _exact_nearest(w, c)), "every weight goes to its exactly nearest entry (lower on ties)"


def _kmeans_valid(call, case, out):
    w, k = case.args
    indices, codebook = out
    assert codebook.shape == (k,) and codebook.dtype == np.float32 and indices.shape == w.shape
    assert np.all(codebook[1:] >= codebook[:-1]), "the codebook stays sorted"
    assert np.all((w.min() <= codebook) & (codebook <= w.max())), "centroids lie within [min w, max w]"
    assert np.array_equal(indices, _exact_nearest(w, codebook)), "indices are the exact assignment to the codebook"


def _decode_is_lookup(call, case, out):
    indices, c = case.args
    _same(out, c[indices.astype(np.int64)], "codebook_decode is a table lookup")


def _decode_vjp_sums(call, case, out):
    grad, indices, c = case.args
    assert out.shape == c.shape and out.dtype == np.float32
    for j in np.flatnonzero(np.isfinite(out)):  # a sum beyond the float32 range is +-inf
        members = grad[indices == j]
        exact = sum((Fraction(float(g)) for g in members), Fraction(0))
        bound = sum((abs(Fraction(float(g))) for g in members), Fraction(0)) * Fraction(1, 2**22)
        if members.size == 0:
            assert _bits(out[j : j + 1])[0] == 0, "an entry without weights gets +0.0"
        else:
            assert abs(Fraction(float(out[j])) - exact) <= bound + Fraction(2.0**-149), "per-entry gradient sum"


# ---- invariants: NF4 -----------------------------------------------------------------------------------------


def _nf4_valid(call, case, out):
    from reference.quantization.nf4 import NF4

    x, bs = case.args[0], case.kwargs["block_size"]
    codes, absmax = out
    flat = x.reshape(-1)
    assert codes.shape == x.shape and codes.dtype == np.uint8 and np.all(codes <= 15)
    assert absmax.shape == (-(-flat.size // bs),) and np.all(absmax > 0)
    scale = absmax[np.arange(flat.size) // bs]
    for i in range(0, flat.size, bs):
        block = np.abs(flat[i : i + bs])
        assert absmax[i // bs] == (block.max() if block.max() > 0 else 1), "absmax is max|block| (1 for zeros)"
    u = flat / scale
    assert np.array_equal(codes.reshape(-1), _exact_nearest(u, NF4)), "code = exactly nearest NF4 entry of x/absmax"


def _nf4_dequantize_bounded(call, case, out):
    codes, absmax = case.args
    bs = case.kwargs["block_size"]
    scale = absmax[np.arange(codes.size) // bs].reshape(codes.shape)
    assert out.shape == codes.shape and np.all(np.abs(out) <= scale), "|x| <= absmax"
    assert np.all(_bits(out)[codes == 7] == 0), "code 7 gives +0.0"
    assert np.all(np.signbit(out) == (codes < 7)), "codes 0-6 are negative (-0.0 on underflow), 8-15 positive"


def _double_quantize_error(call, case, out):
    a, bs = case.args[0], case.kwargs["block_size"]
    q, scale, offset = out
    assert q.dtype == np.int8 and np.all(np.abs(q.astype(np.int64)) <= 127) and np.all(scale > 0)
    assert offset.shape == () and scale.shape == (-(-a.size // bs),)
    for i in range(a.size):
        s = Fraction(float(scale[i // bs]))
        err = abs(int(q[i]) * s + Fraction(float(offset)) - Fraction(float(a[i])))
        slack = s * Fraction(1, 10**4) + (abs(Fraction(float(a[i]))) + abs(Fraction(float(offset)))) / 2**22
        assert err <= s / 2 + slack, f"element {i}: reconstruction error beyond half a step"


# ---- invariants: observers -----------------------------------------------------------------------------------


def _rows(x, axis):
    return x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _minmax_bounds(call, case, out):
    (x, state), axis = case.args, case.kwargs["axis"]
    lo, hi = out
    rows = _rows(x, axis)
    lo1, hi1 = lo.reshape(-1), hi.reshape(-1)
    _plus_zeros(lo, "min_val")
    _plus_zeros(hi, "max_val")
    assert np.all(lo1 <= rows.min(axis=1)) and np.all(hi1 >= rows.max(axis=1)), "the state covers the batch"
    if state is None:
        assert np.all(lo1 == rows.min(axis=1)) and np.all(hi1 == rows.max(axis=1)), "first batch: its min and max"
    else:
        assert np.all(lo <= state[0]) and np.all(hi >= state[1]), "the range only grows"


def _ema_between(call, case, out):
    (x, state), axis = case.args, case.kwargs["axis"]
    rows = _rows(x, axis)
    cur = (rows.min(axis=1), rows.max(axis=1))
    for new, old, c in zip(out, state or cur, cur, strict=True):
        new, old = new.reshape(-1), old.reshape(-1)
        ulp = 2 * np.spacing(np.maximum(np.abs(old), np.abs(c)))  # the three roundings can overshoot a little
        ok = ~np.isfinite(new) | ((np.minimum(old, c) - ulp <= new) & (new <= np.maximum(old, c) + ulp))
        assert np.all(ok), "the moving average lies between the old state and the batch statistic, within 2 ulp"


def _percentile_bounds(call, case, out):
    (x, p), axis = case.args, case.kwargs["axis"]
    rows = np.abs(_rows(x, axis))
    v = out.reshape(-1)
    assert np.all((rows.min(axis=1) <= v) & (v <= rows.max(axis=1))), "min|x| <= amax <= max|x|"
    if p == 100:
        assert np.array_equal(v, rows.max(axis=1)), "the 100th percentile is max|x|"
    higher = call(Case((x, min(100.0, p + 7.5)), case.kwargs)).reshape(-1)
    assert np.all(higher >= v), "monotone in the percentile"


def _mse_candidate(call, case, out):
    x, kw = case.args[0], case.kwargs
    rows = np.abs(_rows(x, kw["axis"]))
    amax = rows.max(axis=1).astype(np.float64)
    grid = np.arange(1, kw["grid"] + 1, dtype=np.float64)
    candidates = (amax[:, None] * grid / np.float64(kw["grid"])).astype(np.float32)
    v = out.reshape(-1)
    assert np.all([v[r] in candidates[r] for r in range(v.size)]), "the result is one of the grid candidates"
    assert np.all((0 <= v) & (v <= amax)), "0 <= c <= max|x|"


# ---- invariants: packing -------------------------------------------------------------------------------------


def _packed_size(call, case, out):
    codes, bits = case.args
    assert out.dtype == np.uint8 and out.shape == ((codes.size * bits + 7) // 8,), "ceil(n * bits / 8) bytes"


def _unpack_round_trip(call, case, out):
    from reference.quantization.packing import pack_bits

    packed, bits, count = case.args
    assert out.dtype == (np.uint8 if bits <= 8 else np.uint16), "uint8 codes up to 8 bits, uint16 above"
    assert out.shape == (count,) and np.all(out < 2**bits)
    assert np.array_equal(pack_bits(out, bits), packed), "packing the unpacked codes gives the bytes back"


# ---- entries -------------------------------------------------------------------------------------------------

_X8 = _a([0.75, 0.7, 1.4142135, 1.4142137, 3.0, -0.0078125, 0.0078, 0.72])
_STATE = (_a([-2, 0]), _a([1, 3]))
_NF4_MID = float(F(0.07958029955625534) / F(2))  # exactly half of NF4[8]: the midpoint between codes 7 and 8

ENTRIES = [
    Entry(
        name="pow2_exponent_range",
        family="quantization",
        module="quantization.power_of_two",
        summary="The exponent range [emin, emax] of a bits-bit power-of-two code: INQ's set, or the dense variant.",
        strategy=S.pow2_range_cases,
        semantics=(
            "levels='inq' (default), INQ's set: 1 bit for zero, b - 1 bits for 2**(b-1) signed powers, so "
            "2**(bits-2) exponents: emin = emax + 1 - 2**(bits-2) (INQ's n2 = n1 + 1 - 2**(b-1)/2).",
            "levels='dense': one sign bit; magnitude code 0 is zero, codes 1 .. 2**(bits-1) - 1 are 2**emin .. "
            "2**emax: emin = emax - (2**(bits-1) - 2).",
            "Every level must be a float32 (emin >= -149).",
        ),
        invariants=(Invariant("INQ's 2**(bits-2) or the dense 2**(bits-1) - 1 exponents", _pow2_range),),
        golden=(
            Golden(Case((3, -1)), (-2, -1), "INQ's example: b = 3, n1 = -1 gives n2 = -2"),
            Golden(Case((5, 0)), (-7, 0), "INQ's 5 bits: 8 exponents"),
            Golden(Case((5, 0), {"levels": "dense"}), (-14, 0), "dense 5 bits: 15 exponents"),
            Golden(Case((4, 0)), (-3, 0), "INQ: levels 0, +-2**-3 .. +-1"),
            Golden(Case((4, 0), {"levels": "dense"}), (-6, 0), "dense: levels 0, +-2**-6 .. +-1"),
            Golden(Case((2, 3)), (3, 3), "one nonzero level (ternary)"),
            Golden(Case((2, 3), {"levels": "dense"}), (3, 3), "one nonzero level in both"),
            Golden(Case((8, -86)), (-149, -86), "INQ 8 bits: 64 exponents down to the smallest subnormal"),
            Golden(Case((8, -23), {"levels": "dense"}), (-149, -23), "dense 8 bits: 127 exponents"),
        ),
        bad=(
            Bad(Case((1, 0)), ValueError, "bits must be in [2, 8], got 1"),
            Bad(Case((9, 0)), ValueError, "bits must be in [2, 8], got 9"),
            Bad(Case((4, 128)), ValueError, "emax must be in [-149, 127], got 128"),
            Bad(Case((8, -87)), ValueError, "give emin = -150, below -149"),
            Bad(Case((8, -24), {"levels": "dense"}), ValueError, "give emin = -150, below -149"),
            Bad(Case((4.0, 0)), TypeError, "bits must be an int, got float 4.0"),
            Bad(Case((4, 0), {"levels": "log"}), ValueError, "levels must be one of 'inq', 'dense'; got 'log'"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_emax",
        family="quantization",
        module="quantization.power_of_two",
        summary="INQ's largest exponent floor(log2(4 max|x| / 3)), computed exactly from frexp.",
        strategy=S.pow2_emax_cases,
        semantics=(
            "max|x| = m * 2**E with m in [1, 2): n1 = E + [m >= 1.5], the largest n with 3/4 * 2**n <= max|x|.",
            "n1 = 128 is returned as 127; an all-zero or empty x raises ValueError.",
        ),
        invariants=(Invariant("3/4 * 2**n1 <= max|x| < 3/4 * 2**(n1+1)", _pow2_emax_bracket),),
        golden=(
            Golden(Case((_a([0.75]),)), 0, "4 * 0.75 / 3 = 1 exactly"),
            Golden(Case((_a([-0.7, 0.1]),)), -1, "0.7 = 1.4 * 2**-1"),
            Golden(Case((_a([0.0, 3.0]),)), 2, "3 = 1.5 * 2: rounds up"),
            Golden(Case((_a([3.4e38]),)), 127, "n1 = 128 is clipped"),
            Golden(Case((_a([1e-45]),)), -149, "the smallest subnormal"),
        ),
        bad=(
            Bad(Case((_a([0.0, -0.0]),)), ValueError, "no nonzero element"),
            Bad(Case((_a([]),)), ValueError, "no nonzero element"),
            Bad(Case((_a([np.nan]),)), ValueError, "x must be finite, got nan at flat index 0"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_quantize",
        family="quantization",
        module="quantization.power_of_two",
        summary="Quantize to 0 or +-2**e (e in [emin, emax]), rounding in the linear or the log domain.",
        strategy=S.pow2_cases,
        vjp="pow2_quantize_vjp",
        semantics=(
            "Levels 0 and +-2**e, e in [emin, emax] of pow2_exponent_range(bits, emax, levels=levels): INQ's set "
            "by default, levels='dense' for the sign-magnitude variant with 2**(bits-1) - 1 exponents.",
            "|x| = m * 2**E with m in [1, 2) from frexp (exact; no log2).",
            "linear: the exponent rounds up iff m >= 1.5 (nearer power of two, midpoint up, as INQ).",
            "log: up iff m*m > 2 in float64 (exact, never equal): round(log2|x|) with no ties (m >= 0x3FB504F4).",
            "|x| < 2**(emin-1) (and x = -0.0) flush to +0.0; the rounded exponent is clipped to [emin, emax].",
            "Saturation: |x| above 2**emax gives 2**emax; the sign of x is kept on nonzero results.",
        ),
        invariants=(
            Invariant("levels are 0 or +-2**e, sign kept", _pow2_levels),
            Invariant("idempotent", _pow2_idempotent),
            Invariant("monotone", _pow2_monotone),
        ),
        golden=(
            Golden(Case((_X8,), P4), _a([1, 0.5, 1, 1, 1, -0.015625, 0, 0.5]), "linear: 0.75 up, 0.72 down"),
            Golden(
                Case((_X8,), {**P4, "rounding": "log"}),
                _a([1, 0.5, 1, 1, 1, -0.015625, 0, 1]),
                "log: 0.72 = 1.44 * 2**-1 and 1.44**2 > 2, so up",
            ),
            Golden(
                Case((_X8,), INQ4),
                _a([1, 0.5, 1, 1, 1, 0, 0, 0.5]),
                "INQ's 4 bits, emin = -3: -0.0078125 is below 2**-4 and flushes",
            ),
            Golden(
                Case((_a([0.0625, 0.06249999, -0.1, 0.7]),), INQ4),
                _a([0.125, 0, -0.125, 0.5]),
                "INQ's 4 bits: 0.0625 = 2**(emin-1) goes up to 2**-3, just below flushes",
            ),
            Golden(Case((_a([-0.0, -1e-10, 0.0]),), {"bits": 3, "emax": 0}), _a([0, 0, 0]), "flushed to +0.0"),
            Golden(
                Case((_a([0.5, 0.49999997, -7.0]),), {"bits": 2, "emax": 0}),
                _a([1, 0, -1]),
                "levels {0, +-1}: 0.5 = 2**(emin-1) goes up, just below flushes",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {**P4, "rounding": "nearest"}), ValueError, "rounding must be one of"),
            Bad(Case((_a([np.inf]),), P4), ValueError, "x must be finite, got inf at flat index 0"),
            Bad(Case((_a([1.0], np.float64),), P4), TypeError, "x must have dtype float32, got float64"),
            Bad(Case((_a([1.0]),), {"bits": 9, "emax": 0}), ValueError, "bits must be in [2, 8], got 9"),
            Bad(Case((_a([1.0]),), {**INQ4, "levels": "all"}), ValueError, "levels must be one of 'inq', 'dense'"),
        ),
        paper=f"{LOGQUANT}; {INQ}",
    ),
    Entry(
        name="pow2_quantize_vjp",
        family="quantization",
        module="quantization.power_of_two",
        summary="The straight-through gradient of pow2_quantize; torch's is computed by autograd.",
        strategy=lambda: S.pow2_cases(with_grad=True),
        semantics=(
            "where(saturated, +0.0, grad): saturated iff not flushed and the unclipped rounded exponent > emax.",
            "Flushed values and values clipped up to 2**emin pass the gradient.",
        ),
        invariants=(Invariant("grad or +0.0", _grad_or_zero),),
        golden=(
            Golden(
                Case((_a([1, 1, 1, 1]), _a([1.4999999, 1.5, 1.4142137, -100.0])), P4),
                _a([1, 0, 1, 0]),
                "linear, emax 0: 1.5 rounds to 2 and saturates",
            ),
            Golden(
                Case((_a([1, 1, 1]), _a([1.4142135, 1.4142137, 1e-30])), {**P4, "rounding": "log"}),
                _a([1, 0, 1]),
                "log: just above sqrt(2) rounds to 2; flushed values pass",
            ),
        ),
        bad=(Bad(Case((_a([1, 1]), _a([1.0])), P4), ValueError, "grad has shape (2,) but x needs shape (1,)"),),
        paper=STE,
    ),
    Entry(
        name="pow2_encode",
        family="quantization",
        module="quantization.power_of_two",
        summary="Sign-magnitude uint8 codes of pow2_quantize(x).",
        strategy=S.pow2_cases,
        semantics=(
            "code = 2**(bits-1) * [y < 0] + (0 if y = 0 else e - emin + 1) for y = pow2_quantize(x) = +-2**e.",
            "Zero is always code 0, never the negative-zero code 2**(bits-1).",
            "INQ's levels (default) use magnitude codes 0 .. 2**(bits-2) only; the dense variant uses them all.",
        ),
        invariants=(Invariant("codes fit the width", _codes_fit),),
        golden=(
            Golden(Case((_a([1.0, -0.5, 0.0, 0.015625, -0.0, -100.0]),), P4), _u8([7, 14, 0, 1, 0, 15]), "dense"),
            Golden(Case((_a([1.0, -0.5, 0.0, 0.125, -0.0, -100.0]),), INQ4), _u8([4, 11, 0, 1, 0, 12]), "INQ's"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {**P4, "emax": -146}), ValueError, "give emin = -152, below -149"),
            Bad(Case((_a([1.0]),), {"bits": 8, "emax": -87}), ValueError, "give emin = -150, below -149"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_decode",
        family="quantization",
        module="quantization.power_of_two",
        summary="Values of sign-magnitude power-of-two codes.",
        strategy=S.pow2_decode_cases,
        semantics=(
            "m = code mod 2**(bits-1), s = code >> (bits-1): (-1)**s * 2**(emin + m - 1), or +0.0 for m = 0.",
            "Both zero codes (0 and 2**(bits-1)) decode to +0.0.",
            "m must name a level: m <= emax - emin + 1 (INQ's codes above 2**(bits-2) are rejected).",
        ),
        invariants=(Invariant("decoded levels", _pow2_decoded_levels),),
        golden=(
            Golden(Case((_u8([7, 14, 0, 1, 8, 15]),), P4), _a([1, -0.5, 0, 0.015625, 0, -1]), "dense"),
            Golden(Case((_u8([4, 11, 0, 1, 8, 12]),), INQ4), _a([1, -0.5, 0, 0.125, 0, -1]), "INQ's"),
        ),
        bad=(
            Bad(Case((_u8([16]),), P4), ValueError, "codes must be in [0, 15], got 16 at flat index 0"),
            Bad(Case((_a([1], np.int32),), P4), TypeError, "codes must have dtype uint8, got int32"),
            Bad(
                Case((_u8([4, 13]),), INQ4),
                ValueError,
                "codes mod 2**(bits-1) must be in [0, 4], got 5 at flat index 1",
            ),
        ),
        paper=INQ,
    ),
    Entry(
        name="kmeans_codebook",
        family="quantization",
        module="quantization.codebook",
        summary="Deterministic 1-D k-means weight sharing (Deep Compression): linear init, fixed iterations.",
        strategy=S.kmeans_cases,
        semantics=(
            "Init c_j = float32((lo * (k-1-j) + hi * j) / (k-1)) in float64 (exact at both ends); lo, hi = min, max w.",
            "Exactly `iterations` steps: assign (codebook_assign, exact, ties to the lower index), then update.",
            "Update: c_j = float32(tree_mean of its members in flat order); an empty cluster keeps c_j.",
            "Returns (uint8 indices shaped like w, float32 codebook of k entries, sorted ascending).",
        ),
        invariants=(Invariant("sorted codebook, exact assignment", _kmeans_valid),),
        golden=(
            Golden(
                Case((_a([0, 1, 2, 10, 11, 12]), 2), {"iterations": 3}),
                (_u8([0, 0, 0, 1, 1, 1]), _a([1, 11])),
                "init [0, 12]; means 1 and 11",
            ),
            Golden(
                Case((_a([0, 0, 0, 9]), 3), {"iterations": 1}),
                (_u8([0, 0, 0, 2]), _a([0, 4.5, 9])),
                "the empty middle cluster keeps 4.5",
            ),
            Golden(Case((_a([5, 5, 5]), 3), {"iterations": 2}), (_u8([0, 0, 0]), _a([5, 5, 5])), "equal entries"),
            Golden(Case((_a([[0], [3]]), 4), {"iterations": 0}), (_u8([[0], [3]]), _a([0, 1, 2, 3])), "init only"),
            Golden(
                Case((_a([-(2.0**52), -0.5]), 2), {"iterations": 0}),
                (_u8([0, 1]), _a([-(2.0**52), -0.5])),
                "the ends are exact (lo + (hi - lo) would give 0)",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), 1)), ValueError, "k must be in [2, 256], got 1"),
            Bad(Case((_a([1.0]), 257)), ValueError, "k must be in [2, 256], got 257"),
            Bad(Case((_a([]), 2)), ValueError, "k-means needs at least one weight"),
            Bad(Case((_a([1.0]), 2), {"iterations": -1}), ValueError, "iterations must be in [0, 10000], got -1"),
            Bad(Case((_a([np.nan]), 2)), ValueError, "w must be finite"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_assign",
        family="quantization",
        module="quantization.codebook",
        summary="Index of the nearest entry of a sorted codebook, decided exactly; ties to the lower index.",
        strategy=S.codebook_assign_cases,
        semantics=(
            "Nearest by exact |w - c|: count midpoints with 2w > c_j + c_j+1 (TwoSum, exact), then the first equal.",
            "Ties go to the lower index; of equal entries only the first is ever chosen.",
            "The codebook must be 1-D, 1 to 256 entries (uint8 indices), finite, sorted ascending.",
        ),
        invariants=(Invariant("exactly nearest, lower index on ties", _assign_is_exact_nearest),),
        golden=(
            Golden(
                Case((_a([0.5]), _a([-(2.0**-60), 1.0]))),
                _u8([1]),
                "true distances 0.5 + 2**-60 and 0.5: float64 |w - c| would tie",
            ),
            Golden(Case((_a([1.2, 1.5, 1.6, -5.0, 100.0]), _a([0, 1, 1, 2]))), _u8([1, 1, 3, 0, 3])),
            Golden(Case((_a([0.5, -0.0]), _a([0, 1]))), _u8([0, 0]), "the tie at 0.5 goes to index 0"),
        ),
        bad=(
            Bad(
                Case((_a([0.5]), _a([1, 0]))),
                ValueError,
                "codebook must be sorted ascending, got codebook[0] = 1.0 > codebook[1] = 0.0",
            ),
            Bad(Case((_a([0.5]), _a([]))), ValueError, "1 to 256 entries (uint8 indices), got shape (0,)"),
            Bad(Case((_a([0.5]), _a([[0, 1]]))), ValueError, "got shape (1, 2)"),
            Bad(Case((_a([0.5]), _a([0, np.nan]))), ValueError, "codebook must be finite, got nan"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_decode",
        family="quantization",
        module="quantization.codebook",
        summary="Shared weights back to values: codebook[indices], differentiable in the codebook.",
        strategy=S.codebook_decode_cases,
        vjp="codebook_decode_vjp",
        semantics=("A table lookup; the codebook may be in any order (fine-tuning can reorder it).",),
        invariants=(Invariant("table lookup", _decode_is_lookup),),
        golden=(Golden(Case((_u8([0, 2, 1, 2]), _a([3, 1, 2]))), _a([3, 2, 1, 2])),),
        bad=(
            Bad(Case((_u8([3]), _a([1, 2, 3]))), ValueError, "indices must be in [0, 2], got 3 at flat index 0"),
            Bad(Case((_a([0], np.int64), _a([1.0]))), TypeError, "indices must have dtype uint8, got int64"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_decode_vjp",
        family="quantization",
        module="quantization.codebook",
        summary="Gradient of codebook_decode for the codebook: per entry, the tree sum of its weights' gradients.",
        strategy=lambda: S.codebook_decode_cases(with_grad=True),
        semantics=(
            "d/dc_j = float32(tree_sum of grad[indices == j] in flat order); an unused entry gets +0.0.",
            "grad must be finite and shaped like indices.",
        ),
        invariants=(Invariant("per-entry sums", _decode_vjp_sums),),
        golden=(Golden(Case((_a([1, 2, 3]), _u8([0, 1, 0]), _a([0.5, 1.5, 2.5]))), _a([4, 2, 0])),),
        bad=(
            Bad(
                Case((_a([1, 2]), _u8([0]), _a([1.0]))), ValueError, "grad has shape (2,) but indices needs shape (1,)"
            ),
        ),
        paper=DEEP,
    ),
    Entry(
        name="nf4_quantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 codes with block-wise absmax scales (QLoRA), nearest entry decided exactly.",
        strategy=S.nf4_quantize_cases,
        semantics=(
            "Blocks: consecutive block_size values of the flattened x (the last may be shorter); absmax = max|x|.",
            "u = float32(x / absmax) (IEEE division, not x * (1/absmax) as bitsandbytes).",
            "code = #{j : 2u > v_j + v_j+1} with exact float64 pair sums: nearest NF4 value, ties to the lower.",
            "An all-zero block gets absmax 1.0 and codes 7. Codes are unpacked uint8 (pack_bits: low nibble first).",
        ),
        invariants=(Invariant("exact nearest NF4 code, absmax", _nf4_valid),),
        golden=(
            Golden(
                Case((_a([0.5, -2.0, 0.0, 1.0]),), {"block_size": 2}),
                (_u8([10, 0, 7, 15]), _a([2, 1])),
                "u = [0.25, -1, 0, 1]",
            ),
            Golden(
                Case((_a([1.0, _NF4_MID, np.nextafter(F(_NF4_MID), F(1))]),), {"block_size": 3}),
                (_u8([15, 7, 8]), _a([1])),
                "exactly between 0 and 0.0795803: the lower code",
            ),
            Golden(Case((_a([0.0, -0.0, 0.0, 4.0]),), {"block_size": 2}), (_u8([7, 7, 7, 15]), _a([1, 4])), "zeros"),
            Golden(Case((_a([]),)), (_u8([]), _a([])), "empty"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"block_size": 0}), ValueError, "block_size must be in [1, 1099511627776], got 0"),
            Bad(Case((_a([np.nan]),)), ValueError, "x must be finite, got nan"),
        ),
        paper=QLORA,
    ),
    Entry(
        name="nf4_dequantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 codes back to float32: NF4[code] * absmax, one float32 product.",
        strategy=S.nf4_dequantize_cases,
        semantics=("x = float32(v[code] * absmax[block]): bitsandbytes' and torchao's dequantization.",),
        invariants=(Invariant("|x| <= absmax", _nf4_dequantize_bounded),),
        golden=(
            Golden(
                Case((_u8([10, 0, 7, 15]), _a([2, 1])), {"block_size": 2}),
                _a([2 * 0.24611230194568634, -2, 0, 1]),
            ),
        ),
        bad=(
            Bad(Case((_u8([16]), _a([1]))), ValueError, "codes must be in [0, 15], got 16"),
            Bad(Case((_u8([1]), _a([0.0]))), ValueError, "absmax must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_u8([1]), _a([-1.0]))), ValueError, "absmax must be > 0, got -1.0"),
            Bad(
                Case((_u8([1, 2, 3, 4]), _a([1])), {"block_size": 2}),
                ValueError,
                "absmax has shape (1,) but 4 values in blocks of 2 needs shape (2,)",
            ),
        ),
        paper=QLORA,
    ),
    Entry(
        name="nf4_double_quantize",
        family="quantization",
        module="quantization.nf4",
        summary="Double quantization of NF4 block scales: subtract the mean, symmetric int8 per block of 256.",
        strategy=S.nf4_double_quantize_cases,
        semantics=(
            "offset = float32(tree_mean(absmax)); d = float32(absmax - offset).",
            "Per block: s = float32(max|d| / 127) in float64 (1.0 if below 2**-126); q = clip(rne(d / s), -127, 127).",
            "Symmetric int8 (as torchao NF4Tensor up to its 128/max scaling), not bitsandbytes' dynamic 8-bit code.",
        ),
        invariants=(Invariant("error at most half a step", _double_quantize_error),),
        golden=(
            Golden(
                Case((_a([1, 2, 3, 4]),), {"block_size": 2}),
                (_a([-127, -42, 42, 127], np.int8), _a([1.5 / 127, 1.5 / 127]), _s(2.5)),
                "mean 2.5; 0.5 * 127 / 1.5 = 42.33",
            ),
            Golden(Case((_a([3, 3, 3]),)), (_a([0, 0, 0], np.int8), _a([1.0]), _s(3.0)), "degenerate scale 1.0"),
        ),
        bad=(
            Bad(Case((_a([1, 0]),)), ValueError, "absmax must be > 0, got 0.0 at flat index 1"),
            Bad(Case((_a([[1.0]]),)), ValueError, "absmax must be 1-D and non-empty, got shape (1, 1)"),
            Bad(Case((_a([]),)), ValueError, "absmax must be 1-D and non-empty, got shape (0,)"),
        ),
        paper=QLORA,
    ),
    Entry(
        name="nf4_double_dequantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 block scales back from their double quantization: q * s + offset in float32.",
        strategy=S.nf4_double_dequantize_cases,
        semantics=("absmax = float32(float32(q * s) + offset): a float32 product, then a float32 sum.",),
        golden=(
            Golden(
                Case((_a([-127, -42, 42, 127], np.int8), _a([1.5 / 127, 1.5 / 127]), _s(2.5)), {"block_size": 2}),
                _a([1.0, 2.003937, 2.996063, 4.0]),
            ),
        ),
        bad=(
            Bad(Case((_a([-128], np.int8), _a([1.0]), _s(0))), ValueError, "q must be in [-127, 127], got -128"),
            Bad(Case((_a([1], np.int16), _a([1.0]), _s(0))), TypeError, "q must have dtype int8, got int16"),
            Bad(Case((_a([1], np.int8), _a([0.0]), _s(0))), ValueError, "scale must be > 0"),
            Bad(
                Case((_a([1], np.int8), _a([1.0]), _a([0.0]))),
                ValueError,
                "offset has shape (1,) but the mean of the scales needs shape ()",
            ),
        ),
        paper=QLORA,
    ),
    Entry(
        name="minmax_observer",
        family="quantization",
        module="quantization.observers",
        summary="Running min-max observer with explicit state, per tensor or per channel.",
        strategy=S.observer_cases,
        semantics=(
            "state None: (min x, max x); else (min(old_min, min x), max(old_max, max x)).",
            "axis=k: one statistic per index along k, over all other axes. Zero statistics are +0.0.",
            "The state must be a tuple of two finite float32 arrays of the statistic shape with min_val <= max_val.",
        ),
        invariants=(Invariant("covers the batch, only grows", _minmax_bounds),),
        golden=(
            Golden(Case((_a([[1, -2], [3, 0]]), None), {"axis": 0}), (_a([-2, 0]), _a([1, 3])), "per row"),
            Golden(Case((_a([[0, 5], [-1, 1]]), _STATE), {"axis": 0}), (_a([-2, -1]), _a([5, 3])), "second batch"),
            Golden(Case((_a([-0.0, -0.0]), None)), (_s(0.0), _s(0.0)), "-0.0 statistics become +0.0"),
        ),
        bad=(
            Bad(Case((_a([1.0]), [_s(0), _s(1)])), TypeError, "state must be None or a tuple (min_val, max_val)"),
            Bad(Case((_a([1.0]), (_s(2), _s(1)))), ValueError, "min_val must be <= max_val, got 2.0 > 1.0"),
            Bad(
                Case((_a([[1.0, 2.0]]), (_s(0), _s(1))), {"axis": 1}),
                ValueError,
                "min_val has shape () but axis=1 needs shape (2,)",
            ),
            Bad(Case((_a([]), None)), ValueError, "the statistics need at least one element"),
            Bad(Case((_a(0.0), None), {"axis": 0}), ValueError, "axis 0 is out of range"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="ema_minmax_observer",
        family="quantization",
        module="quantization.observers",
        summary="Moving-average min-max observer in torch.ao's float32 arithmetic, with explicit state.",
        strategy=lambda: S.observer_cases(ema=True),
        semantics=(
            "state None: (min x, max x); else min' = min + c * (min x - min), three float32 ops in that order.",
            "c = float32(averaging_constant) (default 0.01), in (0, 1]: torch.ao MovingAverageMinMaxObserver.",
            "Overflow of the difference gives an infinite state (as torch.ao), which the next call rejects.",
            "Rounding can overshoot the batch statistic by an ulp and leave min > max; such a state is accepted.",
        ),
        invariants=(Invariant("between the old state and the batch, within 2 ulp", _ema_between),),
        golden=(
            Golden(Case((_a([2, 6]), (_s(0), _s(4))), {"averaging_constant": 0.5}), (_s(1), _s(5))),
            Golden(Case((_a([1]), (_s(0), _s(0)))), (_s(0.01), _s(0.01)), "c = float32(0.01) = 0.0099999998"),
            Golden(Case((_a([3, -1]), None)), (_s(-1), _s(3)), "the first batch"),
            Golden(
                Case((_a([-0.49999997]), (_s(0), _s(1))), {"averaging_constant": 1.0}),
                (_s(-0.49999997), _s(-0.5)),
                "c = 1, yet max' = 1 + float32(-1.49999997) = -0.5 < min': rounding, as torch.ao",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), None), {"averaging_constant": 0}), ValueError, "averaging_constant must be in (0.0"),
            Bad(Case((_a([1.0]), None), {"averaging_constant": 1.5}), ValueError, "got 1.5"),
            Bad(Case((_a([1.0]), (_s(np.inf), _s(1)))), ValueError, "min_val must be finite, got inf"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="percentile_amax",
        family="quantization",
        module="quantization.observers",
        summary="Percentile calibration: the p-th percentile of |x| with NumPy's linear interpolation, in float64.",
        strategy=S.percentile_cases,
        semantics=(
            "v = sorted |x|; h = (p / 100) * (n - 1), i = floor(h), g = h - i, all float64.",
            "g < 0.5: v_i + (v_i+1 - v_i) * g; else v_i+1 - (v_i+1 - v_i) * (1 - g) (NumPy's _lerp); float32 once.",
            "Per tensor (shape ()) or per channel along axis; p in [0, 100].",
        ),
        invariants=(Invariant("within [min|x|, max|x|], monotone in p", _percentile_bounds),),
        golden=(
            Golden(Case((_a([1, -2, 3, -4, 5]), 90)), _s(4.6), "h = 3.6: 5 - 1 * 0.4"),
            Golden(Case((_a([1, -2, 3, -4, 5]), 50)), _s(3), "the median"),
            Golden(Case((_a([1, -2, 3, -4, 5]), 100)), _s(5), "the maximum"),
            Golden(Case((_a([[1, 2], [3, -8]]), 50), {"axis": 0}), _a([1.5, 5.5]), "per channel, g = 0.5"),
        ),
        bad=(
            Bad(Case((_a([1.0]), 100.5)), ValueError, "percentile must be in [0.0, 100.0], got 100.5"),
            Bad(Case((_a([]), 50)), ValueError, "need at least one element"),
        ),
        paper=WU,
    ),
    Entry(
        name="mse_amax",
        family="quantization",
        module="quantization.observers",
        summary="MSE-optimal symmetric clipping range over a fixed grid amax * i / n, per tensor or per channel.",
        strategy=S.mse_cases,
        semantics=(
            "Candidates c_i = float32(amax * i / n), i = 1..n; s_i = float32(c_i / (2**(bits-1) - 1)) (1.0 if tiny).",
            "q = clip(rne(float32(x / s_i)), -2**(bits-1), 2**(bits-1) - 1); error = tree_sum((q * s_i - x)**2), float64.",
            "The least error wins; ties go to the first (smallest) candidate. All-zero x gives +0.0.",
        ),
        invariants=(Invariant("a grid candidate in [0, max|x|]", _mse_candidate),),
        golden=(
            Golden(Case((_a([1, 1, 1, 1, 1, 1, 5]),), {"bits": 3, "grid": 5}), _s(4), "clipping 5 to 4 wins"),
            Golden(
                Case((_a([[1, 1, 1, 1, 1, 1, 5], [0, 0, 0, 0, 0, 0, 0]]),), {"bits": 3, "grid": 5, "axis": 0}),
                _a([4, 0]),
                "per channel; an all-zero channel gives 0",
            ),
            Golden(Case((_a([1, -1]),)), _s(1), "8 bits, 100 candidates: the full range"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"bits": 1}), ValueError, "bits must be in [2, 16], got 1"),
            Bad(Case((_a([1.0]),), {"grid": 0}), ValueError, "grid must be in [1, 10000], got 0"),
            Bad(Case((_a([1.0]),), {"axis": 1}), ValueError, "axis 1 is out of range"),
        ),
        paper=WU,
    ),
    Entry(
        name="pack_bits",
        family="quantization",
        module="quantization.packing",
        summary="Pack 1- to 16-bit codes into bytes, first code in the lowest bits (ONNX, OCP MX order).",
        strategy=S.pack_cases,
        semantics=(
            "One little-endian bit stream: bit t of code i is stream bit i*bits + t = bit (k mod 8) of byte k // 8.",
            "3-bit (and 5, 6, 7, 9 to 16) codes may straddle bytes; the last byte's unused high bits are 0.",
            "Codes are uint8 or uint16 (any width up to 16 bits); 16-bit codes are stored as their little-endian bytes.",
            "ceil(n * bits / 8) bytes; codes read in C order; a code >= 2**bits raises ValueError.",
            "4-bit: first code in the low nibble (ONNX INT4/UINT4, MX); bitsandbytes/torchao NF4 use the high one.",
        ),
        invariants=(Invariant("ceil(n * bits / 8) bytes", _packed_size),),
        golden=(
            Golden(Case((_u8([5, 3, 7]), 3)), _u8([221, 1]), "stream 101 110 111: code 2 straddles"),
            Golden(Case((_u8([1, 2, 3]), 4)), _u8([0x21, 0x03]), "low nibble first, as ONNX"),
            Golden(Case((_u8([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1)), _u8([13, 1])),
            Golden(Case((_u8([[3, 0], [1, 2]]), 2)), _u8([147]), "C order: 3 + 1 * 16 + 2 * 64"),
            Golden(Case((_u8([0, 255, 7]), 8)), _u8([0, 255, 7])),
            Golden(Case((_u8([]), 5)), _u8([]), "no codes, no bytes"),
            Golden(
                Case((np.array([0x1FF, 0x155], dtype=np.uint16), 9)),
                _u8([0xFF, 0xAB, 0x2]),
                "9-bit codes straddle: 1 1111 1111 then 1 0101 0101, low bit first",
            ),
            Golden(Case((np.array([0x1234], dtype=np.uint16), 16)), _u8([0x34, 0x12]), "16 bits: little-endian bytes"),
        ),
        bad=(
            Bad(Case((_u8([1]), 0)), ValueError, "bits must be in [1, 16], got 0"),
            Bad(Case((_u8([1]), 17)), ValueError, "bits must be in [1, 16], got 17"),
            Bad(Case((_u8([4]), 2)), ValueError, "codes must be in [0, 3], got 4 at flat index 0"),
            Bad(Case((np.array([512], dtype=np.uint16), 9)), ValueError, "codes must be in [0, 511], got 512"),
            Bad(Case((_a([1], np.int32), 2)), TypeError, "codes must have dtype uint8 or uint16, got int32"),
        ),
        paper=MX,
    ),
    Entry(
        name="unpack_bits",
        family="quantization",
        module="quantization.packing",
        summary="Unpack count codes of 1 to 16 bits from bytes written by pack_bits.",
        strategy=S.unpack_cases,
        semantics=(
            "The inverse of pack_bits: returns `count` codes, uint8 for up to 8 bits and uint16 above.",
            "Strict: the buffer must be 1-D of exactly ceil(count * bits / 8) bytes, and the padding bits 0.",
        ),
        invariants=(Invariant("round trip", _unpack_round_trip),),
        golden=(
            Golden(Case((_u8([221, 1]), 3, 3)), _u8([5, 3, 7])),
            Golden(Case((_u8([0x21, 0x03]), 4, 3)), _u8([1, 2, 3])),
            Golden(Case((_u8([]), 8, 0)), _u8([])),
            Golden(Case((_u8([0xFF, 0xAB, 0x2]), 9, 2)), np.array([0x1FF, 0x155], dtype=np.uint16), "9 bits: uint16"),
        ),
        bad=(
            Bad(Case((_u8([221]), 3, 3)), ValueError, "packed has shape (1,) but 3 codes of 3 bits need shape (2,)"),
            Bad(Case((_u8([221, 3]), 3, 3)), ValueError, "set padding bit after the last code: stream bit 9"),
            Bad(Case((_u8([]), 3, -1)), ValueError, "count must be in [0, inf], got -1"),
            Bad(Case((_a([1], np.int8), 8, 1)), TypeError, "packed must have dtype uint8, got int8"),
        ),
        paper=MX,
    ),
]
