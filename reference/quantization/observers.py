"""Observers and calibration as pure functions: running min-max (plain and exponential moving average) with
explicit state, percentile and MSE-optimal clipping ranges; per tensor or per channel.

An observer takes the batch `x` and the previous `state` (`None` before the first batch) and returns the new
state `(min_val, max_val)`; nothing is stored anywhere else. Feed the state to `qparams_from_range`.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum

__all__ = ["minmax_observer", "ema_minmax_observer", "percentile_amax", "mse_amax"]

TINY = np.float32(2.0**-126)


def minmax_observer(x, state=None, *, axis=None):
    r"""Running minimum and maximum: the state after one more batch.

    $$ m' = \min(m, \min x), \qquad M' = \max(M, \max x); \qquad \text{first batch: } (\min x, \max x) $$

    With `axis=k` the statistics are per channel: one per index along axis `k`, over all other axes.

    **Arguments:**

    - `x`: a float32 array, finite, with at least one element (per channel).
    - `state`: `None` before the first batch, else the `(min_val, max_val)` this function returned: two float32
      arrays of the statistic shape (`()` per tensor, `(x.shape[k],)` per channel), finite,
      `min_val <= max_val`.
    - `axis`: `None` (per tensor) or an axis of `x` (per channel).

    **Returns:**

    The new state `(min_val, max_val)`: a tuple of two float32 arrays of the statistic shape.

    !!! note
        A zero statistic is `+0.0` (minimum and maximum do not order $-0$ and $+0$, and libraries differ).
        This is torch.ao's `MinMaxObserver` / `PerChannelMinMaxObserver` with its initial $(+\infty, -\infty)$
        state written as `None`.

    Example: two batches, one range per column (`axis=0`):

        >>> state = minmax_observer(np.float32([[1, -2], [3, 0]]), axis=0)
        >>> state
        (array([-2.,  0.], dtype=float32), array([1., 3.], dtype=float32))
        >>> minmax_observer(np.float32([[0, 5], [-1, 1]]), state, axis=0)
        (array([-2., -1.], dtype=float32), array([5., 3.], dtype=float32))

    ??? cite "Jacob et al., 2018"
        Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference. CVPR.
        arXiv:1712.05877
    """
    x = _arrays.finite_array("x", x)
    lo, hi = _batch_minmax(x, axis)
    if state is None:
        return lo, hi
    old_lo, old_hi = _check_state(state, lo.shape, axis)
    return _plus_zero(np.minimum(old_lo, lo)), _plus_zero(np.maximum(old_hi, hi))


def ema_minmax_observer(x, state=None, *, averaging_constant=0.01, axis=None):
    r"""Exponential moving average of the batch minimum and maximum, in torch.ao's float32 arithmetic.

    $$ m' = \operatorname{fl}_{32}\Big(m + \operatorname{fl}_{32}\big(c \cdot \operatorname{fl}_{32}(\min x - m)
       \big)\Big), \qquad \text{the same for } M; \qquad \text{first batch: } (\min x, \max x) $$

    with $c$ = `float32(averaging_constant)`: three float32 operations in this order (subtract, multiply,
    add), as torch.ao's `MovingAverageMinMaxObserver` writes `min_val + c * (min_val_cur - min_val)`.

    **Arguments:**

    - `x`, `axis`: as for `minmax_observer`.
    - `state`: `None` before the first batch, else the `(min_val, max_val)` this function returned: two finite
      float32 arrays of the statistic shape (in either order, see the note).
    - `averaging_constant`: $c$, a real number in $(0, 1]$; torch.ao's default 0.01.

    **Returns:**

    The new state `(min_val, max_val)`: a tuple of two float32 arrays of the statistic shape.

    !!! note
        The batch statistics are those of `minmax_observer` (zeros as `+0.0`). $c$ is rounded to float32
        first: `0.01` is `0.0099999998`. If $\min x - m$ overflows (opposite signs near the float32 limit)
        the new state is infinite, as in torch.ao, and the next call rejects it. The three roundings can carry
        the average an ulp past the batch statistic, so even $c = 1$ need not reproduce it, and the state can
        end with `min_val > max_val`: state `(0, 1)`, batch `[-0.49999997]`, $c = 1$ gives
        `(-0.49999997, -0.5)` ($-0.49999997 - 1$ rounds to $-1.5$). torch.ao does the same; this function
        accepts such a state, `qparams_from_range` does not.

    Example: state `(0, 4)`, batch `[2, 6]`, $c = 0.5$:

        >>> ema_minmax_observer(np.float32([2, 6]), (np.float32(0), np.float32(4)), averaging_constant=0.5)
        (array(1., dtype=float32), array(5., dtype=float32))

    ??? cite "Jacob et al., 2018"
        Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference. CVPR.
        arXiv:1712.05877
    """
    c = validate.real("averaging_constant", averaging_constant, lo=0.0, hi=1.0, lo_open=True)
    x = _arrays.finite_array("x", x)
    lo, hi = _batch_minmax(x, axis)
    if state is None:
        return lo, hi
    old_lo, old_hi = _check_state(state, lo.shape, axis, ordered=False)
    c = np.float32(c)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, as in torch.ao
        new_lo = old_lo + c * (lo - old_lo)
        new_hi = old_hi + c * (hi - old_hi)
    return np.asarray(new_lo, dtype=np.float32), np.asarray(new_hi, dtype=np.float32)


def percentile_amax(x, percentile=99.99, *, axis=None):
    r"""Percentile calibration: the `percentile`-th percentile of $|x|$, linearly interpolated (NumPy's
    default `"linear"` method, Hyndman and Fan's type 7), as a clipping range $[-a, a]$.

    Sort $|x|$ ascending ($v_0 \le \dots \le v_{n-1}$, exact), then in float64:

    $$ h = \operatorname{fl}(\operatorname{fl}(p / 100) \cdot (n - 1)), \quad i = \lfloor h \rfloor, \quad
       g = h - i, \quad d = \operatorname{fl}(v_{i+1} - v_i) $$

    $$ a = \operatorname{fl}_{32}\!\big(\operatorname{fl}(v_i + \operatorname{fl}(d \cdot g))\big) \text{ if }
       g < \tfrac12, \qquad a = \operatorname{fl}_{32}\!\big(\operatorname{fl}(v_{i+1} -
       \operatorname{fl}(d \cdot (1 - g)))\big) \text{ otherwise} $$

    (NumPy's two-sided `_lerp`, which returns $v_{i+1}$ exactly when $g$ is close to 1; $v_{i+1} = v_i$ when
    $i = n - 1$.) $g$ and $1 - g$ are exact; every other step is one IEEE float64 operation, and the result is
    rounded once to float32.

    **Arguments:**

    - `x`: a float32 array, finite, with at least one element (per channel).
    - `percentile`: $p$, a real number in $[0, 100]$; 100 gives $\max |x|$, 0 gives $\min |x|$.
    - `axis`: `None` (per tensor) or an axis of `x` (one amax per index along it).

    **Returns:**

    A float32 array: shape `()` per tensor, `(x.shape[axis],)` per channel, values in $[\min|x|, \max|x|]$.

    !!! note
        NumPy itself interpolates a float32 array in float32 (`b - a`, `* g`, `+` each rounded to float32,
        with $g$ rounded to float32), so `np.percentile` can differ from this in the last bits.

    Example: $|x| = [1, 2, 3, 4, 5]$, $p = 90$: $h = 3.6$, so $a = 5 - 1 \cdot 0.4$ (to float32); $p = 50$
    gives the middle value:

        >>> x = np.float32([1, 2, 3, 4, 5])
        >>> percentile_amax(x, 90), percentile_amax(x, 50)
        (array(4.6, dtype=float32), array(3., dtype=float32))

    ??? cite "Wu et al., 2020"
        Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation.
        arXiv:2004.09602
    """
    p = validate.real("percentile", percentile, lo=0.0, hi=100.0)
    x = _arrays.finite_array("x", x)
    rows = _rows(x, axis)
    v = np.sort(np.abs(rows), axis=1, kind="stable").astype(np.float64)
    n = v.shape[1]
    h = np.float64(p) / np.float64(100) * np.float64(n - 1)
    i = int(np.floor(h))
    g = h - np.float64(i)
    a, b = v[:, i], v[:, min(i + 1, n - 1)]
    d = b - a
    r = a + d * g if g < 0.5 else b - d * (np.float64(1) - g)
    return _shape(r.astype(np.float32), axis)


def mse_amax(x, *, bits=8, grid=100, axis=None):
    r"""MSE-optimal clipping: the candidate range $[-c, c]$ whose symmetric `bits`-bit fake quantization of `x`
    has the least squared error.

    With $A = \max |x|$ and $Q = 2^{b-1} - 1$, for $i = 1, \dots, N$ (`grid`):

    $$ c_i = \operatorname{fl}_{32}\Big(\frac{A \cdot i}{N}\Big), \quad
       s_i = \operatorname{fl}_{32}\Big(\frac{c_i}{Q}\Big), \quad
       q^{(i)} = \operatorname{clip}\big(\operatorname{rne}(\operatorname{fl}_{32}(x / s_i)), -Q-1, Q\big), \quad
       E_i = \operatorname{exact\_sum}\big((q^{(i)} s_i - x)^2\big) $$

    ($c_i$ and $s_i$ are computed in float64 and rounded once, $s_i < 2^{-126}$ becomes 1.0: the scale and
    the codes of `qparams_from_range(-c, c, symmetric=True)` and `quantize` of the affine module.) The
    dequantized value $q s_i$ is taken exactly (float64; it has at most 40 significant bits), so it can neither
    round nor overflow as the float32 `fake_quantize` output can for $c_i$ near the float32 limit; the
    difference and the square are float64 operations. The result is the $c_i$ of the least $E_i$, the first
    (smallest) on ties.

    **Arguments:**

    - `x`: a float32 array, finite, with at least one element (per channel).
    - `bits`: an int in `[2, 16]`.
    - `grid`: the number of candidates $N$, an int in `[1, 10000]`.
    - `axis`: `None` (per tensor) or an axis of `x` (one search per index along it).

    **Returns:**

    A float32 array: shape `()` per tensor, `(x.shape[axis],)` per channel; values in $[0, \max|x|]$.
    An all-zero `x` gives `+0.0`.

    Example: `x = [1, 1, 1, 1, 1, 1, 5]`, `bits=3` ($Q = 3$, codes $-4 \ldots 3$), `grid=5`: $c = 5$
    ($s = 5/3$) puts the ones on $5/3$ (error $6 \cdot (2/3)^2 \approx 2.67$); $c = 4$ ($s = 4/3$) puts them on
    $4/3$ and clips 5 to 4 (error $6/9 + 1 \approx 1.67$); $c = 3$ keeps the ones exact but clips 5 to 3
    (error 4). The search returns 4:

        >>> mse_amax(np.float32([1, 1, 1, 1, 1, 1, 5]), bits=3, grid=5)
        array(4., dtype=float32)

    ??? cite "Wu et al., 2020"
        Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation.
        arXiv:2004.09602
    """
    bits = validate.integer("bits", bits, lo=2, hi=16)
    grid = validate.integer("grid", grid, lo=1, hi=10000)
    x = _arrays.finite_array("x", x)
    rows = _rows(x, axis)
    q_max = 2 ** (bits - 1) - 1
    amax = np.abs(rows).max(axis=1).astype(np.float64)
    x64 = rows.astype(np.float64)
    best = np.zeros(rows.shape[0], dtype=np.float32)
    best_error = np.full(rows.shape[0], np.inf)
    for i in range(1, grid + 1):
        c = (amax * np.float64(i) / np.float64(grid)).astype(np.float32)
        s = (c.astype(np.float64) / np.float64(q_max)).astype(np.float32)
        s = np.where(s < TINY, np.float32(1), s).astype(np.float32)[:, None]
        with np.errstate(over="ignore"):  # x / s may overflow to +-inf: it clips below
            q = np.clip(np.rint(rows / s), -q_max - 1, q_max)
        d = q.astype(np.float64) * s.astype(np.float64) - x64  # q * s is exact in float64: no float32 overflow
        error = exact_sum(d * d, axis=1)
        better = error < best_error
        best = np.where(better, c, best)
        best_error = np.where(better, error, best_error)
    return _shape(best, axis)


def _rows(x, axis):
    """`x` as a 2-D array: one row (per tensor) or one row per index along `axis` (per channel)."""
    if axis is None:
        if x.size == 0:
            raise ValueError(f"x has shape {tuple(x.shape)}: the statistics need at least one element")
        return x.reshape(1, -1)
    k = validate.axis("axis", axis, x.ndim)
    if x.size == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: per-channel statistics need at least one element per channel")
    return np.moveaxis(x, k, 0).reshape(x.shape[k], -1)


def _shape(v, axis):
    return np.asarray(v.reshape(()) if axis is None else v)


def _batch_minmax(x, axis):
    rows = _rows(x, axis)
    return _shape(_plus_zero(rows.min(axis=1)), axis), _shape(_plus_zero(rows.max(axis=1)), axis)


def _plus_zero(v):
    """-0.0 -> +0.0, every other value unchanged."""
    return np.asarray(np.where(v == 0, np.float32(0), v).astype(np.float32))


def _check_state(state, shape, axis, ordered=True):
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state must be None or a tuple (min_val, max_val), got {type(state).__name__}")
    why = "axis=None" if axis is None else f"axis={axis}"
    lo = _arrays.shaped("min_val", _arrays.finite_array("min_val", state[0]), shape, why)
    hi = _arrays.shaped("max_val", _arrays.finite_array("max_val", state[1]), shape, why)
    bad = lo > hi
    if ordered and bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"min_val must be <= max_val, got {float(lo.reshape(-1)[i])!r} > {float(hi.reshape(-1)[i])!r} "
            f"at flat index {i}"
        )
    return lo, hi
