"""NF4, the 4-bit NormalFloat of QLoRA: block-wise absmax scaling, nearest-entry encoding, and the double
quantization of the block scales.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes
from reference.core.exact import exact_sum

__all__ = ["nf4_quantize", "nf4_dequantize", "nf4_double_quantize", "nf4_double_dequantize"]

# The 16 NF4 values, exactly the float32 table of bitsandbytes (`get_4bit_type("nf4")`, `dDequantizeNF4`).
NF4 = np.array(
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ],
    dtype=np.float32,
)  # fmt: skip
# Sums of neighbours, exact in float64 (the values have at most 24 significant bits and exponents in [-4, 0]).
_PAIR_SUMS = NF4[:-1].astype(np.float64) + NF4[1:].astype(np.float64)
TINY = np.float32(2.0**-126)


def nf4_quantize(x, *, block_size=64):
    r"""NF4 codes and block scales: each block of `block_size` values is divided by its absmax and encoded as
    the index of the nearest NF4 value.

    $$ a_b = \max_{i \in b} |x_i|, \qquad u_i = \operatorname{fl}_{32}(x_i / a_b), \qquad
       q_i = \min \operatorname*{arg\,min}_j |u_i - v_j| $$

    The blocks are consecutive runs of the flattened (C order) `x`; the last may be shorter. The division is
    IEEE float32 ($|u| \le 1$ exactly); the nearest entry is decided exactly (the pair sums
    $v_j + v_{j+1}$ are exact in float64): $q = \#\{ j : 2u > v_j + v_{j+1} \}$, so a value on a midpoint goes
    to the lower index.

    The table $v$ (bitsandbytes' float32 values): `-1.0, -0.6961928009986877, -0.5250730514526367,
    -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434,
    0.5626170039176941, 0.7229568362236023, 1.0`.

    **Arguments:**

    - `x`: a float32 array, finite (empty allowed).
    - `block_size`: an int in `[1, 2**40]`; QLoRA uses 64.

    **Returns:**

    `(codes, absmax)`: a uint8 array shaped like `x` with codes in $[0, 15]$ (unpacked; `pack_bits(codes, 4)`
    packs them, first code in the low nibble), and a float32 array of shape $(\lceil n / \text{block\_size}
    \rceil,)$, every entry $> 0$.

    !!! note
        An all-zero block gets absmax `1.0` (as the degenerate scale of `qparams_from_range`): its codes are 7
        and it decodes to `+0.0`; bitsandbytes computes $0 \cdot (1/0)$ = NaN there and stores code 0 ($-1.0$).
        Peers differ in the last bit of the encoding: bitsandbytes multiplies by $1/a_b$ and compares with
        float32 literals of the midpoints, torchao divides but uses 4-decimal constants (`-0.6962`, ...). NF4
        packing in bitsandbytes and torchao puts the first code in the *high* nibble. `-0.0` encodes as 7.

    Example: `block_size=2`: absmax `[2, 1]`, $u = [0.25, -1, 0, 1]$ (0.25 is nearest to 0.24611230); `(codes,
    absmax)`:

        >>> nf4_quantize(np.float32([0.5, -2.0, 0.0, 1.0]), block_size=2)
        (array([10,  0,  7, 15], dtype=uint8), array([2., 1.], dtype=float32))

    ??? cite "Dettmers et al., 2023"
        QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS. arXiv:2305.14314
    """
    block_size = shapes.size("block_size", block_size)
    x = _arrays.finite_array("x", x)
    flat = x.reshape(-1)
    absmax = _block_max(np.abs(flat), block_size)
    absmax = np.where(absmax == 0, np.float32(1), absmax).astype(np.float32)
    u2 = (flat / _spread(absmax, flat.size, block_size)).astype(np.float64) * 2
    codes = (u2[:, None] > _PAIR_SUMS).sum(axis=1)  # a count of booleans: exact
    return np.asarray(codes.astype(np.uint8).reshape(x.shape)), np.asarray(absmax)


def nf4_dequantize(codes, absmax, *, block_size=64):
    r"""NF4 codes back to float32: $\hat x_i = \operatorname{fl}_{32}(v_{q_i} \cdot a_b)$, one float32 product.

    This is bitsandbytes' and torchao's dequantization, bit for bit, given the same codes and scales.

    **Arguments:**

    - `codes`: a uint8 array of any shape, codes in $[0, 15]$ (flattened in C order into blocks).
    - `absmax`: a float32 array of shape $(\lceil n / \text{block\_size} \rceil,)$, finite, $> 0$.
    - `block_size`: an int in `[1, 2**40]`.

    **Returns:**

    A float32 array shaped like `codes`. Code 7 gives `+0.0`.

    ??? cite "Dettmers et al., 2023"
        QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS. arXiv:2305.14314
    """
    block_size = shapes.size("block_size", block_size)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 15)
    absmax = _blocks_of("absmax", absmax, codes.size, block_size)
    scale = _spread(absmax, codes.size, block_size).reshape(codes.shape)
    return np.asarray(NF4[codes.astype(np.int64)] * scale)


def nf4_double_quantize(absmax, *, block_size=256):
    r"""QLoRA's double quantization of the block scales: subtract their mean, then symmetric int8 per block.

    $$ \mu = \operatorname{fl}_{32}\big(\operatorname{fl}_{64}(\operatorname{exact\_sum}(a) / n)\big), \quad d_i = \operatorname{fl}_{32}(a_i - \mu),
       \quad s_B = \operatorname{fl}_{32}\Big(\frac{\max_{i \in B} |d_i|}{127}\Big), \quad
       q_i = \operatorname{clip}\big(\operatorname{rne}(\operatorname{fl}_{32}(d_i / s_B)), -127, 127\big) $$

    with blocks $B$ of `block_size` consecutive scales (the last may be shorter); $s_B$ is computed in
    float64 and rounded once, and replaced by `1.0` when below $2^{-126}$ (all-equal scales). The second-level
    scales $s$ stay float32.

    **Arguments:**

    - `absmax`: a 1-D float32 array of block scales, finite, $> 0$, non-empty (as from `nf4_quantize`).
    - `block_size`: an int in `[1, 2**40]`; QLoRA uses 256.

    **Returns:**

    `(q, scale, offset)`: an int8 array shaped like `absmax` with values in $[-127, 127]$, a float32 array of
    shape $(\lceil n / \text{block\_size} \rceil,)$, and the float32 mean $\mu$ as a 0-d array.

    !!! note "What QLoRA and its peers do"
        The paper quantizes the scales with "8-bit floats, block size 256" after subtracting their mean;
        bitsandbytes uses its dynamic 8-bit code there. This function uses symmetric int8 (the scheme of
        torchao's `NF4Tensor`, which however scales by $256 / (2 \max|d|)$ and so clips $+\max|d|$ from
        128 to 127). Decoding can give a scale $\le 0$ when the scales spread widely (the error is up to
        $s_B / 2$); `nf4_dequantize` then rejects it.

    Example: `block_size=2`: $\mu = 2.5$, $d = [-1.5, -0.5, 0.5, 1.5]$, $s = [1.5/127, 1.5/127]$, and
    $0.5 \cdot 127/1.5 = 42.33$; `(q, scale, offset)`:

        >>> nf4_double_quantize(np.float32([1, 2, 3, 4]), block_size=2)
        (array([-127,  -42,   42,  127], dtype=int8), array([0.01181102, 0.01181102], dtype=float32), array(2.5, dtype=float32))

    ??? cite "Dettmers et al., 2023"
        QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS. arXiv:2305.14314
    """
    block_size = shapes.size("block_size", block_size)
    a = _arrays.finite_array("absmax", absmax)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"absmax must be 1-D and non-empty, got shape {tuple(a.shape)}")
    _arrays.positive("absmax", a)
    offset = np.float32(exact_sum(a) / np.float64(a.size))
    d = a - offset
    scale = (_block_max(np.abs(d), block_size).astype(np.float64) / np.float64(127)).astype(np.float32)
    scale = np.where(scale < TINY, np.float32(1), scale).astype(np.float32)
    q = np.clip(np.rint(d / _spread(scale, a.shape[0], block_size)), -127, 127)
    return np.asarray(q.astype(np.int8)), np.asarray(scale), np.asarray(offset)


def nf4_double_dequantize(q, scale, offset, *, block_size=256):
    r"""Block scales back from their double quantization: $a_i = \operatorname{fl}_{32}(\operatorname{fl}_{32}(q_i
    \cdot s_B) + \mu)$, two float32 operations.

    **Arguments:**

    - `q`: a 1-D int8 array with values in $[-127, 127]$.
    - `scale`: a float32 array of shape $(\lceil n / \text{block\_size} \rceil,)$, finite, $> 0$.
    - `offset`: a 0-d float32 array, finite: the mean $\mu$.
    - `block_size`: an int in `[1, 2**40]`.

    **Returns:**

    A float32 array shaped like `q`.

    Example: `nf4_double_quantize`'s example, decoded:

        >>> q, scale, offset = nf4_double_quantize(np.float32([1, 2, 3, 4]), block_size=2)
        >>> nf4_double_dequantize(q, scale, offset, block_size=2)
        array([1.      , 2.003937, 2.996063, 4.      ], dtype=float32)
    """
    block_size = shapes.size("block_size", block_size)
    q = _arrays.within("q", _arrays.array("q", q, ("int8",)), -127, 127)
    if q.ndim != 1:
        raise ValueError(f"q must be 1-D, got shape {tuple(q.shape)}")
    scale = _blocks_of("scale", scale, q.shape[0], block_size)
    offset = _arrays.shaped("offset", _arrays.finite_array("offset", offset), (), "the mean of the scales")
    return np.asarray(q.astype(np.float32) * _spread(scale, q.shape[0], block_size) + offset)


def _blocks_of(name, s, n, block_size):
    """Check a per-block array for `n` values: finite, > 0, shape (ceil(n / block_size),)."""
    s = _arrays.positive(name, _arrays.finite_array(name, s))
    return _arrays.shaped(name, s, (-(-n // block_size),), f"{n} values in blocks of {block_size}")


def _block_max(v, block_size):
    """The maximum of each run of `block_size` consecutive elements of the 1-D `v` (the last run may be short)."""
    full = v.size // block_size * block_size
    tail = v[full:].max(keepdims=True) if v.size > full else np.zeros(0, dtype=v.dtype)
    return np.concatenate([v[:full].reshape(-1, block_size).max(axis=1, initial=v.dtype.type(0)), tail])


def _spread(per_block, n, block_size):
    """The value of each element's block, for `n` elements."""
    return per_block[np.arange(n) // block_size]
