"""Registry entries for `reference.posttraining.obs` and its torch twin: gptq_hessian, gptq_damp, gptq_order,
gptq_factor, gptq, sparsegpt.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

GPTQ = (
    "Frantar, Ashkboos, Hoefler and Alistarh, 2023. GPTQ: Accurate Post-Training Quantization for Generative "
    "Pre-trained Transformers. ICLR. arXiv:2210.17323"
)
SPARSEGPT = (
    "Frantar and Alistarh, 2023. SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot. ICML. "
    "arXiv:2301.00774"
)
F = np.float32


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _d(values):
    return np.array(values, dtype=np.float64)


def _bits64(a):
    return [struct.pack("<d", v) for v in np.asarray(a, dtype=np.float64).reshape(-1).tolist()]


def _hessian_is_exact(call, case, out):
    (x,) = case.args
    n, d = x.shape
    assert out.dtype == np.float64 and out.shape == (d, d)
    for i in range(d):
        for j in range(d):
            g = float(sum(Fraction(float(x[r, i])) * Fraction(float(x[r, j])) for r in range(n)))  # exact, rounded once
            want = (np.float64(g) * 2) / np.float64(n)
            assert _bits64(out[i, j]) == _bits64(want), f"H[{i},{j}] = {out[i, j]!r}, fl64(2 G / n) = {want!r}"


def _damping(call, case, out):
    (h,) = case.args
    damped, dead = out
    p = case.kwargs.get("percdamp", 0.01)
    assert dead.dtype == bool and np.array_equal(dead, np.diag(h) == 0)
    off = ~np.eye(h.shape[0], dtype=bool)
    assert _bits64(damped[off]) == _bits64(h[off]), "off-diagonal entries unchanged"
    diag = np.where(dead, 1.0, np.diag(h))
    mean = float(sum(Fraction(v) for v in diag.tolist())) / h.shape[0]  # exact sum rounded once, then one division
    lam = np.float64(p) * np.float64(mean)
    assert _bits64(np.diag(damped)) == _bits64(diag + lam), "diag = fl64(diag + fl64(p * mean))"


def _stable_order(call, case, out):
    (h,) = case.args
    diag = np.diag(h)
    assert out.dtype == np.int64 and sorted(out.tolist()) == list(range(diag.size)), "a permutation"
    for a, b in zip(out[:-1].tolist(), out[1:].tolist(), strict=True):
        assert diag[a] > diag[b] or (diag[a] == diag[b] and a < b), "descending, ties to the lower index"


def _upper_factor(call, case, out):
    assert out.dtype == np.float64 and np.all(np.tril(out, -1) == 0) and np.all(np.diag(out) > 0)


def _group_layout(case, out, g_idx, scale, zero_point, codes, qmin, qmax):
    w = case.args[0]
    d = w.shape[1]
    g = case.kwargs.get("group_size") or d
    assert g_idx.dtype == np.int32 and g_idx.shape == (d,)
    assert np.bincount(g_idx, minlength=d // g).tolist() == [g] * (d // g), "every group has group_size columns"
    assert scale.shape == zero_point.shape == (w.shape[0], d // g)
    assert codes.dtype == np.int32 and codes.min(initial=qmin) >= qmin and codes.max(initial=qmax) <= qmax


def _dequantized(out):
    """Each column's codes dequantized with its group's scale and zero point (`dequantize`, per output row)."""
    from reference.quantization.affine import dequantize

    cols = [dequantize(out.codes[:, c], out.scale[:, g], out.zero_point[:, g], axis=0) for c, g in enumerate(out.g_idx)]
    return np.stack(cols, axis=1) if cols else np.zeros(out.codes.shape, np.float32)


def _gptq_consistent(call, case, out):
    from reference.quantization.affine import integer_range

    kw = case.kwargs
    qmin, qmax = integer_range(kw["bits"], True, kw.get("symmetric", False))
    _group_layout(case, out, out.g_idx, out.scale, out.zero_point, out.codes, qmin, qmax)
    deq = _dequantized(out)
    assert out.weight.tobytes() == deq.tobytes(), "weight = dequantize(codes) with each column's group"
    assert sorted(out.perm.tolist()) == list(range(case.args[0].shape[1]))
    other = call(Case(case.args, {**kw, "block_size": 1 if kw.get("block_size") != 1 else 7}))
    assert all(np.array_equal(a, b) and a.tobytes() == b.tobytes() for a, b in zip(out, other, strict=True)), (
        "the block size changes no bit"
    )


def _sparsegpt_consistent(call, case, out):
    from reference.pruning.magnitude import pruned_count
    from reference.quantization.affine import integer_range

    w = case.args[0]
    kw = case.kwargs
    out_f, d = w.shape
    assert out.mask.dtype == bool and out.mask.shape == w.shape
    assert np.all(out.weight[~out.mask].view(np.uint32) == 0), "pruned weights are +0.0"
    if "sparsity" in kw:
        b = kw.get("blocksize", 128)
        for c in range(0, d, b):
            block = out.mask[:, c : c + b]
            assert block.size - int(block.sum()) == pruned_count(kw["sparsity"], block.size), "pruned count per block"
    else:
        kept = out.mask.reshape(out_f, d // kw["m"], kw["m"]).sum(axis=2)
        assert np.all(kept == kw["m"] - kw["n"]), "m - n kept in every group of m"
    if "bits" in kw:
        qmin, qmax = integer_range(kw["bits"], True, kw.get("symmetric", False))
        _group_layout(case, out, out.g_idx, out.scale, out.zero_point, out.codes, qmin, qmax)
        deq = _dequantized(out)
        assert np.array_equal(deq[~out.mask].view(np.uint32), np.zeros(int((~out.mask).sum()), np.uint32))
        assert out.weight[out.mask].tobytes() == deq[out.mask].tobytes(), "kept weights are dequantized codes"
    else:
        assert out.codes is None and out.scale is None


def _gptq_golden(weight, codes, scale, zero_point, g_idx, perm):
    from reference.posttraining.obs import GPTQResult

    i32 = np.int32
    return GPTQResult(_a(weight), _a(codes, i32), _a(scale), _a(zero_point, i32), _a(g_idx, i32), _a(perm, np.int64))


def _sparse_golden(weight, mask):
    from reference.posttraining.obs import SparseGPTResult

    return SparseGPTResult(_a(weight), np.array(mask), None, None, None, None)


def _sparse_quant_golden(weight, mask, codes, scale, zero_point, g_idx):
    from reference.posttraining.obs import SparseGPTResult

    i32 = np.int32
    return SparseGPTResult(_a(weight), np.array(mask), _a(codes, i32), _a(scale), _a(zero_point, i32), _a(g_idx, i32))


_H2 = _d([[1.0, 0.5], [0.5, 1.0]])
_S = F(0.2) / F(3)  # the float32 scale of the range [0, 0.2] on the codes [-2, 1]
_U2 = "U = upper Cholesky factor of H^-1 = [[2/sqrt(3), -1/sqrt(3)], [0, 1]]"
LAYER_SEMANTICS = (
    "Column k's value when reached: fl32(exact(W0[:, k] - sum_{j<k} e_j U[j, k])): the exact sum rounded once.",
    "e_k = fl64(fl64(w_k - q_k) / U[k, k]); U = gptq_factor of the damped Hessian (dead columns of W0 are +0.0).",
    "Computed as a float64 approximation whose rigorous error bound proves the float32 rounding; the rare "
    "entries it cannot settle are computed exactly (exact_dot): the result never depends on the BLAS or block.",
)


ENTRIES = [
    Entry(
        name="gptq_hessian",
        family="quantization",
        module="posttraining.obs",
        summary="The calibration Hessian H = fl64(2 exact_gram(X) / n) of GPTQ and SparseGPT.",
        strategy=S.hessian_cases,
        semantics=(
            "G = exact_gram(X): every entry the exact sum of products, rounded once to float64.",
            "H = fl64(2 G / n): 2G is exact, then one IEEE division by the number of rows n.",
            "A function of the set of rows: batch size, order, device and sharding change no bit.",
        ),
        invariants=(Invariant("fl64(2 G / n) with G exact, by Fractions", _hessian_is_exact),),
        golden=(
            Golden(Case((_a([[1, 2], [3, 4]]),)), _d([[10, 14], [14, 20]]), "G = [[10, 14], [14, 20]]; 2G / 2 = G"),
            Golden(
                Case((_a([[0, 1], [0, -1], [0, 3]]),)),
                _d([[0, 0], [0, 22 / 3]]),
                "a dead column: zeros; 2 * 11 / 3 rounded once",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([[1.0, np.nan]]),)), ValueError, "x must be finite, got nan at flat index 1"),
            Bad(Case((_a([1.0, 2.0]),)), ValueError, "x must have at least 2 dimensions"),
            Bad(Case((_a(np.zeros((0, 3))),)), ValueError, "the Hessian needs at least one calibration row"),
            Bad(Case((_d([[1.0]]),)), TypeError, "x must have dtype float32, got float64"),
        ),
        paper=GPTQ,
    ),
    Entry(
        name="gptq_damp",
        family="quantization",
        module="posttraining.obs",
        summary="Dead inputs (H_jj = 0) set to 1, then percdamp times the exact mean of the diagonal added.",
        strategy=lambda: S.hessian_matrix_cases(with_percdamp=True),
        semantics=(
            "dead = diag(H) == 0; those diagonal entries become 1 (GPTQ also zeroes the weight columns).",
            "lambda = fl64(percdamp * fl64(exact_sum(diag) / d)) over the fixed diagonal; H_jj = fl64(H_jj + lambda).",
            "Off-diagonal entries are unchanged.",
        ),
        invariants=(Invariant("dead mask, diagonal and the rest", _damping),),
        golden=(
            Golden(
                Case((_d([[0, 0], [0, 4]]), 0.5)),
                (_d([[2.25, 0], [0, 5.25]]), np.array([True, False])),
                "diag [1, 4] after the dead fix, mean 2.5, lambda 1.25",
            ),  # fmt: skip
            Golden(Case((_H2,), {"percdamp": 0.0}), (_H2, np.array([False, False])), "no damping: unchanged"),
        ),
        bad=(
            Bad(Case((_d([[1, 2], [3, 1]]),)), ValueError, "h must be symmetric"),
            Bad(Case((_d([[1, 0, 0], [0, 1, 0]]),)), ValueError, "h must be a non-empty square matrix"),
            Bad(Case((_d([[-1.0]]),)), ValueError, "h has a negative diagonal entry -1.0 at column 0"),
            Bad(Case((_H2, -0.5)), ValueError, "percdamp must be in [0.0, 1000000.0], got -0.5"),
            Bad(Case((_a([[1.0]]),)), TypeError, "h must have dtype float64, got float32"),
        ),
        paper=GPTQ,
    ),
    Entry(
        name="gptq_order",
        family="quantization",
        module="posttraining.obs",
        summary="GPTQ's act-order: the columns by decreasing Hessian diagonal, ties to the lower index.",
        strategy=S.hessian_matrix_cases,
        semantics=(
            "A stable sort of diag(H), descending: equal entries keep their index order (the paper's code "
            "uses an unstable argsort).",
        ),  # fmt: skip
        invariants=(Invariant("descending, ties ascending", _stable_order),),
        golden=(
            Golden(Case((np.diag(_d([1, 3, 3, 2])),)), np.array([1, 2, 3, 0]), "3, 3 keep their order, then 2, then 1"),
        ),
        bad=(Bad(Case((_d([[1.0, np.inf], [np.inf, 1.0]]),)), ValueError, "h must be finite"),),
        paper=GPTQ,
    ),
    Entry(
        name="gptq_factor",
        family="quantization",
        module="posttraining.obs",
        summary="U, the upper Cholesky factor of H^-1: cholesky, cholesky_inverse, cholesky again (exact), transposed.",
        strategy=S.damped_hessian_cases,
        semantics=(
            "L = cholesky(H); M = cholesky_inverse(L) = H^-1 (exactly symmetric); U = cholesky(M)^T.",
            "A factorization that meets a non-positive pivot raises ValueError naming the column and the pivot, and "
            "whether H or the computed H^-1 failed.",
        ),
        invariants=(Invariant("upper triangular, positive diagonal", _upper_factor),),
        golden=(
            Golden(
                Case((np.diag(_d([4, 16])),)), np.diag(_d([0.5, 0.25])), "H^-1 = diag(1/4, 1/16): U = diag(1/2, 1/4)"
            ),
            Golden(
                Case((_H2,)),
                _d([[2 / math.sqrt(3), -1 / math.sqrt(3)], [0, 1]]),
                "H^-1 = [[4/3, -2/3], [-2/3, 4/3]]; its upper factor, each entry correctly rounded",
            ),  # fmt: skip
        ),
        bad=(Bad(Case((_d([[1, 2], [2, 1]]),)), ValueError, "the damped Hessian is not positive definite"),),
        paper=GPTQ,
    ),
    Entry(
        name="gptq",
        family="quantization",
        module="posttraining.obs",
        summary="GPTQ: column-by-column quantization with error feedback through the inverse Hessian, exact.",
        strategy=S.gptq_cases,
        semantics=(
            *LAYER_SEMANTICS,
            "q_k = dequantize(quantize(w_k)): integer_range(bits, signed=True, narrow_range=symmetric), min-max "
            "parameters per output row and group (minmax_qparams, axis=0), ties to even.",
            "Groups of group_size consecutive columns in processing order, parameters from the current values when the "
            "loop reaches the group; static_groups: from W0 in the original order (group of column c is c // g).",
            "act_order: columns by decreasing diag(H) (gptq_order on the dead-fixed, undamped H). block_size is speed only.",
            "Outputs in the original column order: weight, codes, scale and zero_point (out, n_groups), g_idx, perm.",
            "scale_dtype='float16': each group scale rounded to float16 (ties to even) before use, so that the result "
            "is exactly what a GPTQ checkpoint decodes to (gptq_pack, gptq_decode); a scale that rounds to 0 there becomes "
            "float16's smallest subnormal 2**-24, one beyond its range raises ValueError.",
        ),
        invariants=(Invariant("codes, groups, dequantized weight, block size", _gptq_consistent),),
        golden=(
            Golden(
                Case((_a([[0.1, 0.5, -1.0, 0.25]]), np.eye(4)), {"bits": 2, "percdamp": 0.0}),
                _gptq_golden([[0, 0.5, -1, 0]], [[0, 1, -2, 0]], [[0.5]], [[0]], [0, 0, 0, 0], [0, 1, 2, 3]),
                "H = I: U = I, no error reaches another column: round to nearest. Range [-1, 0.5] on [-2, 1]: "
                "scale 0.5, zero 0; 0.1 -> 0, 0.25 -> rne(0.5) = 0, a tie to even",
            ),  # fmt: skip
            Golden(
                Case((_a([[0.0, 1.0, 0.0, 4.0]]), np.eye(4)), {"bits": 2, "group_size": 2, "percdamp": 0.0}),
                _gptq_golden(
                    [[0, 1, 0, 4]], [[-2, 1, -2, 1]], [[1 / 3, 4 / 3]], [[-2, -2]], [0, 0, 1, 1], [0, 1, 2, 3]
                ),
                "groups of 2 columns, each with its own min-max parameters: [0, 1] gets scale 1/3, [0, 4] scale 4/3; "
                "both ends of each range are levels",
            ),  # fmt: skip
            Golden(
                Case((_a([[0.5, -1.0, 0.25, 0.75]]), np.eye(4)), {"bits": 3, "symmetric": True, "percdamp": 0.0}),
                _gptq_golden(
                    [[2 / 3, -1, 1 / 3, 2 / 3]], [[2, -3, 1, 2]], [[1 / 3]], [[0]], [0, 0, 0, 0], [0, 1, 2, 3]
                ),
                "symmetric: codes [-3, 3] (narrow), scale amax / 3, zero 0; 0.5 / (1/3) = 1.5 is a tie: to even, 2",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[0.3, -0.7, 0.9], [0.1, 0.4, -0.2]]), _a([[2, 1, 0.5], [1, 2, 1], [0.5, 1, 2]], np.float64)),
                    {"bits": 2, "percdamp": 0.0, "block_size": 1},
                ),
                _gptq_golden(
                    [[F(0.5333333), F(-0.5333333), F(0.5333333)], [0, 0.4, -0.2]],
                    [[0, -2, 0], [-1, 1, -2]],
                    [[F(0.5333333)], [0.2]],
                    [[-1], [-1]],
                    [0, 0, 0],
                    [0, 1, 2],
                ),
                "lazy blocks of one column give these bits, the same as the default block_size (128): the block "
                "size is speed only; the errors of row 0 move its later columns onto the grid",
            ),  # fmt: skip
            Golden(
                Case((_a([[0.1, 0.2]]), _H2), {"bits": 2, "percdamp": 0.0}),
                _gptq_golden([[F(2) * _S, F(3) * _S]], [[0, 1]], [[_S]], [[-2]], [0, 0], [0, 1]),
                f"{_U2}. Scale 0.2/3, zero -2; 0.1 / scale = 1.5 rounds to 2 (code 0), error e_0 = (0.1 - 0.1333) / "
                "1.1547 = -0.0289, so column 1 becomes 0.2 - e_0 U[0,1] = 0.1833, which rounds to code 1 (3 * scale)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([[1.0, 2.0]]), _H2), {"bits": 1}), ValueError, "bits must be in [2, 8], got 1"),
            Bad(
                Case((_a([[1.0, 2.0]]), _H2), {"bits": 4, "group_size": 3}),
                ValueError,
                "group_size=3 must divide in_features=2",
            ),  # fmt: skip
            Bad(
                Case((_a([[1.0, 2.0, 3.0]]), _H2), {"bits": 4}),
                ValueError,
                "h has shape (2, 2) but w with in_features 3",
            ),
            Bad(Case((_a([[1.0, np.nan]]), _H2), {"bits": 4}), ValueError, "w must be finite"),
            Bad(Case((_a([[1.0, 2.0]]), _H2), {"bits": 4, "block_size": 0}), ValueError, "block_size must be in [1,"),
            Bad(
                Case((_a([[1.0, 2.0]]), _H2), {"bits": 4, "scale_dtype": "bfloat16"}),
                ValueError,
                "scale_dtype must be one of 'float32', 'float16'; got 'bfloat16'",
            ),  # fmt: skip
            Bad(
                Case((_a([[1e6, 2e6]]), _H2), {"bits": 2, "scale_dtype": "float16"}),
                ValueError,
                "is beyond the float16 range",
            ),  # fmt: skip
            Bad(
                Case((_a([[1.0, 2.0]]), _d([[1, 2], [2, 1]])), {"bits": 4, "percdamp": 0.0}),
                ValueError,
                "not positive definite",
            ),  # fmt: skip
        ),
        paper=GPTQ,
        peers=(
            (
                "GPTQ implementations",
                "the column order of act-order comes from an unstable `argsort` on a float32 Hessian and the updates from float32 BLAS: results depend on the block size, the library and the device; here ties go to the lower index and every value is the exact update rounded once.",
            ),
        ),
    ),
    Entry(
        name="sparsegpt",
        family="pruning",
        module="posttraining.obs",
        summary="SparseGPT: one-shot pruning (unstructured or N:M, optionally quantized) with OBS error feedback, exact.",
        strategy=S.sparsegpt_cases,
        semantics=(
            *LAYER_SEMANTICS,
            "Scores fl64(w**2 / fl64(U_jj**2)) of the current values; pruned entries become +0.0.",
            "Unstructured: at each block of blocksize columns keep the n - pruned_count(sparsity, n) largest of the "
            "block's scores, ties to the lower flat index. N:M: at each group of m columns, per row, keep m - n.",
            "With bits: kept entries quantized as gptq's (parameters from the group's current values, pruned or "
            "not); pruned entries get code zero_point (value +0.0).",
        ),
        invariants=(Invariant("mask counts, +0.0, codes", _sparsegpt_consistent),),
        golden=(
            Golden(
                Case((_a([[1, -3, 2, 0.5]]), np.eye(4)), {"n": 2, "m": 4, "percdamp": 0.0}),
                _sparse_golden([[0, -3, 2, 0]], [[False, True, True, False]]),
                "H = I: scores w**2; 2:4 keeps -3 and 2",
            ),  # fmt: skip
            Golden(
                Case((_a([[1, 1, 1, 1]]), np.eye(4)), {"n": 2, "m": 4, "percdamp": 0.0}),
                _sparse_golden([[1, 1, 0, 0]], [[True, True, False, False]]),
                "ties: the lower indices stay",
            ),  # fmt: skip
            Golden(
                Case((_a([[1, -3], [2, 0.5]]), np.eye(2)), {"sparsity": 0.5, "percdamp": 0.0}),
                _sparse_golden([[0, -3], [2, 0]], [[False, True], [True, False]]),
                "one block of 2 x 2 scores [1, 9, 4, 0.25]: keep the 2 largest",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[1.0, -3.0, 2.0, 0.5]]), np.eye(4)),
                    {"n": 2, "m": 4, "percdamp": 0.0, "bits": 2, "group_size": 2},
                ),
                _sparse_quant_golden(
                    [[0, F(-8 / 3), 2, 0]],
                    [[False, True, True, False]],
                    [[0, -2, 1, -2]],
                    [[4 / 3, 2 / 3]],
                    [[0, -2]],
                    [0, 0, 1, 1],
                ),
                "2:4 keeps -3 and 2; 2-bit groups of 2 take min-max parameters from [1, -3] (scale 4/3, zero 0: "
                "-3 -> code -2, -2.667) and [2, 0.5] (scale 2/3, zero -2); pruned entries get the zero point's code",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[1.0, -3.0, 2.0, 0.5]]), np.eye(4)),
                    {"n": 2, "m": 4, "percdamp": 0.0, "bits": 3, "symmetric": True},
                ),
                _sparse_quant_golden(
                    [[0, -3, 2, 0]], [[False, True, True, False]], [[0, -3, 2, 0]], [[1.0]], [[0]], [0, 0, 0, 0]
                ),
                "symmetric 3 bits: codes [-3, 3], scale amax / 3 = 1, zero 0: -3 and 2 are levels",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([[1.0, 2.0]]), _H2), {"sparsity": 0.5, "n": 1, "m": 2}), ValueError, "give either sparsity"),
            Bad(Case((_a([[1.0, 2.0]]), _H2), {}), ValueError, "give either sparsity"),
            Bad(Case((_a([[1.0, 2.0]]), _H2), {"n": 3, "m": 2}), ValueError, "n must be <= m, got n=3, m=2"),
            Bad(
                Case((_a([[1.0, 2.0, 3.0]]), np.eye(3)), {"n": 1, "m": 2}), ValueError, "m=2 must divide in_features=3"
            ),
            Bad(
                Case((_a([[1.0, 2.0]]), _H2), {"sparsity": 0.5, "group_size": 2}),
                ValueError,
                "group_size is only used with bits",
            ),  # fmt: skip
        ),
        paper=SPARSEGPT,
        peers=(
            (
                "SparseGPT's reference code",
                "prunes every score at or below a threshold, so all ties at the threshold go and it may prune more than asked; here the count is exact and ties go to the lower index.",
            ),
        ),
    ),
]
