"""Strategies of valid inputs for `reference.posttraining`, one module per reference module.

- GPTQ and SparseGPT (`obs`): Inputs have dead columns (all zeros), repeated columns (a singular Gram matrix that
  only damping makes positive definite), ties, signed zeros and a wide range of scales; weights have ties and zeros.
  Hessians are computed from such inputs by the reference's `gptq_hessian`, so they are exactly what a calibration
  gives. Sizes stay small: the reference factors with Python integers.
"""
