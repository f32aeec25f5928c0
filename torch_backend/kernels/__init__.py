"""Fused and faster exact implementations: the same results as `torch_backend`, bit for bit, in less time.

Each function here has the name, parameters and semantics of its `torch_backend` twin (and so of the NumPy
reference) and is checked against the reference by the same conformance suite:

- `fake_quantize`, `fake_quantize_vjp`: one Triton kernel per call on CUDA (per tensor, channel or group);
- `keep_largest`, `magnitude_mask`, `magnitude_mask_by_count`, `global_magnitude_masks`: radix select on the
  float bit patterns (torch ops, any device) instead of a full stable sort;
- `nm_mask`: a Triton ranking kernel on CUDA, pairwise comparisons elsewhere;
- `tree_sum`: the canonical float64 tree, four levels per Triton launch on CUDA, in place eagerly elsewhere.

`deferred_checks()` batches the device-side input checks of a block (a training step) into one read at its end.

Without CUDA or without Triton every function falls back to eager torch (see `_dispatch`); with
`TRITON_INTERPRET=1` set before import, the Triton kernels run on CPU tensors in Triton's interpreter.
"""

from ._dispatch import status
from .checks import deferred_checks
from .fake_quant import fake_quantize, fake_quantize_vjp
from .reduce import tree_sum
from .select import global_magnitude_masks, keep_largest, magnitude_mask, magnitude_mask_by_count, nm_mask

__all__ = [
    "fake_quantize",
    "fake_quantize_vjp",
    "keep_largest",
    "magnitude_mask",
    "magnitude_mask_by_count",
    "global_magnitude_masks",
    "nm_mask",
    "tree_sum",
    "status",
    "deferred_checks",
]
