r"""Dynamic activation quantization: parameters computed at run time from the tensor being quantized.

**Per token** (`per_token_fake_quantize`): each token, one row of an activation `(..., features)`, gets its own
min-max scale and zero point over its features, computed from that row at run time: the activation quantization of
SmoothQuant's W8A8 and of QuaRot's W4A4 / W4A8. Every step is pqref's affine quantization (`minmax_qparams`,
`fake_quantize`), so the rounding rules are those of `reference.quantization.affine`.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.quantization.affine import fake_quantize, integer_range, minmax_qparams

__all__ = ["per_token_fake_quantize"]


def per_token_fake_quantize(x, *, bits=8, symmetric=True):
    r"""Per-token dynamic fake quantization: each row of the last axis quantized with its own min-max parameters.

    For each token $t$ (every index of the leading axes), with $[q_{min}, q_{max}]$ =
    `integer_range(bits, signed=True, narrow_range=symmetric)`:

    $$ (s_t, z_t) = \operatorname{minmax\_qparams}(x_{t,:}), \qquad
       y_{t,j} = \operatorname{fl}_{32}(q_{t,j} - z_t) \cdot s_t, \quad
       q_{t,j} = \operatorname{clip}\big(\operatorname{round}(x_{t,j} / s_t) + z_t,\ q_{min},\ q_{max}\big) $$

    Symmetric (default): $z_t = 0$ and $s_t = \max_j |x_{t,j}| / (2^{b-1} - 1)$ (int8: $\text{amax}/127$, codes in
    $[-127, 127]$), SmoothQuant's `quantize_activation_per_token_absmax`; asymmetric: the range $[\min(x_t, 0),
    \max(x_t, 0)]$ on $[-2^{b-1}, 2^{b-1} - 1]$.

    **Arguments:**

    - `x`: a float32 array `(..., features)`, at least 1-d, `features >= 1`, finite.
    - `bits`: an int in `[2, 16]`.
    - `symmetric`: a bool.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        Ties round to even, $x / s$ is one IEEE division (as `quantize`). A token of zeros keeps scale 1 and gives
        zeros (`qparams_from_range`'s degenerate range). SmoothQuant's code clamps the scale at `1e-5 / 127`
        instead and does not clip; within the range the codes are the same. Example: 8 bits
        symmetric: $s = 1/127$, codes `[127, -64, 32]` ($-63.5$ rounds to even):

            >>> y = per_token_fake_quantize(np.float32([[1, -0.5, 0.25]]))
            >>> y * np.float32(127)
            array([[127., -64.,  32.]], dtype=float32)

    ??? cite "Xiao et al., 2023"
        SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language Models. ICML.
        arXiv:2211.10438 (per-token dynamic activation quantization, W8A8).
    """
    x = _arrays.finite_array("x", x)
    bits = validate.integer("bits", bits, lo=2, hi=16)
    symmetric = validate.boolean("symmetric", symmetric)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape (..., features) with features >= 1, got {tuple(x.shape)}")
    qmin, qmax = integer_range(bits, True, symmetric)
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] == 0:
        return np.array(x, copy=True)
    scale, zero_point = minmax_qparams(rows, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=0)
    y = fake_quantize(rows, scale, zero_point, qmin=qmin, qmax=qmax, axis=0)
    return np.asarray(y).reshape(x.shape)
