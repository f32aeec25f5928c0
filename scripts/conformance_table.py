"""Write docs/peers.md: which of pqref's named variants each peer function matches, and how many vectors differ.

    python scripts/conformance_table.py            # run every adapter whose peer is installed, rewrite the page
    python scripts/conformance_table.py --print    # print the page instead

Each adapter runs one peer function on fixed inputs (pqref's code tables, or arrays from a fixed seed) and
compares its result, element by element, with pqref's result under each named variant of the matching registry
entry. A row records the peer's version and, per variant, how many elements differ; the variant with none is the
one the peer implements. Peers are oracles, never definitions: a row that matches no variant is a divergence to
document, not a failure of pqref (tests/test_peer_table.py checks the adapters run, not what peers do).
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import reference as R  # noqa: E402
from spec import codepoints  # noqa: E402

PAGE = ROOT / "docs" / "peers.md"
F32 = np.float32


@dataclass
class Row:
    """One peer function against one pqref entry: elements differing per named variant."""

    peer: str
    version: str
    function: str
    entry: str
    total: int
    differ: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def matches(self) -> str:
        same = [v for v, n in self.differ.items() if n == 0]
        if same:
            return ", ".join(same)
        best = min(self.differ, key=self.differ.get)
        return f"none (closest: {best})"


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _count(a, b) -> int:
    """Elements whose bits differ (NaNs of any payload count as equal: decoders differ only in payload)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return int(max(a.size, b.size))
    if a.dtype.kind == "f":
        both_nan = np.isnan(a) & np.isnan(b.astype(a.dtype))
        bits = a.view(f"u{a.dtype.itemsize}") != b.astype(a.dtype).view(f"u{a.dtype.itemsize}")
        return int((bits & ~both_nan).sum())
    return int((a.astype(np.int64) != b.astype(np.int64)).sum())


def _range(rng, tie):
    """A range [lo, hi] around 0; with `tie`, one whose uint8 zero point qmin - lo / s is exactly k + 0.5 for the
    scale s = (hi - lo) / 255 (a power of two), where the conventions round differently."""
    if not tie:
        return -abs(F32(rng.standard_normal() * 3)), abs(F32(rng.standard_normal() * 3))
    s = 2.0 ** int(rng.integers(-8, 2))
    k = int(rng.integers(0, 254))
    lo = -(k + 0.5) * s
    return F32(lo), F32(lo + 255 * s)


# ---- adapters: each returns a list of Rows -------------------------------------------------------------------


def ml_dtypes_rows(small=False):
    import ml_dtypes

    v = version("ml_dtypes")
    rows = []
    for fmt in codepoints.FLOAT_FORMATS:
        if not hasattr(ml_dtypes, fmt):
            continue
        dt = getattr(ml_dtypes, fmt)
        x = codepoints.float_boundaries(fmt)
        with np.errstate(all="ignore"):
            got = x.astype(dt).view(np.uint8)
        form = R.quantization.floats.FORMATS[fmt]
        sats = (True, False) if (form.has_inf or form.has_nan) else (True,)
        differ = {f"saturate={s}": _count(R.float_encode(x, fmt, saturate=s), got) for s in sats}
        rows.append(Row("ml_dtypes", v, f"astype({fmt})", "float_encode", x.size, differ))
        codes = np.arange(2**form.bits, dtype=np.uint8)
        dec = codes.view(dt).astype(np.float32)
        rows.append(Row("ml_dtypes", v, f"{fmt} -> float32", "float_decode", codes.size,
                        {"(only variant)": _count(R.float_decode(codes, fmt), dec)}, "NaN payloads not compared"))  # fmt: skip
    return rows


def torch_float8_rows(small=False):
    import torch

    v = version("torch")
    rows = []
    for fmt, dt in (
        ("float8_e4m3fn", "float8_e4m3fn"),
        ("float8_e5m2", "float8_e5m2"),
        ("float8_e8m0fnu", "float8_e8m0fnu"),
    ):
        if not hasattr(torch, dt):
            continue
        x = codepoints.float_boundaries(fmt)
        got = torch.from_numpy(x).to(getattr(torch, dt)).view(torch.uint8).numpy()
        form = R.quantization.floats.FORMATS[fmt]
        differ = {f"saturate={s}": _count(R.float_encode(x, fmt, saturate=s), got) for s in (True, False)}
        note = "ties of float32 subnormals go up to 2**-126" if fmt == "float8_e8m0fnu" else ""
        rows.append(Row("torch", v, f"Tensor.to(torch.{dt}) (CPU)", "float_encode", x.size, differ, note))
        del form
    return rows


def onnx_rows(small=False):
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    v = version("onnx")
    rows = []
    x = codepoints.int_boundaries(8, True)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None]),
                                            helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
                                            helper.make_tensor_value_info("z", TensorProto.INT8, [])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [None])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    got = ReferenceEvaluator(model).run(None, {"x": x, "s": np.array(1.0, F32), "z": np.array(0, np.int8)})[0]
    differ = {m: _count(R.quantize(x, F32(1), np.int32(0), qmin=-128, qmax=127, rounding=m).astype(np.int8), got)
              for m in ("half_even", "half_away")}  # fmt: skip
    rows.append(Row("onnx", v, "QuantizeLinear (reference evaluator, int8)", "quantize", x.size, differ))
    if hasattr(TensorProto, "FLOAT8E4M3FN"):
        xb = codepoints.float_boundaries("float8_e4m3fn")
        differ = {}
        for sat in (1, 0):
            cast = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN, saturate=sat)
            g = helper.make_graph([cast], "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [None])])  # fmt: skip
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
            out = np.asarray(ReferenceEvaluator(m).run(None, {"x": xb})[0]).view(np.uint8)
            differ[f"saturate={bool(sat)}"] = _count(R.float_encode(xb, "float8_e4m3fn", saturate=bool(sat)), out)
        rows.append(Row("onnx", v, "Cast to FLOAT8E4M3FN, saturate=1 / 0", "float_encode", xb.size, differ,
                        "each saturate value is compared with the same pqref saturate"))  # fmt: skip
    rng = np.random.default_rng(0)
    mins, count = [], 0
    dq = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    g = helper.make_graph([dq], "d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in
                           (("y", TensorProto.UINT8, [None]), ("s", TensorProto.FLOAT, []), ("z", TensorProto.UINT8, []))])  # fmt: skip
    evaluator = ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]))
    zs, ss = [], []
    for i in range(100 if small else 2000):
        lo, hi = _range(rng, tie=i % 2 == 1)
        xs = np.array([lo, hi, 0.0], F32)
        _, s, z = evaluator.run(None, {"x": xs})
        mins.append(lo)
        zs.append(int(z))
        ss.append(F32(s))
        count += 1
    mins, ss = np.array(mins, F32), np.array(ss, F32)
    differ = {c: _count(R.affine_zero_point(mins, ss, qmin=0, qmax=255, convention=c), np.array(zs))
              for c in ("pqref", "torch_ao", "onnx", "tflite")}  # fmt: skip
    rows.append(Row("onnx", v, "DynamicQuantizeLinear zero point", "affine_zero_point", count, differ,
                    "half of the ranges put the zero point on an x.5 tie"))  # fmt: skip
    del onnx
    return rows


def torch_ao_rows(small=False):
    import torch
    from torch.ao.quantization.observer import MinMaxObserver

    v = version("torch")
    rows = []
    rng = np.random.default_rng(1)
    n = 200 if small else 2000
    amax, sym, zps, mins, scs = [], [], [], [], []
    for i in range(n):
        lo, hi = _range(rng, tie=i % 2 == 1)
        x = torch.from_numpy(np.concatenate([[lo, hi], rng.uniform(lo, hi, 6)]).astype(F32))
        o = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
        o(x)
        s, _ = o.calculate_qparams()
        amax.append(float(x.abs().max()))
        sym.append(float(s))
        a = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        a(x)
        s2, z2 = a.calculate_qparams()
        mins.append(float(x.min()))
        scs.append(float(s2))
        zps.append(int(z2))
    amax, sym = np.array(amax, F32), np.array(sym, F32)
    differ = {d: _count(R.symmetric_scale(amax, bits=8, divisor=d), sym) for d in ("qmax", "half_range")}
    rows.append(Row("torch.ao", v, "MinMaxObserver(qint8, per_tensor_symmetric) scale", "symmetric_scale", n, differ))
    mins, scs = np.array(mins, F32), np.array(scs, F32)
    differ = {c: _count(R.affine_zero_point(mins, scs, qmin=0, qmax=255, convention=c), np.array(zps))
              for c in ("pqref", "torch_ao", "onnx", "tflite")}  # fmt: skip
    rows.append(Row("torch.ao", v, "MinMaxObserver(quint8, per_tensor_affine) zero point", "affine_zero_point", n,
                    differ))  # fmt: skip
    x = (rng.standard_normal(4096 if not small else 512) * 3).astype(F32)
    s = F32(0.0173)
    got = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), 0, -128, 127).numpy()
    mine = R.fake_quantize(x, s, np.int32(0), qmin=-128, qmax=127)
    rows.append(Row("torch", v, "fake_quantize_per_tensor_affine (CPU)", "fake_quantize", x.size,
                    {"half_even": _count(mine, got)}, "torch multiplies by 1 / scale"))  # fmt: skip
    return rows


def torchao_rows(small=False):
    import torch
    from torchao.prototype.mx_formats.config import ScaleCalculationMode as M
    from torchao.prototype.mx_formats.mx_tensor import to_mx

    v = version("torchao")
    rows = []
    rng = np.random.default_rng(2)
    blocks = 64 if small else 1024
    amax_grid = np.array(codepoints.float_boundaries("float8_e4m3fn"), np.float64)
    for fmt, dt in (("mxfp8_e4m3", torch.float8_e4m3fn), ("mxfp4_e2m1", torch.float4_e2m1fn_x2)):
        x = rng.standard_normal((blocks, 32)).astype(F32)
        top = rng.choice(amax_grid[amax_grid > 0], blocks) * np.exp2(rng.integers(-10, 10, blocks))
        x[:, 0] = top.astype(F32)  # block maxima on every E4M3 boundary, scaled
        x[:, 1:] = np.clip(x[:, 1:], -np.abs(x[:, :1]), np.abs(x[:, :1]))
        for mode in (M.FLOOR, M.CEIL, M.EVEN, M.RCEIL):
            s, _ = to_mx(torch.from_numpy(x), dt, 32, scaling_mode=mode)
            got = s.view(torch.uint8).numpy().reshape(-1)
            differ = {r: _count(R.mx_quantize(x, fmt, block_size=32, scale_rule=r)[0].reshape(-1), got)
                      for r in ("floor", "ceil", "even", "ceil_pow2")}  # fmt: skip
            note = ("RCEIL takes the exponent of fl32(amax / max element); `ceil` rounds the exact quotient up"
                    if mode == M.RCEIL else "")  # fmt: skip
            rows.append(Row("torchao", v, f"to_mx({fmt}, scaling_mode={mode.name}) scales", "mx_quantize", blocks,
                            differ, note))  # fmt: skip
    try:
        from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize as tao_nvfp4
    except ImportError:
        return rows
    x = (rng.standard_normal((16, 64)) * 3).astype(F32)
    amax = float(np.abs(x).max())
    pts = torch.tensor(amax / (448.0 * 6.0), dtype=torch.float32)
    s, _ = tao_nvfp4(torch.from_numpy(x), 16, pts)
    got = s.view(torch.uint8).numpy().reshape(-1)
    differ = {}
    for d in ("decode", "encode"):
        g = R.nvfp4_global_scale(x, direction=d)
        differ[d] = _count(R.nvfp4_quantize(x, g, direction=d)[0].reshape(-1), got)
    rows.append(Row("torchao", v, "nvfp4_quantize(per_tensor_scale=amax/2688) block scales", "nvfp4_quantize",
                    got.size, differ, "torchao divides amax_b / 6 by the global scale; ModelOpt divides by 6 g"))  # fmt: skip
    return rows


def gguf_rows(small=False):
    from gguf import GGMLQuantizationType as T
    from gguf import quants

    v = version("gguf")
    rows = []
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8 if small else 64, 512)) * rng.choice([1e-3, 1, 100], (8 if small else 64, 1))).astype(
        F32
    )
    x[0, :32] = 0
    x[0, 0] = -0.0
    for q in ("Q8_0", "Q4_0"):
        got = quants.quantize(x, getattr(T, q))
        rows.append(Row("gguf (gguf-py)", v, f"quants.quantize({q})", "gguf_quantize", got.size,
                        {"(llama.cpp reference)": _count(R.gguf_quantize(x, q), got)},
                        "an all-zero Q4_0 block that starts with -0.0: gguf-py stores d = +0.0, C -0.0" if q == "Q4_0" else ""))  # fmt: skip
    for q in ("Q8_0", "Q4_0", "Q4_K"):
        b = R.gguf_quantize(x, q)
        got = quants.dequantize(b, getattr(T, q)).astype(F32)
        rows.append(Row("gguf (gguf-py)", v, f"quants.dequantize({q})", "gguf_dequantize", got.size,
                        {"(only variant)": _count(R.gguf_dequantize(b, q), got)}))  # fmt: skip
    return rows


def compressed_tensors_rows(small=False):
    import torch
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32, unpack_from_int32

    v = version("compressed-tensors")
    rows = []
    rng = np.random.default_rng(4)
    total = differ_p = differ_u = 0
    for bits in range(1, 9):
        for dim in (0, 1):
            q = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(5, 37)).astype(np.int8)
            got = pack_to_int32(torch.from_numpy(q), bits, dim).numpy()
            mine = R.pack_quantized(q, bits=bits, packed_dim=dim)
            differ_p += _count(mine, got)
            back = unpack_from_int32(torch.from_numpy(mine), bits, torch.Size(q.shape), dim).numpy()
            differ_u += _count(q, back)
            total += got.size
    rows.append(Row("compressed-tensors", v, "pack_to_int32 (bits 1..8, packed_dim 0 and 1)", "pack_quantized", total,
                    {"(only variant)": differ_p}))  # fmt: skip
    rows.append(Row("compressed-tensors", v, "unpack_from_int32 of pqref's words", "unpack_quantized", total,
                    {"(only variant)": differ_u}, "counted in words"))  # fmt: skip
    try:
        from compressed_tensors.quantization.utils import generate_gparam
    except ImportError:
        return rows
    x = torch.from_numpy((rng.standard_normal(256) * 5).astype(F32))
    g = generate_gparam(x.min(), x.max()).reshape(()).numpy().astype(F32)
    differ = {d: _count(R.nvfp4_global_scale(x.numpy(), direction=d), g) for d in ("decode", "encode")}
    rows.append(Row("compressed-tensors", v, "generate_gparam (NVFP4 global scale)", "nvfp4_global_scale", 1,
                    differ, "2688 / amax in torch is amax.reciprocal() * 2688, not a division"))  # fmt: skip
    return rows


ADAPTERS = {
    "ml_dtypes": ("ml_dtypes", ml_dtypes_rows),
    "torch float8": ("torch", torch_float8_rows),
    "onnx": ("onnx", onnx_rows),
    "torch.ao": ("torch", torch_ao_rows),
    "torchao": ("torchao", torchao_rows),
    "gguf": ("gguf", gguf_rows),
    "compressed-tensors": ("compressed_tensors", compressed_tensors_rows),
}


def collect(small=False) -> tuple[list[Row], list[str]]:
    """Every adapter's rows, and a line for each peer that is not installed or whose adapter failed."""
    rows, notes = [], []
    for name, (module, adapter) in ADAPTERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            notes.append(f"{name}: not installed")
            continue
        try:
            rows += adapter(small)
        except Exception as exc:  # a peer's API changed: record it, keep the others
            notes.append(f"{name}: adapter failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    return rows, notes


def page(rows: list[Row], notes: list[str]) -> str:
    out = [
        "# Peer conformance table",
        "",
        "Which of pqref's named variants each peer function implements, measured by `scripts/conformance_table.py`",
        "(`python scripts/conformance_table.py` rewrites this page with the peers installed). For each peer",
        "function, every named variant of the matching registry entry is run on the same inputs; the cell gives",
        "the number of elements whose bits differ from the peer's (NaN payloads aside) out of the total. A `0` is",
        "the variant the peer implements; a row with no `0` is a divergence.",
        "",
        "Inputs: pqref's [code tables](code-tables.md) for element formats (every value, every midpoint, its float32",
        "neighbours), arrays from fixed seeds elsewhere. The counts are records of the versions named, not",
        "requirements: tests assert pqref against its own definitions, never against a peer.",
        "",
        "| peer | version | function | pqref entry | matches | elements differing per variant |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = ", ".join(f"`{k}`: {n}" for k, n in r.differ.items()) + f" (of {r.total})"
        note = f" {r.note}." if r.note else ""
        out.append(f"| {r.peer} | {r.version} | {r.function} | [`{r.entry}`](algorithms/{r.entry}.md) | "
                   f"{r.matches} | {cells}{note} |")  # fmt: skip
    if notes:
        out += ["", "Not measured:", ""] + [f"- {n}" for n in notes]
    out += ["", "Peers without a CPU package in the registry (AutoGPTQ/GPTQModel kernels, AutoAWQ, bitsandbytes on",
            "CPU) have no row: their layouts are pinned by `gptq_*`, `awq_*` and `pack_nibbles`.", ""]  # fmt: skip
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", action="store_true", help="print the page instead of writing docs/peers.md")
    args = parser.parse_args(argv)
    with np.errstate(all="ignore"):
        rows, notes = collect()
    text = page(rows, notes)
    if args.print:
        print(text)
    else:
        PAGE.write_text(text)
        print(f"wrote {PAGE}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
