"""Bitwise comparison and the conformance check of one case, shared by the tests and `pqref verify`."""

from __future__ import annotations

import struct

import numpy as np

from spec.backends import REFERENCE, Backend
from spec.entry import Case, Entry


class Mismatch(AssertionError):
    """Two backends disagree on a case (values, bits, dtype, shape, exception, or an input was mutated)."""


def same_bits(expected, got, where="output", *, strict=False) -> None:
    """Raise `Mismatch` unless `got` equals `expected` exactly: same types, dtypes, shapes and bit patterns.

    Floats compare as unsigned integers of their width, so `-0.0 != +0.0` and NaN payloads count. A NumPy scalar
    on either side counts as the 0-d array of its value (goldens may be written as `np.float32(1.5)`), unless
    `strict`: then an `expected` NumPy scalar is a mismatch, so the reference's output must be a 0-d array where a
    tensor backend returns a 0-d tensor (`check_case` compares strictly).
    """
    if isinstance(expected, np.generic):
        if strict:
            raise Mismatch(
                f"{where}: expected side is the NumPy scalar {expected!r}, not an array (got {type(got).__name__})"
            )
        expected = np.asarray(expected)
    if isinstance(got, np.generic):
        got = np.asarray(got)
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            raise Mismatch(f"{where}: expected an array, got {type(got).__name__}")
        if expected.dtype != got.dtype:
            raise Mismatch(f"{where}: dtype {got.dtype} != expected {expected.dtype}")
        if expected.shape != got.shape:
            raise Mismatch(f"{where}: shape {got.shape} != expected {expected.shape}")
        a, b = _bits(expected), _bits(got)
        if not np.array_equal(a, b):
            i = int(np.flatnonzero(a.reshape(-1) != b.reshape(-1))[0])
            e, g = expected.reshape(-1)[i], got.reshape(-1)[i]
            n_bad = int((a != b).sum())
            raise Mismatch(
                f"{where}: {n_bad} of {a.size} elements differ; first at flat index {i}: "
                f"expected {e!r} (bits {a.reshape(-1)[i]:#x}), got {g!r} (bits {b.reshape(-1)[i]:#x})"
            )
        return
    if isinstance(expected, list | tuple):
        if type(got) is not type(expected) or len(got) != len(expected):
            raise Mismatch(f"{where}: expected {type(expected).__name__} of {len(expected)}, got {got!r:.200}")
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            same_bits(e, g, f"{where}[{i}]", strict=strict)
        return
    if type(expected) is not type(got):
        raise Mismatch(f"{where}: expected {type(expected).__name__} {expected!r}, got {type(got).__name__} {got!r}")
    if isinstance(expected, float):
        if struct.pack("<d", expected) != struct.pack("<d", got):
            raise Mismatch(f"{where}: expected {expected!r}, got {got!r}")
    elif expected != got:
        raise Mismatch(f"{where}: expected {expected!r}, got {got!r}")


def _bits(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "fc":
        return a.view(f"u{a.dtype.itemsize}")
    return a


def outcome(fn, case: Case):
    """`("ok", output)` or `("error", exception)` for one call; `fn` takes the case's values, or the case itself."""
    try:
        return "ok", fn(case) if getattr(fn, "takes_case", False) else case.call(fn)
    except (TypeError, ValueError) as exc:
        return "error", exc


def check_case(entry: Entry, case: Case, backend: Backend, device: str, fn=None) -> None:
    """Run `case` through the reference and through `backend` on `device`; raise `Mismatch` on any difference.

    Both must return bit-identical outputs or raise the same exception type with the same message, and neither
    may change its inputs. The reference's outputs are compared strictly: a NumPy scalar where the backend
    returns an array (a 0-d tensor) is a mismatch.
    """
    fn = fn or backend.function(entry)
    ref_case = Case(REFERENCE.to_native(case.args, "cpu"), REFERENCE.to_native(case.kwargs, "cpu"))
    kind_ref, ref = outcome(entry.reference(), ref_case)
    native = Case(backend.to_native(case.args, device), backend.to_native(case.kwargs, device))
    kind_got, got = outcome(fn, native)
    if kind_ref == "error" or kind_got == "error":
        if kind_ref != kind_got or type(ref) is not type(got) or str(ref) != str(got):
            raise Mismatch(
                f"{entry.name}: reference {_describe(kind_ref, ref)}, {backend.name} {_describe(kind_got, got)}"
            )
    else:
        same_bits(ref, backend.to_numpy(got), f"{entry.name} output", strict=True)
    same_bits(case.args, REFERENCE.to_numpy(ref_case.args), f"{entry.name}: reference changed its input args")
    same_bits(case.kwargs, REFERENCE.to_numpy(ref_case.kwargs), f"{entry.name}: reference changed its input kwargs")
    same_bits(case.args, backend.to_numpy(native.args), f"{entry.name}: {backend.name} changed its input args")
    same_bits(case.kwargs, backend.to_numpy(native.kwargs), f"{entry.name}: {backend.name} changed its input kwargs")


def _describe(kind, value) -> str:
    if kind == "error":
        return f"raised {type(value).__name__}: {value}"
    return "returned normally"


def numpy_call(backend: Backend, fn, device: str):
    """Wrap a backend function so that it takes and returns NumPy values (for invariants and goldens)."""

    def call(case: Case):
        native = Case(backend.to_native(case.args, device), backend.to_native(case.kwargs, device))
        return backend.to_numpy(native.call(fn))

    call.takes_case = True
    return call


