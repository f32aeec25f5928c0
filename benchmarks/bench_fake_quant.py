"""Fake quantization per tensor, per channel and per group: fused exact kernel vs torch's native ops, our eager
composite, a device copy (the bandwidth floor) and, on CPU, the NumPy reference."""

from __future__ import annotations

import torch

import reference.quantization.affine as ref_affine
import torch_backend.kernels as kernels
import torch_backend.quantization.affine as eager_affine
from benchmarks.common import Config, Row, peak_extra, timeit
from torch_backend.kernels import _dispatch

QMIN, QMAX = -128, 127


def run(cfg: Config) -> list[Row]:
    side = cfg.size(16384, 4096, 1024, 64)  # x is (side, side): 268M elements (1 GiB) on CUDA
    gen = torch.Generator(device=cfg.device).manual_seed(0)
    x = torch.randn((side, side), generator=gen, device=cfg.device) * 3
    nbytes = x.numel() * 4
    rows: list[Row] = []
    path = _dispatch.path(x)

    y = torch.empty_like(x)
    copy_ms = timeit(lambda: y.copy_(x), cfg)
    rows.append(
        Row("fake_quantize", "copy", "y.copy_(x)", copy_ms, note=f"{2 * nbytes / copy_ms / 1e9:.3g} TB/s (read+write)")
    )

    group = 128 if side % 128 == 0 else side
    cases = {
        "per tensor": dict(axis=None, group_size=None),
        "per channel (axis 0)": dict(axis=0, group_size=None),
        f"per group ({group}, axis 1)": dict(axis=1, group_size=group),
    }
    for label, gran in cases.items():
        s, z = eager_affine.minmax_qparams(x, qmin=QMIN, qmax=QMAX, **gran)
        kw = dict(qmin=QMIN, qmax=QMAX, **gran)
        fused = kernels.fake_quantize(x, s, z, **kw)
        eager = eager_affine.fake_quantize(x, s, z, **kw)
        same = bool(torch.equal(fused.view(torch.int32), eager.view(torch.int32)))
        del fused, eager
        fused_ms = timeit(lambda s=s, z=z, kw=kw: kernels.fake_quantize(x, s, z, **kw), cfg)
        eager_ms = timeit(lambda s=s, z=z, kw=kw: eager_affine.fake_quantize(x, s, z, **kw), cfg)
        native, native_name = _native(x, s, z, gran)
        native_ms = timeit(native, cfg)
        differ = int((native().view(torch.int32) != eager_affine.fake_quantize(x, s, z, **kw).view(torch.int32)).sum())
        peak = peak_extra(lambda s=s, z=z, kw=kw: kernels.fake_quantize(x, s, z, **kw), cfg, nbytes)
        peak_eager = peak_extra(lambda s=s, z=z, kw=kw: eager_affine.fake_quantize(x, s, z, **kw), cfg, nbytes)
        rows.append(
            Row(
                "fake_quantize",
                label,
                "pqref fused",
                fused_ms,
                "y.copy_(x)",
                copy_ms,
                fused_ms / copy_ms,
                peak,
                path,
                f"{100 * copy_ms / fused_ms:.3g}% of copy bandwidth; bit-identical to eager: {same}",
            )
        )
        rows.append(Row("fake_quantize", label, "pqref fused", fused_ms, native_name, native_ms, fused_ms / native_ms))
        rows.append(
            Row(
                "fake_quantize",
                label,
                "pqref fused",
                fused_ms,
                "pqref eager composite",
                eager_ms,
                fused_ms / eager_ms,
                peak_eager,
                note="peak extra is the eager composite's",
            )
        )
        rows.append(
            Row(
                "fake_quantize",
                label,
                native_name,
                native_ms,
                "pqref eager composite",
                eager_ms,
                native_ms / eager_ms,
                note=f"native output differs from the exact one in {differ} of {x.numel()} elements",
            )
        )
        if not cfg.cuda:
            xa, sa, za = x.numpy(), s.numpy(), z.numpy()
            ref_ms = timeit(lambda xa=xa, sa=sa, za=za, kw=kw: ref_affine.fake_quantize(xa, sa, za, **kw), cfg)
            rows.append(
                Row(
                    "fake_quantize",
                    label,
                    "pqref fused",
                    fused_ms,
                    "NumPy reference",
                    ref_ms,
                    fused_ms / ref_ms,
                    path=path,
                )
            )
    return rows


def _native(x, s, z, gran):
    """torch's own fake quantize for the granularity (per group: per channel over a (rows * groups, g) view)."""
    if gran["axis"] is None:
        scale, zp = float(s), int(z)
        return (lambda: torch.fake_quantize_per_tensor_affine(x, scale, zp, QMIN, QMAX)), (
            "torch.fake_quantize_per_tensor_affine"
        )
    if gran["group_size"] is None:
        return (lambda: torch.fake_quantize_per_channel_affine(x, s, z, 0, QMIN, QMAX)), (
            "torch.fake_quantize_per_channel_affine"
        )
    g = gran["group_size"]
    rows = x.reshape(-1, g)
    sf, zf = s.reshape(-1), z.reshape(-1)
    return (lambda: torch.fake_quantize_per_channel_affine(rows, sf, zf, 0, QMIN, QMAX).reshape(x.shape)), (
        "torch.fake_quantize_per_channel_affine (grouped view)"
    )


if __name__ == "__main__":  # pragma: no cover
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for r in run(Config(dev, quick=True)):
        print(r)
