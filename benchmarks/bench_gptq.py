"""Exact GPTQ against a plain float32 transcription of the paper's algorithm, in one run.

One layer (`out x in` weight, `2 * in` calibration rows, groups of 128, 4 bits): pqref's `gptq_hessian` + `gptq`
(exact: every Hessian entry and every column value rounded once; the result depends on nothing but the inputs)
against the paper's code in float32 torch (`H = 2 X^T X / n`, `torch.linalg.cholesky`, lazy blocks of 128, whose
result depends on the BLAS, the thread count and the block size). The exact result is checked in the same run:
identical with a different block size.
"""

from __future__ import annotations

import torch

import torch_backend as tb
from benchmarks.common import Config, Row, timeit


def run(cfg: Config) -> list[Row]:
    d = cfg.size(4096, 1024, 256, 32)
    g = min(128, d)
    gen = torch.Generator(device=cfg.device).manual_seed(5)
    x = torch.randn(2 * d, d, generator=gen, device=cfg.device)
    w = torch.randn(d, d, generator=gen, device=cfg.device) * 0.02

    def exact(block=128):
        return tb.gptq(w, tb.gptq_hessian(x), bits=4, group_size=g, block_size=block)

    first, other = exact(), exact(block=64)
    same = all(torch.equal(a.view(torch.uint8) if a.is_floating_point() else a, b.view(torch.uint8)
                           if b.is_floating_point() else b) for a, b in zip(first, other, strict=True))  # fmt: skip
    reps = None if cfg.smoke else 1  # the exact run is seconds long: one timed run after the warm-up above
    ms = timeit(exact, cfg, reps=reps, warmup=0)
    base = timeit(lambda: plain_gptq(w, x, bits=4, group_size=g), cfg, reps=reps, warmup=0)
    return [
        Row("gptq", f"GPTQ {d}x{d}, {2 * d} rows, 4 bits, g{g}", "pqref gptq (exact)", ms, "plain float32 GPTQ",
            base, ms / base, note=f"block size 64 gives the same bits: {same}")
    ]  # fmt: skip


def plain_gptq(w, x, *, bits, group_size, block=128, percdamp=0.01):
    """The paper's Algorithm 1 as its public code writes it, in float32 torch (asymmetric min-max groups)."""
    n = w.shape[1]
    h = 2 * (x.T @ x) / x.shape[0]
    w = w.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(n, device=h.device)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros_like(w)
    maxq = 2**bits - 1
    scale = zero = None
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        w1, err1, hinv1 = w[:, i1:i2].clone(), torch.zeros_like(w[:, i1:i2]), hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if (i1 + i) % group_size == 0:
                cols = w[:, i1 + i : i1 + i + group_size]
                lo = torch.clamp(cols.min(1).values, max=0)
                hi = torch.clamp(cols.max(1).values, min=0)
                scale = (hi - lo) / maxq
                scale[scale == 0] = 1
                zero = torch.round(-lo / scale)
            col = w1[:, i]
            qc = (torch.clamp(torch.round(col / scale) + zero, 0, maxq) - zero) * scale
            q[:, i1 + i] = qc
            e = (col - qc) / hinv1[i, i]
            w1[:, i:] -= e.unsqueeze(1) @ hinv1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return q
