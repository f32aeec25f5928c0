r"""Hadamard rotations (QuaRot, SpinQuant): an orthogonal change of basis that spreads outliers before quantization.

A linear layer $y = x W^\top$ computes the same function with $x' = x Q$ and $W' = W Q$ for any orthogonal $Q$
($Q Q^\top = I$). QuaRot takes $Q = D H^\top / \sqrt n$: a $\pm 1$ Hadamard matrix $H$ and a diagonal $D$ of random
signs. Outliers of $x$ are then spread over all $n$ coordinates, and both $x'$ and $W'$ quantize better. pqref pins:

- **The matrix** (`hadamard_matrix`): Sylvester's $S_{2^m}$ for $n = 2^m$, and QuaRot's products for the common
  other sizes: $H_{12} \otimes S_{2^m}$, $H_{20}$, and $S_2 \otimes H_{20} \otimes S_{2^{m-1}}$ for $20 \cdot 2^m$
  ($m \ge 1$; QuaRot's 40-row table is $S_2 \otimes H_{20}$), with $H_{12}$ and $H_{20}$ from Sloane's library of
  Hadamard matrices (Paley's construction), the tables QuaRot uses.
- **The signs**: $d_j = 1 - 2\,(b_j \bmod 2)$ with $b$ = `random_bits(key, (n,))`, pqref's keyed counter-based
  generator, so every backend draws the same $D$; without a key, $D = I$.
- **The transform** (`hadamard_transform`): every output element is the exact sum $\sum_j \pm x_j$ divided by
  $\sqrt n$, rounded once to float32; the same bits on every device.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import posttraining as rules
from reference.common import transcendentals as host
from reference.common import validate
from reference.core.random import random_bits

__all__ = ["hadamard_matrix", "hadamard_transform"]

EPS = 2.0**-53
TINY = 2.0**-1060
# Rows 1.. of Sloane's had.12 and had.20.pal (as QuaRot's get_had12, get_had20) are circulant: row r is +1 followed by
# this pattern rotated right by r - 1; row 0 is +1 followed by -1s.
PALEY = {12: "+-+---+++-+", 20: "+-++----+-+-++++--+"}


def hadamard_matrix(n):
    r"""The $\pm 1$ Hadamard matrix $H_n$ pqref rotates with ($H_n H_n^\top = n I$), QuaRot's for every size it builds.

    $$ H_{2^m} = S_{2^m}, \qquad H_{12 \cdot 2^m} = H_{12} \otimes S_{2^m}, \qquad H_{20} = H_{20}, \qquad
       H_{20 \cdot 2^m} = S_2 \otimes H_{20} \otimes S_{2^{m-1}} \ (m \ge 1) $$

    with Sylvester's $S_1 = [1]$, $S_{2k} = \begin{bmatrix} S_k & S_k \\ S_k & -S_k \end{bmatrix}$ and $\otimes$ the
    Kronecker product (`np.kron`). $H_{12}$ and $H_{20}$ are Paley's: row 0 is $(+1, -1, \ldots, -1)$, row $r \ge 1$
    is $+1$ followed by a fixed pattern of quadratic residues rotated right by $r - 1$.

    **Arguments:**

    - `n`: an int: $2^m$, $12 \cdot 2^m$ or $20 \cdot 2^m$, at most $2^{20}$.

    **Returns:**

    An int8 array `(n, n)` of $\pm 1$.

    !!! note
        QuaRot's `matmul_hadU(x)` computes $x H_n^\top / \sqrt n$ with this $H_n$ (its butterfly runs over the
        $2^m$ factor, then its $K \times K$ table multiplies; sizes $20 \cdot 2^m$, $m \ge 1$, use its 40-row table,
        which is $S_2 \otimes H_{20}$). Example:

            >>> hadamard_matrix(2)
            array([[ 1,  1],
                   [ 1, -1]], dtype=int8)

    ??? cite "Ashkboos et al., 2024; Sloane"
        QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs. NeurIPS. arXiv:2404.00456. N. J. A. Sloane, A Library
        of Hadamard Matrices (had.12, had.20.pal). Paley, 1933, On Orthogonal Matrices, J. Math. Phys. 12.
    """
    return _matrix(rules.hadamard_size(n))


def hadamard_transform(x, *, key=None, inverse=False):
    r"""The randomized Hadamard rotation along the last axis: $x Q$ (or $x Q^\top$) for $Q = D H_n^\top / \sqrt n$.

    $$ \text{forward: } y_i = \operatorname{fl}_{32}\Big(\frac{1}{\sqrt n} \sum_j (H_n)_{ij}\, d_j\, x_j\Big), \qquad
       \text{inverse: } y_i = \operatorname{fl}_{32}\Big(\frac{d_i}{\sqrt n} \sum_j (H_n)_{ji}\, x_j\Big) $$

    Every output is the exact real value rounded once (the sum of $\pm x_j$ is exact, then divided by $\sqrt n$
    exactly). Rotating a layer's weight rows and its input the same way preserves its output: with
    $x' = $ `hadamard_transform(x, key=k)` and $W' = $ `hadamard_transform(W, key=k)`, the exact
    $x' \cdot w'_o$ differs from $x \cdot w_o$ by at most
    $(2u + u^2)\,\lVert x \rVert_2 \lVert w_o \rVert_2 + 2^{-149} \sqrt n\, (\lVert x \rVert_2 + \lVert w_o \rVert_2)
    + n\, 2^{-298}$, $u = 2^{-24}$ (each of $x'_j$, $w'_j$ is within $u$ relative, or $2^{-150}$ absolute, of the
    exact rotation, and $\sum_j |(xQ)_j| |(w_oQ)_j| \le \lVert x \rVert_2 \lVert w_o \rVert_2$ since $Q$ is orthogonal).

    **Arguments:**

    - `x`: a float32 array `(..., n)`, finite, with `n` a size `hadamard_matrix` builds.
    - `key`: `None` (no sign flips, $D = I$) or a key: $d_j = 1 - 2 (b_j \bmod 2)$, $b$ = `random_bits(key, (n,))`.
    - `inverse`: apply $Q^\top = Q^{-1}$ instead of $Q$.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        A zero sum gives `+0.0`; a nonzero one keeps its sign when it rounds to zero. How it is computed: a float64
        matrix product approximates the sums, a rigorous bound on its error (any summation order, with or without
        fused multiply-add) proves almost every float32 result; the rare others are rounded exactly from the exact
        integer sum (`reference.common.transcendentals.hadamard_entry_float32`), the same code in both backends.
        Example: $[3 + 1, 3 - 1] / \sqrt 2$:

            >>> hadamard_transform(np.float32([[3, 1]]))
            array([[2.828427 , 1.4142135]], dtype=float32)

    ??? cite "Ashkboos et al., 2024; Chee et al., 2023"
        QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs. NeurIPS. arXiv:2404.00456 (`random_hadamard_matrix`,
        online Hadamard of activations). QuIP: 2-Bit Quantization of Large Language Models With Guarantees.
        NeurIPS. arXiv:2307.13304 (randomized Hadamard incoherence processing).
    """
    x = _arrays.finite_array("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension (..., n), got a 0-d array")
    n = rules.hadamard_size(x.shape[-1], "the last axis of x")
    key = None if key is None else validate.key("key", key)
    inverse = validate.boolean("inverse", inverse)
    coefficients = _coefficients(n, key, inverse)
    rows = x.reshape(-1, n).astype(np.float64)
    root = math.sqrt(n)  # correctly rounded (IEEE sqrt, on the host)
    approx = (rows @ coefficients.T.astype(np.float64)) / root
    magnitude = np.abs(rows).sum(axis=1, keepdims=True)
    value, ok = _certified(approx, magnitude, n, root)
    for r, i in zip(*np.nonzero(~ok), strict=True):
        value[r, i] = host.hadamard_entry_float32(x.reshape(-1, n)[r].tolist(), coefficients[i].tolist(), n)
    return value.reshape(x.shape)


# ---- helpers ----------------------------------------------------------------------------------------------------


def _coefficients(n, key, inverse):
    """The int64 matrix C with y_i = fl32(sum_j C_ij x_j / sqrt n): H * d (columns) forward, (H * d)^T inverse."""
    h = _matrix(n).astype(np.int64)
    d = np.ones(n, dtype=np.int64) if key is None else 1 - 2 * (random_bits(key, (n,)) & 1)
    c = h * d[None, :]
    return c.T if inverse else c


def _certified(approx, magnitude, n, root):
    """`(fl32(approx), ok)`: `ok` where every value within the error bound rounds to the same float32 (bits).

    The exact sum differs from the float64 product by at most `gamma_n * sum|x_j|` (any order, FMA or not;
    Higham, Thm. 3.1); the division by the correctly rounded `root` and the error of `magnitude` add a few units
    of 2**-53. The bound doubles all of that.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        bound = (2.0 * (n + 4) * EPS) * (magnitude / root + np.abs(approx)) + TINY
        value = approx.astype(np.float32)
        lo, hi = (approx - bound).astype(np.float32), (approx + bound).astype(np.float32)
    same = (lo.view(np.uint32) == value.view(np.uint32)) & (hi.view(np.uint32) == value.view(np.uint32))
    zero = np.broadcast_to(magnitude == 0, approx.shape)  # every x_j is +-0: the exact sum is 0, +0.0
    value = np.where(zero, np.float32(0), value)
    return value, (same | zero) & ~np.isnan(approx)


def _is_pow2(k):
    return k >= 1 and k & (k - 1) == 0


def _matrix(n):
    for base in (20, 12):
        if n % base == 0 and _is_pow2(n // base):
            m = n // base
            if base == 20 and m >= 2:
                return np.kron(_sylvester(2), np.kron(_paley(20), _sylvester(m // 2)))
            return np.kron(_paley(base), _sylvester(m))
    return _sylvester(n)


def _sylvester(n):
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _paley(k):
    pattern = np.array([1 if c == "+" else -1 for c in PALEY[k]], dtype=np.int8)
    h = np.empty((k, k), dtype=np.int8)
    h[0] = -1
    h[:, 0] = 1
    for r in range(1, k):
        h[r, 1:] = np.roll(pattern, r - 1)
    return h
