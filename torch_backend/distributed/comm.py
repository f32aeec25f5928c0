"""The collectives `torch_backend.distributed` sends, counted: what one rank hands to `torch.distributed`.

Every exact cross-rank statistic is built from three collectives on integer tensors (`all_reduce` with `SUM`,
`MIN` or `MAX`, and `all_gather` of equal-sized pieces), whose results do not depend on the order in which the
ranks' contributions are combined. `traffic()` counts them:

```python
with traffic() as t:
    masks = distributed.global_magnitude_masks(shards, 0.9)
t.payload   # bytes this rank handed to its collectives
t.sent      # bytes this rank sends on the wire with ring algorithms (see `Traffic`)
```

Outside an initialized process group every function of the package runs as a world of one rank and sends nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["Traffic", "traffic", "world_size", "rank", "all_reduce", "all_gather", "device"]

_ACTIVE: list = []


@dataclass
class Traffic:
    """The collectives one rank ran inside a `traffic()` block: `(operation, payload bytes, world size)` each.

    - `payload`: bytes handed to the collectives (an `all_reduce` of `S` bytes counts `S`; an `all_gather` counts
      this rank's piece).
    - `sent`: bytes the rank sends with ring algorithms (what gloo and NCCL use for large messages): an
      `all_reduce` of `S` bytes sends $2 (w - 1) S / w$ (reduce-scatter, then all-gather), an `all_gather` of
      pieces of `S` bytes sends $(w - 1) S$ (each piece travels once around the ring, forwarded by every rank
      but its last receiver).
    """

    calls: list = field(default_factory=list)

    def record(self, op: str, nbytes: int, world: int) -> None:
        self.calls.append((op, nbytes, world))

    @property
    def payload(self) -> int:
        return sum(n for _, n, _ in self.calls)

    @property
    def sent(self) -> int:
        total = 0
        for op, n, w in self.calls:
            total += (2 * (w - 1) * n) // w if op.startswith("all_reduce") else (w - 1) * n
        return total

    def __repr__(self) -> str:
        return f"Traffic({len(self.calls)} collective(s), payload {self.payload} B, sent {self.sent} B)"


@contextlib.contextmanager
def traffic():
    """Count the collectives of `torch_backend.distributed` this rank runs inside the block (nested blocks each
    count everything inside them)."""
    t = Traffic()
    _ACTIVE.append(t)
    try:
        yield t
    finally:
        _ACTIVE.remove(t)


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size(group=None) -> int:
    """The number of ranks in `group` (default: the whole world); 1 outside a process group."""
    return dist.get_world_size(group) if _initialized() else 1


def rank(group=None) -> int:
    """This process's rank in `group`; 0 outside a process group."""
    return dist.get_rank(group) if _initialized() else 0


def device(group=None) -> torch.device:
    """Where the tensors of a collective live: CUDA for NCCL, the CPU otherwise (gloo, or no process group)."""
    if _initialized() and dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _record(op, t, world):
    for active in _ACTIVE:
        active.record(op, t.numel() * t.element_size(), world)


def all_reduce(t: torch.Tensor, op: str, group=None) -> torch.Tensor:
    """`t` reduced over the ranks with `op` (`"sum"`, `"min"` or `"max"`), in place, and returned. Integer tensors
    only: their sums, minima and maxima do not depend on the order of the ranks."""
    if t.dtype.is_floating_point:
        raise TypeError("torch_backend.distributed reduces integer tensors only (a float sum depends on the order)")
    w = world_size(group)
    if w == 1:
        return t
    _record(f"all_reduce_{op}", t, w)
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op],
                    group=group)  # fmt: skip
    return t


def all_gather(t: torch.Tensor, group=None) -> torch.Tensor:
    """Every rank's `t` (one shape and dtype on all ranks), stacked in rank order: shape `(world,) + t.shape`."""
    w = world_size(group)
    if w == 1:
        return t.unsqueeze(0).clone()
    _record("all_gather", t, w)
    out = [torch.empty_like(t) for _ in range(w)]
    dist.all_gather(out, t.contiguous(), group=group)
    return torch.stack(out)
