"""Shape rules both backends share, written once: where a per-channel parameter lies against an array, and the
bounds on every size and loop count a caller passes.

Nothing here touches an array: each function takes and returns Python ints and tuples. Both backends call these
functions, so a too-large size raises the same `ValueError` with the same message in `reference` and in
`torch_backend`, before anything is allocated or looped over.

The bounds are far above any real use and far below what overflows an int64 index. Without them, the backends
disagreed on absurd sizes: NumPy raised `ValueError` or `OverflowError` (or `np.prod` wrapped around), torch raised
`RuntimeError` or returned a result, and `kmeans_codebook(iterations=2**31)` ran all its steps (no early stop).
A size within its bound can still exceed the memory of the machine: that raises the backend's own out-of-memory
error (`MemoryError` in NumPy, `torch.OutOfMemoryError` or `RuntimeError` in torch), which is no input error.
"""

from __future__ import annotations

import math

from reference.common import validate

__all__ = [
    "MAX_ITERATIONS",
    "MAX_KEYS",
    "MAX_NUMEL",
    "block_axis",
    "block_grid",
    "blocked",
    "count_per_slice",
    "iterations",
    "keys",
    "last_axis_blocks",
    "nm_groups",
    "nvfp4_last_axis",
    "per_axis",
    "qparam_shape",
    "shape",
    "size",
]

MAX_NUMEL = 2**40
"""The most elements of an array made from a size parameter, and the largest block size, group size or count of
elements a function accepts: 2**40, about 1.1e12 elements (4 TiB of float32)."""

MAX_ITERATIONS = 10_000
"""The most rounds of a loop a caller can ask for: k-means iterations, pruning rounds, schedule steps."""

MAX_KEYS = 2**20
"""The most keys one `split` returns (a Python tuple of pairs)."""


def per_axis(ndim: int, axis: int) -> tuple[int, ...]:
    """The shape that lays a per-channel parameter along `axis` of an `ndim`-dimensional array: `-1` at `axis`,
    `1` elsewhere, for `reshape`.

    A `(C,)` parameter reshaped to it broadcasts against the array, channel `c` meeting slice `c` of `axis`:
    `per_axis(4, 1)` is `(1, -1, 1, 1)`, the view of a per-channel scale against an `(N, C, H, W)` activation.

    **Arguments:**

    - `ndim`: the number of dimensions of the array, an int >= 1.
    - `axis`: the channel axis, normalized to `[0, ndim)` (as `validate.axis` returns it).

    **Returns:**

    A tuple of `ndim` ints.
    """
    return tuple(-1 if i == axis else 1 for i in range(ndim))


def blocked(shape, axis: int, block_size: int) -> tuple[int, ...]:
    """The shape of one parameter per block: `shape` with `shape[axis]` divided by `block_size` (which divides it).

    `blocked((4, 64), 1, 32)` is `(4, 2)`: an MX scale or a group-wise quantization scale for each run of 32
    consecutive elements along the last axis.
    """
    return tuple(n // block_size if i == axis else n for i, n in enumerate(shape))


def size(name, value, *, lo=1) -> int:
    """A size parameter (a block size, a group size, a number of elements): an int in `[lo, MAX_NUMEL]`."""
    return validate.integer(name, value, lo=lo, hi=MAX_NUMEL)


def iterations(name, value) -> int:
    """A loop count (iterations, rounds, steps): an int in `[0, MAX_ITERATIONS]`."""
    return validate.integer(name, value, lo=0, hi=MAX_ITERATIONS)


def keys(name, value) -> int:
    """A number of random keys: an int in `[1, MAX_KEYS]`."""
    return validate.integer(name, value, lo=1, hi=MAX_KEYS)


def shape(name, value) -> tuple[int, ...]:
    """The shape of an array a function creates: a tuple of ints >= 0 with at most `MAX_NUMEL` elements in all and
    no side longer than `MAX_NUMEL` (an empty shape may not hide a huge side)."""
    dims = validate.shape(name, value)
    n = math.prod(dims)
    if n > MAX_NUMEL or any(d > MAX_NUMEL for d in dims):
        raise ValueError(
            f"{name} {dims} is too large: an array may have at most 2**{MAX_NUMEL.bit_length() - 1} = {MAX_NUMEL} "
            f"elements and no longer side, got {n} elements"
        )
    return dims


def qparam_shape(x_shape, axis, group_size) -> tuple[int, ...]:
    """The shape of the scale (and zero point) of a quantization granularity, with its checks.

    Per tensor (`axis=None`): `()`. Per channel: `(x_shape[axis],)`. Per group (`group_size` dividing
    `x_shape[axis]`): `blocked(x_shape, axis, group_size)`, one parameter per run of `group_size` elements.
    """
    ndim = len(x_shape)
    if axis is None:
        if group_size is not None:
            raise ValueError(f"group_size={group_size!r} needs an axis to group along; got axis=None")
        return ()
    if ndim == 0:
        raise ValueError(f"axis={axis!r} needs an array with at least one dimension, got shape {tuple(x_shape)}")
    k = validate.axis("axis", axis, ndim)
    if group_size is None:
        return (x_shape[k],)
    g = size("group_size", group_size)
    if x_shape[k] % g:
        raise ValueError(f"group_size {g} does not divide x.shape[{k}] = {x_shape[k]}")
    return blocked(x_shape, k, g)


def count_per_slice(shape, axis) -> int:
    """How many elements share one per-channel parameter: all of them (`axis=None`), or one slice along `axis`."""
    return math.prod(shape) if axis is None else math.prod(n for i, n in enumerate(shape) if i != axis)


def block_axis(name, shape, axis, block_size) -> int:
    """The axis along which MX blocks run, normalized; `shape[axis]` must be a multiple of `block_size`."""
    k = validate.axis("axis", axis, len(shape))
    if shape[k] % block_size:
        raise ValueError(
            f"{name}.shape[{k}] = {shape[k]} is not a multiple of block_size {block_size}: MX blocks are never padded"
        )
    return k


def block_grid(shape, block) -> tuple[int, int]:
    """A 2-D block `(b0, b1)` that tiles a 2-D `shape` exactly (block sparsity); returns it checked."""
    if not isinstance(block, tuple | list) or len(block) != 2:
        raise TypeError(f"block must be a tuple of two ints, got {type(block).__name__} {block!r}")
    b0 = size("block[0]", block[0])
    b1 = size("block[1]", block[1])
    if len(shape) != 2:
        raise ValueError(f"w must be 2-D for block sparsity, got shape {tuple(shape)}")
    if shape[0] % b0 or shape[1] % b1:
        raise ValueError(f"block ({b0}, {b1}) does not divide w.shape {tuple(shape)}")
    return b0, b1


def last_axis_blocks(name, shape, unit, what) -> None:
    """Raise `ValueError` unless the last axis of `shape` is a nonzero-rank multiple of `unit` (`what` per block)."""
    if len(shape) == 0 or shape[-1] % unit:
        raise ValueError(
            f"{name} has shape {tuple(shape)}: its last axis must be a multiple of {unit} ({what} per block)"
        )


def nvfp4_last_axis(name, shape, block) -> None:
    """Raise `ValueError` unless the last axis of `shape` is a multiple of NVFP4's `block` (nonzero rank)."""
    if len(shape) == 0 or shape[-1] % block:
        raise ValueError(f"{name} has shape {tuple(shape)}: NVFP4 needs a last axis that is a multiple of {block}")


def nm_groups(shape, n, m, axis) -> tuple[int, int, int]:
    """N:M sparsity's parameters against an array's `shape`: `m` a size, `n` in `[0, m]`, `axis` (normalized) an
    axis whose length `m` divides. Returns `(n, m, axis)`."""
    m = size("m", m)
    n = validate.integer("n", n, lo=0, hi=m)
    if len(shape) == 0:
        raise ValueError("w must have at least one dimension for N:M pruning, got a 0-d array")
    axis = validate.axis("axis", axis, len(shape))
    if shape[axis] % m:
        raise ValueError(f"m {m} does not divide w.shape[{axis}] = {shape[axis]}")
    return n, m, axis
