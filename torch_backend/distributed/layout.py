"""Where this rank's elements sit in the whole tensor: the block layout of DTensors and of per-rank tensors.

A sharded tensor is described, on each rank, by a `Block`: the rank's elements (`local`), the shape of the whole
tensor and the global coordinates of `local[0, ..., 0]`. Two kinds of input give blocks:

- a **DTensor** (FSDP2's `fully_shard`, `distribute_tensor`): its placements give the block. `Shard(d)` cuts
  dimension `d` into `torch.chunk` pieces (uneven when the size is not divisible: sizes `ceil(n / w)`, the last
  ones shorter or empty); several mesh dimensions cut in turn. `Replicate()` copies: only the replica at mesh
  coordinate 0 *owns* its elements (the others compute the same results but contribute nothing to statistics).
  `Partial` placements and strided shards are refused.
- a **plain tensor** on each rank: the whole tensor is the concatenation of the ranks' tensors along dimension
  0, in rank order (data-parallel rows, uneven and possibly empty). One small `all_gather` exchanges the shapes.

The global flat index of an element (C order of the whole tensor) is what ties are broken by, as in one process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.distributed import comm

__all__ = ["Block", "blocks", "full_tensor", "shard_like", "is_sharded"]

_MAX_DIMS = 8
# dtype codes exchanged with the shapes of plain tensors (any other dtype: code 0, then the dtype check names it)
_DTYPES = (torch.float32, torch.float64, torch.int64, torch.bool, torch.float16, torch.bfloat16, torch.int32)


def is_sharded(x) -> bool:
    """Whether `x` is a DTensor (a tensor with a device mesh and placements)."""
    return isinstance(x, torch.Tensor) and hasattr(x, "device_mesh") and hasattr(x, "placements")


@dataclass(frozen=True)
class Block:
    """This rank's part of a whole tensor.

    - `local`: this rank's elements, a plain tensor (never modified).
    - `shape`: the whole tensor's shape; `offset`: the global coordinates of `local[0, ..., 0]`.
    - `owner`: whether these elements count in statistics (False on all replicas but one).
    - `group`: the process group over which the whole tensor is spread (None: the default group).
    - `spec`: `(device_mesh, placements)` of a DTensor, to give results its layout; None for a plain tensor.
    """

    local: torch.Tensor
    shape: tuple
    offset: tuple
    owner: bool
    group: object
    spec: tuple | None

    @property
    def numel(self) -> int:
        """The number of elements of the whole tensor."""
        return math.prod(self.shape)

    def coordinates(self, dim: int) -> torch.Tensor:
        """The global coordinates along `dim` of this block's positions (int64, length `local.shape[dim]`)."""
        return torch.arange(self.local.shape[dim], dtype=torch.int64, device=self.local.device) + self.offset[dim]

    def flat_index(self, shape=None, dims=None) -> torch.Tensor:
        """The C-order flat index in the whole tensor of every local element (int64, shaped like `local`).

        With `shape` and `dims`: the flat index in a tensor of shape `shape` whose dimension `j` is `dims[j]` of
        this one (a reduced view: an axis dropped, or divided by a group size with `dims[j] = (d, g)`)."""
        ndim = self.local.dim()
        if shape is None:
            shape, dims = self.shape, list(range(ndim))
        index = torch.zeros(self.local.shape, dtype=torch.int64, device=self.local.device)
        stride = 1
        for j in reversed(range(len(shape))):
            d, g = dims[j] if isinstance(dims[j], tuple) else (dims[j], 1)
            view = [1] * ndim
            view[d] = -1
            index += ((self.coordinates(d) // g) * stride).view(view)
            stride *= shape[j]
        return index

    def first(self, flat_local: int) -> int:
        """The global flat index of the local element at local flat index `flat_local`."""
        coords = []
        for size in reversed(self.local.shape):
            coords.append(flat_local % size)
            flat_local //= size
        coords.reverse()
        index = 0
        for c, o, n in zip(coords, self.offset, self.shape, strict=True):
            index = index * n + c + o
        return index

    def like(self, local_result: torch.Tensor) -> torch.Tensor:
        """A result with this block's layout: a DTensor with the input's mesh and placements, or the plain local
        tensor."""
        if self.spec is None:
            return local_result
        from torch.distributed.tensor import DTensor

        mesh, placements = self.spec
        stride = tuple(math.prod(self.shape[d + 1 :]) for d in range(len(self.shape)))
        return DTensor.from_local(
            local_result, mesh, placements, run_check=False, shape=torch.Size(self.shape), stride=stride
        )


def blocks(names, xs: list, group=None) -> list:
    """The `Block` of every tensor of `xs` (entry `i` named `names[i]`; a single name `n` names the entries
    `n[0]`, `n[1]`, ...); entries that are not tensors give None (the caller raises `validate.not_array` in its
    own order).

    All tensors must be DTensors over one process group, or all plain tensors (then one `all_gather` of their
    shapes and dtypes; their pieces must agree in dtype and in every dimension but the first, checked on all
    ranks alike). `group` is the process group of plain tensors (default: the world)."""
    if isinstance(names, str):
        names = [f"{names}[{i}]" for i in range(len(xs))]
    what = names[0].split("[")[0] if names else "x"
    tensors = [x for x in xs if isinstance(x, torch.Tensor)]
    sharded = [is_sharded(x) for x in tensors]
    if any(sharded) and not all(sharded):
        raise TypeError(f"{what}: mix of DTensors and plain tensors; give all as DTensors or all as plain tensors")
    if tensors and all(sharded):
        out = [_dtensor_block(n, x) if isinstance(x, torch.Tensor) else None for n, x in zip(names, xs, strict=True)]
        groups = {id(b.group) for b in out if b is not None}
        if len(groups) > 1:
            raise ValueError(f"{what}: the DTensors lie on different device meshes; give tensors of one mesh")
        return out
    return _plain_blocks(names, xs, group)


def _mesh_group(name, mesh):
    if mesh.ndim == 1:
        return mesh.get_group(0)
    if mesh.size() != comm.world_size():
        raise ValueError(
            f"{name}: a {mesh.ndim}-D device mesh of {mesh.size()} ranks in a world of {comm.world_size()}; "
            f"torch_backend.distributed takes 1-D meshes, or meshes that span the whole world"
        )
    return None


def _dtensor_block(name, x) -> Block:
    from torch.distributed.tensor import Replicate, Shard

    mesh, placements = x.device_mesh, tuple(x.placements)
    shape = tuple(x.shape)
    offset, size = [0] * len(shape), list(shape)
    coordinate = mesh.get_coordinate()
    if coordinate is None:
        raise ValueError(f"{name}: this rank is not on the DTensor's device mesh")
    owner = True
    for i, p in enumerate(placements):
        if type(p) is Shard:
            d = p.dim % len(shape)
            chunk = -(-size[d] // mesh.size(i)) if size[d] else 0
            start = min(coordinate[i] * chunk, size[d])
            offset[d] += start
            size[d] = min(chunk, size[d] - start)
        elif isinstance(p, Replicate):
            owner = owner and coordinate[i] == 0
        else:
            raise ValueError(
                f"{name}: placement {p} is not supported (Shard(d) and Replicate() are); redistribute the DTensor "
                f"first (x.redistribute(mesh, [Shard(0)]))"
            )
    local = x.to_local().detach()
    if tuple(local.shape) != tuple(size):
        raise ValueError(
            f"{name}: the local shard has shape {tuple(local.shape)}, but its placements {placements} on a mesh of "
            f"shape {tuple(mesh.shape)} give {tuple(size)} (torch.chunk pieces); pqref reads only that layout"
        )
    return Block(local, shape, tuple(offset), owner, _mesh_group(name, mesh), (mesh, placements))


def _plain_blocks(names, xs, group) -> list:
    """Blocks of plain per-rank tensors: one `all_gather` of `(ndim, dtype code, sizes)` for all of them."""
    tensors = [(i, x) for i, x in enumerate(xs) if isinstance(x, torch.Tensor)]
    rows = []
    for i, x in tensors:
        if x.dim() == 0 or x.dim() > _MAX_DIMS:
            raise ValueError(
                f"{names[i]} has shape {tuple(x.shape)}: a per-rank piece has 1 to {_MAX_DIMS} dimensions "
                f"(the whole tensor is the ranks' pieces concatenated along dimension 0)"
            )
        code = _DTYPES.index(x.dtype) + 1 if x.dtype in _DTYPES else 0
        rows.append([x.dim(), code] + list(x.shape) + [0] * (_MAX_DIMS - x.dim()))
    out = [None] * len(xs)
    if not tensors:
        return out
    mine = torch.tensor(rows, dtype=torch.int64, device=comm.device(group))
    every = comm.all_gather(mine, group).cpu().tolist()  # (world, tensors, 2 + _MAX_DIMS)
    me = comm.rank(group)
    for j, (i, x) in enumerate(tensors):
        pieces = [r[j] for r in every]
        first = pieces[0]
        for r, piece in enumerate(pieces):
            if piece[0] != first[0] or piece[1] != first[1] or piece[3 : 2 + piece[0]] != first[3 : 2 + first[0]]:
                got = _describe(piece)
                want = _describe(first)
                raise ValueError(
                    f"{names[i]}: the ranks' pieces must have one dtype and one shape apart from dimension 0; rank "
                    f"{r} has {got}, rank 0 {want}"
                )
        before = sum(p[2] for p in pieces[:me])
        shape = (sum(p[2] for p in pieces),) + tuple(x.shape[1:])
        offset = (before,) + (0,) * (x.dim() - 1)
        out[i] = Block(x.detach(), shape, offset, True, group, None)
    return out


def _describe(piece) -> str:
    ndim, code = piece[0], piece[1]
    dtype = _arrays.dtype_name(_DTYPES[code - 1]) if code else "another dtype"
    return f"shape {tuple(piece[2 : 2 + ndim])} {dtype}"


def full_tensor(x) -> torch.Tensor:
    """The whole tensor on every rank, from a DTensor (a plain tensor is returned as it is).

    One `all_gather` of this rank's block, padded to the largest; bool tensors travel as packed bits (8 per
    byte), so gathering a mask costs an eighth of its elements in bytes per rank."""
    if not is_sharded(x):
        return x
    (b,) = blocks(["x"], [x])
    size = torch.tensor(list(b.offset) + list(b.local.shape) + [int(b.owner)], dtype=torch.int64,
                        device=comm.device(b.group))  # fmt: skip
    layouts = comm.all_gather(size, b.group).cpu().tolist()
    flat = b.local.reshape(-1)
    payload = _pack(flat) if flat.dtype == torch.bool else flat.contiguous().view(torch.uint8)
    longest = max(_payload_bytes(math.prod(r[len(b.shape) : 2 * len(b.shape)]), flat) for r in layouts)
    padded = torch.zeros(longest, dtype=torch.uint8, device=comm.device(b.group))
    padded[: payload.numel()] = payload.to(padded.device)
    pieces = comm.all_gather(padded, b.group).to(b.local.device)
    out = torch.empty(b.shape, dtype=b.local.dtype, device=b.local.device)
    n = len(b.shape)
    for r, layout in enumerate(layouts):
        offset, size, owner = layout[:n], layout[n : 2 * n], layout[2 * n]
        if not owner or math.prod(size) == 0:
            continue
        count = math.prod(size)
        raw = pieces[r, : _payload_bytes(count, flat)]
        values = _unpack(raw, count) if flat.dtype == torch.bool else raw.view(flat.dtype)
        out[tuple(slice(o, o + s) for o, s in zip(offset, size, strict=True))] = values.reshape(size)
    return out


def _payload_bytes(count, like) -> int:
    return -(-count // 8) if like.dtype == torch.bool else count * like.element_size()


def _pack(bits: torch.Tensor) -> torch.Tensor:
    """A flat bool tensor as bytes, 8 bits per byte, the first element in the lowest bit."""
    n = bits.numel()
    padded = torch.zeros(-(-n // 8) * 8, dtype=torch.uint8, device=bits.device)
    padded[:n] = bits.to(torch.uint8)
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.uint8, device=bits.device)
    return (padded.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def _unpack(raw: torch.Tensor, count: int) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8, device=raw.device)
    return ((raw.view(-1, 1) >> shifts) & 1).reshape(-1)[:count].to(torch.bool)


def shard_like(full: torch.Tensor, like) -> torch.Tensor:
    """This rank's part of the whole tensor `full`, in the layout of the DTensor `like` (a DTensor with the same
    mesh and placements); `full` itself when `like` is a plain tensor."""
    if not is_sharded(like):
        return full
    (b,) = blocks(["like"], [like])
    if tuple(full.shape) != tuple(b.shape):
        raise validate.shape_mismatch("full", tuple(full.shape), b.shape, "the DTensor it is sharded like")
    index = tuple(slice(o, o + s) for o, s in zip(b.offset, b.local.shape, strict=True))
    return b.like(full[index].contiguous())
