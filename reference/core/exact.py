"""Exact sums and products: the exact real value of a sum, a dot product or a matrix product, rounded once.

Everything here computes with Python integers, which are exact and unbounded: a float64 is an integer multiple of
$2^{-1074}$ (the smallest subnormal), so a sum of float64 values is an integer in units of $2^{-1074}$ and a sum of
products of two float64 values an integer in units of $2^{-2148}$. The integer is rounded once, to nearest with
ties to even, by `_round`. Slow, and obviously right: the torch backend is checked against it bit for bit.

The exact sum also has a public intermediate form, the **state** (`exact_sum_state`): the exact sum as a
fixed-point integer in 68 limbs of 32 bits. The states of the pieces of a tensor add up, limb by limb, in any order
and on any number of processes, to a state of the whole, so a sharded or batched sum rounds to the same float64 as
the unsplit one.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from reference import _arrays
from reference.common import validate

__all__ = ["exact_sum", "exact_sum_state", "exact_sum_combine", "exact_sum_round", "exact_dot", "exact_matmul",
           "exact_gram"]  # fmt: skip

_FLOATS = ("float32", "float64")
UNIT = 1074  # every float64 is an integer multiple of 2**-UNIT
# The state: limb k weighs 2**(LIMB_BITS * k - UNIT). Limbs 0 .. LIMBS-2 lie in [0, 2**LIMB_BITS); the top limb is
# signed, in [-TOP_LIMB, TOP_LIMB). So a canonical state holds any integer in [-2**2175, 2**2175) units, that is
# |value| < 2**1101, far past any sum of fewer than 2**77 finite float64 values.
LIMB_BITS = 32
LIMBS = 68
TOP_LIMB = 2**31
# The smallest magnitude that rounds to infinity: 2**1024 - 2**970 is the midpoint between the largest float64 and
# 2**1024, and the tie goes to the even neighbour, 2**1024, which overflows.
OVERFLOW = Fraction(2**1024 - 2**970)


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
    `[2**53, 1, -2**53]` to `1.0`; `[1e308, 1e308]` to `inf`; `[-0.0]` to `+0.0`.

    ??? cite
        Demmel and Hida, 2003. Accurate and Efficient Floating Point Summation. SIAM J. Sci. Comput. 25(4).
    """
    sums, shape = _sums(x, axis)
    return _round_all(sums, -UNIT, shape)


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
        `2**32 - 2**18`, limbs 34 to 66 equal to `2**32 - 1` and the top limb `-1`.
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
    dots = [_dot(_units(ra), _units(rb)) for ra, rb in zip(_rows(a, k), _rows(b, k), strict=True)]
    return _round_all(dots, -2 * UNIT, _without(a.shape, k))


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
    return _matmul(np.swapaxes(x, -1, -2), x)


# ---- exact integers -------------------------------------------------------------------------------------------


def _units(values) -> list[int]:
    """Float values as exact Python ints in units of 2**-1074 (as_integer_ratio gives a power-of-two denominator)."""
    return [(n << UNIT) // d for n, d in (float(v).as_integer_ratio() for v in np.asarray(values).reshape(-1))]


def _dot(p: list[int], q: list[int]) -> int:
    """The exact dot product of two lists of units, in units of 2**-2148."""
    return sum(u * v for u, v in zip(p, q, strict=True))


def _round(n: int, exponent: int) -> float:
    """The float64 nearest to n * 2**exponent, ties to even.

    `float(Fraction)` divides int by int, which CPython rounds correctly (subnormals included), but it raises
    OverflowError past float64's range, where IEEE rounding gives infinity: that case is settled first.
    """
    if n == 0:
        return 0.0  # an exact zero is +0.0
    q = Fraction(n) * Fraction(2) ** exponent
    if abs(q) >= OVERFLOW:
        return math.inf if n > 0 else -math.inf
    return float(q)  # a nonzero value keeps its sign, also when it rounds to zero (-0.0 below -2**-1075)


def _round_all(values: list[int], exponent: int, shape) -> np.ndarray:
    return np.array([_round(n, exponent) for n in values], dtype=np.float64).reshape(shape)


def _sums(x, axis) -> tuple[list[int], tuple]:
    """The exact sums (units of 2**-1074) of `exact_sum(x, axis)`, flat, and the result's shape."""
    x = _arrays.finite_array("x", x, _FLOATS)
    if axis is None:
        return [sum(_units(x))], ()
    k = validate.axis("axis", axis, x.ndim)
    return [sum(_units(r)) for r in _rows(x, k)], _without(x.shape, k)


def _matmul(a, b) -> np.ndarray:
    out = np.empty(a.shape[:-1] + (b.shape[-1],), dtype=np.float64)
    for index in np.ndindex(a.shape[:-2]):
        rows = [_units(r) for r in a[index]]
        cols = [_units(c) for c in b[index].T]
        for i, row in enumerate(rows):
            out[index + (i,)] = [_round(_dot(row, col), -2 * UNIT) for col in cols]
    return out


def _rows(x, k) -> np.ndarray:
    """`x` with axis `k` moved last, as a 2-d array with one row per output."""
    a = np.moveaxis(x, k, -1)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _without(shape, k) -> tuple:
    return tuple(s for i, s in enumerate(shape) if i != k)


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
