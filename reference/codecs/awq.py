r"""The AWQ checkpoint layout (AutoAWQ's GEMM format): 4-bit codes packed along the output axis in the
interleaved order `[0, 2, 4, 6, 1, 3, 5, 7]`.

| tensor | dtype | shape | holds |
|---|---|---|---|
| `qweight` | int32 | `(in_features, out_features // 8)` | codes, 8 output channels per word |
| `qzeros` | int32 | `(n_groups, out_features // 8)` | zero points, the same packing |
| `scales` | float16 | `(n_groups, out_features)` | one scale per group and output channel |

Nibble $k$ of word $c$ (bits $[4k, 4k + 4)$) holds output channel $8c + o_k$ with $o = (0, 2, 4, 6, 1, 3, 5,
7)$; a group is `in_features // n_groups` consecutive input channels; the weight is
$w_{j,i} = s_{g(i), j} \cdot (q_{j,i} - z_{g(i), j})$, zero points stored as they are (no GPTQ-v1 offset).
On pqref's side codes are `(out_features, in_features)` and scales and zero points `(out_features, n_groups)`,
as for `gptq_pack`.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays

__all__ = ["awq_pack", "awq_unpack", "awq_decode"]

ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble k holds output channel 8c + ORDER[k]


def awq_pack(codes, scales, zeros):
    r"""Pack 4-bit codes, float16 scales and zero points into AWQ's `(qweight, qzeros, scales)`.

    $$ \text{qweight}_{i, c} = \sum_{k=0}^{7} q_{8c + o_k,\, i} \cdot 16^{k}, \qquad
       \text{qzeros}_{g, c} = \sum_{k=0}^{7} z_{8c + o_k,\, g} \cdot 16^{k} $$

    read as int32, $o = (0, 2, 4, 6, 1, 3, 5, 7)$.

    **Arguments:**

    - `codes`: a uint8 array `(out_features, in_features)` of codes in $[0, 15]$; `out_features` a multiple of 8.
    - `scales`: a float16 array `(out_features, n_groups)`, finite; `n_groups` divides `in_features`.
    - `zeros`: an int32 array `(out_features, n_groups)`, zero points in $[0, 15]$.

    **Returns:**

    `(qweight, qzeros, scales)`: int32 `(in_features, out_features // 8)`, int32 `(n_groups, out_features // 8)`
    and float16 `(n_groups, out_features)`.

    !!! note
        A bijection with `awq_unpack`. The interleaved order is what AutoAWQ's GEMM kernels read; GPTQ packs the
        input axis in plain order instead, so the two layouts are not interchangeable.

    Example: output channels 0..7 with codes 0..7 pack in AutoAWQ's order:

        >>> codes = np.tile(np.arange(8, dtype=np.uint8)[:, None], (1, 2))
        >>> qweight, _, _ = awq_pack(codes, np.full((8, 1), 0.5, np.float16), np.full((8, 1), 8, np.int32))
        >>> [hex(w) for w in qweight.view(np.uint32).ravel()]
        ['0x75316420', '0x75316420']

    ??? cite "Lin et al., 2024"
        AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration. MLSys. arXiv:2306.00978.
        Layout: AutoAWQ `WQLinear_GEMM.from_linear`.
    """
    codes, scales, zeros, groups = _check_unpacked(codes, scales, zeros)
    out_f, in_f = codes.shape
    qweight = _pack(codes.astype(np.int64).T)
    qzeros = _pack(zeros.astype(np.int64).T)
    return qweight, qzeros, np.array(scales.T)


def awq_unpack(qweight, qzeros, scales):
    r"""Unpack AWQ's tensors into `(codes, scales, zeros)`, the inverse of `awq_pack`.

    **Arguments:**

    - `qweight`: an int32 array `(in_features, out_features // 8)`, any bit patterns.
    - `qzeros`: an int32 array `(n_groups, out_features // 8)`.
    - `scales`: a float16 array `(n_groups, out_features)`, finite; `n_groups` divides `in_features`.

    **Returns:**

    `(codes, scales, zeros)`: uint8 `(out_features, in_features)`, float16 `(out_features, n_groups)`, int32
    `(out_features, n_groups)`.

    Example: `0x75316420` unpacks to the codes 0..7 of output channels 0..7:

        >>> qweight = np.full((2, 1), 0x75316420, np.int32)
        >>> qzeros = np.full((1, 1), 0x88888888, np.uint32).view(np.int32)
        >>> awq_unpack(qweight, qzeros, np.full((1, 8), 0.5, np.float16))[0][:, 0]
        array([0, 1, 2, 3, 4, 5, 6, 7], dtype=uint8)
    """
    qweight, qzeros, scales = _check_packed(qweight, qzeros, scales)
    codes = _unpack(qweight).T
    zeros = _unpack(qzeros).T
    return np.array(codes.astype(np.uint8)), np.array(scales.T), np.array(zeros.astype(np.int32))


def awq_decode(qweight, qzeros, scales):
    r"""The exact float32 weight of an AWQ checkpoint: $w_{j,i} = s_{g(i), j} \cdot (q_{j,i} - z_{g(i), j})$.

    The product of a float16 scale and an integer in $[-15, 15]$ is exact in float32; rounding it to float16
    gives what AutoAWQ's `(iweight - izeros) * scales` computes in float16.

    **Arguments:** as for `awq_unpack`.

    **Returns:**

    A float32 array `(out_features, in_features)`.
    """
    qweight, qzeros, scales = _check_packed(qweight, qzeros, scales)
    in_f = qweight.shape[0]
    groups = scales.shape[0]
    codes = _unpack(qweight)  # (in, out)
    zeros = _unpack(qzeros)  # (groups, out)
    g = np.arange(in_f) // (in_f // groups)
    diff = (codes - zeros[g]).astype(np.float32)
    return np.asarray((scales.astype(np.float32)[g] * diff).T)


# ---------------------------------------------------------------------------------------------------------------


def _check_unpacked(codes, scales, zeros):
    codes = _arrays.array("codes", codes, ("uint8",))
    if codes.ndim != 2 or codes.shape[0] % 8:
        raise ValueError(
            f"codes must be 2-D (out_features, in_features) with out_features a multiple of 8, got shape {tuple(codes.shape)}"
        )
    _arrays.within("codes", codes, 0, 15)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    out_f, in_f = codes.shape
    if scales.ndim != 2 or scales.shape[0] != out_f or scales.shape[1] < 1 or in_f % scales.shape[1]:
        raise ValueError(
            f"scales must have shape (out_features = {out_f}, n_groups) with n_groups dividing in_features = {in_f}, got {tuple(scales.shape)}"
        )
    zeros = _arrays.array("zeros", zeros, ("int32",))
    _arrays.shaped("zeros", zeros, scales.shape, "scales")
    _arrays.within("zeros", zeros, 0, 15)
    return codes, scales, zeros, scales.shape[1]


def _check_packed(qweight, qzeros, scales):
    qweight = _arrays.array("qweight", qweight, ("int32",))
    if qweight.ndim != 2:
        raise ValueError(f"qweight must be 2-D (in_features, out_features // 8), got shape {tuple(qweight.shape)}")
    in_f, cols = qweight.shape
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[1] != 8 * cols or scales.shape[0] < 1 or in_f % scales.shape[0]:
        raise ValueError(
            f"scales must have shape (n_groups, out_features = {8 * cols}) with n_groups dividing in_features = {in_f}, got {tuple(scales.shape)}"
        )
    qzeros = _arrays.array("qzeros", qzeros, ("int32",))
    _arrays.shaped("qzeros", qzeros, (scales.shape[0], cols), f"scales of shape {tuple(scales.shape)}")
    return qweight, qzeros, scales


def _pack(v):
    """(rows, 8 m) ints in [0, 15] -> (rows, m) int32 words in AWQ's nibble order."""
    rows, n = v.shape
    v = v.reshape(rows, n // 8, 8)[:, :, list(ORDER)]
    words = (v << (4 * np.arange(8, dtype=np.int64))).sum(axis=2)  # distinct nibbles: the sum is the or
    return np.asarray(words.astype(np.uint32).view(np.int32))


def _unpack(words):
    """(rows, m) int32 words -> (rows, 8 m) int64 codes in channel order."""
    u = words.astype(np.int64) & 0xFFFFFFFF
    nib = (u[:, :, None] >> (4 * np.arange(8, dtype=np.int64))) & 0xF  # nibble k
    out = np.empty_like(nib)
    out[:, :, list(ORDER)] = nib
    return out.reshape(words.shape[0], 8 * words.shape[1])  # not -1: in_features may be 0
