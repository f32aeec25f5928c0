"""Uniform affine (integer) quantization at every granularity: per tensor, per channel, per group."""

from __future__ import annotations

import numpy as np

from reference import _arrays, _rounding
from reference.common import checks, shapes, validate
from reference.core.rounding import MODES

__all__ = [
    "integer_range",
    "qparams_from_range",
    "minmax_qparams",
    "quantize",
    "dequantize",
    "fake_quantize",
    "fake_quantize_vjp",
]

TINY = np.float32(2.0**-126)  # the smallest normal float32


def integer_range(bits, signed=True, narrow_range=False):
    r"""The integer range $[q_{min}, q_{max}]$ of a `bits`-bit code.

    $$ \text{signed: } [-2^{b-1},\ 2^{b-1} - 1], \qquad \text{unsigned: } [0,\ 2^b - 1] $$

    `narrow_range` drops the lowest code: signed int8 becomes $[-127, 127]$ (symmetric around 0), uint8
    becomes $[1, 255]$ (as TensorFlow's `narrow_range`).

    **Arguments:**

    - `bits`: an int in `[1, 16]`.
    - `signed`: a bool.
    - `narrow_range`: a bool; needs `bits >= 2`.

    **Returns:**

    `(qmin, qmax)`: two Python ints.
    """
    bits = validate.integer("bits", bits, lo=1, hi=16)
    signed = validate.boolean("signed", signed)
    narrow_range = validate.boolean("narrow_range", narrow_range)
    if narrow_range and bits < 2:
        raise ValueError(f"narrow_range needs bits >= 2, got bits={bits}")
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return qmin + int(narrow_range), qmax


def qparams_from_range(min_val, max_val, *, qmin, qmax, symmetric=False):
    r"""Scale and zero point that map a real range onto $[q_{min}, q_{max}]$, elementwise.

    The range is first widened to contain 0, so that 0 is exactly representable:
    $\ell = \min(\text{min\_val}, 0)$, $h = \max(\text{max\_val}, 0)$. Then, in float64 rounded once to float32:

    $$ \text{asymmetric: } s = \frac{h - \ell}{q_{max} - q_{min}}, \quad
       z = \operatorname{clip}\!\big(q_{min} - \operatorname{rne}(\ell / s),\ q_{min}, q_{max}\big) $$

    $$ \text{symmetric: } z = q_{min} + \left\lfloor \tfrac{q_{max} - q_{min} + 1}{2} \right\rfloor, \quad
       s = \frac{\max(-\ell, h)}{q_{max} - z} $$

    Symmetric int8 gives $z = 0$, $s = \text{amax}/127$ (so $\pm$amax land on codes $\pm 127$, not on a .5 tie
    as torch.ao's amax/127.5 does); symmetric uint8 gives $z = 128$, $s = \text{amax}/127$.

    **Arguments:**

    - `min_val`, `max_val`: float32 arrays of one shape, finite, `min_val <= max_val`.
    - `qmin`, `qmax`: the integer range (see `integer_range`); at least 2 codes, 3 for symmetric.
    - `symmetric`: a bool.

    **Returns:**

    `(scale, zero_point)`: a float32 array and an int32 array shaped like `min_val`.

    !!! note "Degenerate ranges"
        A scale below the smallest normal float32 $2^{-126}$ (which includes the all-zero range, $s = 0$) is
        replaced by `1.0`. The zero point is then $q_{min}$ (asymmetric) or the midpoint (symmetric), and every
        value, being within $2^{-126} (q_{max} - q_{min})$ of 0, quantizes to the zero point.
    """
    qmin, qmax = validate.qrange(qmin, qmax)
    symmetric = validate.boolean("symmetric", symmetric)
    min_val = _arrays.finite_array("min_val", min_val)
    max_val = _arrays.shaped("max_val", _arrays.finite_array("max_val", max_val), min_val.shape, "min_val")
    bad = min_val > max_val
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"min_val must be <= max_val, got {float(min_val.reshape(-1)[i])!r} > "
            f"{float(max_val.reshape(-1)[i])!r} at flat index {i}"
        )
    lo = np.minimum(min_val, np.float32(0)).astype(np.float64)
    hi = np.maximum(max_val, np.float32(0)).astype(np.float64)
    if symmetric:
        zero = qmin + (qmax - qmin + 1) // 2
        if qmax - zero < 1:
            raise ValueError(f"symmetric quantization needs at least 3 codes, got qmin={qmin}, qmax={qmax}")
        scale = (np.maximum(-lo, hi) / np.float64(qmax - zero)).astype(np.float32)
        scale = np.where(scale < TINY, np.float32(1), scale)
        return np.asarray(scale), np.full(scale.shape, zero, dtype=np.int32)
    if qmax == qmin:
        raise ValueError(f"quantization needs at least 2 codes, got qmin={qmin}, qmax={qmax}")
    scale = ((hi - lo) / np.float64(qmax - qmin)).astype(np.float32)
    scale = np.where(scale < TINY, np.float32(1), scale)
    zero_point = np.clip(np.float64(qmin) - np.rint(lo / scale.astype(np.float64)), qmin, qmax)
    return np.asarray(scale), np.asarray(zero_point.astype(np.int32))


def minmax_qparams(x, *, qmin, qmax, symmetric=False, axis=None, group_size=None):
    r"""Min-max calibration: `qparams_from_range` of the minimum and maximum of `x` at a granularity.

    | `axis` | `group_size` | statistics over | scale shape |
    |---|---|---|---|
    | `None` | `None` | the whole tensor | `()` |
    | `k` | `None` | each index along axis `k` (per channel) | `(x.shape[k],)` |
    | `k` | `g` | each run of `g` consecutive elements along axis `k` | `x.shape` with `x.shape[k] // g` at `k` |

    (The layout of ONNX `QuantizeLinear`: per-axis scales are 1-D, blocked scales keep the rank of `x`.)

    **Arguments:**

    - `x`: a float32 array, finite, with at least one element in every group.
    - `qmin`, `qmax`, `symmetric`: as for `qparams_from_range`.
    - `axis`, `group_size`: the granularity, as in the table; `group_size`, an int in `[1, 2**40]`, must divide
      `x.shape[axis]`.

    **Returns:**

    `(scale, zero_point)`: float32 and int32 arrays of the scale shape.
    """
    x = _arrays.finite_array("x", x)
    shape = shapes.qparam_shape(x.shape, axis, group_size)
    if x.size == 0:
        raise ValueError(f"x has shape {x.shape}: min-max calibration needs at least one element")
    axis = None if axis is None else validate.axis("axis", axis, x.ndim)
    if axis is None:
        lo, hi = x.min(), x.max()
    elif group_size is None:
        rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        lo, hi = rows.min(axis=1), rows.max(axis=1)
    else:
        groups = np.moveaxis(x, axis, -1)
        groups = groups.reshape(groups.shape[:-1] + (groups.shape[-1] // group_size, group_size))
        lo = np.moveaxis(groups.min(axis=-1), -1, axis)
        hi = np.moveaxis(groups.max(axis=-1), -1, axis)
    lo = np.asarray(lo, dtype=np.float32).reshape(shape)
    hi = np.asarray(hi, dtype=np.float32).reshape(shape)
    return qparams_from_range(lo, hi, qmin=qmin, qmax=qmax, symmetric=symmetric)


def quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    r"""Affine quantization to integer codes, with IEEE float32 division.

    $$ q = \operatorname{clip}\!\big(\operatorname{round}(x / s) + z,\ q_{min},\ q_{max}\big) $$

    $x / s$ is one correctly rounded float32 division per element (peers that multiply by $1/s$ differ on
    about 0.6% of inputs). The rounded value plus $z$ is formed in float64, clipped, then converted to int32.

    **Arguments:**

    - `x`: a float32 array, finite.
    - `scale`: a float32 array of the scale shape for `axis` / `group_size` (see `minmax_qparams`), finite, > 0.
    - `zero_point`: an int32 array of the same shape, within `[qmin, qmax]`.
    - `qmin`, `qmax`: the integer range (see `integer_range`).
    - `axis`, `group_size`: the granularity.
    - `rounding`: `"half_even"` (default), `"half_away"`, `"floor"`, `"ceil"` or `"stochastic"`.
    - `key`: a random key, for `rounding="stochastic"` only.

    **Returns:**

    An int32 array shaped like `x`.

    !!! note
        Values beyond the range saturate: when $x / s$ overflows to $\pm\infty$ the code is $q_{max}$ or
        $q_{min}$. Stochastic rounding draws $u$ by the flat index of `x`.

    Example: with $s = 0.5$, $z = 0$ and the int8 range, $x/s = [0.5, 1.5, -2, 18]$ rounds half to even:

        >>> quantize(np.float32([0.25, 0.75, -1.0, 9.0]), np.float32(0.5), np.int32(0), qmin=-128, qmax=127)
        array([ 0,  2, -2, 18], dtype=int32)
    """
    x, s, z, qmin, qmax, mode, key = _check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    with np.errstate(over="ignore", invalid="ignore"):  # x / s may overflow to +-inf: it saturates below
        r = _rounding.round_by(x / s, mode, key)
    return np.asarray(np.clip(r.astype(np.float64) + z, qmin, qmax).astype(np.int32))


def dequantize(q, scale, zero_point, *, axis=None, group_size=None):
    r"""Integer codes back to float32: $\hat{x} = \operatorname{fl}_{32}(q - z) \cdot s$.

    $q - z$ is exact in int32 and converts exactly to float32 (it is below $2^{17}$ in magnitude); the one
    rounding is the float32 product.

    **Arguments:**

    - `q`: an int32 array.
    - `scale`: a float32 array of the scale shape, finite, > 0.
    - `zero_point`: an int32 array of the scale shape.
    - `axis`, `group_size`: the granularity (see `minmax_qparams`).

    **Returns:**

    A float32 array shaped like `q`.
    """
    q = _arrays.within("q", _arrays.array("q", q, ("int32",)), -(2**15), 2**16 - 1)
    s, z = _expand(q, scale, zero_point, axis, group_size)
    _arrays.within("zero_point", zero_point, -(2**15), 2**16 - 1)
    return np.asarray((q - z).astype(np.float32) * s)


def fake_quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    r"""Quantize then dequantize, with a straight-through gradient.

    $$ y = \operatorname{fl}_{32}(q - z) \cdot s, \qquad
       q = \operatorname{clip}\!\big(\operatorname{round}(x / s) + z,\ q_{min},\ q_{max}\big) $$

    **Arguments:** as for `quantize`.

    **Returns:**

    A float32 array shaped like `x`. Its gradient is `fake_quantize_vjp`.
    """
    q = quantize(
        x, scale, zero_point, qmin=qmin, qmax=qmax, axis=axis, group_size=group_size, rounding=rounding, key=key
    )
    return dequantize(q, scale, zero_point, axis=axis, group_size=group_size)


def fake_quantize_vjp(
    grad, x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None
):
    r"""The straight-through gradient of `fake_quantize` with respect to `x`.

    $$ \frac{\partial L}{\partial x} = \begin{cases} g & q_{min} \le \operatorname{round}(x/s) + z \le q_{max} \\
       +0 & \text{otherwise} \end{cases} $$

    The pass region is tested on the rounded value *before* clipping, inclusive at both ends: a value that
    rounds exactly to $q_{max}$ passes its gradient, one that rounds to $q_{max} + 1$ does not.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, the cotangent $g$ of the output.
    - the rest: as for `quantize`.

    **Returns:**

    A float32 array shaped like `x`: `where(pass, grad, +0.0)`. No gradient flows to `scale` or `zero_point`.

    ??? cite "Bengio et al., 2013; Jacob et al., 2018"
        Estimating or Propagating Gradients Through Stochastic Neurons (arXiv:1308.3432);
        Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference (CVPR 2018).
    """
    x, s, z, qmin, qmax, mode, key = _check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowed x / s is outside the pass region
        r = _rounding.round_by(x / s, mode, key).astype(np.float64) + z
    return np.where((qmin <= r) & (r <= qmax), grad, np.float32(0))


def _expand(x, scale, zero_point, axis, group_size):
    """Check scale and zero point against the granularity; return them broadcastable against `x`."""
    shape = shapes.qparam_shape(x.shape, axis, group_size)
    why = "axis=None" if axis is None else f"axis={axis}, group_size={group_size}"
    s = _arrays.shaped("scale", _arrays.positive("scale", _arrays.finite_array("scale", scale)), shape, why)
    z = _arrays.shaped("zero_point", _arrays.array("zero_point", zero_point, ("int32",)), shape, why)
    if axis is None:
        return s, z
    k = validate.axis("axis", axis, x.ndim)
    if group_size is None:
        view = shapes.per_axis(x.ndim, k)
        return s.reshape(view), z.reshape(view)
    return np.repeat(s, group_size, axis=k), np.repeat(z, group_size, axis=k)


def _check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key):
    qmin, qmax = validate.qrange(qmin, qmax)
    mode, key = checks.rounding(rounding_mode, key, MODES)
    x = _arrays.finite_array("x", x)
    s, z = _expand(x, scale, zero_point, axis, group_size)
    _arrays.within("zero_point", zero_point, qmin, qmax)
    return x, s, z, qmin, qmax, mode, key
