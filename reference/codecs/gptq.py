r"""The GPTQ checkpoint layout: `qweight`, `qzeros`, `scales` and `g_idx`, with "v1" and "v2" zero points.

A GPTQ-quantized `Linear` of weight shape `(out_features, in_features)` is stored (AutoGPTQ, GPTQModel, the
`gptq` format of transformers and vLLM) as four tensors, for `bits` $b \in \{2, 4, 8\}$ and $p = 32 / b$ codes
per int32:

| tensor | dtype | shape | holds |
|---|---|---|---|
| `qweight` | int32 | `(in_features // p, out_features)` | codes packed along the input axis |
| `qzeros` | int32 | `(n_groups, out_features // p)` | stored zero points packed along the output axis |
| `scales` | float16 | `(n_groups, out_features)` | one scale per group and output channel |
| `g_idx` | int32 | `(in_features,)` | the group of each input channel |

Within an int32, code $k$ of a run of $p$ sits in bits $[kb, kb + b)$ (the first code in the lowest bits); the
int32 is that unsigned word read as two's complement. The weight is

$$ w_{j,i} = s_{g_i, j} \cdot (q_{j,i} - z_{g_i, j}) $$

**v1 and v2.** GPTQ checkpoints on disk (AutoGPTQ, GPTQModel's `checkpoint_format="gptq"`) store $z - 1$ in
`qzeros` and their kernels add the 1 back ("v1"); GPTQModel's internal `gptq_v2` format stores $z$ itself.
Reading one as the other shifts every weight by one step $s$: the model outputs garbage. So `zero_format` has no
default. A v1 field holds $z - 1 \in [0, 2^b - 1]$, so v1 zero points are $[1, 2^b]$ (the symmetric
$z = 2^{b-1}$ is stored as $2^{b-1} - 1$, `0x77777777` for 4 bits); v2 zero points are $[0, 2^b - 1]$.
AutoGPTQ's packer writes a v1 $z = 0$ as $-1$ and ors it into the word, corrupting its neighbours: pqref
rejects it.

Codes and zero points on pqref's side are in the weight's orientation, as `minmax_qparams(w, axis=0,
group_size=g)` lays them out: codes `(out_features, in_features)`, scales and zero points
`(out_features, n_groups)`. 3-bit GPTQ (codes straddling int32 words) is not covered.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import checks

__all__ = ["gptq_pack", "gptq_unpack", "gptq_decode"]

BITS = (2, 4, 8)
ZERO_FORMATS = ("v1", "v2")


def gptq_pack(codes, scales, zeros, g_idx, *, bits, zero_format):
    r"""Pack integer codes, scales, zero points and `g_idx` into GPTQ's `(qweight, qzeros, scales, g_idx)`.

    $$ \text{qweight}_{r, j} = \sum_{k=0}^{p-1} q_{j,\, rp + k} \cdot 2^{kb}, \qquad
       \text{qzeros}_{g, c} = \sum_{k=0}^{p-1} (z_{cp + k,\, g} - \delta) \cdot 2^{kb} $$

    read as int32 (two's complement), with $\delta = 1$ for `"v1"` and $0$ for `"v2"`.

    **Arguments:**

    - `codes`: a uint8 array `(out_features, in_features)`, codes in $[0, 2^b - 1]$; both sides multiples of
      $p = 32 / b$.
    - `scales`: a float16 array `(out_features, n_groups)`, finite, `n_groups >= 1`.
    - `zeros`: an int32 array `(out_features, n_groups)`: zero points in $[1, 2^b]$ (`"v1"`) or
      $[0, 2^b - 1]$ (`"v2"`).
    - `g_idx`: an int32 array `(in_features,)`, the group of each input channel, in `[0, n_groups - 1]`;
      `i // group_size` without act-order, any assignment with it.
    - `bits`: 2, 4 or 8.
    - `zero_format`: `"v1"` (what GPTQ checkpoints store) or `"v2"`.

    **Returns:**

    `(qweight, qzeros, scales, g_idx)`: int32 `(in_features // p, out_features)`, int32
    `(n_groups, out_features // p)`, float16 `(n_groups, out_features)` (the transpose of `scales`) and a copy of
    `g_idx`.

    !!! note
        A bijection with `gptq_unpack`: every int32 bit pattern is a valid packed word, every valid input packs to
        one. Nothing is rounded; the scales pass through as float16.

    Example (4 bits, one group, 8 x 8): codes with $q_{j,i} = i$ and zero points 8 give the words `0x76543210`
    in `qweight`; `qzeros` stores $z - 1$ in v1 and $z$ in v2:

        >>> codes = np.tile(np.arange(8, dtype=np.uint8), (8, 1))
        >>> scales, zeros, g_idx = np.full((8, 1), 0.5, np.float16), np.full((8, 1), 8, np.int32), np.zeros(8, np.int32)
        >>> qweight, qzeros, _, _ = gptq_pack(codes, scales, zeros, g_idx, bits=4, zero_format="v1")
        >>> {hex(w) for w in qweight.view(np.uint32).ravel()}, hex(qzeros.view(np.uint32)[0, 0])
        ({'0x76543210'}, '0x77777777')
        >>> _, qzeros, _, _ = gptq_pack(codes, scales, zeros, g_idx, bits=4, zero_format="v2")
        >>> hex(qzeros.view(np.uint32)[0, 0]), qzeros
        ('0x88888888', array([[-2004318072]], dtype=int32))

    ??? cite "Frantar et al., 2023"
        GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers. ICLR.
        arXiv:2210.17323. The layout is AutoGPTQ's `QuantLinear.pack`; v2 is GPTQModel's `gptq_v2`.
    """
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    codes = _arrays.array("codes", codes, ("uint8",))
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (out_features, in_features), got shape {tuple(codes.shape)}")
    out_f, in_f = codes.shape
    checks.packed_multiple("codes.shape[0] (out_features)", out_f, per, b)
    checks.packed_multiple("codes.shape[1] (in_features)", in_f, per, b)
    _arrays.within("codes", codes, 0, 2**b - 1)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[0] != out_f or scales.shape[1] < 1:
        raise ValueError(
            f"scales must have shape (out_features, n_groups) = ({out_f}, n_groups >= 1), got {tuple(scales.shape)}"
        )
    groups = scales.shape[1]
    zeros = _arrays.array("zeros", zeros, ("int32",))
    _arrays.shaped("zeros", zeros, scales.shape, "scales")
    _arrays.within("zeros", zeros, delta, 2**b - 1 + delta)
    g_idx = _check_g_idx(g_idx, in_f, groups)
    shift = np.arange(per, dtype=np.int64) * b
    q = codes.astype(np.int64).T.reshape(in_f // per, per, out_f)
    qweight = (q << shift[None, :, None]).sum(axis=1)  # distinct bit positions: the sum is the bitwise or
    z = (zeros.astype(np.int64) - delta).T.reshape(groups, out_f // per, per)
    qzeros = (z << shift).sum(axis=2)
    return _int32(qweight), _int32(qzeros), np.array(scales.T), np.array(g_idx)


def gptq_unpack(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    r"""Unpack GPTQ's four tensors into `(codes, scales, zeros, g_idx)`, the inverse of `gptq_pack`.

    $$ q_{j,\, rp + k} = \lfloor \text{qweight}_{r,j} / 2^{kb} \rfloor \bmod 2^b, \qquad
       z_{cp + k,\, g} = \big(\lfloor \text{qzeros}_{g,c} / 2^{kb} \rfloor \bmod 2^b\big) + \delta $$

    on the unsigned words, with $\delta = 1$ for `"v1"`, $0$ for `"v2"`.

    **Arguments:**

    - `qweight`: an int32 array `(in_features // p, out_features)`, any bit patterns.
    - `qzeros`: an int32 array `(n_groups, out_features // p)`.
    - `scales`: a float16 array `(n_groups, out_features)`, finite.
    - `g_idx`: an int32 array `(in_features,)` with values in `[0, n_groups - 1]`.
    - `bits`, `zero_format`: as for `gptq_pack`; nothing in the tensors tells v1 from v2.

    **Returns:**

    `(codes, scales, zeros, g_idx)`: uint8 `(out_features, in_features)`, float16 `(out_features, n_groups)`,
    int32 `(out_features, n_groups)` and a copy of `g_idx`.

    Example: stored zero points 7 (4 bits) are $z = 8$ in v1 and $z = 7$ in v2:

        >>> qweight, qzeros = np.full((1, 8), 0x76543210, np.int32), np.full((1, 1), 0x77777777, np.int32)
        >>> scales, g_idx = np.full((1, 8), 0.5, np.float16), np.zeros(8, np.int32)
        >>> for fmt in ("v1", "v2"):
        ...     print(fmt, gptq_unpack(qweight, qzeros, scales, g_idx, bits=4, zero_format=fmt)[2].ravel())
        v1 [8 8 8 8 8 8 8 8]
        v2 [7 7 7 7 7 7 7 7]
    """
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b, per, axis=1)  # (in_f // per, per, out_f) -> (in_f, out_f)
    zeros = _fields(qzeros, b, per, axis=2)  # (groups, out_f // per, per) -> (groups, out_f)
    codes = codes.reshape(in_f, out_f).T
    zeros = (zeros.reshape(groups, out_f) + delta).T
    return np.array(codes.astype(np.uint8)), np.array(scales.T), np.array(zeros.astype(np.int32)), np.array(g_idx)


def gptq_decode(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    r"""The float weight of a GPTQ checkpoint, exactly: $w_{j,i} = s_{g_i, j} \cdot (q_{j,i} - z_{g_i, j})$.

    The float16 scale times the small integer $q - z$ (at most 9 bits) has at most 20 significant bits, so
    the float32 product is exact; rounding it to float16 (`astype(np.float16)`) gives what a float16 kernel
    computes, `scales * (q - z)` in float16, which rounds the same exact product once.

    **Arguments:** as for `gptq_unpack`.

    **Returns:**

    A float32 array `(out_features, in_features)`, the `Linear` weight.

    !!! note
        This needs NumPy only. Read with the wrong `zero_format`, every weight moves by one step
        $s_{g_i, j}$: compare `gptq_decode(..., zero_format="v1")` and `"v2"` on the same tensors.

    Example (4 bits, v1): codes $0 \ldots 7$ with stored zero 7 ($z = 8$) and scale 0.5 are $0.5 (q - 8)$:

        >>> qweight, qzeros = np.full((1, 8), 0x76543210, np.int32), np.full((1, 1), 0x77777777, np.int32)
        >>> scales, g_idx = np.full((1, 8), 0.5, np.float16), np.zeros(8, np.int32)
        >>> gptq_decode(qweight, qzeros, scales, g_idx, bits=4, zero_format="v1")[0]
        array([-4. , -3.5, -3. , -2.5, -2. , -1.5, -1. , -0.5], dtype=float32)
    """
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b, per, axis=1).reshape(in_f, out_f)
    zeros = _fields(qzeros, b, per, axis=2).reshape(groups, out_f) + delta
    gi = g_idx.astype(np.int64)
    diff = (codes - zeros[gi]).astype(np.float32)
    return np.asarray((scales.astype(np.float32)[gi] * diff).T)


# ---------------------------------------------------------------------------------------------------------------


def _check_g_idx(g_idx, in_f, groups):
    g_idx = _arrays.array("g_idx", g_idx, ("int32",))
    _arrays.shaped("g_idx", g_idx, (in_f,), f"in_features = {in_f}")
    return _arrays.within("g_idx", g_idx, 0, groups - 1)


def _check_packed(qweight, qzeros, scales, g_idx, b, per):
    qweight = _arrays.array("qweight", qweight, ("int32",))
    if qweight.ndim != 2:
        raise ValueError(f"qweight must be 2-D (in_features // {per}, out_features), got shape {qweight.shape}")
    rows, out_f = qweight.shape
    in_f = rows * per
    checks.packed_multiple("qweight.shape[1] (out_features)", out_f, per, b)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[1] != out_f or scales.shape[0] < 1:
        raise ValueError(f"scales must have shape (n_groups >= 1, out_features = {out_f}), got {tuple(scales.shape)}")
    groups = scales.shape[0]
    qzeros = _arrays.array("qzeros", qzeros, ("int32",))
    _arrays.shaped("qzeros", qzeros, (groups, out_f // per), f"scales of shape {tuple(scales.shape)}")
    g_idx = _check_g_idx(g_idx, in_f, groups)
    return qweight, qzeros, scales, g_idx, in_f, out_f, groups


def _fields(words, b, per, axis):
    """The `per` fields of `b` bits of each int32 word, as int64, in a new axis at `axis` (lowest bits first)."""
    u = words.astype(np.int64) & 0xFFFFFFFF
    shift = np.arange(per, dtype=np.int64) * b
    u = np.expand_dims(u, axis)
    shape = [1] * u.ndim
    shape[axis] = per
    return (u >> shift.reshape(shape)) & (2**b - 1)


def _int32(words):
    """Unsigned 32-bit words (int64) as int32 two's complement."""
    return np.asarray(words.astype(np.uint32).view(np.int32))
