"""Strategies of valid inputs for `reference.core`, one module per reference module.

- The exact sums and the exact linear algebra (`exact`, `linalg`): Values are drawn where summation goes wrong:
  catastrophic cancellation (each value next to its negation, so that the exact sum is what is left over), the whole
  exponent range in one array (`1e308` beside `1e-300` and subnormals), signed zeros, many equal values, the
  overflow threshold of float64 (`2**1024 - 2**970` is a tie that rounds to infinity), halfway cases of the last
  bit, and lengths around powers of two (where pairwise trees change shape). Matrices for `cholesky` are symmetric
  positive definite by construction (diagonally dominant, or a Gram matrix plus a dominant diagonal), at any scale;
  near-singular and indefinite ones are bad inputs, tested apart. Sizes stay small: the reference computes with
  Python integers.
"""
