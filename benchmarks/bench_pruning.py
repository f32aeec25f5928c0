"""Global magnitude pruning (radix select vs stable sort vs torch.nn.utils.prune.global_unstructured) and N:M masks."""

from __future__ import annotations

import torch
from torch.nn.utils import prune

import reference.pruning.magnitude as ref_magnitude
import reference.pruning.structured as ref_structured
import torch_backend.kernels as kernels
import torch_backend.pruning.magnitude as eager_magnitude
import torch_backend.pruning.structured as eager_structured
from benchmarks.common import Config, Row, peak_extra, timeit
from torch_backend.kernels import _dispatch

SPARSITY = 0.9


def run(cfg: Config) -> list[Row]:
    return run_global(cfg) + run_nm(cfg)


def run_global(cfg: Config) -> list[Row]:
    side = cfg.size(4096, 512, 256, 16)  # 16 weights of (side, side): 268M on CUDA
    gen = torch.Generator(device=cfg.device).manual_seed(1)
    with torch.no_grad():
        layers = [torch.nn.Linear(side, side, bias=False, device=cfg.device) for _ in range(16)]
        for layer in layers:
            layer.weight.copy_(torch.randn((side, side), generator=gen, device=cfg.device))
    ws = [layer.weight.detach() for layer in layers]
    n = sum(w.numel() for w in ws)
    nbytes = 4 * n
    case = f"16 x ({side}, {side}) = {n} weights, sparsity {SPARSITY}"
    rows: list[Row] = []

    fast = kernels.global_magnitude_masks(ws, SPARSITY)
    sort = eager_magnitude.global_magnitude_masks(ws, SPARSITY)
    same = all(torch.equal(a, b) for a, b in zip(fast, sort, strict=True))
    del fast, sort

    params = [(layer, "weight") for layer in layers]

    def reset():
        for layer in layers:
            if hasattr(layer, "weight_orig"):
                for key, hook in list(layer._forward_pre_hooks.items()):
                    if isinstance(hook, prune.BasePruningMethod):
                        del layer._forward_pre_hooks[key]
                orig = layer._parameters.pop("weight_orig")
                del layer._buffers["weight_mask"]
                delattr(layer, "weight")
                layer.weight = orig

    def torch_prune():
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=SPARSITY)

    torch_ms = timeit(torch_prune, cfg, setup=reset)
    reset()
    torch_prune()
    torch_masks = [layer.weight_mask.bool() for layer in layers]
    reset()
    ref_masks = eager_magnitude.global_magnitude_masks(ws, SPARSITY)
    differ = sum(int((a != b).sum()) for a, b in zip(torch_masks, ref_masks, strict=True))
    del torch_masks, ref_masks

    fast_ms = timeit(lambda: kernels.global_magnitude_masks(ws, SPARSITY), cfg)
    sort_ms = timeit(lambda: eager_magnitude.global_magnitude_masks(ws, SPARSITY), cfg)
    peak_fast = peak_extra(lambda: kernels.global_magnitude_masks(ws, SPARSITY), cfg, nbytes)
    peak_sort = peak_extra(lambda: eager_magnitude.global_magnitude_masks(ws, SPARSITY), cfg, nbytes)
    base = "torch.nn.utils.prune.global_unstructured (L1)"
    rows.append(
        Row(
            "global magnitude",
            case,
            "pqref radix select",
            fast_ms,
            base,
            torch_ms,
            fast_ms / torch_ms,
            peak_fast,
            "torch ops",
            f"identical to the stable-sort masks: {same}; global_unstructured differs in {differ} mask entries",
        )
    )
    rows.append(
        Row("global magnitude", case, "pqref radix select", fast_ms, "pqref stable sort", sort_ms, fast_ms / sort_ms)
    )
    rows.append(
        Row(
            "global magnitude",
            case,
            "pqref stable sort",
            sort_ms,
            base,
            torch_ms,
            sort_ms / torch_ms,
            peak_sort,
            note="peak extra is the sort's",
        )
    )
    if not cfg.cuda:
        wa = [w.numpy() for w in ws]
        ref_ms = timeit(lambda: ref_magnitude.global_magnitude_masks(wa, SPARSITY), cfg)
        rows.append(
            Row("global magnitude", case, "pqref radix select", fast_ms, "NumPy reference", ref_ms, fast_ms / ref_ms)
        )
    return rows


def run_nm(cfg: Config) -> list[Row]:
    side = cfg.size(16384, 2048, 1024, 16)
    gen = torch.Generator(device=cfg.device).manual_seed(2)
    w = torch.randn((side, side), generator=gen, device=cfg.device)
    nbytes = 4 * w.numel()
    rows: list[Row] = []
    for n, m in ((2, 4), (4, 8)):
        case = f"{n}:{m} of ({side}, {side}) along the last axis"
        same = torch.equal(kernels.nm_mask(w, n, m), eager_structured.nm_mask(w, n, m))
        fast_ms = timeit(lambda n=n, m=m: kernels.nm_mask(w, n, m), cfg)
        sort_ms = timeit(lambda n=n, m=m: eager_structured.nm_mask(w, n, m), cfg)
        topk_ms = timeit(lambda n=n, m=m: _topk_nm(w, n, m), cfg)
        peak = peak_extra(lambda n=n, m=m: kernels.nm_mask(w, n, m), cfg, nbytes)
        rows.append(
            Row(
                "N:M mask",
                case,
                "pqref fused",
                fast_ms,
                "pqref stable sort",
                sort_ms,
                fast_ms / sort_ms,
                peak,
                _dispatch.path(w),
                f"identical to the stable-sort mask: {same}",
            )
        )
        rows.append(
            Row(
                "N:M mask",
                case,
                "pqref fused",
                fast_ms,
                "torch.topk per group (ties unspecified)",
                topk_ms,
                fast_ms / topk_ms,
            )
        )
        if not cfg.cuda:
            wa = w.numpy()
            ref_ms = timeit(lambda n=n, m=m, wa=wa: ref_structured.nm_mask(wa, n, m), cfg)
            rows.append(Row("N:M mask", case, "pqref fused", fast_ms, "NumPy reference", ref_ms, fast_ms / ref_ms))
    return rows


def _topk_nm(w, n, m):
    """The usual non-exact way (e.g. NVIDIA ASP): topk of |w| in each group, scattered into a mask."""
    g = w.abs().reshape(-1, m)
    keep = torch.zeros_like(g, dtype=torch.bool)
    keep.scatter_(1, torch.topk(g, n, dim=1).indices, True)
    return keep.reshape(w.shape)
