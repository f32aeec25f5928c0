"""Strategies of valid inputs for `reference.quantization`, one module per reference module.

- Binary and ternary quantization (`binary`, `ternary`): Signed zeros and subnormals (sign(0) = +1, -0.0 is a zero),
  the straight-through boundary |x| = 1 and its float32 neighbours, BinaryConnect weights exactly on the random
  threshold 2u - 1, TWN weights exactly on their own threshold 0.7 mean|w| (found by a fixed-point iteration), TTQ
  weights exactly on t max|w| (grid values with t in {1/8, 1/4, 1/2, ...}), all-equal and all-zero slices, and
  float32 extremes whose scaled gradients overflow.
- The learned and trainable quantizers (`dorefa`, `pact`, `lsq`): The float32 inputs whose tanh lies closest to a
  float32 rounding midpoint (the hardest cases for "float64 tanh rounded once"), weights that tie for max |tanh w|
  (the max gradient is split among them), all-zero weights, tanh saturated to exactly 1; activations on the grid c /
  n and on the .5 ties between levels, exactly on the clipping bounds 0, 1 and alpha and one ulp either side; LSQ
  inputs whose x / s is exactly an integer, a .5 tie or exactly -Qn / Qp (and just beyond), per-channel steps,
  offsets; signed zeros and subnormals; cotangents as large as the float32 maximum (gradients that overflow to inf).
- Low-bit floats and MX (`floats`, `mx`): Values are drawn where encoders disagree: every representable value of the
  format, every midpoint between two neighbours (the ties), the overflow threshold and the half of the smallest
  subnormal, each with its two float32 neighbours (`np.nextafter`); plus arbitrary float32 values (subnormals of
  float32 included), signed zeros, values far above the format's max, and +-Inf / NaN where the format defines their
  encoding. Exhaustive enumerations of all codes live in `tests/test_lowbit.py`.
- Power-of-two, codebooks, NF4, observers, bit packing: The decision boundaries: mantissas on and next to 1.5 and
  sqrt(2), the flush threshold 2**(emin - 1), saturation; codebook midpoints and exponent-far centroids (where
  float64 distances tie falsely); NF4 midpoints under power-of-two block scales (so x / absmax is exact);
  percentiles whose virtual index is a .5 fraction; padding bits of every width.
"""
