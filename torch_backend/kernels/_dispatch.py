"""Which path a fused function takes: a Triton kernel (CUDA, or the Triton interpreter on CPU) or eager torch.

- CUDA tensor and `import triton` works: the Triton kernel.
- CPU tensor, `import triton` works and `TRITON_INTERPRET=1` was set before the kernels were first imported:
  the same kernel source in Triton's NumPy interpreter (slow; for tests).
- otherwise: the eager torch implementation.

`PQREF_KERNELS=eager` in the environment forces the eager path everywhere; `forced("eager")` does the same
inside a `with` block (tests and benchmarks use it to compare both paths in one process).
"""

from __future__ import annotations

import contextlib
import os

import torch

_state: dict = {}


def kernels():
    """The Triton kernel module, or None when Triton is absent, broken or turned off."""
    if "module" not in _state:
        module, why = None, ""
        if os.environ.get("PQREF_KERNELS", "") == "eager":
            why = "PQREF_KERNELS=eager"
        else:
            try:
                from torch_backend.kernels import _triton_kernels as module
            except Exception as exc:  # ImportError, or a Triton install that fails at import
                module, why = None, f"import triton failed: {type(exc).__name__}: {exc}"
        _state["module"], _state["why"] = module, why
    return _state["module"]


def path(t: torch.Tensor) -> str:
    """`"triton"`, `"triton-interpreter"` or `"eager"`: the path a fused function takes for tensor `t`."""
    if _state.get("forced"):
        return _state["forced"]
    module = kernels()
    if module is None:
        return "eager"
    if t.device.type == "cuda" and not module.INTERPRET:
        return "triton"
    if t.device.type == "cpu" and module.INTERPRET:
        return "triton-interpreter"
    return "eager"


def use_triton(t) -> bool:
    return isinstance(t, torch.Tensor) and path(t) != "eager"


@contextlib.contextmanager
def forced(which: str):
    """Force the eager path (`"eager"`) inside the block."""
    if which != "eager":
        raise ValueError(f"only the eager path can be forced, got {which!r}")
    old = _state.get("forced")
    _state["forced"] = which
    try:
        yield
    finally:
        _state["forced"] = old


def status() -> dict:
    """What the kernels will do here: Triton version, interpreter mode, and why Triton is off if it is."""
    module = kernels()
    info = {"triton": None, "interpreter": False, "why_not": _state.get("why", "")}
    if module is not None:
        import triton

        info["triton"] = triton.__version__
        info["interpreter"] = bool(module.INTERPRET)
    return info
