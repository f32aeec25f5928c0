"""The canonical float64 tree sum (fused and eager) against torch.sum in float64 and the NumPy reference."""

from __future__ import annotations

import torch

import reference.core.reduce as ref_reduce
import torch_backend.core.reduce as eager_reduce
import torch_backend.kernels as kernels
from benchmarks.common import Config, Row, peak_extra, timeit
from torch_backend.kernels import _dispatch


def run(cfg: Config) -> list[Row]:
    n = cfg.size(1 << 28, 1 << 24, 1 << 20, 1000)
    gen = torch.Generator(device=cfg.device).manual_seed(3)
    x = torch.randn(n, generator=gen, device=cfg.device)
    nbytes = 4 * n
    case = f"{n} float32"
    fast = kernels.tree_sum(x)
    same = bool(torch.equal(fast.view(torch.int64), eager_reduce.tree_sum(x).view(torch.int64)))
    fast_ms = timeit(lambda: kernels.tree_sum(x), cfg)
    canon_ms = timeit(lambda: eager_reduce.tree_sum(x), cfg)
    sum64_ms = timeit(lambda: torch.sum(x, dtype=torch.float64), cfg)
    double_ms = timeit(lambda: x.double().sum(), cfg)
    rows = [
        Row(
            "tree_sum",
            case,
            "pqref fast tree",
            fast_ms,
            "torch.sum(x, dtype=float64)",
            sum64_ms,
            fast_ms / sum64_ms,
            peak_extra(lambda: kernels.tree_sum(x), cfg, nbytes),
            _dispatch.path(x),
            f"bit-identical to the canonical tree: {same}",
        ),
        Row("tree_sum", case, "pqref fast tree", fast_ms, "x.double().sum()", double_ms, fast_ms / double_ms),
        Row(
            "tree_sum",
            case,
            "pqref fast tree",
            fast_ms,
            "pqref canonical tree (eager)",
            canon_ms,
            fast_ms / canon_ms,
            peak_extra(lambda: eager_reduce.tree_sum(x), cfg, nbytes),
            note="peak extra is the canonical eager tree's",
        ),
    ]
    if not cfg.cuda:
        xa = x.numpy()
        ref_ms = timeit(lambda: ref_reduce.tree_sum(xa), cfg)
        rows.append(Row("tree_sum", case, "pqref fast tree", fast_ms, "NumPy reference", ref_ms, fast_ms / ref_ms))
    return rows
