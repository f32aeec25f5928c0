"""Unusual layouts of the same values give the same bits as a plain contiguous array, for every registry entry.

NumPy can hand a function big-endian, strided, Fortran-ordered, reversed (negative strides), read-only,
broadcast (zero strides) and unaligned arrays, and `np.matrix`; torch can hand it negative-bit views, strided and
transposed tensors, expanded (zero-stride) tensors, channels_last tensors, parameters and inference tensors, and can
call it inside `torch.inference_mode()` or `torch.no_grad()`. Each must give exactly the outcome of the same values
in a plain array of the same backend (same bits, types, dtypes and shapes, or the same error), and change no input.
Reference outputs are native-order arrays, never NumPy scalars.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from spec.backends import REFERENCE, TORCH
from spec.conformance import Mismatch, outcome, same_bits
from spec.entry import Case, resolve
from tests.helpers import DEVICE_PARAMS, ENTRIES, ENTRY_PARAMS

EXAMPLES = 15  # per entry and layout family; every layout of a family is applied to each drawn case
# Extra implementations of an entry (the fused kernels: radix selection, fused fake quantize) get the torch layouts too.
EXTRA_PARAMS = [pytest.param(e, target, id=f"{e.name}-{impl}") for e in ENTRIES for impl, target in e.extra]


def _map(value, fn, kind):
    """`value` with every array of type `kind` (in args, kwargs, lists, tuples, dicts) replaced by `fn(array)`."""
    if isinstance(value, kind):
        return fn(value)
    if isinstance(value, list | tuple):
        items = [_map(v, fn, kind) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: _map(v, fn, kind) for k, v in value.items()}
    return value


def _constant(bits) -> bool:
    """All elements have one bit pattern (the strategies draw such arrays), so zero strides can show them."""
    flat = bits.reshape(-1)
    return flat.size > 1 and bool((flat == flat[0]).all())


# ---- NumPy layouts: each takes a plain array and returns an array of the same values ---------------------------


def _np_bits(a):
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind in "fc" else a


def _big_endian(a):
    return a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a


def _np_strided(a):
    b = np.zeros((*a.shape, 2), dtype=a.dtype)
    b[..., 0] = a
    return b[..., 0]


def _reversed(a):
    if a.ndim == 0:
        return a.copy()
    flip = (slice(None, None, -1),) * a.ndim
    return np.ascontiguousarray(a[flip])[flip]


def _read_only(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def _np_broadcast(a):
    return np.broadcast_to(a.reshape(-1)[:1].reshape(()), a.shape) if _constant(_np_bits(a)) else a


def _unaligned(a):
    if a.dtype.itemsize == 1:
        return a
    b = np.zeros(a.nbytes + 1, dtype=np.uint8)[1:].view(a.dtype).reshape(a.shape)
    b[...] = a
    return b


def _matrix(a):
    if a.ndim != 2:
        return a
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a)


NUMPY_LAYOUTS = {
    "big_endian": _big_endian,
    "strided": _np_strided,
    "fortran": lambda a: np.array(a, order="F"),  # (np.asfortranarray makes 0-d arrays 1-d)
    "reversed": _reversed,
    "read_only": _read_only,
    "broadcast": _np_broadcast,
    "unaligned": _unaligned,
    "matrix": _matrix,
}


# ---- torch layouts: each takes a plain tensor and returns a tensor of the same values -------------------------


NEGATABLE = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
             torch.int32, torch.int64)  # fmt: skip


def _neg_view(t):
    # physically -t, read through the negative bit as -(-t) = t: the sign flips twice (integers wrap twice)
    return torch._neg_view(t.neg()) if t.dtype in NEGATABLE else t


def _torch_strided(t):
    b = torch.zeros((*t.shape, 2), dtype=t.dtype, device=t.device)
    b[..., 0] = t
    return b[..., 0]


def _transposed(t):
    return t.mT.contiguous().mT if t.ndim >= 2 else t


def _expanded(t):
    bits = t.cpu().numpy()
    if _constant(_np_bits(bits)):
        return t.reshape(-1)[:1].reshape(()).expand(t.shape)
    return t.as_strided(t.shape, [0 if n == 1 else s for n, s in zip(t.shape, t.stride(), strict=True)])


def _channels_last(t):
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if t.ndim == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t


def _parameter(t):
    return torch.nn.Parameter(t.clone()) if t.dtype.is_floating_point else t


def _inference_tensor(t):
    with torch.inference_mode():
        return t.clone()


TORCH_LAYOUTS = {
    "neg_view": (_neg_view, contextlib.nullcontext),
    "strided": (_torch_strided, contextlib.nullcontext),
    "transposed": (_transposed, contextlib.nullcontext),
    "expanded": (_expanded, contextlib.nullcontext),
    "channels_last": (_channels_last, contextlib.nullcontext),
    "parameter": (_parameter, contextlib.nullcontext),
    "inference_tensor": (_inference_tensor, contextlib.nullcontext),
    "inference_mode": (_inference_tensor, torch.inference_mode),
    "no_grad": (lambda t: t, torch.no_grad),
}


# ---- checks ---------------------------------------------------------------------------------------------------


def _native(value):
    """NumPy values as plain native-order arrays (for comparing inputs after a call)."""
    return _map(value, lambda a: np.array(a, dtype=a.dtype.newbyteorder("="), copy=True), np.ndarray)


def _reference_output_is_plain(out, where="output"):
    if isinstance(out, np.generic):
        raise Mismatch(f"{where}: a NumPy scalar {out!r}, not a 0-d array")
    if isinstance(out, np.ndarray):
        if type(out) is not np.ndarray:
            raise Mismatch(f"{where}: an array of type {type(out).__name__}, not numpy.ndarray")
        if not out.dtype.isnative:
            raise Mismatch(f"{where}: dtype {out.dtype.str} is not in native byte order")
    elif isinstance(out, list | tuple):
        for i, v in enumerate(out):
            _reference_output_is_plain(v, f"{where}[{i}]")


def _same_outcome(name, layout, plain, got):
    (kind_p, p), (kind_g, g) = plain, got
    if kind_p != kind_g or (kind_p == "error" and (type(p) is not type(g) or str(p) != str(g))):
        raise Mismatch(f"{name} [{layout}]: plain array {kind_p} {p!s:.300}, layout {kind_g} {g!s:.300}")


def check_numpy_layouts(entry, case):
    fn = entry.reference()
    plain = outcome(fn, Case(REFERENCE.to_native(case.args, "cpu"), REFERENCE.to_native(case.kwargs, "cpu")))
    if plain[0] == "ok":
        _reference_output_is_plain(plain[1], f"{entry.name} output")
    for layout, make in NUMPY_LAYOUTS.items():
        args, kwargs = _map(case.args, make, np.ndarray), _map(case.kwargs, make, np.ndarray)
        got = outcome(fn, Case(args, kwargs))
        _same_outcome(entry.name, layout, plain, got)
        if got[0] == "ok":
            _reference_output_is_plain(got[1], f"{entry.name} [{layout}] output")
            same_bits(plain[1], got[1], f"{entry.name} [{layout}] output", strict=True)
        same_bits(case.args, _native(args), f"{entry.name} [{layout}]: changed its input args")
        same_bits(case.kwargs, _native(kwargs), f"{entry.name} [{layout}]: changed its input kwargs")


def _to_numpy(value):
    return TORCH.to_numpy(_map(value, lambda t: t.resolve_neg(), torch.Tensor))


def check_torch_layouts(entry, case, device, fn=None):
    fn = fn or TORCH.function(entry)
    plain = outcome(fn, Case(TORCH.to_native(case.args, device), TORCH.to_native(case.kwargs, device)))
    for layout, (make, context) in TORCH_LAYOUTS.items():
        with context():
            args = _map(TORCH.to_native(case.args, device), make, torch.Tensor)
            kwargs = _map(TORCH.to_native(case.kwargs, device), make, torch.Tensor)
            got = outcome(fn, Case(args, kwargs))
        _same_outcome(entry.name, layout, plain, got)
        if got[0] == "ok":
            same_bits(_to_numpy(plain[1]), _to_numpy(got[1]), f"{entry.name} [{layout}] output")
        same_bits(case.args, _to_numpy(args), f"{entry.name} [{layout}]: changed its input args")
        same_bits(case.kwargs, _to_numpy(kwargs), f"{entry.name} [{layout}]: changed its input kwargs")


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_numpy_layouts_give_the_same_bits(entry):
    @settings(max_examples=EXAMPLES)
    @given(entry.strategy())
    def check(case):
        with np.errstate(all="ignore"):
            check_numpy_layouts(entry, case)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_torch_layouts_give_the_same_bits(entry, device):
    @settings(max_examples=EXAMPLES)
    @given(entry.strategy())
    def check(case):
        check_torch_layouts(entry, case, device)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(("entry", "target"), EXTRA_PARAMS)
def test_torch_layouts_give_the_same_bits_in_extra_implementations(entry, target, device):
    fn = resolve(target)

    @settings(max_examples=EXAMPLES)
    @given(entry.strategy())
    def check(case):
        check_torch_layouts(entry, case, device, fn)

    check()


def test_masked_arrays_are_rejected():
    """A masked array's mask would be ignored (NumPy ufuncs on its data): a TypeError naming the argument."""
    from reference import magnitude_mask

    w = np.ma.masked_array(np.float32([1.0, -2.0, 3.0]), mask=[False, True, False])
    with pytest.raises(TypeError, match=r"^w must be an array \(numpy.ndarray in reference, .*\), got MaskedArray$"):
        magnitude_mask(w, 0.5)


# ---- the layouts themselves, and the strictness of the output check -------------------------------------------


def test_numpy_layouts_keep_the_values_and_change_the_layout():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - np.float32(11.5)
    a.reshape(-1)[0] = -0.0
    for layout, make in NUMPY_LAYOUTS.items():
        b = make(a)
        same_bits(a, np.array(b, dtype=np.float32), layout)
        assert b is not a or layout in ("broadcast", "matrix"), layout  # these two need constant or 2-d input
    assert not _big_endian(a).dtype.isnative
    assert not _np_strided(a).flags.c_contiguous and not _reversed(a).flags.c_contiguous
    assert _reversed(a).strides[0] < 0 and not _read_only(a).flags.writeable
    assert not _unaligned(a).flags.aligned
    assert _np_broadcast(np.full((3, 2), 1.5, np.float32)).strides == (0, 0)
    assert type(_matrix(a[0])) is np.matrix


def test_torch_layouts_keep_the_values_and_change_the_layout():
    t = torch.arange(120, dtype=torch.float32).reshape(2, 3, 4, 5) - 59.5
    t.reshape(-1)[0] = -0.0
    for layout, (make, _) in TORCH_LAYOUTS.items():
        same_bits(t.numpy(), _to_numpy(make(t)), layout)
    assert _neg_view(t).is_neg()
    assert not _torch_strided(t).is_contiguous() and not _transposed(t).is_contiguous()
    assert _channels_last(t).is_contiguous(memory_format=torch.channels_last) and not _channels_last(t).is_contiguous()
    assert _expanded(torch.full((3, 2), 1.5)).stride() == (0, 0)
    assert _inference_tensor(t).is_inference()


def test_reference_output_check_rejects_scalars_and_swapped_bytes():
    """The output check can fail: a NumPy scalar, a big-endian array and an array subclass are not plain."""
    with pytest.raises(Mismatch):
        _reference_output_is_plain(np.float32(1.0))
    with pytest.raises(Mismatch):
        _reference_output_is_plain((np.zeros(2, np.float32), np.zeros(2, ">f4")))
    with pytest.raises(Mismatch):
        _reference_output_is_plain(_matrix(np.zeros((2, 2), np.float32)))
    with pytest.raises(Mismatch):
        same_bits(np.float32(1.0), np.asarray(np.float32(1.0)), strict=True)
    same_bits(np.float32(1.0), np.asarray(np.float32(1.0)))  # goldens may still be written as NumPy scalars
