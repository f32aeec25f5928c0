r"""NVFP4: FP4 E2M1 elements in blocks of 16, one FP8 E4M3 scale per block, and one float32 per-tensor scale.

The per-tensor ("global") scale is stored in one of two directions by the two major toolchains, and a checkpoint
does not say which:

| `direction` | global scale $g$ | block scale code | block scale $S_b$ | who |
|---|---|---|---|---|
| `"decode"` | $\operatorname{fl}(\text{amax} / 2688)$ | $\operatorname{e4m3}(\operatorname{fl}(a_b / \operatorname{fl}(6 g)))$ | $\operatorname{fl}(\operatorname{dec}(c_b) \cdot g)$ | NVIDIA ModelOpt (`weight_scale_2`), TensorRT-LLM |
| `"encode"` | $\operatorname{fl}(2688 / \text{amax})$ | $\operatorname{e4m3}(\operatorname{fl}(g \cdot \operatorname{fl}(a_b / 6)))$ | $\operatorname{fl}(\operatorname{dec}(c_b) / g)$ | compressed-tensors / llm-compressor (`weight_global_scale`), vLLM |

with $2688 = 6 \cdot 448$ (the largest E2M1 value times the largest E4M3 value), $a_b$ the block's largest
magnitude, $\operatorname{fl}$ a float32 operation and $\operatorname{e4m3}$ the saturating round-to-nearest-even
encoding of `float_encode`. In both, an element is $\operatorname{e2m1}(\operatorname{fl}(x / S_b))$ and decodes
to $\operatorname{fl}(\operatorname{dec}(q) \cdot S_b)$. Reading one direction's $g$ as the other's squares the
error of every scale: the model outputs garbage.

Codes are unpacked (one per uint8); `pack_nibbles(codes, order="low_first")` packs them as both toolchains
store them (element $2i$ in the low nibble).
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.quantization import _floats
from reference.quantization.floats import FORMATS

__all__ = ["nvfp4_global_scale", "nvfp4_quantize", "nvfp4_dequantize"]

BLOCK = 16
DIRECTIONS = ("decode", "encode")
# the error of an encode-direction global scale whose reciprocal overflows float32
ENCODE_RECIPROCAL_OVERFLOWS = (
    "global_scale {!r} with direction 'encode': 1 / global_scale overflows float32, so the scale of a zero block "
    "(1 / global_scale) would decode its zeros as NaN"
)
RANGE = np.float32(6.0 * 448.0)  # 2688: the largest E2M1 element times the largest E4M3 scale
E2M1 = FORMATS["float4_e2m1fn"]
E4M3 = FORMATS["float8_e4m3fn"]
ONE_E4M3 = 0x38  # the E4M3 code of 1.0, the scale of an all-zero block


def nvfp4_global_scale(x, *, direction):
    r"""The float32 per-tensor scale of NVFP4 in either direction, from the tensor's largest magnitude.

    $$ \text{decode: } g = \operatorname{fl}(\text{amax} / 2688), \qquad
       \text{encode: } g = \operatorname{fl}(2688 / \text{amax}) $$

    **Arguments:**

    - `x`: a float32 array, finite, non-empty.
    - `direction`: `"decode"` (ModelOpt's `weight_scale_2`, multiplied to decode) or `"encode"`
      (compressed-tensors' `weight_global_scale`, multiplied to encode). No default: see the module table.

    **Returns:**

    A 0-d float32 array, finite and $> 0$.

    !!! note
        An all-zero `x` gets $g = 1$ (the degenerate scale, as elsewhere in pqref). A nonzero amax so small or so
        large that $g$ rounds to 0 or overflows to Inf raises `ValueError` naming it.

    Example: `amax = 6` gives $g = 6 / 2688$ (decode) or $2688 / 6$ (encode):

        >>> nvfp4_global_scale(np.float32([6.0]), direction="decode"), nvfp4_global_scale(np.float32([6.0]), direction="encode")
        (array(0.00223214, dtype=float32), array(448., dtype=float32))
    """
    direction = validate.choice("direction", direction, DIRECTIONS)
    x = _arrays.finite_array("x", x)
    if x.size == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: an NVFP4 global scale needs at least one element")
    amax = np.max(np.abs(x))
    if amax == 0:
        return np.asarray(np.float32(1.0))
    with np.errstate(over="ignore", under="ignore"):
        g = amax / RANGE if direction == "decode" else RANGE / amax
    if not (np.isfinite(g) and g > 0):
        raise ValueError(
            f"x has amax {float(amax)!r}: its {direction} global scale {float(g)!r} is not a finite float32 > 0"
        )
    return np.asarray(g)


def nvfp4_quantize(x, global_scale, *, direction):
    r"""Quantize to NVFP4: one E4M3 scale code per block of 16 along the last axis, one E2M1 code per value.

    $$ t_b = \begin{cases} \operatorname{fl}\big(a_b / \operatorname{fl}(6 g)\big) & \text{decode} \\
       \operatorname{fl}\big(g \cdot \operatorname{fl}(a_b / 6)\big) & \text{encode} \end{cases}, \qquad
       c_b = \operatorname{e4m3}(t_b), \qquad q_i = \operatorname{e2m1}\big(\operatorname{fl}(x_i / S_b)\big) $$

    with $S_b$ the decoded block scale (module table). Both encodings round to nearest, ties to even, and
    saturate (448 for the scale, 6 for elements).

    **Arguments:**

    - `x`: a float32 array with at least one dimension, finite; its last axis a multiple of 16.
    - `global_scale`: a 0-d float32 array, finite, $> 0$ (see `nvfp4_global_scale`).
    - `direction`: `"decode"` or `"encode"`: how `global_scale` is applied.

    **Returns:**

    `(scales, codes)`: uint8 E4M3 codes shaped like `x` with the last axis divided by 16, and uint8 E2M1 codes
    (0 to 15) shaped like `x`.

    !!! note "Zero blocks and tiny scales"
        An all-zero block gets the scale code of 1.0 (`0x38`, as ModelOpt replaces a zero block scale by 1) and
        zero elements. So in the encode direction $1/g$ must be a finite float32 ($g$ above about $2^{-128}$;
        `nvfp4_global_scale` gives at least $2688 / 3.4 \cdot 10^{38}$): a smaller $g$ raises `ValueError`,
        since that block's scale $1/g$ would be infinite and its zeros would decode as NaN. A block whose scale $S_b$ is 0 (its $t_b$ rounds to the E4M3 zero, or the product
        underflows) stores signed zeros: `0x0` or `0x8` by the sign of $x$, which decode to zeros, as the block
        does. Signed zeros are kept everywhere (`-0.0` encodes as `0x8`).

    Example (`global_scale = 1`, either direction): a block with amax 6 has $t = 1$, scale code `0x38`,
    $S = 1$; 0.25, 0.75, 2.5 and 5 are ties, to the even code:

        >>> x = np.float32([0.25, 0.75, 2.5, 5.0, 6.0, -1.0, -0.0, 0.0, 1.5, 3.0, 4.0, 0.5, -6.0, 5.5, 1.0, 0.1])
        >>> scales, codes = nvfp4_quantize(x, np.float32(1), direction="decode")
        >>> [hex(s) for s in scales], [hex(c) for c in codes[:8]]
        (['0x38'], ['0x0', '0x2', '0x4', '0x6', '0x7', '0xa', '0x8', '0x0'])

    ??? cite "NVIDIA, 2025"
        Introducing NVFP4 for Efficient and Accurate Low-Precision Inference (NVIDIA technical blog, 2025); the
        NVFP4 recipes of TensorRT Model Optimizer and compressed-tensors.
    """
    direction, x, g = _check_quantize(x, global_scale, direction)
    blocks = x.reshape(x.shape[:-1] + (x.shape[-1] // BLOCK, BLOCK))
    amax = np.max(np.abs(blocks), axis=-1, initial=np.float32(0))
    with np.errstate(over="ignore", under="ignore"):
        if direction == "decode":
            t = amax / (np.float32(6) * g)
        else:
            t = g * (amax / np.float32(6))
    scales, _ = _floats.encode(t.astype(np.float32), E4M3, True, "half_even", None)
    scales = np.where(amax == 0, np.uint8(ONE_E4M3), scales).astype(np.uint8)
    s = _block_scale(scales, g, direction)
    spread = np.repeat(s, BLOCK, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        u = np.where(spread == 0, np.float32(0), x / np.where(spread == 0, np.float32(1), spread))
    u = np.where(np.signbit(x), -np.abs(u), np.abs(u)).astype(np.float32)  # a zero scale keeps the sign of x
    codes, _ = _floats.encode(u, E2M1, True, "half_even", None)
    return np.asarray(scales), np.asarray(codes)


def nvfp4_dequantize(scales, codes, global_scale, *, direction):
    r"""Decode NVFP4 to float32: $y_i = \operatorname{fl}(\operatorname{dec}(q_i) \cdot S_b)$.

    **Arguments:**

    - `scales`: uint8 E4M3 codes shaped like `codes` with the last axis divided by 16; the NaN codes `0x7F` and
      `0xFF` decode to NaN blocks.
    - `codes`: uint8 E2M1 codes (0 to 15), at least one dimension, the last a multiple of 16.
    - `global_scale`, `direction`: as for `nvfp4_quantize`.

    **Returns:**

    A float32 array shaped like `codes`.

    !!! note
        The product is rounded once to float32, and it can overflow: a block whose largest magnitude is within
        1/16 of float32's largest value decodes to $\pm\infty$ where its E4M3 scale rounded up and the element
        saturated at 6. A negative scale code (sign bit set) is decoded as it is: the product takes its sign. Decoding a block
        with the other direction's global scale multiplies instead of dividing: compare the two on one input.
    """
    direction = validate.choice("direction", direction, DIRECTIONS)
    g = _check_global(global_scale)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 15)
    shapes.nvfp4_last_axis("codes", codes.shape, BLOCK)
    scales = _arrays.array("scales", scales, ("uint8",))
    expected = codes.shape[:-1] + (codes.shape[-1] // BLOCK,)
    _arrays.shaped("scales", scales, expected, f"codes of shape {tuple(codes.shape)} in blocks of {BLOCK}")
    s = np.repeat(_block_scale(scales, g, direction), BLOCK, axis=-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(_floats.decode(codes.astype(np.int64), E2M1) * s)


# ---------------------------------------------------------------------------------------------------------------


def _check_global(global_scale):
    g = _arrays.finite_array("global_scale", global_scale)
    _arrays.shaped("global_scale", g, (), "a per-tensor scale")
    return np.float32(_arrays.positive("global_scale", g))


def _check_quantize(x, global_scale, direction):
    direction = validate.choice("direction", direction, DIRECTIONS)
    g = _check_global(global_scale)
    with np.errstate(over="ignore"):
        if direction == "encode" and np.isinf(np.float32(1) / g):
            raise ValueError(ENCODE_RECIPROCAL_OVERFLOWS.format(float(g)))
    x = _arrays.finite_array("x", x)
    shapes.nvfp4_last_axis("x", x.shape, BLOCK)
    return direction, x, g


def _block_scale(scales, g, direction):
    """The float32 block scales S_b of E4M3 codes: dec(c) * g (decode) or dec(c) / g (encode)."""
    d = _floats.decode(scales.astype(np.int64), E4M3)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return (d * g if direction == "decode" else d / g).astype(np.float32)
