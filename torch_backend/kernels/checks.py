"""`deferred_checks()`: the input checks of a whole block read from the GPU once, at its end, instead of per call.

Every pqref function rejects NaN, Inf and out-of-range values with the reference's error. On CUDA, finding such
a value means reading a flag from the device, and every read waits for the GPU to finish all queued work, so a
training step made of many small checked calls spends time waiting instead of queueing. Inside

```python
with torch_backend.kernels.deferred_checks():
    loss = model(x).sum()   # fused fake quantization, calibration, N:M masks, tree sums ...
    loss.backward()
```

the calls that check on the device (`fake_quantize` and `nm_mask`, `tree_sum` of this package, and
`torch_backend.minmax_qparams`) only record their flags; when the block ends, all flags are read together (one read
per device) and the first call whose flag is set raises exactly the error it would have raised at once (same
type, same message). Results computed inside the block from bad inputs are meaningless until then, so do not let
them out of the block (an optimizer step belongs after it, or inside it only if you accept that a step taken
from bad inputs is raised about afterwards). If the block raises for another reason, the recorded flags are read
first, and an earlier call's error wins, raised from the original exception. Checks that do not run on the device
(types, shapes, parameters) still raise at the call. Blocks nest: the outermost one reads the flags.

The error is reproduced at the end from the call's own inputs, so do not modify them in place inside the block
(an `optimizer.step()` belongs after it). If a flagged input was modified meanwhile, the end of the block raises
`RuntimeError` saying so, rather than passing (except for `tree_sum`, whose non-finite result may also be an
overflow of finite inputs: there a NaN or Inf written over in place goes unreported).
"""

from __future__ import annotations

import contextlib

from torch_backend import _arrays

__all__ = ["deferred_checks"]


@contextlib.contextmanager
def deferred_checks():
    """Batch the device-side input checks of the block; see the module docstring."""
    state = _arrays.DEFERRED
    if getattr(state, "pending", None) is not None:  # nested: the outermost block reads the flags
        yield
        return
    pending = state.pending = []
    try:
        yield
    except Exception as exc:
        state.pending = None
        try:
            _arrays.run_deferred(pending)
        except Exception as earlier:
            raise earlier from exc
        raise
    finally:
        state.pending = None
    _arrays.run_deferred(pending)
