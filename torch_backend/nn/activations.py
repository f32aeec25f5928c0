"""Activation quantizers: fake quantization of a module's output, one class per algorithm, written once for both
backends like the weight compressions (`compute(B, x, s)`, and `observe(B, x, s)` for the statistics a training
forward updates).

A quantizer is installed as a child module `pqref_activation` of the module whose output it quantizes, called by a
forward hook. Its floating-point state stays float32 when the model is cast; the output follows the dtype rule of
the weights (a float16/bfloat16/float64 output is computed in float32 and cast back). With `record=True` the last
call is kept (its input, the state before and after, and its output) so that `Compressor.replay` can recompute it
with the reference.
"""

from __future__ import annotations

import torch
from torch import nn

from torch_backend.nn.backend import NUMPY, TORCH, numpy_tree, same_bits
from torch_backend.nn.compressions import Float32State

ATTRIBUTE = "pqref_activation"


class ActivationQuant(Float32State):
    """Base class: `compute(B, x, s)` quantizes `x` with the state `s`; `observe(B, x, s)` returns the state after a
    training batch (the default: unchanged)."""

    algorithm = ""

    def __init__(self, bits, record=True):
        super().__init__()
        self.bits, self.record = bits, record
        self.last = None

    def observe(self, B, x, s) -> dict:
        return s

    def compute(self, B, x, s):
        raise NotImplementedError

    def export(self) -> dict:
        """The registry call a deployment runs on the output: `function`, its array arguments after `x` as
        `(name, NumPy array)` pairs (`args`) and its plain keyword arguments (`kwargs`), for the NumPy reader."""
        raise NotImplementedError

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(
                f"{type(self).__name__}: activation quantization needs a floating-point tensor output, got "
                f"{type(x).__name__}{'' if not isinstance(x, torch.Tensor) else ' of dtype ' + str(x.dtype)}"
            )
        xf = x.float()
        s = self.state(TORCH)
        before = _clone(s) if self.record and self.training else None
        if self.training:
            after = self.observe(TORCH, xf.detach(), s)
            with torch.no_grad():
                for name, value in after.items():
                    if value is not s[name]:
                        getattr(self, name).copy_(value)
            s = self.state(TORCH)
        y = self.compute(TORCH, xf, s)
        if self.record:
            self.last = (xf.detach().clone(), before, _clone(s), y.detach().clone())
        return y if y.dtype == x.dtype else y.to(x.dtype)

    def replay(self) -> tuple[int, bool]:
        """`(elements, match)` for the last call, recomputed with the reference (state update included)."""
        if self.last is None:
            return 0, True
        x, before, used, y = numpy_tree(self.last)
        if before is not None and not same_bits(self.observe(NUMPY, x, before), used):
            return int(x.size), False
        return int(x.size), same_bits(self.compute(NUMPY, x, used), y)


class AffineActivation(ActivationQuant):
    """Unsigned `bits`-bit fake quantization over an EMA min-max range (torch.ao's observer arithmetic,
    `ema_minmax_observer`), updated in training mode only; `qparams_from_range` then `fake_quantize`."""

    algorithm = "activation_affine"

    def __init__(self, bits=8, averaging_constant=0.01, record=True):
        super().__init__(bits, record)
        self.averaging_constant = averaging_constant
        self.qmin, self.qmax = TORCH.integer_range(bits, False, False)
        self.register_buffer("min_val", torch.zeros(()))
        self.register_buffer("max_val", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def observe(self, B, x, s):
        previous = (s["min_val"], s["max_val"]) if bool(s["initialized"]) else None
        lo, hi = B.ema_minmax_observer(x, previous, averaging_constant=self.averaging_constant)
        return {"min_val": lo, "max_val": hi, "initialized": B.ones_like(s["initialized"])}

    def qparams(self, B, s):
        return B.qparams_from_range(s["min_val"], s["max_val"], qmin=self.qmin, qmax=self.qmax)

    def compute(self, B, x, s):
        scale, zero_point = self.qparams(B, s)
        return B.fake_quantize(x, scale, zero_point, qmin=self.qmin, qmax=self.qmax)

    def export(self):
        scale, zero_point = self.qparams(NUMPY, self.state(NUMPY))
        return {"function": "fake_quantize", "args": [("scale", scale), ("zero_point", zero_point)],
                "kwargs": {"qmin": self.qmin, "qmax": self.qmax}}  # fmt: skip

    def extra_repr(self):
        return f"bits={self.bits}, averaging_constant={self.averaging_constant}"


class PACTActivation(ActivationQuant):
    """PACT: clip at a learned `alpha` (an `nn.Parameter`, float32) and quantize to `bits` bits."""

    algorithm = "pact"

    def __init__(self, bits=4, alpha=6.0, record=True):
        super().__init__(bits, record)
        self.alpha = nn.Parameter(torch.tensor(float(alpha), dtype=torch.float32))

    def compute(self, B, x, s):
        return B.pact_quantize(x, s["alpha"], self.bits)

    def export(self):
        return {"function": "pact_quantize", "args": [("alpha", self.state(NUMPY)["alpha"])],
                "kwargs": {"bits": self.bits}}  # fmt: skip

    def extra_repr(self):
        return f"bits={self.bits}"


def _clone(state):
    return {k: v.detach().clone() for k, v in state.items()}


def quantizer_of(module) -> ActivationQuant | None:
    q = getattr(module, ATTRIBUTE, None)
    return q if isinstance(q, ActivationQuant) else None


def _hook(module, args, output):
    return getattr(module, ATTRIBUTE)(output)


def install(module, quantizer: ActivationQuant):
    """Attach `quantizer` to `module`'s output; returns the hook handle."""
    setattr(module, ATTRIBUTE, quantizer)
    return module.register_forward_hook(_hook)


def uninstall(module, handle) -> None:
    handle.remove()
    if ATTRIBUTE in module._modules:
        del module._modules[ATTRIBUTE]
