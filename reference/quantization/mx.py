r"""Microscaling (MX) block formats: MXFP8, MXFP6, MXFP4 and MXINT8 with a shared E8M0 scale per block.

A block is `block_size` consecutive elements along `axis` (32 in OCP MX v1.0). It stores one E8M0 code $c$, the
scale $X = 2^{c - 127}$, and one element code per value; the value is $X$ times the element.

| `fmt` | element | element codes | emax | max element |
|---|---|---|---|---|
| `"mxfp8_e4m3"` | `float8_e4m3fn` | uint8 | 8 | 448 |
| `"mxfp8_e5m2"` | `float8_e5m2` | uint8 | 15 | 57344 |
| `"mxfp6_e3m2"` | `float6_e3m2fn` | uint8 (6 bits) | 4 | 28 |
| `"mxfp6_e2m3"` | `float6_e2m3fn` | uint8 (6 bits) | 2 | 7.5 |
| `"mxfp4_e2m1"` | `float4_e2m1fn` | uint8 (4 bits) | 2 | 6 |
| `"mxint8"` | INT8, value = code $\cdot 2^{-6}$ | int8 | 0 | $127/64$ |

emax is $\lfloor \log_2(\text{max element}) \rfloor$. Element codes are those of `reference.quantization.floats`;
MXINT8 elements are two's complement int8 with an implicit scale $2^{-6}$ (OCP MX v1.0, section 5.3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import checks, shapes, validate
from reference.quantization import _floats
from reference.quantization.floats import FORMATS, QNAN

__all__ = ["mx_quantize", "mx_dequantize", "mx_fake_quantize", "mx_fake_quantize_vjp"]


class MXElement(NamedTuple):
    """An MX element type: its float format (None for INT8), emax, fraction bits and largest significand."""

    float_format: str | None
    emax: int  # floor(log2(largest finite element))
    mbits: int  # fraction bits (6 for INT8: 1.984375 = 1.111111 in binary)
    max_sig: int  # significand of the largest element as a 24-bit int, 1.75 -> 0xE00000


MX_FORMATS = {
    "mxfp8_e4m3": MXElement("float8_e4m3fn", 8, 3, 0xE00000),
    "mxfp8_e5m2": MXElement("float8_e5m2", 15, 2, 0xE00000),
    "mxfp6_e3m2": MXElement("float6_e3m2fn", 4, 2, 0xE00000),
    "mxfp6_e2m3": MXElement("float6_e2m3fn", 2, 3, 0xF00000),
    "mxfp4_e2m1": MXElement("float4_e2m1fn", 2, 1, 0xC00000),
    "mxint8": MXElement(None, 0, 6, 0xFE0000),
}
SCALE_RULES = ("floor", "ceil", "even", "ceil_pow2")
ELEMENT_ROUNDINGS = ("half_even", "half_away")
NONFINITE = ("raise", "nan")
MAX_BLOCK = 1024
INT8_MAX_CODE = 127  # MXINT8 saturates symmetrically; -128 (-2.0) decodes but is never produced


def mx_quantize(x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"):
    r"""Quantize to an MX format: one shared E8M0 scale per block and one element code per value.

    With $k = \lfloor \log_2 \text{amax} \rfloor$ of the block's largest magnitude (read from its float32 exponent
    bits, never with `log2`), the scale exponent is

    $$ e = \operatorname{clip}\big(k - \text{emax} + \delta,\ -127,\ 127\big), \qquad
       \text{scale code} = e + 127, \qquad \text{element} = \operatorname{encode}\big(x / 2^{e}\big) $$

    with $\delta = 0$ for `"floor"` (the OCP rule), and for the variants, with $\sigma \in [1, 2)$ the significand
    of amax: `"ceil"`: $\delta = [\sigma > \sigma_{max}]$, the smallest $e$ with amax $/ 2^{e} \le$ max element,
    so no element saturates (the rule NVIDIA's `RCEIL` computes approximately, see the table); `"even"`:
    $\delta = [\sigma \ge 2 - 2^{-(M+1)}]$, the exponent of amax rounded to nearest-even at the element's $M$
    fraction bits (torchao's `ScaleCalculationMode.EVEN`); `"ceil_pow2"`: $\delta = [\sigma > 1]$, amax rounded up to a power of two
    (torchao's `ScaleCalculationMode.CEIL`; unlike `"ceil"` it moves a block up whenever amax is not a power of
    two, so MXFP4 with amax 5 gets $e = 1$ where `"ceil"` and `"floor"` give 0).

    | `scale_rule` | $e$ | who |
    |---|---|---|
    | `"floor"` | $\lfloor \log_2 \text{amax} \rfloor - \text{emax}$ | OCP MX v1.0 section 6.3, torchao `FLOOR` (default), Microsoft microxcaling |
    | `"ceil"` | $\lceil \log_2(\text{amax} / \text{max element}) \rceil$, exact | NVIDIA's `RCEIL` (cuBLAS, Transformer Engine, torchao) rounds the float32 quotient up instead, which differs where the quotient rounds onto a power of two (torchao 0.18: 9 of 1024 MXFP8 blocks on pqref's boundary inputs) |
    | `"even"` | floor of amax rounded at $M$ fraction bits | torchao `EVEN` |
    | `"ceil_pow2"` | $\lceil \log_2 \text{amax} \rceil - \text{emax}$ | torchao `CEIL` |

    $x / 2^{e}$ is never formed in floating point: the element encoder subtracts $e$ from the exponent read
    from the bits and rounds once, to nearest with ties to even (`rounding="half_even"`, OCP) or ties away from
    zero (`"half_away"`, as some vendor kernels round), saturating to $\pm$max element (OCP). MXINT8 elements are
    $\operatorname{clip}(\operatorname{round}(64\, x / 2^{e}), -127, 127)$.

    **Arguments:**

    - `x`: a float32 array with at least one dimension, finite.
    - `fmt`: `"mxfp8_e4m3"`, `"mxfp8_e5m2"`, `"mxfp6_e3m2"`, `"mxfp6_e2m3"`, `"mxfp4_e2m1"` or `"mxint8"`.
    - `axis`: the axis the blocks run along.
    - `block_size`: a power of two in `[1, 1024]` that divides `x.shape[axis]`; 32 in OCP MX v1.0.
    - `scale_rule`: `"floor"` (default), `"ceil"`, `"even"` or `"ceil_pow2"` (see the table).
    - `rounding`: the element rounding, `"half_even"` (default, OCP) or `"half_away"`.
    - `nonfinite`: `"raise"` (default: NaN and $\pm$Inf in `x` raise `ValueError`) or `"nan"`: a block that
      holds NaN or $\pm$Inf gets the E8M0 NaN scale (code 255, as OCP MX and torchao write it), so the whole block
      decodes to NaN; its element codes are the format's NaN code where it has one (`0x7F` for E4M3 and E5M2),
      else 0.

    **Returns:**

    `(scales, codes)`: a uint8 array of E8M0 codes shaped like `x` with `x.shape[axis] // block_size` at `axis`,
    and the element codes shaped like `x`: uint8 (FP formats, as `float_encode`) or int8 (`"mxint8"`).

    !!! note "Zeros, saturation, bad input"
        A block whose amax is 0 gets scale code 0 ($2^{-127}$) and zero elements (signed zeros kept for FP
        elements, `0` for INT8). With `"floor"` the largest element can exceed the element's max (amax $/ 2^{e}$
        is in $[2^{\text{emax}}, 2^{\text{emax}+1})$) and saturates: MXFP4 turns a block $[7, 1, \dots]$ into
        scale $2^{0}$, elements $[6, 1, \dots]$. Scale exponents beyond $[-127, 127]$ are clipped (then elements
        saturate or underflow); with `nonfinite="raise"` NaN scales are never produced. An axis length that is not a
        multiple of `block_size` raises `ValueError` (no padding).

    Example (`"mxfp4_e2m1"`, `block_size=4`): amax 3, $k = 1$, $e = 1 - 2 = -1$: scale code 126, elements
    $x \cdot 2 = [1, -2.5, 6, 0.2]$, and $-2.5$ ties to $-2$ (`0xC`); `(scales, codes)`:

        >>> mx_quantize(np.float32([0.5, -1.25, 3.0, 0.1]), "mxfp4_e2m1", block_size=4)
        (array([126], dtype=uint8), array([ 2, 12,  7,  0], dtype=uint8))

    ??? cite "OCP, 2023; Rouhani et al., 2023"
        OCP Microscaling Formats (MX) Specification v1.0 (Open Compute Project, 2023); Microscaling Data Formats
        for Deep Learning (arXiv:2310.10537).
    """
    elem, rule, bs, x, k, mode, nonfinite = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    bad = ~np.isfinite(x)
    clean = np.where(bad, np.float32(0), x)
    moved = np.moveaxis(clean, k, -1)
    blocks = moved.reshape(moved.shape[:-1] + (moved.shape[-1] // bs, bs))
    amax = np.max(np.abs(blocks), axis=-1, initial=np.float32(0))
    e = _scale_exponent(amax, elem, rule)
    shift = np.moveaxis(np.repeat(e, bs, axis=-1), -1, k)
    codes = _encode_elements(clean, elem, shift, mode)
    scales = np.moveaxis((e + 127).astype(np.uint8), -1, k)
    if nonfinite == "nan":  # a block holding NaN or Inf: the NaN scale, NaN (or 0) element codes
        moved_bad = np.moveaxis(bad, k, -1)
        nan_block = np.moveaxis(moved_bad.reshape(blocks.shape).any(axis=-1), -1, k)  # an empty x too
        scales = np.where(nan_block, np.uint8(255), scales)
        filler = elem.float_format is not None and FORMATS[elem.float_format].has_nan
        codes = np.where(np.repeat(nan_block, bs, axis=k), codes.dtype.type(0x7F if filler else 0), codes)
    return np.asarray(scales), np.asarray(codes)


def mx_dequantize(scales, codes, fmt, *, axis=-1, block_size=32):
    r"""Decode MX blocks to float32: each element times its block's scale.

    $$ y = \operatorname{decode}(\text{code}) \cdot 2^{c - 127} $$

    The product is formed in float64, where it is exact, and rounded once to float32: it overflows to
    $\pm$Inf when the scale is large, and is otherwise exact (every element is a multiple of $2^{-16}$, so every
    product is a multiple of $2^{-143}$, representable as a float32 subnormal).

    **Arguments:**

    - `scales`: a uint8 array of E8M0 codes, shaped like `codes` with `codes.shape[axis] // block_size` at `axis`.
    - `codes`: element codes: uint8 below $2^{\text{bits}}$ for FP formats, int8 for `"mxint8"`.
    - `fmt`, `axis`, `block_size`: as for `mx_quantize`.

    **Returns:**

    A float32 array shaped like `codes`.

    !!! note
        Scale code 255 (E8M0 NaN) makes its whole block the quiet NaN `0x7FC00000`; element NaN codes give NaN
        with the element's sign, E5M2 Inf codes $\pm$Inf. The MXINT8 code $-128$ decodes to $-2 \cdot 2^{e}$.
    """
    elem = MX_FORMATS[validate.choice("fmt", fmt, tuple(MX_FORMATS))]
    bs = checks.mx_block_size(block_size, MAX_BLOCK)
    scales = _arrays.array("scales", scales, ("uint8",))
    if elem.float_format is None:
        codes = _arrays.array("codes", codes, ("int8",))
    else:
        codes = _arrays.array("codes", codes, ("uint8",))
        _arrays.within("codes", codes, 0, 2 ** FORMATS[elem.float_format].bits - 1)
    k = shapes.block_axis("codes", codes.shape, axis, bs)
    expected = shapes.blocked(codes.shape, k, bs)
    _arrays.shaped("scales", scales, expected, f"codes of shape {tuple(codes.shape)} in blocks of {bs} along {k}")
    s = np.repeat(scales.astype(np.int64), bs, axis=k)
    return _dequantize(s, codes, elem)


def mx_fake_quantize(x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"):
    r"""MX fake quantization: `mx_dequantize(*mx_quantize(x))`, with a straight-through gradient.

    $$ y = \operatorname{decode}\big(\operatorname{encode}(x / 2^{e})\big) \cdot 2^{e} $$

    **Arguments:** as for `mx_quantize`.

    **Returns:**

    A float32 array shaped like `x`. Its gradient is `mx_fake_quantize_vjp`.

    Example (`"mxint8"`, `block_size=2`): $e = 0$; $0.3 \cdot 64 = 19.2 \to 19$, and $19/64$:

        >>> mx_fake_quantize(np.float32([1.0, 0.3]), "mxint8", block_size=2)
        array([1.      , 0.296875], dtype=float32)

    ??? cite "Rouhani et al., 2023"
        Microscaling Data Formats for Deep Learning. arXiv:2310.10537
    """
    elem, rule, bs, x, k, mode, nonfinite = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    scales, codes = mx_quantize(x, fmt, axis=axis, block_size=block_size, scale_rule=scale_rule, rounding=rounding,
                                nonfinite=nonfinite)  # fmt: skip
    return _dequantize(np.repeat(scales.astype(np.int64), bs, axis=k), codes, elem)


def mx_fake_quantize_vjp(
    grad, x, fmt, *, axis=-1, block_size=32, scale_rule="floor", rounding="half_even", nonfinite="raise"
):
    r"""The straight-through gradient of `mx_fake_quantize`: the identity.

    $$ \frac{\partial L}{\partial x} = g $$

    The scale follows the block's amax, so no value is clipped by a fixed range: saturation of the largest
    element under `"floor"` is a rounding effect, and the gradient passes everywhere (the straight-through
    estimator of MX training emulation). No gradient flows through the scale.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, the cotangent $g$ of the output.
    - the rest: as for `mx_quantize` (checked the same way).

    **Returns:**

    A float32 array shaped like `x`, a copy of `grad`.

    ??? cite "Bengio et al., 2013"
        Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432
    """
    _, _, _, x, _, _, _ = _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    return np.array(grad, copy=True)


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _check_quantize(x, fmt, block_size, scale_rule, axis, rounding, nonfinite):
    elem = MX_FORMATS[validate.choice("fmt", fmt, tuple(MX_FORMATS))]
    rule = validate.choice("scale_rule", scale_rule, SCALE_RULES)
    mode = validate.choice("rounding", rounding, ELEMENT_ROUNDINGS)
    nonfinite = validate.choice("nonfinite", nonfinite, NONFINITE)
    bs = checks.mx_block_size(block_size, MAX_BLOCK)
    x = _arrays.finite_array("x", x) if nonfinite == "raise" else _arrays.array("x", x)
    k = shapes.block_axis("x", x.shape, axis, bs)
    return elem, rule, bs, x, k, mode, nonfinite


# ---------------------------------------------------------------------------------------------------------------
# Scales and elements
# ---------------------------------------------------------------------------------------------------------------


def _scale_exponent(amax, elem, rule):
    """The shared exponent e in [-127, 127] of each block, from the float32 bits of its amax (int64)."""
    _, _, _, sig, exp = _floats.fields(amax)
    lead = _floats.floor_log2(sig)
    sig24 = sig << (23 - lead)  # the significand of amax, normalized to [2**23, 2**24)
    e = lead + exp - elem.emax
    if rule == "ceil":
        e = e + (sig24 > elem.max_sig)
    elif rule == "even":
        e = e + (sig24 >= (1 << 24) - (1 << (22 - elem.mbits)))
    elif rule == "ceil_pow2":
        e = e + (sig24 > (1 << 23))
    return np.clip(np.where(sig == 0, -127, e), -127, 127).astype(np.int64)


def _encode_elements(x, elem, shift, mode):
    """Element codes of x / 2**shift: saturating, round to nearest (ties by `mode`), never forming the quotient."""
    if elem.float_format is not None:
        codes, _ = _floats.encode(x, FORMATS[elem.float_format], True, mode, None, shift)
        return codes
    sign, _, _, sig, exp = _floats.fields(x)
    mag = np.minimum(_floats.encode_magnitude(sig, exp - shift, elem.mbits, 0, mode, None), INT8_MAX_CODE)
    return np.where(sign == 1, -mag, mag).astype(np.int8)


def _dequantize(s, codes, elem):
    """Elements times 2**(s - 127) for int64 scale codes `s` broadcast to the codes' shape."""
    if elem.float_format is None:
        values = codes.astype(np.float32) * np.float32(2.0**-6)
    else:
        values = _floats.decode(codes.astype(np.int64), FORMATS[elem.float_format])
    scale = np.asarray((np.minimum(s, 254) - 127 + 1023) << 52).view(np.float64)  # 2**(s - 127), exact
    with np.errstate(over="ignore", invalid="ignore"):
        out = (values.astype(np.float64) * scale).astype(np.float32)
    out = np.where(np.isnan(values), values, out)
    return np.asarray(np.where(s == 255, np.uint32(QNAN).view(np.float32), out))
