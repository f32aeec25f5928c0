r"""Named variants of the integer quantization parameters: the choices that conforming libraries make differently.

| function | variant | formula | who |
|---|---|---|---|
| `symmetric_scale` | `divisor="qmax"` | $s = \text{amax} / (2^{b-1} - 1)$ | pqref's `qparams_from_range`, ONNX Runtime, TensorRT, llm-compressor: $\pm$amax on codes $\pm 127$ |
| | `divisor="half_range"` | $s = \text{amax} / \tfrac{2^b - 1}{2}$ | torch.ao symmetric observers (127.5 for int8): $\pm$amax on the tie $\pm 127.5$ |
| `affine_zero_point` | `convention="pqref"` | $\operatorname{clip}(q_{min} - \operatorname{rne}(\ell / s))$, the quotient in float64 | `qparams_from_range` |
| | `"torch_ao"` | $\operatorname{clip}(q_{min} - \operatorname{rne}(\operatorname{fl}_{32}(\ell / s)))$ | torch.ao observers |
| | `"onnx"` | $\operatorname{rne}(\operatorname{clip}(\operatorname{fl}_{32}(q_{min} - \operatorname{fl}_{32}(\ell / s))))$ | ONNX `DynamicQuantizeLinear` |
| | `"tflite"` | $\operatorname{rna}(\operatorname{clip}(\operatorname{fl}_{32}(q_{min} - \operatorname{fl}_{32}(\ell / s))))$ | TensorFlow's `FakeQuant` nudging (`std::round`, ties away) |

with $\ell = \min(\text{min\_val}, 0)$, $\operatorname{clip}$ to $[q_{min}, q_{max}]$, rne ties to even and rna
ties away from zero. The four zero points agree except where $\ell / s$ is within a rounding of a tie $k + 0.5$
(and, for `"onnx"` and `"tflite"`, where $q_{min}$ is odd and $\ell / s$ is a tie).
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference._rounding import half_away
from reference.common import validate

__all__ = ["symmetric_scale", "affine_zero_point"]

DIVISORS = ("qmax", "half_range")
CONVENTIONS = ("pqref", "torch_ao", "onnx", "tflite")
TINY = np.float32(2.0**-126)


def symmetric_scale(amax, *, bits, divisor):
    r"""The scale of symmetric signed quantization from a largest magnitude, with either divisor.

    $$ \text{qmax: } s = \operatorname{fl}_{32}\!\Big(\frac{\text{amax}}{2^{b-1} - 1}\Big), \qquad
       \text{half\_range: } s = \operatorname{fl}_{32}\!\Big(\frac{\text{amax}}{(2^b - 1)/2}\Big) $$

    one correctly rounded float32 division (computed in float64 and rounded once, which is the same: double
    rounding of a quotient is innocuous from 53 to 24 bits).

    **Arguments:**

    - `amax`: a float32 array of largest magnitudes, finite, $\ge 0$.
    - `bits`: the signed code width, an int in `[2, 16]`.
    - `divisor`: `"qmax"` (amax lands on code $2^{b-1} - 1$) or `"half_range"` (torch.ao: amax lands on the
      tie $(2^b - 1)/2$, which rounds to even: 127.5 -> 128, clipped to 127 for int8).

    **Returns:**

    A float32 array shaped like `amax`.

    !!! note
        A scale below $2^{-126}$ (amax 0 included) is replaced by 1.0, as in `qparams_from_range`. torch.ao
        instead clamps the scale to float32 eps ($2^{-23}$); that floor is not modelled here.

    Example (`bits=8`): amax 127 over 127 (`"qmax"`) or over 127.5 (`"half_range"`):

        >>> symmetric_scale(np.float32(127), bits=8, divisor="qmax"), symmetric_scale(np.float32(127), bits=8, divisor="half_range")
        (array(1., dtype=float32), array(0.99607843, dtype=float32))
    """
    bits = validate.integer("bits", bits, lo=2, hi=16)
    divisor = validate.choice("divisor", divisor, DIVISORS)
    amax = _arrays.finite_array("amax", amax)
    bad = amax < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"amax must be >= 0, got {float(amax.reshape(-1)[i])!r} at flat index {i}")
    d = np.float64(2 ** (bits - 1) - 1) if divisor == "qmax" else np.float64(2**bits - 1) / 2
    s = (amax.astype(np.float64) / d).astype(np.float32)
    return np.asarray(np.where(s < TINY, np.float32(1), s))


def affine_zero_point(min_val, scale, *, qmin, qmax, convention):
    r"""The zero point of asymmetric quantization from a range minimum and a scale, by a named convention.

    $$ \text{pqref: } z = \operatorname{clip}\big(q_{min} - \operatorname{rne}(\ell / s)\big), \qquad
       \text{torch\_ao: } z = \operatorname{clip}\big(q_{min} - \operatorname{rne}(\operatorname{fl}_{32}(\ell/s))\big) $$

    $$ \text{onnx: } z = \operatorname{rne}\big(\operatorname{clip}(v)\big), \qquad
       \text{tflite: } z = \operatorname{rna}\big(\operatorname{clip}(v)\big), \qquad
       v = \operatorname{fl}_{32}\big(q_{min} - \operatorname{fl}_{32}(\ell / s)\big) $$

    with $\ell = \min(\text{min\_val}, 0)$ and clip to $[q_{min}, q_{max}]$ (see the module table).

    **Arguments:**

    - `min_val`: a float32 array, finite.
    - `scale`: a float32 array shaped like `min_val`, finite, $> 0$.
    - `qmin`, `qmax`: the integer range, $q_{min} < q_{max}$.
    - `convention`: `"pqref"`, `"torch_ao"`, `"onnx"` or `"tflite"` (no default).

    **Returns:**

    An int32 array shaped like `min_val`.

    !!! note
        The conventions differ only near ties. Example: $q_{min} = -127$, $\ell / s = -0.5$ exactly: pqref and
        torch.ao give $-127 - \operatorname{rne}(-0.5) = -127$; ONNX rounds $-126.5$ to $-126$; TensorFlow
        rounds it away from zero to $-127$:

            >>> [int(affine_zero_point(np.float32(-0.5), np.float32(1), qmin=-127, qmax=127, convention=c))
            ...  for c in CONVENTIONS]
            [-127, -127, -126, -127]

        And where $\ell / s$ is within a float32 rounding of a tie, here $-351.49998715$ in float64 and $-351.5$
        in float32: pqref's float64 quotient keeps its side, the float32 quotients of the others land on the tie:

            >>> [int(affine_zero_point(np.float32(-61.551544189453125), np.float32(0.1751110851764679), qmin=0,
            ...      qmax=1000, convention=c)) for c in CONVENTIONS]
            [351, 352, 352, 352]
    """
    convention = validate.choice("convention", convention, CONVENTIONS)
    qmin, qmax = validate.qrange(qmin, qmax)
    if qmin == qmax:
        raise ValueError(f"quantization needs at least 2 codes, got qmin={qmin}, qmax={qmax}")
    min_val = _arrays.finite_array("min_val", min_val)
    scale = _arrays.shaped("scale", _arrays.finite_array("scale", scale), min_val.shape, "min_val")
    _arrays.positive("scale", scale)
    lo = np.minimum(min_val, np.float32(0))
    with np.errstate(over="ignore"):
        if convention == "pqref":
            z = np.float64(qmin) - np.rint(lo.astype(np.float64) / scale.astype(np.float64))
        elif convention == "torch_ao":
            z = np.float64(qmin) - np.rint(lo / scale).astype(np.float64)
        else:
            v = np.clip((np.float32(qmin) - lo / scale).astype(np.float64), qmin, qmax)
            z = np.rint(v) if convention == "onnx" else half_away(v)
    return np.asarray(np.clip(z, qmin, qmax).astype(np.int32))
