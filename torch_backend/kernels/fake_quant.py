"""Fused exact fake quantization: one Triton kernel per call, bit-identical to `torch_backend.quantization.affine`.

The eager composite runs five or more kernels (divide, round, widen to float64, add, clip, dequantize) and
keeps several input-sized temporaries; the fused kernel reads `x` once and writes `y` once (plus a one-byte
gradient mask when autograd needs it), per tensor, per channel or per group. Same signature, same checks,
same error messages, same straight-through gradient as `torch_backend.quantization.affine.fake_quantize`.

Exactness: the kernel divides with `tl.div_rn` (IEEE), is compiled with `enable_fp_fusion=False`, rounds with
IEEE additions and comparisons (no libdevice, which flushes subnormals), and does the code arithmetic in int32
after clamping `x / s` to +-2**22 (every code beyond that is clipped anyway, since `|qmin|, |qmax|, |z| <= 2**16`),
which gives the same codes as the reference's float64 `round(x / s) + z`. The conformance tests check it
against the NumPy reference bit for bit, on CUDA and, under `TRITON_INTERPRET=1`, on CPU.
"""

from __future__ import annotations

import torch

from reference.common import checks, shapes, validate
from reference.core.rounding import MODES
from torch_backend import _arrays
from torch_backend.core.random import uniform
from torch_backend.kernels import _dispatch
from torch_backend.quantization import _affine, affine

__all__ = ["fake_quantize", "fake_quantize_vjp"]

_MODES = {"half_even": 0, "half_away": 1, "floor": 2, "ceil": 3, "stochastic": 4}


def fake_quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    """Quantize then dequantize, fused; see `reference.quantization.affine.fake_quantize` for the semantics.

    On CUDA (with Triton) one kernel; elsewhere `torch_backend.quantization.affine.fake_quantize`.
    """
    if not _dispatch.use_triton(x) or x.numel() == 0:
        return affine.fake_quantize(
            x, scale, zero_point, qmin=qmin, qmax=qmax, axis=axis, group_size=group_size, rounding=rounding, key=key
        )
    args = (x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    x, s, z, qmin, qmax, mode, key, guard = _check(*args)
    if torch.is_grad_enabled() and x.requires_grad:
        return _FusedFakeQuantize.apply(x, s.detach(), z, qmin, qmax, mode, key, axis, group_size, guard)
    y, _ = _launch(x.detach(), s.detach(), z, qmin, qmax, mode, key, axis, group_size, guard, want_mask=False)
    return y


def fake_quantize_vjp(
    grad, x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None
):
    """The gradient of the fused `fake_quantize` with respect to `x`, computed by torch autograd through it."""
    return _affine.vjp_through(fake_quantize, grad, x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)


class _FusedFakeQuantize(torch.autograd.Function):
    """Forward: the fused kernel, which also writes the pass mask. Backward: where(mask, grad, +0.0)."""

    @staticmethod
    def forward(ctx, x, s, z, qmin, qmax, mode, key, axis, group_size, guard):
        y, passes = _launch(x, s, z, qmin, qmax, mode, key, axis, group_size, guard, want_mask=True)
        ctx.save_for_backward(passes)
        return y

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return torch.where(passes, grad, 0.0), None, None, None, None, None, None, None, None, None


def _launch(x, s, z, qmin, qmax, mode, key, axis, group_size, guard, want_mask):
    """Run the kernel on contiguous x; then, in one host sync, raise the reference's error if x holds a
    non-finite value or the guard from `_check` flags the scale or zero point."""
    k = _dispatch.kernels()
    xc = x.contiguous()
    n = xc.numel()
    shape = tuple(xc.shape)
    if axis is None:
        gran, d, t, g = 0, 1, 1, 1
    else:
        ax = axis % xc.ndim
        d = shape[ax]
        t = 1
        for side in shape[ax + 1 :]:
            t *= side
        gran, g = (1, 1) if group_size is None else (2, group_size)
    block, warps = launch_config(n)
    grid = (triton_cdiv(n, block),)
    y = torch.empty_like(xc)
    passes = torch.empty(shape, dtype=torch.bool, device=xc.device) if want_mask else y
    u = uniform(key, shape, xc.device) if mode == "stochastic" else y
    bad = torch.empty(grid, dtype=torch.int32, device=xc.device)
    k.fake_quant_kernel[grid](
        xc,
        s.contiguous(),
        z.contiguous(),
        u,
        y,
        passes,
        bad,
        n,
        d,
        t,
        g,
        d // g,
        qmin,
        qmax,
        GRAN=gran,
        MODE=_MODES[mode],
        WRITE_MASK=want_mask,
        BIG=n + block >= 2**31,
        BLOCK=block,
        num_warps=warps,
        **k.EXACT,
    )
    flagged, explain = guard
    _arrays.check_flag(bad.any() | flagged, explain)  # the call's only host sync (or deferred: `checks`)
    return y, (passes if want_mask else None)


def launch_config(n: int) -> tuple[int, int]:
    """`(BLOCK, num_warps)` for an input of `n` elements (`torch_backend.kernels.audit` compiles both)."""
    return (1024, 4) if n <= 1 << 20 else (4096, 8)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key):
    """`affine._check` with one host sync per call instead of one per check.

    Types, dtypes, shapes, devices and parameters are checked here, on the host. The values (scale finite and
    positive, zero point within `[qmin, qmax]`) become one boolean on the device, `flagged`, which `_launch` reads
    together with the kernel's non-finite-x flag after the launch. Whenever anything is wrong, `explain` runs the
    eager `affine._check` in full, so the exception (type, message, and which of several problems is reported
    first) is exactly the eager one, which is the reference's. Returns the checked values and `(flagged, explain)`.
    """

    def explain():  # the eager checks' first error, as the reference orders them
        _affine.check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key)

    try:
        qmin_, qmax_ = validate.qrange(qmin, qmax)
        mode, key_ = checks.rounding(rounding_mode, key, MODES)
        xt = _arrays.array("x", x)
        shape = shapes.qparam_shape(tuple(xt.shape), axis, group_size)
        why = "axis=None" if axis is None else f"axis={axis}, group_size={group_size}"
        s = _arrays.shaped("scale", _arrays.array("scale", scale), shape, why)
        z = _arrays.shaped("zero_point", _arrays.array("zero_point", zero_point, ("int32",)), shape, why)
        _arrays.same_device("scale", s, "x", xt)
        _arrays.same_device("zero_point", z, "x", xt)
    except (TypeError, ValueError):
        # a value problem reported earlier by the reference (x not finite, say) wins
        _affine.check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key)
        raise
    sd = s.detach()
    flagged = ~(torch.isfinite(sd) & (sd > 0)).all() | ((z < qmin_) | (z > qmax_)).any()
    return xt, s, z, qmin_, qmax_, mode, key_, (flagged, explain)
