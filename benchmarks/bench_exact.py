"""Exact sums and linear algebra against torch's native float64 operations (which are not reproducible).

Four measures, each a ratio in one run: `exact_sum` of float32 values against `torch.sum(x, dtype=torch.float64)`,
`exact_matmul` of float32 square matrices against a float64 `torch.matmul`, `exact_gram` (`x^T x`) against a
float64 `x.T @ x`, and `cholesky` against `torch.linalg.cholesky` in float64. Each exact result is also checked in
the same run: against the NumPy reference where that is quick, else against an independent route (the sum of four
shards' states, `exact_matmul` of the transpose for the Gram matrix, an exact product for the factor).
"""

from __future__ import annotations

import torch

import reference.core.exact as ref_exact
import torch_backend.core.exact as exact
import torch_backend.core.linalg as linalg
from benchmarks.common import Config, Row, peak_extra, timeit


def run(cfg: Config) -> list[Row]:
    gen = torch.Generator(device=cfg.device).manual_seed(4)
    rows = [_sum(cfg, gen), _matmul(cfg, gen), _gram(cfg, gen), _cholesky(cfg, gen)]
    return [r for r in rows if r is not None]


def _same(a, b) -> bool:
    return bool(torch.equal(a.view(torch.int64), b.view(torch.int64)))


def _sum(cfg, gen):
    n = cfg.size(1 << 28, 1 << 24, 1 << 20, 1000)
    x = torch.randn(n, generator=gen, device=cfg.device)
    got = exact.exact_sum(x)
    if n <= 1 << 20:
        want = torch.from_numpy(ref_exact.exact_sum(x.cpu().numpy()))
        check = f"bit-identical to the NumPy reference: {_same(got.cpu(), want)}"
    else:
        states = [exact.exact_sum_state(part) for part in x.chunk(4)]
        combined = exact.exact_sum_round(exact.exact_sum_combine(states))
        check = f"identical to 4 shards' states combined: {_same(got, combined)}"
    ms = timeit(lambda: exact.exact_sum(x), cfg)
    base = timeit(lambda: torch.sum(x, dtype=torch.float64), cfg)
    return Row(
        "exact", f"sum of {n} float32", "pqref exact_sum", ms, "torch.sum(x, dtype=float64)", base, ms / base,
        peak_extra(lambda: exact.exact_sum(x), cfg, 4 * n), note=check,
    )  # fmt: skip


def _matmul(cfg, gen):
    m = cfg.size(4096, 512, 256, 16)
    a = torch.randn(m, m, generator=gen, device=cfg.device)
    b = torch.randn(m, m, generator=gen, device=cfg.device)
    a64, b64 = a.double(), b.double()
    got = exact.exact_matmul(a, b)
    if m <= 64:
        want = torch.from_numpy(ref_exact.exact_matmul(a.cpu().numpy(), b.cpu().numpy()))
        check = f"bit-identical to the NumPy reference: {_same(got.cpu(), want)}"
    else:
        again = exact.exact_matmul(b.T.contiguous(), a.T.contiguous()).T
        check = f"(B^T A^T)^T identical: {_same(got, again.contiguous())}"
    ms = timeit(lambda: exact.exact_matmul(a, b), cfg)
    base = timeit(lambda: torch.matmul(a64, b64), cfg)
    return Row(
        "exact", f"matmul {m}x{m} float32", "pqref exact_matmul", ms, "torch.matmul (float64)", base, ms / base,
        peak_extra(lambda: exact.exact_matmul(a, b), cfg, 8 * m * m), note=check,
    )  # fmt: skip


def _gram(cfg, gen):
    n, d = cfg.size((32768, 4096), (4096, 512), (1024, 128), (32, 8))
    x = torch.randn(n, d, generator=gen, device=cfg.device)
    x64 = x.double()
    got = exact.exact_gram(x)
    check = f"identical to exact_matmul(x.T, x): {_same(got, exact.exact_matmul(x.T.contiguous(), x))}"
    ms = timeit(lambda: exact.exact_gram(x), cfg)
    base = timeit(lambda: x64.T @ x64, cfg)
    return Row(
        "exact", f"gram of {n}x{d} float32", "pqref exact_gram", ms, "x.T @ x (float64)", base, ms / base,
        peak_extra(lambda: exact.exact_gram(x), cfg, 4 * n * d), note=check,
    )  # fmt: skip


def _cholesky(cfg, gen):
    n = cfg.size(2048, 512, 128, 8)
    x = torch.randn(2 * n, n, generator=gen, device=cfg.device, dtype=torch.float64)
    h = exact.exact_gram(x) + torch.eye(n, dtype=torch.float64, device=cfg.device)  # exactly symmetric, SPD
    got = linalg.cholesky(h)
    if n <= 32:
        import reference.core.linalg as ref_linalg

        want = torch.from_numpy(ref_linalg.cholesky(h.cpu().numpy()))
        check = f"bit-identical to the NumPy reference: {_same(got.cpu(), want)}"
    else:
        residual = (exact.exact_matmul(got, got.T) - h).abs().max().item() / h.abs().max().item()
        check = f"max |L L^T - h| / max |h| = {residual:.1e} (L L^T by exact_matmul)"
    reps = 1 if cfg.smoke else (3 if not cfg.cuda else 5)
    ms = timeit(lambda: linalg.cholesky(h), cfg, reps=reps, warmup=0 if cfg.smoke else 1)
    base = timeit(lambda: torch.linalg.cholesky(h), cfg)
    return Row(
        "exact", f"cholesky {n}x{n} float64", "pqref cholesky", ms, "torch.linalg.cholesky (float64)", base,
        ms / base, note=check,
    )  # fmt: skip
