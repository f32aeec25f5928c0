"""Input checks across ranks: every rank raises the same error, the one a single process raises on the whole tensor.

A value check (finite, not NaN) runs on each rank's own elements; one `all_gather` of `(global flat index of
the first bad element, its value)` per tensor then lets every rank name the first bad element of the whole
tensor, with the wording of `reference.common.validate`. A rank that raised alone would leave the others waiting
in their next collective, so no check of this package raises before every rank knows.
"""

from __future__ import annotations

import struct

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.distributed import comm

__all__ = ["values", "tensor_list"]

_NONE = -1


def values(named: list, kind: str = "finite", group=None) -> list:
    """For `(name, input, block or None, dtypes)` entries in check order: raise the single-process error of the first
    entry that fails, on every rank; return the blocks.

    Each entry's checks run in the reference's order: not a tensor (`not_array`), then its dtype (`bad_dtype`),
    then its values (`kind`: `"finite"` or `"nan"`); a value check of a later entry never hides an earlier
    entry's dtype error. The values of all entries are checked with one `all_gather`."""
    firsts = []
    for _, _, b, dtypes in named:
        firsts.append(_first_bad(b, kind) if b is not None and _dtype_ok(b, dtypes) else (_NONE, 0))
    device = comm.device(group)
    mine = torch.tensor(firsts, dtype=torch.int64, device=device).reshape(len(named), 2)
    every = comm.all_gather(mine, group).cpu().tolist() if named else []
    for j, (name, x, b, dtypes) in enumerate(named):
        if b is None:
            raise validate.not_array(name, x)
        _arrays.array(name, b.local, dtypes)
        found = [r[j] for r in every if r[j][0] != _NONE]
        if found:
            index, bits = min(found)
            if kind == "nan":
                raise validate.not_a_number(name, index)
            raise validate.not_finite(name, index, struct.unpack("<d", struct.pack("<q", bits))[0])
    return [b for _, _, b, _ in named]


def tensor_list(name: str, ws) -> list:
    """`ws` must be a non-empty list or tuple (of arrays): the reference's wording for `finite_arrays`."""
    return list(_arrays.nonempty_list(name, ws))


def _dtype_ok(b, dtypes) -> bool:
    return _arrays.dtype_name(b.local.dtype) in dtypes


def _first_bad(b, kind) -> tuple[int, int]:
    """`(global flat index, float64 bits of the value)` of this rank's first bad element, or `(-1, 0)`."""
    x = b.local
    if not b.owner or not x.dtype.is_floating_point or x.numel() == 0:
        return _NONE, 0
    bad = torch.isnan(x) if kind == "nan" else ~torch.isfinite(x)
    if not bool(bad.any()):
        return _NONE, 0
    j = int(bad.reshape(-1).nonzero()[0])
    value = float(x.reshape(-1)[j].item())
    return b.first(j), struct.unpack("<q", struct.pack("<d", value))[0]
