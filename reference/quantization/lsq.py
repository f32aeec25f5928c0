r"""LSQ and LSQ+: uniform quantization with a learned step size (and, for LSQ+, a learned offset).

The integer range is $[-Q_N, Q_P]$: signed $b$ bits give $Q_N = 2^{b-1}$, $Q_P = 2^{b-1} - 1$; unsigned give
$Q_N = 0$, $Q_P = 2^b - 1$. With $v = x / s$ (LSQ) or $v = (x - \beta) / s$ (LSQ+), one pass region
$P = \{-Q_N \le v \le Q_P\}$ (inclusive at both ends, before rounding) decides all three gradients, exactly as
autograd differentiates $\operatorname{rne}(\operatorname{clip}(v, -Q_N, Q_P)) \cdot s\ (+\,\beta)$ with
`torch.clamp` and a straight-through rounding.

The step's (and offset's) gradient is multiplied by LSQ's gradient scale $g = 1 / \sqrt{N Q_P}$ (see
`lsq_grad_scale`), where $N$ is the number of elements that share the step: all of $x$ per tensor, one
channel's elements ($x$.size $/ C$) per channel.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import checks, scalars, shapes, validate
from reference.core.exact import exact_sum

__all__ = [
    "lsq_grad_scale",
    "lsq_init_scale",
    "lsq_quantize",
    "lsq_quantize_vjp",
    "lsq_plus_quantize",
    "lsq_plus_quantize_vjp",
]

F32 = np.float32


def lsq_grad_scale(numel, qp):
    r"""LSQ's gradient scale $g = 1 / \sqrt{N Q_P}$, as the float32 nearest to the exact value.

    $$ g = \operatorname{fl}_{32}\Big(\frac{1}{\sqrt{N\, Q_P}}\Big) $$

    Computed on the host with exact rational arithmetic: a float64 candidate, then the float32 midpoints on
    either side are squared and compared with $1 / (N Q_P)$ exactly, so no library's `sqrt` decides the last bit
    (torch's float64 `sqrt` on the CPU is not correctly rounded). A midpoint is never exactly $1/\sqrt{N Q_P}$,
    so there are no ties.

    **Arguments:**

    - `numel`: $N$, an int in `[0, 2**40]`: the number of elements that share one step.
    - `qp`: $Q_P$, an int in `[1, 65535]`.

    **Returns:**

    A Python float holding a float32 value; `0.0` for `numel = 0` (no elements, no gradient).

    Example: $1/\sqrt 4$, and the float32 nearest $1/\sqrt 3 = 0.5773502691\ldots$:

        >>> lsq_grad_scale(4, 1), lsq_grad_scale(1, 3)
        (0.5, 0.5773502588272095)
    """
    numel = shapes.size("numel", numel, lo=0)
    qp = validate.integer("qp", qp, lo=1, hi=2**16 - 1)
    return scalars.inverse_sqrt_float32(numel * qp)


def lsq_init_scale(w, *, bits, signed, axis=None):
    r"""LSQ's initial step, $2\,\overline{|w|} / \sqrt{Q_P}$, per tensor or per channel, the same on every device.

    $$ s_0 = \operatorname{fl}_{32}\!\Big( \operatorname{fl}_{64}(2 m) \oslash \operatorname{sqrt}_{rn}(Q_P) \Big),
       \qquad m = \operatorname{fl}_{64}\big(\operatorname{exact\_sum}(|w|) / n\big) $$

    $m$ is the float64 mean of the slice (all of `w`, or one channel along `axis`; its $n$ values' exact sum rounded
    once, divided by $n$), $2m$ is exact,
    $\operatorname{sqrt}_{rn}(Q_P)$ is the correctly rounded float64 square root of the integer $Q_P$ (computed
    on the host: CPython's `math.sqrt` is IEEE `sqrt`; torch's CPU float64 `sqrt` is not correctly rounded),
    $\oslash$ is one IEEE float64 division, and the quotient is rounded once to float32.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element.
    - `bits`, `signed`: the code range, as for `lsq_quantize` ($Q_P = 2^{b-1} - 1$ signed, $2^b - 1$ unsigned).
    - `axis`: `None` (one step) or the channel axis (one step per index along it).

    **Returns:**

    A float32 array, shape `()` for `axis=None`, `(w.shape[axis],)` otherwise, every step finite and > 0.

    !!! note
        A slice whose step rounds to 0 (all zeros, or a mean that underflows) gets step `1.0`, so the result is
        always a valid `scale` for `lsq_quantize`. A step beyond the float32 range raises `ValueError`.

    Example: 4 signed bits ($Q_P = 7$), $m = 2$, so $s_0 = \operatorname{fl}_{32}(4 / \sqrt 7)$:

        >>> lsq_init_scale(np.float32([1, -3]), bits=4, signed=True)
        array(1.5118579, dtype=float32)

    ??? cite "Esser et al., 2020"
        Learned Step Size Quantization. ICLR. arXiv:1902.08153 (Section 2.1: "$2\langle|v|\rangle/\sqrt{Q_P}$")
    """
    _, qp = checks.lsq_bounds(bits, signed)
    w = _arrays.finite_array("w", w)
    k = None if axis is None else validate.axis("axis", axis, w.ndim)
    if w.size == 0:
        raise ValueError(f"w has shape {w.shape}: the LSQ initial step needs at least one element")
    a = np.abs(w)
    if k is None:
        m = exact_sum(a) / np.float64(a.size)
    else:
        rows = np.moveaxis(a, k, 0)
        m = exact_sum(rows.reshape(rows.shape[0], math.prod(rows.shape[1:])), axis=1) / np.float64(a.size // a.shape[k])
    with np.errstate(over="ignore"):
        s = ((m * 2) / np.float64(math.sqrt(qp))).astype(F32)
    _check_init(s)
    return np.asarray(np.where(s > 0, s, F32(1)))


def lsq_quantize(x, scale, *, bits, signed, axis=None):
    r"""LSQ fake quantization with step $s$, per tensor or per channel.

    $$ v = \frac{x}{s}, \qquad \hat{x} = \operatorname{rne}\big(\operatorname{clip}(v, -Q_N, Q_P)\big)\cdot s $$

    $v$ is one float32 division (never a multiplication by $1/s$; an overflow to $\pm\infty$ clips), the clip is
    exact, $\operatorname{rne}$ rounds half to even (code 0 is $+0$), and the product with $s$ is one float32
    rounding.

    **Arguments:**

    - `x`: a float32 array, finite; at least 1-d for a per-channel `axis`.
    - `scale`: float32, finite, > 0: 0-d for `axis=None`, shape `(x.shape[axis],)` per channel.
    - `bits`: $b$, an int in `[1, 16]` (`[2, 16]` when signed: $Q_P \ge 1$).
    - `signed`: a bool, no default: signed ($[-2^{b-1}, 2^{b-1} - 1]$) or unsigned ($[0, 2^b - 1]$) codes.
    - `axis`: `None` (one step) or the channel axis.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        Codes are integers, so code 0 is $+0$: $x = -0.0$ and a negative $x$ that rounds to code 0
        ($\operatorname{rne}(-0.3) = -0$) give $+0.0$, as the affine `fake_quantize` and torch.ao do. The
        extreme levels $-Q_N s$ and $Q_P s$ must be finite: a step so large that one overflows raises
        `ValueError`, as do non-finite input, `scale <= 0` and `bits` out of range.

    Example: $s = 0.5$, signed 3 bits ($[-4, 3]$): $v = [0.4, 0.5, 1.6, 2.8, -6]$, codes $[0, 0, 2, 3, -4]$:

        >>> lsq_quantize(np.float32([0.2, 0.25, 0.8, 1.4, -3.0]), np.float32(0.5), bits=3, signed=True)
        array([ 0. ,  0. ,  1. ,  1.5, -2. ], dtype=float32)

    ??? cite "Esser et al., 2020"
        Learned Step Size Quantization. ICLR. arXiv:1902.08153
    """
    x, s, _, qn, qp, _ = _check(x, scale, None, bits, signed, axis, plus=False)
    return np.asarray(_codes(_divide(x, s), qn, qp) * s)


def lsq_quantize_vjp(grad, x, scale, *, bits, signed, axis=None):
    r"""The gradients of `lsq_quantize` with respect to `x` and `scale`.

    With $v = x / s$, $q = \operatorname{rne}(v)$ and the pass region $P = \{-Q_N \le v \le Q_P\}$:

    $$ \frac{\partial L}{\partial x_i} = g_i\,[\,i \in P\,], \qquad
       \frac{\partial L}{\partial s} = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_i\big(g_i\, d_i\big)
       \cdot g_s\Big), \qquad
       d_i = \begin{cases} q_i - v_i & i \in P \\ -Q_N & v_i < -Q_N \\ Q_P & v_i > Q_P \end{cases} $$

    $g_s$ = `lsq_grad_scale(N, Q_P)`. $q_i - v_i$ is exact in float32 and $g_i d_i$ exact in float64; their exact
    sum (over all elements per tensor, over each channel's elements per channel), rounded once to float64, is
    multiplied by $g_s$ in float64 and rounded once to float32. At $v = Q_P$ exactly, $d = q - v = 0$ (the LSQ
    paper's piecewise formula puts that point in its $Q_P$ branch; autograd through `torch.clamp` gives 0).

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, finite: the cotangent $g$.
    - the rest: as for `lsq_quantize`.

    **Returns:**

    `(grad_x, grad_scale)`: float32 arrays shaped like `x` and like `scale` (`grad_x` is `grad` or $+0.0$).

    Example: $s = 0.5$, signed 3 bits, `x = [0.2, 0.8, 5.0]`, `grad = [1, 1, 1]`, so $N = 3$, $Q_P = 3$,
    $g_s = \operatorname{fl}_{32}(1/3) = 0.33333334$: $v = [0.4, 1.6, 10]$ (float32: $0.40000001$,
    $1.60000002$), $d = [-0.40000001, 0.39999998, 3]$ (exact), sum $2.99999997$, `grad_scale`
    $= \operatorname{fl}_{32}(2.99999997 \cdot 0.33333334)$:

        >>> lsq_quantize_vjp(np.float32([1, 1, 1]), np.float32([0.2, 0.8, 5.0]), np.float32(0.5), bits=3, signed=True)
        (array([1., 1., 0.], dtype=float32), array(1., dtype=float32))

    ??? cite "Esser et al., 2020"
        Learned Step Size Quantization. ICLR. arXiv:1902.08153
    """
    x, s, _, qn, qp, k = _check(x, scale, None, bits, signed, axis, plus=False)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    v = _divide(x, s)
    inside = (v >= -qn) & (v <= qp)
    grad_x = np.where(inside, grad, F32(0))
    gs = scalars.inverse_sqrt_float32(shapes.count_per_slice(x.shape, k) * qp)
    return grad_x, _scaled_sum(grad.astype(np.float64) * _step_factor(v, inside, qn, qp), gs, k)


def lsq_plus_quantize(x, scale, offset, *, bits, signed, axis=None):
    r"""LSQ+ fake quantization with step $s$ and offset $\beta$, per tensor or per channel.

    $$ v = \frac{x - \beta}{s}, \qquad
       \hat{x} = \operatorname{rne}\big(\operatorname{clip}(v, -Q_N, Q_P)\big)\cdot s + \beta $$

    Every rounding, in order: $x - \beta$ (one float32 subtraction; an overflow to $\pm\infty$ clips), the
    division by $s$, half-to-even rounding (code 0 is $+0$), the product with $s$, the addition of $\beta$.
    The offset $\beta$ is a real number, never rounded, in the forward and in the backward pass alike
    (torch.ao's learnable zero point is rounded half to even forward and half up backward).

    **Arguments:**

    - `x`: a float32 array, finite; at least 1-d for a per-channel `axis`.
    - `scale`: float32, finite, > 0: 0-d for `axis=None`, shape `(x.shape[axis],)` per channel.
    - `offset`: float32, finite, shaped like `scale`: the learned offset $\beta$.
    - `bits`, `signed`, `axis`: as for `lsq_quantize` (LSQ+ uses unsigned codes for activations, signed for weights).

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        The extreme levels $-Q_N s + \beta$ and $Q_P s + \beta$ (each rounded as above) must be finite, else
        `ValueError`. $x = \beta$ gives $v = 0$ and $\hat x = 0 \cdot s + \beta = \beta$.

    Example: $s = 0.5$, $\beta = -0.25$, unsigned 2 bits ($[0, 3]$): $v = [-1.5, 0.5, 1.7, 4.5]$, codes
    $[0, 0, 2, 3]$:

        >>> x = np.float32([-1.0, 0.0, 0.6, 2.0])
        >>> lsq_plus_quantize(x, np.float32(0.5), np.float32(-0.25), bits=2, signed=False)
        array([-0.25, -0.25,  0.75,  1.25], dtype=float32)

    ??? cite "Bhalgat et al., 2020"
        LSQ+: Improving low-bit quantization through learnable offsets and better initialization. CVPR
        Workshops. arXiv:2004.09576
    """
    x, s, b, qn, qp, _ = _check(x, scale, offset, bits, signed, axis, plus=True)
    return np.asarray(_codes(_divide(x - b, s), qn, qp) * s + b)


def lsq_plus_quantize_vjp(grad, x, scale, offset, *, bits, signed, axis=None):
    r"""The gradients of `lsq_plus_quantize` with respect to `x`, `scale` and `offset`.

    With $v = (x - \beta)/s$, $q = \operatorname{rne}(v)$, $P = \{-Q_N \le v \le Q_P\}$ and $d_i$ as in
    `lsq_quantize_vjp`:

    $$ \frac{\partial L}{\partial x_i} = g_i\,[\,i \in P\,], \quad
       \frac{\partial L}{\partial s} = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_i(g_i d_i)\cdot
       g_s\Big), \quad
       \frac{\partial L}{\partial \beta} = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_{i \notin P}
       g_i \cdot g_s\Big) $$

    Inside $P$ the offset's gradient is $1 - 1 = 0$ (straight through the rounding); outside, $\hat{x}$ is the
    constant level plus $\beta$, so it is 1. Both parameter gradients carry the same gradient scale
    $g_s$ = `lsq_grad_scale(N, Q_P)` (torch.ao scales its zero point's gradient by its grad factor too). Sums
    and roundings as in `lsq_quantize_vjp`.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, finite: the cotangent $g$.
    - the rest: as for `lsq_plus_quantize`.

    **Returns:**

    `(grad_x, grad_scale, grad_offset)`: float32 arrays shaped like `x`, `scale` and `offset`.

    Example: $s = 0.5$, $\beta = -0.25$, unsigned 2 bits, `x = [0.0, 2.0]`, `grad = [1, 1]`: $N = 2$,
    $Q_P = 3$, $g_s = \operatorname{fl}_{32}(1/\sqrt 6)$; $v = [0.5, 4.5]$, $d = [0 - 0.5, 3]$, so
    `grad_scale` $= \operatorname{fl}_{32}(2.5\, g_s)$ and `grad_offset` $= g_s$:

        >>> grad, x, s, b = np.float32([1, 1]), np.float32([0.0, 2.0]), np.float32(0.5), np.float32(-0.25)
        >>> lsq_plus_quantize_vjp(grad, x, s, b, bits=2, signed=False)
        (array([1., 0.], dtype=float32), array(1.0206208, dtype=float32), array(0.4082483, dtype=float32))
    """
    x, s, b, qn, qp, k = _check(x, scale, offset, bits, signed, axis, plus=True)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    v = _divide(x - b, s)
    inside = (v >= -qn) & (v <= qp)
    grad_x = np.where(inside, grad, F32(0))
    g64 = grad.astype(np.float64)
    gs = scalars.inverse_sqrt_float32(shapes.count_per_slice(x.shape, k) * qp)
    grad_scale = _scaled_sum(g64 * _step_factor(v, inside, qn, qp), gs, k)
    grad_offset = _scaled_sum(np.where(inside, 0.0, g64), gs, k)
    return grad_x, grad_scale, grad_offset


# ---------------------------------------------------------------------------------------------------------------


def _check(x, scale, offset, bits, signed, axis, *, plus):
    """Checks, in the order both backends follow; `plus` (LSQ+) requires an `offset` array, LSQ passes None.

    Returns x, s and beta (broadcastable against x; None for LSQ), Qn, Qp and the normalized channel axis (None per
    tensor).
    """
    qn, qp = checks.lsq_bounds(bits, signed)
    x = _arrays.finite_array("x", x)
    if axis is None:
        k, shape, view, why = None, (), (), "axis=None"
    else:
        if x.ndim == 0:
            raise ValueError(f"axis={axis!r} needs an array with at least one dimension, got shape {x.shape}")
        k = validate.axis("axis", axis, x.ndim)
        shape, view, why = (x.shape[k],), shapes.per_axis(x.ndim, k), f"axis={axis}"
    s = _arrays.shaped("scale", _arrays.positive("scale", _arrays.finite_array("scale", scale)), shape, why)
    b = _arrays.shaped("offset", _arrays.finite_array("offset", offset), shape, why) if plus else None
    _check_levels(s, b, qn, qp)
    return x, s.reshape(view), None if b is None else b.reshape(view), qn, qp, k


def _check_levels(s, b, qn, qp):
    """The extreme levels -Qn * s (+ beta) and Qp * s (+ beta) must be finite float32 values."""
    with np.errstate(over="ignore"):
        lo, hi = F32(-qn) * s, F32(qp) * s
        if b is not None:
            lo, hi = lo + b, hi + b
    bad = ~(np.isfinite(lo) & np.isfinite(hi))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the extreme levels -Qn * scale and Qp * scale (plus offset) must be finite float32 values; "
            f"Qn={qn}, Qp={qp}, scale={float(s.reshape(-1)[i])!r} overflows at flat index {i}"
        )


def _divide(a, s):
    with np.errstate(over="ignore"):  # x / s beyond the float32 range is +-inf, and clips
        return a / s


def _codes(v, qn, qp):
    """rne(clip(v, -Qn, Qp)) as float32 integers, code 0 always +0.0 (a negative v that rounds to 0 gives -0.0)."""
    q = np.rint(np.where(v < -qn, F32(-qn), np.where(v > qp, F32(qp), v)))
    return np.where(q == 0, F32(0), q)


def _step_factor(v, inside, qn, qp):
    """d = rne(v) - v inside the pass region, -Qn below, Qp above; float64 (the difference is exact)."""
    with np.errstate(invalid="ignore"):  # inf - inf where v overflowed: outside, not selected
        inner = np.rint(v).astype(np.float64) - v.astype(np.float64)
    return np.where(inside, inner, np.where(v < -qn, np.float64(-qn), np.float64(qp)))


def _scaled_sum(terms, gs, k):
    """fl32(exact_sum(terms) * gs), terms float64: over everything, or over each channel's elements."""
    if k is None:
        total = exact_sum(terms)
    else:
        rows = np.moveaxis(terms, k, 0)
        total = exact_sum(rows.reshape(rows.shape[0], math.prod(rows.shape[1:])), axis=1)
    with np.errstate(over="ignore"):
        return np.asarray((total * np.float64(gs)).astype(F32))


def _check_init(s):
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"the initial step overflows float32 at flat index {i}: 2 * mean|w| / sqrt(Qp) > 3.4e38")
