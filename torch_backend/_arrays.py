"""Array checks for the torch backend; the wording lives in `reference.common.validate`, shared with the reference."""

from __future__ import annotations

import contextlib
import math
import struct
import threading

import torch

from reference.common import validate

# dtypes whose sum, min and aminmax torch implements on every device (the one-reduction fast checks below)
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_REDUCIBLE = _FLOATS + (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
# the types of plain tensors (a subclass such as DTensor keeps its own routes)
PLAIN = (torch.Tensor, torch.nn.Parameter)
_PLAIN = PLAIN


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def array(name, x, dtypes=("float32",)) -> torch.Tensor:
    """`x` must be a `torch.Tensor` whose dtype name is one of `dtypes`.

    Returns `x` as every algorithm may assume it, with the same values: a negative-bit view
    (`torch._neg_view(t)`, the imaginary part of a conjugated complex tensor, `t.conj().imag`) is resolved into a
    plain tensor (`resolve_neg`, differentiable), since `view(dtype)`, which the float and MX encoders use to read
    bits, refuses it. Everything else passes as it is: strided, transposed, expanded (zero-stride) and
    channels_last tensors, parameters and inference tensors give the same bits as a contiguous copy.
    (Real dtypes carry no conjugate bit: `conj()` of a real tensor is the tensor itself.)
    """
    if not isinstance(x, torch.Tensor):
        raise validate.not_array(name, x)
    if dtype_name(x.dtype) not in dtypes:
        raise validate.bad_dtype(name, dtype_name(x.dtype), dtypes)
    return x.resolve_neg()


def finite(name, x) -> torch.Tensor:
    """`x` unless it holds a NaN or an Inf (then the reference's error, naming the first one's flat index).

    One reduction and one host read when all is well: the sum of finite values is finite unless it overflows,
    and any NaN or Inf makes it NaN or Inf, so a finite sum proves every element finite (the order of the
    additions does not matter here); a large CPU tensor whose first elements say the sum may overflow skips it
    (`_sum_may_overflow`). A non-finite sum (an overflow, or a NaN or Inf) is followed by `aminmax`,
    whose minimum and maximum are both finite exactly when every element is; only then is `x` scanned
    elementwise, for the index of the first bad element.
    """
    if not x.numel() or not x.dtype.is_floating_point:  # nothing to scan: no element, or integers
        return x
    if _one_on_cpu(x) and math.isfinite(x.item()):  # one CPU element (a scale): read it, no reduction
        return x
    d = x.detach()
    if d.dtype in _FLOATS:
        if not _sum_may_overflow(d) and math.isfinite(d.sum().item()):
            return x
        small, large = torch.aminmax(d)  # the sum overflowed, or x is not finite: min and max carry NaN and Inf
        if math.isfinite(small.item()) and math.isfinite(large.item()):
            return x
    bad = ~torch.isfinite(d)
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise validate.not_finite(name, i, d.reshape(-1)[i].item())
    return x


SAMPLE_MIN = 1 << 16  # from this many CPU elements `finite` looks at the first `SAMPLE` before it reduces
SAMPLE = 1024


def _sum_may_overflow(d) -> bool:
    """Whether the first `SAMPLE` elements of a large contiguous CPU tensor are so large that the sum of all may
    overflow (`n max|sample| >= max / 2`), or hold a NaN: then `finite` takes `aminmax` alone, rather than a sum
    that would overflow first and `aminmax` after it (weights near the float range: each pass costs as much as
    the sum). Either route only decides whether every element is finite; a bad element is found and named by
    the same elementwise scan."""
    n = d.numel()
    if n < SAMPLE_MIN or d.device.type != "cpu" or not d.is_contiguous():
        return False
    small, large = torch.aminmax(d.reshape(-1)[:SAMPLE])
    return not max(-small.item(), large.item()) * n < torch.finfo(d.dtype).max / 2  # a NaN: True


def _one_on_cpu(x) -> bool:
    """One element of a plain CPU tensor of a real dtype: the checks read it (`item`, exact) instead of reducing."""
    return x.numel() == 1 and type(x) in _PLAIN and x.device.type == "cpu" and not x.dtype.is_complex


def not_nan(name, x) -> torch.Tensor:
    if x.dtype.is_floating_point and x.numel():
        bad = torch.isnan(x.detach())
        if bool(bad.any()):
            raise validate.not_a_number(name, int(bad.reshape(-1).nonzero()[0]))
    return x


def finite_array(name, x, dtypes=("float32",)) -> torch.Tensor:
    return finite(name, array(name, x, dtypes))


def positive(name, x) -> torch.Tensor:
    """`x` unless an element is not `> 0` (NaN included); one reduction and one host read when all is well."""
    if not x.numel():
        return x
    if _one_on_cpu(x) and x.item() > 0:  # a NaN compares False: scanned below
        return x
    if x.dtype in _REDUCIBLE and x.detach().min().item() > 0:  # a NaN minimum compares False: scanned below
        return x
    bad = ~(x.detach() > 0)
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise validate.not_positive(name, i, x.detach().reshape(-1)[i].item())
    return x


def within(name, x, lo, hi) -> torch.Tensor:
    """`x` unless an element lies outside `[lo, hi]` (a NaN does not); one reduction and one read when all is well."""
    if not x.numel():
        return x
    if _one_on_cpu(x) and lo <= x.item() <= hi:
        return x
    if x.dtype in _REDUCIBLE:
        small, large = torch.aminmax(x.detach())
        if lo <= small.item() and large.item() <= hi:
            return x
    bad = (x < lo) | (x > hi)
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise validate.out_of_range(name, i, x.reshape(-1)[i].item(), lo, hi)
    return x


def shaped(name, x, expected, why) -> torch.Tensor:
    if tuple(x.shape) != tuple(expected):
        raise validate.shape_mismatch(name, x.shape, expected, why)
    return x


def same_device(name, x, other_name, other) -> torch.Tensor:
    if x.device != other.device:
        raise ValueError(f"{name} is on {x.device} but {other_name} is on {other.device}; move them to one device")
    return x


VJP = threading.local()  # VJP.autograd: every `*_vjp` takes the autograd route (`vjps_by_autograd`)


@contextlib.contextmanager
def vjps_by_autograd():
    """Inside this block every `*_vjp` runs torch autograd through its function, also those that have a direct
    route (the backward formula applied to `grad` without the forward's output). The tests check both routes
    against the reference, so the autograd wiring that training uses is checked by the VJP entries too."""
    old = getattr(VJP, "autograd", False)
    VJP.autograd = True
    try:
        yield
    finally:
        VJP.autograd = old


def autograd_vjps() -> bool:
    """Whether `vjps_by_autograd` is on in this thread: then no `*_vjp` may take a direct or host route."""
    return getattr(VJP, "autograd", False)


def vjp(fn, args, grad, *, wrt=0, direct=None):
    r"""The vector-Jacobian product of `fn(*args)` with the cotangent `grad`, by torch autograd: the gradient of
    $\langle \text{grad}, \text{fn}(\text{args}) \rangle$ with respect to `args[i]` for each `i` in `wrt` (an
    int gives one tensor, a tuple of ints a tuple). This is every `*_vjp` function of the torch backend.

    `direct`, when given, is the same gradient without autograd: a function of the detached `grad` that applies
    the autograd function's own `backward` (the same formula, through `backward_of`) to what it needs of the
    inputs, without computing the forward's output (a straight-through gradient reads a mask, not the quantized
    values). It returns what this function would (one tensor, or a tuple in the order of `wrt`); it is used
    unless `vjps_by_autograd` is on.

    It works wherever it is called: under `torch.no_grad()`, inside `torch.inference_mode()`, and on inference
    tensors (made inside inference mode), where a bare `requires_grad_` or `autograd.grad` raises `RuntimeError`.
    Autograd is switched on and inference mode off for the call; a tensor argument that is an inference tensor is
    replaced by a plain copy of its bits (`clone()`), the others are used as they are. So no result changes: the
    gradients are those of the same values. The arguments in `wrt` are detached first: the result never joins
    the caller's graph, and the caller's tensors are never changed.
    """
    if direct is not None and not getattr(VJP, "autograd", False):
        with torch.no_grad():
            return direct(grad.detach())
    several = isinstance(wrt, tuple)
    wrt = wrt if several else (wrt,)
    # leaving inference mode costs a few microseconds: only when it is on
    outside = torch.inference_mode(False) if torch.is_inference_mode_enabled() else contextlib.nullcontext()
    with outside, torch.enable_grad():
        inputs = [_usable(a) for a in args]
        for i in wrt:
            inputs[i] = inputs[i].detach().requires_grad_(True)
        grads = torch.autograd.grad(fn(*inputs), [inputs[i] for i in wrt], _usable(grad))
    return tuple(grads) if several else grads[0]


class _Context:
    """What a `torch.autograd.Function.backward` reads of its `ctx`: the saved tensors and attributes."""

    def __init__(self, saved, attributes):
        self.saved_tensors = tuple(saved)
        self.__dict__.update(attributes)


def backward_of(function, grad, saved=(), **attributes):
    """`function.backward(ctx, grad)` for a `torch.autograd.Function` whose forward would have saved `saved` and
    set `attributes` on `ctx`: the autograd function's own formula, called directly (see `vjp`'s `direct`)."""
    return function.backward(_Context(saved, attributes), grad)


def _usable(value):
    """An inference tensor as a plain copy (autograd refuses inference tensors), anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_inference():
        return value.clone()
    if isinstance(value, list | tuple):
        return type(value)(_usable(v) for v in value)
    return value


WHERE_KEPT_MIN = 1 << 14  # from this many elements `where_kept` ANDs bit patterns


def where_kept(mask, x) -> torch.Tensor:
    """`torch.where(mask, x, +0.0)` (masks and straight-through gradients), with the same bits.

    Large float32 tensors (2**14 elements or more) take an AND of `x`'s bit patterns with all-ones where `mask`
    holds and all-zeros elsewhere: `x`'s bits or +0.0, as `where` gives them (a NaN or -0.0 of `x` that is kept
    stays), about 3x faster than torch's CPU `where` with a boolean mask. Smaller tensors, where the two extra
    operations cost more than they save, and other dtypes use `where`. No autograd through the AND.
    """
    if type(x) not in _PLAIN or x.dtype != torch.float32 or x.numel() < WHERE_KEPT_MIN:  # a DTensor: `where`
        return torch.where(mask, x, 0.0)
    keep = mask.to(torch.int32).neg_()  # -1: all 32 bits set; ANDed in place: one fresh tensor in all
    return keep.bitwise_and_(x.detach().view(torch.int32)).view(torch.float32)


def scalar(value, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """A 0-d tensor on `like`'s device: arithmetic with it is IEEE on every device.

    (On CUDA, a Python-number divisor is turned into a multiplication by its reciprocal.)
    """
    return torch.tensor(value, dtype=dtype or like.dtype, device=like.device)


def constant(value, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """`scalar(value, like, dtype)` from a cache: creating a tensor costs more than a small operation with it.

    Only for operands, never for a returned tensor (a caller could change it in place, and the cache with it).
    A float is keyed by its bits, so `-0.0` and `+0.0` (equal, with one hash) and NaNs stay apart.
    """
    bits = struct.pack("<d", value) if isinstance(value, float) else value
    key = (type(value), bits, dtype or like.dtype, like.device)
    c = _CONSTANTS.get(key)
    if c is None:
        if len(_CONSTANTS) > 4096:
            _CONSTANTS.clear()
        c = _CONSTANTS[key] = scalar(value, like, dtype)
    return c


_CONSTANTS: dict = {}


# ---- checks read from the device: now, or batched at the end of a `torch_backend.kernels.deferred_checks()` block


DEFERRED = threading.local()


def deferring() -> bool:
    """Whether a `torch_backend.kernels.deferred_checks()` block is open (then a call reads nothing from the
    device before the block ends, and host routes that need a read step aside)."""
    return getattr(DEFERRED, "pending", None) is not None


def check_flag(flag: torch.Tensor, explain, strict: bool = True) -> None:
    """If the device boolean `flag` is set, call `explain()`, which raises the function's error. With
    `strict=False`, `explain` may also return: the flag was a false alarm (a sum that overflowed from finite
    inputs); with `strict=True` a flag that `explain` cannot explain is an error of its own.

    Outside a deferred block this reads `flag` at once (one host sync). Inside
    `torch_backend.kernels.deferred_checks()` it only records the check; the block reads every flag of the block
    together when it ends and calls the `explain` of each one set, in call order.
    """
    pending = getattr(DEFERRED, "pending", None)
    if pending is None:
        if bool(flag):
            _explain(explain, strict)
    else:
        pending.append((flag.detach().reshape(()), explain, strict))


def _explain(explain, strict):
    explain()
    if strict:
        raise RuntimeError(
            "a device-side check flagged an input that the function's checks now accept: was the input modified "
            "in place inside a `deferred_checks()` block before the block ended?"
        )


def run_deferred(pending) -> None:
    """Read the recorded flags (one host read per device) and call `explain` for each set one, in call order."""
    by_device: dict = {}
    for i, (flag, _, _) in enumerate(pending):
        by_device.setdefault(flag.device, []).append(i)
    fired = [False] * len(pending)
    for indices in by_device.values():
        values = torch.stack([pending[i][0] for i in indices]).tolist()
        for i, value in zip(indices, values, strict=True):
            fired[i] = bool(value)
    for (_, explain, strict), hit in zip(pending, fired, strict=True):
        if hit:
            _explain(explain, strict)


def nonempty_list(name, value, item="array"):
    """`value` unless it is not a nonempty list or tuple (of `item`s): the reference's errors, a single tensor
    named as such."""
    if isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a list of {item}s, got a single array")
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of {item}s, got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{name} must hold at least one {item}, got an empty {type(value).__name__}")
    return value


def finite_arrays(name, ws) -> list:
    """A nonempty list or tuple of finite float32 arrays (element `i` checked as `name[i]`), all on the device of the first."""
    nonempty_list(name, ws)
    ws = [finite_array(f"{name}[{i}]", w) for i, w in enumerate(ws)]
    for i, w in enumerate(ws[1:], start=1):
        same_device(f"{name}[{i}]", w, f"{name}[0]", ws[0])
    return ws
