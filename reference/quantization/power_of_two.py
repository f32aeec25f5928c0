"""Power-of-two (logarithmic) quantization: every value becomes 0 or a signed power of two $\\pm 2^e$.

Exponents come from `frexp` (exact), never from a floating-point `log2`; both rounding rules are settled by
exact comparisons, so every backend returns the same bits.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate

__all__ = [
    "pow2_exponent_range",
    "pow2_emax",
    "pow2_quantize",
    "pow2_quantize_vjp",
    "pow2_encode",
    "pow2_decode",
]

ROUNDINGS = ("linear", "log")
LEVELS = ("inq", "dense")
E_LO, E_HI = -149, 127  # the exponents of the smallest (subnormal) and of the largest power of two in float32


def pow2_exponent_range(bits, emax, *, levels="inq"):
    r"""The exponent range $[e_{min}, e_{max}]$ of a `bits`-bit power-of-two code: INQ's, or the dense variant.

    `levels="inq"` (default) is INQ's set: "1 bit to represent zero, the remaining $b - 1$ bits for at most
    $2^{b-1}$ different values for the powers of two", i.e. $2^{b-1}$ signed powers, $2^{b-2}$ exponents, with
    INQ's $n_2 = n_1 + 1 - 2^{b-1}/2$:

    $$ \text{inq: } e_{min} = e_{max} + 1 - 2^{b-2} $$

    `levels="dense"` spends every sign-magnitude code but negative zero: one sign bit, magnitude code 0 is the
    value 0 and codes $1 \ldots 2^{b-1} - 1$ are $2^{e_{min}} \ldots 2^{e_{max}}$, so $2^{b-1} - 1$ exponents:

    $$ \text{dense: } e_{min} = e_{max} - (2^{b-1} - 2) $$

    **Arguments:**

    - `bits`: an int in `[2, 8]`.
    - `emax`: the largest exponent, an int in `[-149, 127]` (INQ's $n_1$, see `pow2_emax`).
    - `levels`: `"inq"` (default) or `"dense"`.

    **Returns:**

    `(emin, emax)`: two Python ints.

    !!! note
        Every level must be a float32: `ValueError` when $e_{min} < -149$ (the exponent of the smallest
        subnormal float32). With $b = 2$ INQ's levels are $\{0, \pm 2^{e_{max}}\}$ (ternary), as are the dense
        ones; from $b = 3$ on the dense code has $2^{b-2} - 1$ more exponents than INQ's.

    Example: the paper's example ($b = 3$, $n_1 = -1$, $n_2 = -2$: levels $\{0, \pm 2^{-2}, \pm 2^{-1}\}$), and
    INQ's 5 bits (8 exponents), each with the dense variant:

        >>> pow2_exponent_range(3, -1), pow2_exponent_range(3, -1, levels="dense")
        ((-2, -1), (-3, -1))
        >>> pow2_exponent_range(5, 0), pow2_exponent_range(5, 0, levels="dense")
        ((-7, 0), (-14, 0))
        >>> pow2_exponent_range(4, 0), pow2_exponent_range(4, 0, levels="dense")
        ((-3, 0), (-6, 0))

    ??? cite "Zhou et al., 2017"
        Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR.
        arXiv:1702.03044 (Section 2.1: $P_l = \{\pm 2^{n_1}, \ldots, \pm 2^{n_2}, 0\}$,
        $n_2 = n_1 + 1 - 2^{b-1}/2$; the authors' Caffe code loops over the 8 exponents $n_1 - 7 \ldots n_1$ for
        its default 5 bits).
    """
    bits = validate.integer("bits", bits, lo=2, hi=8)
    emax = validate.integer("emax", emax, lo=E_LO, hi=E_HI)
    validate.choice("levels", levels, LEVELS)
    emin = emax - (_exponent_count(bits, levels) - 1)
    if emin < E_LO:
        raise ValueError(
            f"bits={bits}, emax={emax} give emin = {emin}, below -149 (2**-149 is the smallest float32); raise emax"
        )
    return emin, emax


def pow2_emax(x):
    r"""INQ's largest exponent for a tensor: $n_1 = \lfloor \log_2 (4 s / 3) \rfloor$ with $s = \max |x|$.

    Computed exactly: writing $s = m \cdot 2^E$ with $m \in [1, 2)$ (from `frexp`),

    $$ n_1 = E + [\, m \ge 1.5 \,], $$

    which is the largest $n$ with $\tfrac34 \cdot 2^n \le s$: $s$ rounded to the nearer power of two, ties up.
    No `log2` and no rounding of $4s/3$ are involved.

    **Arguments:**

    - `x`: a float32 array, finite, with at least one nonzero element.

    **Returns:**

    A Python int in `[-149, 127]`.

    !!! note
        $n_1 = 128$ (for $s \ge 1.5 \cdot 2^{127}$) is returned as 127, the largest float32 power of two.
        An all-zero (or empty) `x` has no exponent: `ValueError`.

    Example: $0.75 = 1.5 \cdot 2^{-1}$ gives $n_1 = 0$ ($4 \cdot 0.75 / 3 = 1$); $0.7$ gives $n_1 = -1$:

        >>> pow2_emax(np.float32([0.75])), pow2_emax(np.float32([0.7]))
        (0, -1)

    ??? cite "Zhou et al., 2017"
        Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR.
        arXiv:1702.03044
    """
    x = _arrays.finite_array("x", x)
    s = np.max(np.abs(x)) if x.size else np.float32(0)
    if s == 0:
        raise ValueError(f"x has shape {tuple(x.shape)} and no nonzero element: it has no largest exponent")
    a, e = _mantissa_exponent(np.asarray(s))
    return min(int(e) + int(a >= np.float32(1.5)), E_HI)


def pow2_quantize(x, *, bits, emax, rounding="linear", levels="inq"):
    r"""Quantize to $0$ or $\pm 2^e$, $e \in [e_{min}, e_{max}]$ (see `pow2_exponent_range`), sign kept.

    Write $|x| = m \cdot 2^E$ with $m \in [1, 2)$ (exact, from `frexp`). The exponent rounds up when

    $$ \text{linear: } m \ge 1.5, \qquad \text{log: } m^2 > 2 \;(\iff \log_2 m > \tfrac12), $$

    i.e. `"linear"` picks the nearer power of two in the linear domain (the midpoint $1.5 \cdot 2^E$ goes up,
    as in INQ), `"log"` rounds $\log_2 |x|$ to the nearest integer (LogQuant). $m^2$ is exact in float64 and
    never equals 2, so the log rule has no ties and needs no approximation of $\sqrt 2$ (equivalently: up iff
    $m \ge$ `1.4142137`, the float32 `0x3FB504F4` just above $\sqrt 2$; `1.4142135` just below stays). Then

    $$ y = \begin{cases} +0 & |x| < 2^{e_{min} - 1} \\
       \operatorname{sign}(x) \cdot 2^{\operatorname{clip}(E + \text{up},\ e_{min},\ e_{max})} & \text{otherwise}
       \end{cases} $$

    **Arguments:**

    - `x`: a float32 array, finite.
    - `bits`, `emax`, `levels`: the code (see `pow2_exponent_range`; INQ's set by default).
    - `rounding`: `"linear"` (default) or `"log"`.

    **Returns:**

    A float32 array shaped like `x`; its gradient is `pow2_quantize_vjp`.

    !!! note "Zeros and saturation"
        Both rules flush $|x| < 2^{e_{min}-1}$ (nearer to 0 than to $2^{e_{min}}$) to `+0.0`, and so `-0.0`
        and tiny negatives give `+0.0`; $|x| = 2^{e_{min}-1}$ goes up to $2^{e_{min}}$, as does everything in
        $[2^{e_{min}-1}, 2^{e_{min}})$ under the log rule (its rounded exponent is clipped). LogQuant itself
        flushes nothing but exact zeros. Magnitudes above $2^{e_{max}}$ saturate to $2^{e_{max}}$ (INQ's
        formula would send $|x| \ge 1.5 \cdot 2^{e_{max}}$ to 0).

    Example (`bits=4, emax=0, levels="dense"`, so $e_{min} = -6$): both rules give the same here: linear sends
    `0.75` ($m = 1.5$) up and `1.4142137` down; log sends `0.75` ($m^2 = 2.25$) up and `1.4142137` up to 2,
    saturated to 1. They differ on `0.72` ($m = 1.44$). With INQ's levels (the default, $e_{min} = -3$)
    `-0.0078125` flushes to `+0.0`: it is below $2^{-4}$.

        >>> x = np.float32([0.75, 0.7, 1.4142135, 1.4142137, 3.0, -0.0078125, 0.0078])
        >>> pow2_quantize(x, bits=4, emax=0, levels="dense")
        array([ 1.      ,  0.5     ,  1.      ,  1.      ,  1.      , -0.015625,  0.      ], dtype=float32)
        >>> pow2_quantize(x, bits=4, emax=0, rounding="log", levels="dense")
        array([ 1.      ,  0.5     ,  1.      ,  1.      ,  1.      , -0.015625,  0.      ], dtype=float32)
        >>> x = np.float32([0.72])
        >>> pow2_quantize(x, bits=4, emax=0, levels="dense"), pow2_quantize(x, bits=4, emax=0, rounding="log", levels="dense")
        (array([0.5], dtype=float32), array([1.], dtype=float32))
        >>> pow2_quantize(np.float32([-0.0078125]), bits=4, emax=0)
        array([0.], dtype=float32)

    ??? cite "Miyashita et al., 2016; Zhou et al., 2017"
        Convolutional Neural Networks using Logarithmic Data Representation. arXiv:1603.01025.
        Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR.
        arXiv:1702.03044
    """
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    magnitude, zero, _ = _round(x, emin, emax, rounding)
    return np.asarray(np.where(zero, np.float32(0), np.copysign(_power(magnitude), x)))


def pow2_quantize_vjp(grad, x, *, bits, emax, rounding="linear", levels="inq"):
    r"""The straight-through gradient of `pow2_quantize` with respect to `x`.

    $$ \frac{\partial L}{\partial x} = \begin{cases} +0 & |x| \ge 2^{e_{min}-1} \text{ and }
       E + \text{up} > e_{max} \\ g & \text{otherwise} \end{cases} $$

    The gradient passes where the value is not saturated: where its exponent, rounded by the rule of
    `pow2_quantize` but not yet clipped, is at most $e_{max}$ (linear: $|x| < 1.5 \cdot 2^{e_{max}}$; log:
    $|x| < \sqrt 2 \cdot 2^{e_{max}}$). Flushed values and values clipped up to $2^{e_{min}}$ pass it.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, the cotangent $g$.
    - the rest: as for `pow2_quantize`.

    **Returns:**

    A float32 array shaped like `x`: `where(pass, grad, +0.0)`.

    ??? cite "Bengio et al., 2013"
        Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432
    """
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _, _, saturated = _round(x, emin, emax, rounding)
    return np.asarray(np.where(saturated, np.float32(0), grad))


def pow2_encode(x, *, bits, emax, rounding="linear", levels="inq"):
    r"""The `bits`-bit sign-magnitude codes of `pow2_quantize(x)`.

    $$ c = 2^{b-1} \cdot [\, y < 0 \,] + \begin{cases} 0 & y = 0 \\ e - e_{min} + 1 & |y| = 2^e \end{cases} $$

    **Arguments:** as for `pow2_quantize`.

    **Returns:**

    A uint8 array shaped like `x` with codes in $[0, 2^b - 1]$; zero is code 0 (never $2^{b-1}$). Pack it with
    `pack_bits(c, bits)`.

    !!! note
        INQ counts its $b$ bits as one bit for zero and $b - 1$ for $2^{b-1}$ signed powers; this layout holds
        the same $2^{b-1} + 1$ levels in $b$ bits with the sign on top, and with `levels="inq"` the magnitude
        codes above $2^{b-2}$ stay unused (`pow2_decode` rejects them).

    Example (`bits=4, emax=0`), with the dense levels and with INQ's ($e_{min} = -3$):

        >>> pow2_encode(np.float32([1.0, -0.5, 0.0, 0.015625]), bits=4, emax=0, levels="dense")
        array([ 7, 14,  0,  1], dtype=uint8)
        >>> pow2_encode(np.float32([1.0, -0.5, 0.0, 0.125]), bits=4, emax=0)
        array([ 4, 11,  0,  1], dtype=uint8)

    ??? cite "Zhou et al., 2017"
        Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR.
        arXiv:1702.03044
    """
    x, emin, emax, rounding = _check(x, bits, emax, rounding, levels)
    magnitude, zero, _ = _round(x, emin, emax, rounding)
    sign = (x < 0).astype(np.int64) << (bits - 1)
    code = np.where(zero, 0, magnitude - emin + 1 + sign)
    return np.asarray(code.astype(np.uint8))


def pow2_decode(codes, *, bits, emax, levels="inq"):
    r"""Values of `bits`-bit sign-magnitude power-of-two codes (the inverse of `pow2_encode`).

    $$ y = (-1)^{s} \cdot \begin{cases} 0 & m = 0 \\ 2^{e_{min} + m - 1} & m > 0 \end{cases}, \qquad
       s = \lfloor c / 2^{b-1} \rfloor, \quad m = c \bmod 2^{b-1} $$

    **Arguments:**

    - `codes`: a uint8 array, each code in $[0, 2^b - 1]$ with $m \le e_{max} - e_{min} + 1$ (every $m$ for
      `levels="dense"`, $m \le 2^{b-2}$ for INQ's).
    - `bits`, `emax`, `levels`: the code (see `pow2_exponent_range`).

    **Returns:**

    A float32 array shaped like `codes`. Both zero codes, $0$ and $2^{b-1}$, decode to `+0.0`.

    !!! note
        A magnitude code beyond the last exponent (INQ's unused codes) raises `ValueError` naming
        `codes mod 2**(bits-1)`.
    """
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 2**bits - 1)
    c = codes.astype(np.int64)
    m = c & (2 ** (bits - 1) - 1)
    _arrays.within("codes mod 2**(bits-1)", m, 0, emax - emin + 1)
    level = _power(emin + np.maximum(m, 1) - 1)
    return np.asarray(np.where(m == 0, np.float32(0), np.where(c >> (bits - 1) == 1, -level, level)))


def _exponent_count(bits, levels):
    """How many exponents a code has: INQ's 2**(bits-2), or 2**(bits-1) - 1 for the dense code."""
    return 2 ** (bits - 2) if levels == "inq" else 2 ** (bits - 1) - 1


def _check(x, bits, emax, rounding, levels):
    emin, emax = pow2_exponent_range(bits, emax, levels=levels)
    validate.choice("rounding", rounding, ROUNDINGS)
    x = _arrays.finite_array("x", x)
    return x, emin, emax, rounding


def _mantissa_exponent(x):
    """`(m, E)` with `|x| = m * 2**E`, `m` in [1, 2) as float32, `E` as int64 (exact; `m = 0` for `x = 0`)."""
    m, e = np.frexp(x)
    return np.abs(m) * np.float32(2), e.astype(np.int64) - 1


def _round(x, emin, emax, rounding):
    """(clipped exponent, flushed-to-zero mask, saturated mask) of each element."""
    m, e = _mantissa_exponent(x)
    if rounding == "linear":
        up = m >= np.float32(1.5)
    else:
        m64 = m.astype(np.float64)
        up = m64 * m64 > np.float64(2)  # exact: m has 24 significant bits, m*m at most 48
    r = e + up
    zero = (x == 0) | (e < emin - 1)
    return np.clip(r, emin, emax), zero, ~zero & (r > emax)


def _power(e):
    """2**e as float32 for integer exponents in [-149, 127], built from its bit pattern (exact everywhere)."""
    e = np.asarray(e, dtype=np.int64)
    bits = np.where(e >= -126, (e + 127) << 23, np.int64(1) << np.clip(e + 149, 0, 22))
    return bits.astype(np.int32).view(np.float32)
