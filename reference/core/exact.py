"""Exact sums and products: the exact real value of a sum, a dot product or a matrix product, rounded once.

A float64 is an integer multiple of $2^{-1074}$ (the smallest subnormal), so a sum of float64 values is an integer in
units of $2^{-1074}$ and a sum of products of two float64 values an integer in units of $2^{-2148}$; the result is
that integer rounded once, to nearest with ties to even. `reference.core._exact` computes it two ways: with Python
integers (every input), and, for inputs between $2^{-480}$ and $2^{480}$ in magnitude (sums: up to $2^{960}$), with
exact float64 steps (Dekker's product, a cut into high and low parts) and a proof that the rounding is settled, or
`math.fsum` where it is not. The torch backend is checked against both, bit for bit.

The exact sum also has a public intermediate form, the **state** (`exact_sum_state`): the exact sum as a
fixed-point integer in 68 limbs of 32 bits. The states of the pieces of a tensor add up, limb by limb, in any order
and on any number of processes, to a state of the whole, so a sharded or batched sum rounds to the same float64 as
the unsplit one.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core._exact import (
    LIMB_BITS,
    LIMBS,
    SAFE,  # noqa: F401  (public here: the torch backend splits products in the same range)
    TOP_LIMB,
    UNIT,
    dot_rows,
    round_units,
    sum_rows,
    units,
)

__all__ = ["exact_sum", "exact_sum_state", "exact_sum_combine", "exact_sum_round", "exact_dot", "exact_matmul",
           "exact_gram"]  # fmt: skip

_FLOATS = ("float32", "float64")
SUM_SAFE = 2.0**960  # `sum_rows` needs no magnitude above this (`SAFE`: `dot_rows`' float route, per factor)


def exact_sum(x, axis=None):
    r"""The exact sum of float values, rounded once to float64 (to nearest, ties to even).

    $$ \operatorname{exact\_sum}(x) = \operatorname{fl}_{64}\Big(\sum_i x_i\Big) $$

    where $\sum$ is the sum of real numbers (no rounding inside) and $\operatorname{fl}_{64}$ rounds once. The
    result is a function of the multiset of values only: any order, blocking or sharding gives the same bits.

    **Arguments:**

    - `x`: a float32 or float64 array, any shape, finite.
    - `axis`: `None` to sum every element, or one axis to reduce.

    **Returns:**

    A float64 array: 0-d for `axis=None`, else `x.shape` without `axis`.

    !!! note
        A zero sum is `+0.0`, whatever the signs of the zeros summed; the empty sum is `+0.0`. A sum beyond
        float64's range is `+-inf`, as IEEE rounding of the exact value gives (not an error): magnitudes from
        $2^{1024} - 2^{970}$ up round to infinity. NaN and Inf inputs raise `ValueError`.

    Examples: `[1e308, -1e308, 1.0]` sums to `1.0` (a float64 loop gives `1.0` or `0.0` depending on the order);
    `[2**53, 1, -2**53]` to `1.0`; `[1e308, 1e308]` to `inf`; `[-0.0]` to `+0.0`:

        >>> exact_sum(np.float64([1e308, -1e308, 1.0])), exact_sum(np.float64([2.0**53, 1, -2.0**53]))
        (array(1.), array(1.))
        >>> exact_sum(np.float64([1e308, 1e308])), np.signbit(exact_sum(np.float64([-0.0])))
        (array(inf), np.False_)

    ??? cite
        Demmel and Hida, 2003. Accurate and Efficient Floating Point Summation. SIAM J. Sci. Comput. 25(4).
    """
    x = _arrays.finite_array("x", x, _FLOATS)
    k = None if axis is None else validate.axis("axis", axis, x.ndim)
    rows, shape = _rows(x, k), _shape(x, k)
    if rows.size and np.abs(rows).max() > SUM_SAFE:
        return _round_all([sum(units(r)) for r in rows], -UNIT, shape)
    return sum_rows(rows).reshape(shape)


def exact_sum_state(x, axis=None):
    r"""The exact sum as a fixed-point integer: the composable intermediate of `exact_sum`.

    $$ \sum_i x_i = \sum_{k=0}^{67} s_k \, 2^{32 k - 1074}, \qquad 0 \le s_k < 2^{32} \ (k < 67), \quad
       -2^{31} \le s_{67} < 2^{31} $$

    These limbs are unique (the top limb carries the sign, as in two's complement), so the state is a function of
    the exact sum only. States add: the limb-wise integer sum of the states of the pieces of `x` has the value of
    the exact sum of `x`, for any split and in any order. `exact_sum_round` rounds such a sum to `exact_sum(x)`,
    and `exact_sum_combine` brings it back to canonical form; an `all_reduce(SUM)` of states across processes
    followed by `exact_sum_round` gives exactly `exact_sum` of the whole tensor.

    **Arguments:**

    - `x`: a float32 or float64 array, any shape, finite.
    - `axis`: `None` for every element, or one axis.

    **Returns:**

    An int64 array of shape `exact_sum(x, axis).shape + (68,)`.

    !!! note
        Limbs below $2^{32}$ leave 31 bits of headroom in int64: $2^{31}$ states can be added limb by limb before
        rounding. Example: the state of `[1.0]` has limb 33 equal to `2**18` (since $1 = 2^{18} \cdot
        2^{32 \cdot 33 - 1074}$) and every other limb `0`; the state of `[-1.0]` has limb 33 equal to
        `2**32 - 2**18`, limbs 34 to 66 equal to `2**32 - 1` and the top limb `-1`:

            >>> s = exact_sum_state(np.float64([1.0]))
            >>> s.shape, int(s[33]) == 2**18, int(np.count_nonzero(s))
            ((68,), True, 1)
            >>> s = exact_sum_state(np.float64([-1.0]))
            >>> int(s[33]) == 2**32 - 2**18, bool((s[34:67] == 2**32 - 1).all()), int(s[67])
            (True, True, -1)
    """
    sums, shape = _sums(x, axis)
    return _limbs_all(sums, shape)


def exact_sum_combine(states):
    r"""Add states of `exact_sum_state` exactly, and return the canonical state of the total.

    $$ \operatorname{combine}(s^{(1)}, \dots, s^{(m)})
       = \operatorname{state}\Big(\sum_j \operatorname{value}(s^{(j)})\Big) $$

    **Arguments:**

    - `states`: a non-empty list (or tuple) of canonical states: int64 arrays of one shape `(..., 68)`, as
      `exact_sum_state` returns them.

    **Returns:**

    The canonical int64 state of the exact total, shape `(..., 68)`.

    !!! note
        Each state must be canonical (limbs 0 to 66 in $[0, 2^{32})$, the top limb in $[-2^{31}, 2^{31})$), else
        `ValueError` names the first bad limb. A total beyond the state's range ($|v| \ge 2^{1101}$, far past any
        sum of float64 values) raises `ValueError`. Any order or grouping of the states gives the same result.
    """
    arrays = _state_list(states)
    shape = arrays[0].shape[:-1]
    totals = [sum(column) for column in zip(*(_values(s) for s in arrays), strict=True)]
    for i, v in enumerate(totals):
        if not -TOP_LIMB <= v >> (LIMB_BITS * (LIMBS - 1)) < TOP_LIMB:
            raise validate.state_overflow(i)
    return _limbs_all(totals, shape)


def exact_sum_round(state):
    r"""The float64 nearest to the value of a state (ties to even): `exact_sum` from its state.

    $$ \operatorname{exact\_sum\_round}(s) = \operatorname{fl}_{64}\Big(\sum_{k} s_k \, 2^{32 k - 1074}\Big) $$

    **Arguments:**

    - `state`: an int64 array of shape `(..., 68)`. Any int64 limbs are accepted, canonical or not, so the
      limb-wise sum of up to $2^{31}$ canonical states (an `all_reduce(SUM)`) is rounded exactly.

    **Returns:**

    A float64 array of shape `state.shape[:-1]`.

    !!! note
        `exact_sum_round(exact_sum_state(x, axis))` is `exact_sum(x, axis)`, bit for bit. A zero value is `+0.0`;
        values beyond float64's range are `+-inf`.
    """
    state = _state_array("state", state)
    return _round_all(_values(state), -UNIT, state.shape[:-1])


def exact_dot(a, b, axis=-1):
    r"""The exact dot product along one axis, rounded once to float64 (to nearest, ties to even).

    $$ \operatorname{exact\_dot}(a, b) = \operatorname{fl}_{64}\Big(\sum_i a_i \, b_i\Big) $$

    The products and their sum are exact real numbers; only the result is rounded. A product of two float32 values
    is exact in float64; a product of two float64 values needs up to 106 bits (the torch backend splits the 53-bit
    significands into halves, as Dekker and Veltkamp do, in integers, with no fused multiply-add).

    **Arguments:**

    - `a`, `b`: float32 or float64 arrays of one dtype and one shape, at least 1-d, finite.
    - `axis`: the axis to contract (default: the last).

    **Returns:**

    A float64 array of shape `a.shape` without `axis`.

    !!! note
        An exact zero is `+0.0` (so is the empty dot product); a nonzero value keeps its sign when it rounds to
        zero (`-0.0` for a value in $(-2^{-1075}, 0)$, as IEEE rounding gives); beyond float64's range is
        `+-inf`. Products below
        float64's range still count: `exact_dot([2**-1074], [0.75])` is `2**-1074` (the exact value
        $0.75 \cdot 2^{-1074}$ rounds to the nearest subnormal), while `[2**-1074] . [0.5]` is a tie between `0` and
        `2**-1074` and rounds to even, `+0.0`.

    ??? cite
        Ogita, Rump and Oishi, 2005. Accurate Sum and Dot Product. SIAM J. Sci. Comput. 26(6).
    """
    a, b = _pair(a, b)
    k = validate.axis("axis", axis, a.ndim)
    ra, rb = _rows(a, k), _rows(b, k)
    return dot_rows(np.zeros(ra.shape[0]), ra, rb).reshape(_shape(a, k))


def exact_matmul(a, b):
    r"""The matrix product with every entry an exact dot product, rounded once to float64.

    $$ C_{ij} = \operatorname{fl}_{64}\Big(\sum_k A_{ik} \, B_{kj}\Big) = \operatorname{exact\_dot}(A_{i,:}, B_{:,j}) $$

    **Arguments:**

    - `a`: a float32 or float64 array of shape `(..., m, k)`, finite.
    - `b`: an array of the same dtype and shape `(..., k, n)`, with the same leading (batch) dimensions, finite.

    **Returns:**

    A float64 array of shape `(..., m, n)`.

    !!! note
        No blocking, thread count or device changes a bit of the result: each entry is a function of its row and
        column only. `k = 0` gives `+0.0` everywhere. Batch dimensions must be equal (no broadcasting).

    ??? cite
        Ozaki, Ogita, Oishi and Rump, 2012. Error-free transformations of matrix multiplication by using fast
        routines of matrix multiplication and its applications. Numerical Algorithms 59(1).
    """
    a, b = _matrices(a, b)
    return _matmul(a, b)


def exact_gram(x):
    r"""The Gram matrix $X^\top X$, every entry an exact dot product of two columns, rounded once to float64.

    $$ G_{ij} = \operatorname{fl}_{64}\Big(\sum_k X_{ki} \, X_{kj}\Big) $$

    The calibration Hessian of GPTQ-style methods ($X$: activations, one row per token). $G$ is exactly symmetric,
    and equal bit for bit to `exact_matmul(x.T, x)`.

    **Arguments:**

    - `x`: a float32 or float64 array of shape `(..., n, d)`, finite.

    **Returns:**

    A float64 array of shape `(..., d, d)`.

    !!! note
        `n = 0` gives a zero matrix (`+0.0`).
    """
    x = _arrays.finite_array("x", x, _FLOATS)
    if x.ndim < 2:
        raise validate.not_matrix("x", x.shape)
    return _matmul(np.swapaxes(x, -1, -2), x, symmetric=True)


# ---- helpers ----------------------------------------------------------------------------------------------------


def _round_all(values: list[int], exponent: int, shape) -> np.ndarray:
    return np.array([round_units(n, exponent) for n in values], dtype=np.float64).reshape(shape)


def _sums(x, axis) -> tuple[list[int], tuple]:
    """The exact sums (Python ints, units of 2**-1074) of `exact_sum_state(x, axis)`, flat, and the result's shape."""
    x = _arrays.finite_array("x", x, _FLOATS)
    k = None if axis is None else validate.axis("axis", axis, x.ndim)
    return [sum(units(r)) for r in _rows(x, k)], _shape(x, k)


def _matmul(a, b, symmetric=False) -> np.ndarray:
    """Every entry of `a @ b` (batched) by `dot_rows`, a column at a time; with `symmetric` (a Gram matrix), the
    entries below the diagonal are those above it (the same exact dot product)."""
    out = np.zeros(a.shape[:-1] + (b.shape[-1],), dtype=np.float64)
    for index in np.ndindex(a.shape[:-2]):
        left, right = a[index].astype(np.float64), b[index].astype(np.float64)
        for j in range(right.shape[1]):
            rows = j + 1 if symmetric else left.shape[0]
            out[index + (slice(0, rows), j)] = dot_rows(np.zeros(rows), left[:rows], right[:, j])
        if symmetric:
            below = np.tril_indices(out.shape[-1], -1)
            out[index][below] = out[index].T[below]
    return out


def _rows(x, k) -> np.ndarray:
    """`x` as float64 rows `(M, n)`, one per output of a reduction along `k` (`None`: one row of everything)."""
    x = np.asarray(x, dtype=np.float64)
    if k is None:
        return x.reshape(1, x.size)
    a = np.moveaxis(x, k, -1)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _shape(x, k) -> tuple:
    return () if k is None else tuple(s for i, s in enumerate(x.shape) if i != k)


# ---- the state ------------------------------------------------------------------------------------------------


def _limbs_all(values: list[int], shape) -> np.ndarray:
    """Canonical limbs of exact values (units of 2**-1074): `>>` and `&` on Python ints are two's complement."""
    mask = 2**LIMB_BITS - 1
    rows = [[(n >> (LIMB_BITS * k)) & mask for k in range(LIMBS - 1)] + [n >> (LIMB_BITS * (LIMBS - 1))]
            for n in values]  # fmt: skip
    return np.array(rows, dtype=np.int64).reshape(tuple(shape) + (LIMBS,))


def _values(state) -> list[int]:
    """The exact value (units of 2**-1074) of each state in an int64 array `(..., LIMBS)`, flat."""
    return [sum(v << (LIMB_BITS * k) for k, v in enumerate(row)) for row in state.reshape(-1, LIMBS).tolist()]


def _state_array(name, s) -> np.ndarray:
    s = _arrays.array(name, s, ("int64",))
    if s.ndim < 1 or s.shape[-1] != LIMBS:
        raise validate.not_state(name, s.shape, LIMBS)
    return s


def _state_list(states) -> list[np.ndarray]:
    if isinstance(states, np.ndarray):
        raise TypeError("states must be a list of states, got a single array")
    if not isinstance(states, list | tuple):
        raise TypeError(f"states must be a list of states, got {type(states).__name__}")
    if len(states) == 0:
        raise ValueError(f"states must hold at least one state, got an empty {type(states).__name__}")
    arrays = [_state_array(f"states[{i}]", s) for i, s in enumerate(states)]
    for i, s in enumerate(arrays[1:], start=1):
        if s.shape != arrays[0].shape:
            raise validate.shape_mismatch(f"states[{i}]", s.shape, arrays[0].shape, "combining with states[0]")
    for i, s in enumerate(arrays):
        flat = s.reshape(-1)
        limb = np.arange(flat.size) % LIMBS
        top = limb == LIMBS - 1
        bad = np.where(top, (flat < -TOP_LIMB) | (flat >= TOP_LIMB), (flat < 0) | (flat >= 2**LIMB_BITS))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise validate.not_canonical_state(f"states[{i}]", j, LIMBS, int(flat[j]))
    return arrays


# ---- checks -----------------------------------------------------------------------------------------------------


def _pair(a, b):
    a = _arrays.finite_array("a", a, _FLOATS)
    b = _arrays.finite_array("b", b, (a.dtype.name,))
    if b.shape != a.shape:
        raise validate.shape_mismatch("b", b.shape, a.shape, "a dot product with a")
    return a, b


def _matrices(a, b):
    a = _arrays.finite_array("a", a, _FLOATS)
    b = _arrays.finite_array("b", b, (a.dtype.name,))
    for name, m in (("a", a), ("b", b)):
        if m.ndim < 2:
            raise validate.not_matrix(name, m.shape)
    expected = a.shape[:-2] + (a.shape[-1], b.shape[-1])
    if b.shape != expected:
        raise validate.shape_mismatch("b", b.shape, expected, f"a of shape {a.shape}")
    return a, b
