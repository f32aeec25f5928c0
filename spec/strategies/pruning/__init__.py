r"""Strategies of valid inputs for `reference.pruning`, one module per reference module.

- Regularization, slimming and schedules: Thresholds exactly equal to a weight's magnitude or a group's norm (the
  strict comparisons), zero groups and signed zeros, `lam` and `lr` of 0, products that overflow float32, ties in
  $|\gamma|$ across layers, layers smaller than the per-layer minimum, schedule steps on and next to the pruning
  steps and both ends of the interval, and huge step counts.
- Saliency, lottery tickets and sparse formats: Beyond the shared hard cases (ties, signed zeros, subnormals, the
  largest floats): products that overflow to infinity, sums of products that cancel exactly, identical filters,
  feature norms beyond the float32 range, bitmask lengths that are not multiples of 8, empty rows in CSR.
- Channel groups (`groups`): Units that own no entry, one entry or many, sums that cancel exactly, squares and
  products beyond the float32 range, ties in scores across group boundaries, infinite scores, groups smaller than
  the per-group minimum and groups of 0 units.
"""
