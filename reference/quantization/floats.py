r"""Low-bit floating-point formats: FP8 (E4M3, E5M2), FP6 (E3M2, E2M3), FP4 (E2M1) and E8M0, by bit manipulation.

Every conversion works on the float32 bit pattern with integer arithmetic (int64 here, int64 with masks in torch):
no library cast is called, so the two backends agree on every input, subnormals, ties and overflow included.
Codes are stored in the low bits of a `uint8` (FP6 in bits 0-5 with the sign in bit 5, FP4 in bits 0-3 with the
sign in bit 3), as in `ml_dtypes`.

| format | bits | E | M | bias | max finite | min normal | min subnormal | Inf | NaN codes |
|---|---|---|---|---|---|---|---|---|---|
| `float8_e4m3fn` | 8 | 4 | 3 | 7 | 448 | $2^{-6}$ | $2^{-9}$ | none | `0x7F`, `0xFF` |
| `float8_e5m2` | 8 | 5 | 2 | 15 | 57344 | $2^{-14}$ | $2^{-16}$ | `0x7C`, `0xFC` | `0x7D`-`0x7F`, `0xFD`-`0xFF` |
| `float6_e3m2fn` | 6 | 3 | 2 | 3 | 28 | $2^{-2}$ | $2^{-4}$ | none | none |
| `float6_e2m3fn` | 6 | 2 | 3 | 1 | 7.5 | 1 | $2^{-3}$ | none | none |
| `float4_e2m1fn` | 4 | 2 | 1 | 1 | 6 | 1 | 0.5 | none | none |
| `float8_e8m0fnu` | 8 | 8 | 0 | 127 | $2^{127}$ | $2^{-127}$ | none | none | `0xFF` |

`FORMATS` holds this table. E8M0 is unsigned and has no zero: code $c < 255$ is $2^{c - 127}$.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import checks, validate
from reference.quantization import _floats
from reference.quantization._floats import (
    QNAN as QNAN,  # the quiet NaN every decoder writes; torch_backend reads it here
)

__all__ = ["float_encode", "float_decode", "float_quantize", "float_quantize_vjp"]


class FloatFormat(NamedTuple):
    """One row of the format table. Magnitude codes exclude the sign bit."""

    bits: int  # width of a code, sign included
    ebits: int  # exponent bits
    mbits: int  # mantissa (fraction) bits
    bias: int  # exponent bias
    has_inf: bool
    has_nan: bool
    max_code: int  # magnitude code of the largest finite value
    inf_code: int | None  # magnitude code of Inf
    nan_code: int | None  # magnitude code the encoder writes for NaN (the sign bit is kept)
    max_finite: float
    signed: bool = True


FORMATS = {
    "float8_e4m3fn": FloatFormat(8, 4, 3, 7, False, True, 0x7E, None, 0x7F, 448.0),
    "float8_e5m2": FloatFormat(8, 5, 2, 15, True, True, 0x7B, 0x7C, 0x7E, 57344.0),
    "float6_e3m2fn": FloatFormat(6, 3, 2, 3, False, False, 0x1F, None, None, 28.0),
    "float6_e2m3fn": FloatFormat(6, 2, 3, 1, False, False, 0x1F, None, None, 7.5),
    "float4_e2m1fn": FloatFormat(4, 2, 1, 1, False, False, 0x7, None, None, 6.0),
    "float8_e8m0fnu": FloatFormat(8, 8, 0, 127, False, True, 0xFE, None, 0xFF, 2.0**127, signed=False),
}
ROUNDINGS = ("half_even", "stochastic")


def float_encode(x, fmt, *, saturate=True, rounding="half_even", key=None):
    r"""Encode float32 values as codes of a low-bit float format, rounding to nearest, ties to even.

    With $|x| = \text{sig} \cdot 2^{E}$ read from the float32 bits, $k = \lfloor \log_2 |x| \rfloor$ and
    $e_{min} = 1 - \text{bias}$, the format's spacing at $x$ is $2^{q}$, $q = \max(k, e_{min}) - M$, and

    $$ n = \operatorname{rne}\big(|x| / 2^{q}\big), \qquad
       \text{code} = s \cdot 2^{\text{bits}-1} + \big((\max(k, e_{min}) - e_{min}) \cdot 2^{M} + n\big) $$

    a carry of $n$ into the next binade, and from the largest subnormal into the smallest normal, falls out of the
    addition. When the magnitude code exceeds the largest finite one the value overflowed: `saturate=True` writes
    $\pm$max finite, `saturate=False` writes $\pm$Inf (E5M2) or NaN (E4M3FN, E8M0).

    **Arguments:**

    - `x`: a float32 array, any shape. NaN and $\pm$Inf follow the policy below.
    - `fmt`: a key of `FORMATS`: `"float8_e4m3fn"`, `"float8_e5m2"`, `"float6_e3m2fn"`, `"float6_e2m3fn"`,
      `"float4_e2m1fn"` or `"float8_e8m0fnu"`.
    - `saturate`: a bool. FP6 and FP4 have neither Inf nor NaN and accept only `True`.
    - `rounding`: `"half_even"` or `"stochastic"`.
    - `key`: a random key, for `rounding="stochastic"` only.

    **Returns:**

    A uint8 array shaped like `x`.

    !!! note "Ties, zeros, overflow, NaN and Inf"
        Ties go to the even significand: in E4M3FN, 464 (halfway between 448 and the missing 480) encodes as 448,
        anything above overflows; in E2M1, 0.75 encodes as 1.0 and 0.25 as 0.0. The sign of zero is kept:
        `-0.0` and negative values that round to zero encode as the sign bit alone (`0x80`, `0x20`, `0x08`).
        $\pm$Inf is an overflow: it saturates to $\pm$max with `saturate=True`, else becomes $\pm$Inf (E5M2) or NaN
        (E4M3FN). NaN encodes as `0x7F` (E4M3FN) or `0x7E` (E5M2) with its sign bit; FP6 and FP4 reject NaN
        (`ValueError`).

    !!! note "E8M0"
        Unsigned, no zero, no Inf. A positive $x = (1 + f)\,2^{k}$ encodes as the nearest power of two in the linear
        domain: $2^{k}$ if $f < \tfrac12$, else $2^{k+1}$ (a tie goes up: the kept significand is the implicit 1,
        odd). So 3 -> 4, 1.5 -> 2, 1.4 -> 1. Values below $2^{-127}$ encode as code 0 ($2^{-127}$); overflow
        beyond $2^{127}$ (and $+$Inf) is code 254 with `saturate=True`, else NaN (255). Zero, negative values
        (`-0.0` included) and NaN encode as NaN (255). (ml_dtypes 0.6 and torch 2.13 send the float32
        subnormals in $(2^{-127}, 1.5 \cdot 2^{-127})$ to $2^{-126}$; the nearest power of two is $2^{-127}$.)

    !!! note "Stochastic rounding"
        The dropped bits of $|x| / 2^{q}$, read as a 32-bit fraction $f_{32}$ (exact when at most 32 bits are
        dropped, truncated otherwise), are added to $R$ = `random_bits(key, x.shape)` at the same flat index;
        the significand is rounded up when the sum carries: $n = \lfloor |x| / 2^{q} \rfloor +
        [f_{32} + R \ge 2^{32}]$. So $|x|$ rounds up with probability $f_{32} / 2^{32}$, and values on the grid
        never move. E8M0 uses the fraction $f$ of its significand in the same way.

    Example (`float8_e4m3fn`): 0.001 is nearer $2^{-9}$ than 0, $2^{-10}$ is the tie between them and goes to
    the even 0; 465 saturates to the largest finite code, or becomes NaN (`0x7F`) when `saturate=False`:

        >>> x = np.float32([1.0, -0.0, 3.0, 0.001, 0.0009765625, 464.0, 465.0])
        >>> [hex(c) for c in float_encode(x, "float8_e4m3fn")]
        ['0x38', '0x80', '0x44', '0x1', '0x0', '0x7e', '0x7e']
        >>> hex(float_encode(np.float32([465.0]), "float8_e4m3fn", saturate=False)[0])
        '0x7f'

    ??? cite "Micikevicius et al., 2022; OCP, 2023"
        FP8 Formats for Deep Learning (arXiv:2209.05433); OCP Microscaling Formats (MX) Specification v1.0.
    """
    form, saturate, mode, key = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x = _check_x(x, fmt, form)
    code, _ = _floats.encode(x, form, saturate, mode, key)
    return np.asarray(code)


def float_decode(codes, fmt):
    r"""Decode codes of a low-bit float format to float32, exactly.

    $$ \text{value} = (-1)^{s} \cdot \begin{cases} 2^{e - \text{bias}} \,(1 + f / 2^{M}) & e > 0 \\
       2^{1 - \text{bias}} \, f / 2^{M} & e = 0 \end{cases} $$

    for the sign $s$, exponent field $e$ and fraction field $f$. Every value of every format is a float32, so the
    result is exact; it is assembled as float32 bits with integer arithmetic.

    **Arguments:**

    - `codes`: a uint8 array, each below $2^{\text{bits}}$ (64 for FP6, 16 for FP4).
    - `fmt`: a key of `FORMATS` (see `float_encode`).

    **Returns:**

    A float32 array shaped like `codes`.

    !!! note
        NaN codes decode to the quiet NaN `0x7FC00000` with the code's sign bit (payloads are not kept), E5M2's
        `0x7C` / `0xFC` to $\pm$Inf, the sign bit alone to `-0.0`. E8M0: code 255 is NaN, code 0 is $2^{-127}$
        (a float32 subnormal). A code with bits above the format's width raises `ValueError`.

    Example: `float4_e2m1fn` codes `8..15` are the negatives of `0..7` (`8` is `-0.0`):

        >>> float_decode(np.arange(16, dtype=np.uint8), "float4_e2m1fn")
        array([ 0. ,  0.5,  1. ,  1.5,  2. ,  3. ,  4. ,  6. , -0. , -0.5, -1. , -1.5, -2. , -3. , -4. , -6. ], dtype=float32)
    """
    form = FORMATS[validate.choice("fmt", fmt, tuple(FORMATS))]
    codes = _arrays.array("codes", codes, ("uint8",))
    _arrays.within("codes", codes, 0, 2**form.bits - 1)
    return _floats.decode(codes.astype(np.int64), form)


def float_quantize(x, fmt, *, saturate=True, rounding="half_even", key=None):
    r"""Fake quantization to a low-bit float format: `float_decode(float_encode(x))`, in float32.

    $$ y = \operatorname{decode}\big(\operatorname{encode}(x)\big) $$

    **Arguments:** as for `float_encode`.

    **Returns:**

    A float32 array shaped like `x`. Its gradient is `float_quantize_vjp`.

    Example (`float4_e2m1fn`): 0.75, 2.5 and 5.0 are ties, to the even significand; 100 saturates:

        >>> float_quantize(np.float32([0.3, 0.75, 2.5, 5.0, 100.0]), "float4_e2m1fn")
        array([0.5, 1. , 2. , 4. , 6. ], dtype=float32)

    ??? cite "Micikevicius et al., 2022"
        FP8 Formats for Deep Learning. arXiv:2209.05433
    """
    form, saturate, mode, key = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x = _check_x(x, fmt, form)
    code, _ = _floats.encode(x, form, saturate, mode, key)
    return _floats.decode(code.astype(np.int64), form)


def float_quantize_vjp(grad, x, fmt, *, saturate=True, rounding="half_even", key=None):
    r"""The straight-through gradient of `float_quantize` with respect to `x`.

    $$ \frac{\partial L}{\partial x} = \begin{cases} g & x \text{ finite and } \operatorname{round}(x)
       \text{ within the format's finite range} \\ +0 & \text{otherwise} \end{cases} $$

    $\operatorname{round}(x)$ is the rounding `float_encode` applies (the same random bits for `"stochastic"`)
    with the exponent range unbounded: the gradient passes where nothing was clipped. E4M3FN passes
    $|x| \le 464$ (464 rounds to 448) and blocks $|x| > 464$; FP4 E2M1 passes $|x| < 7$. For E8M0, which has
    no zero, it passes where $x > 0$ rounds to a power of two in $[2^{-127}, 2^{127}]$. NaN and $\pm$Inf block.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, the cotangent $g$ of the output.
    - the rest: as for `float_encode`.

    **Returns:**

    A float32 array shaped like `x`: `where(pass, grad, +0.0)`.

    ??? cite "Bengio et al., 2013"
        Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432
    """
    form, saturate, mode, key = checks.float_options(fmt, saturate, rounding, key, FORMATS, ROUNDINGS)
    x = _check_x(x, fmt, form)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _, passes = _floats.encode(x, form, saturate, mode, key)
    return np.where(passes, grad, np.float32(0))


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _check_x(x, fmt, form):
    x = _arrays.array("x", x)
    if not form.has_nan:
        bad = np.isnan(x)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"x must not contain NaN: {fmt} has no NaN encoding, got nan at flat index {i}")
    return x


# ---------------------------------------------------------------------------------------------------------------
# Bit manipulation (shared with reference.quantization.mx)
# ---------------------------------------------------------------------------------------------------------------
