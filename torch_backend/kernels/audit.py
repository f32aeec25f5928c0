"""Audit the Triton kernels' code for a CUDA GPU, without a GPU: every float operation is IEEE, nothing is fused.

Triton compiles to PTX and then to machine code on any machine that has Triton's NVIDIA backend (its wheel ships
`ptxas`), so whether a kernel keeps the exactness rules can be read off its PTX before it ever runs:

| rule | in PTX | why |
|---|---|---|
| no contraction into multiply-add | every float `add`/`sub`/`mul` carries `.rn`; no float `fma`/`mad` | PTX lets `ptxas` fuse a plain `mul.f32` + `add.f32` into one FMA (one rounding instead of two); `.rn` forbids it |
| IEEE division and square root | float `div` is `div.rn`, `sqrt` is `sqrt.rn` | `div.full` and `div.approx` are off by up to 2 ulp |
| no approximations | no `.approx` float instruction | `rcp`, `ex2`, `lg2`, `sin` approximations |
| subnormals kept | no `.ftz` on float instructions | flush-to-zero changes every subnormal result |

`enable_fp_fusion=False` (the `EXACT` launch option) is what makes Triton write `.rn` on additions and
multiplications; with the default `True` it writes plain `add.f32`, and this audit fails.

Every kernel is compiled in every variant the launchers in `torch_backend.kernels` can request (the same
`launch_config`, `tree_block` and `nm_config` functions pick them), for a chosen GPU architecture. The machine code
(SASS) is not audited: a correctly rounded `div.rn.f32` is itself built from `FFMA` steps there, exactly.

Run: `python -m torch_backend.kernels.audit [--arch 90 100 ...] [--fusion]` (`--fusion` compiles with
`enable_fp_fusion=True` instead, to see the audit fail). Exit status 0 when every variant passes, 1 otherwise,
2 when this Triton cannot compile for CUDA here. `TRITON_INTERPRET` must not be set.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from dataclasses import dataclass, field

__all__ = ["Variant", "variants", "compile_ptx", "audit_ptx", "main"]

_FLOAT = r"(?:f16|bf16|f32|f64)"
# (pattern, what is wrong); each pattern is searched in one PTX instruction (its opcode with modifiers)
_RULES = [
    (re.compile(rf"^(?:add|sub|mul)(?!.*\.rn\b)(?:\.\w+)*\.{_FLOAT}$"), "float add/sub/mul without .rn (may be fused)"),
    (re.compile(rf"^(?:fma|mad)(?:\.\w+)*\.{_FLOAT}$"), "fused multiply-add"),
    (re.compile(rf"^div(?!\.rn\b)(?:\.\w+)*\.{_FLOAT}$"), "division that is not IEEE (div.rn)"),
    (re.compile(rf"^sqrt(?!\.rn\b)(?:\.\w+)*\.{_FLOAT}$"), "square root that is not IEEE (sqrt.rn)"),
    (re.compile(r"\.approx\b"), "approximate instruction"),
    (re.compile(r"\.ftz\b"), "flush-to-zero instruction"),
]
_OPCODE = re.compile(r"^\s*(?:@!?%p\w+\s+)?([a-z][a-z0-9]*(?:\.[a-z0-9]+)*)\s", re.M)


@dataclass(frozen=True)
class Variant:
    """One compilation of one kernel: Triton signature (argument types), constexpr values and warps."""

    kernel: str
    signature: dict = field(hash=False)
    constexprs: dict = field(hash=False)
    num_warps: int

    def label(self) -> str:
        consts = ",".join(f"{k}={v}" for k, v in self.constexprs.items())
        ptrs = ",".join(f"{k}:{v}" for k, v in self.signature.items() if v.startswith("*"))
        return f"{self.kernel}[{consts};warps={self.num_warps};{ptrs}]"


def variants() -> list[Variant]:
    """Every (kernel, argument types, constexprs, warps) combination the launchers can request."""
    from torch_backend.kernels import fake_quant, reduce, select

    out = []
    # fake_quant_kernel: small and large inputs (BLOCK, warps), 64-bit offsets beyond 2**31, every granularity,
    # rounding mode and with/without the gradient mask (whose pointer is then a bool tensor)
    configs = {fake_quant.launch_config(1 << 10), fake_quant.launch_config(1 << 24)}
    for (block, warps), big in itertools.product(sorted(configs), (False, True)):
        if big and block != fake_quant.launch_config(1 << 31)[0]:
            continue  # 64-bit offsets only for inputs that large
        for gran, mode, wm in itertools.product(range(3), range(5), (False, True)):
            index = "i64" if big else "i32"
            sig = {
                "x_ptr": "*fp32", "s_ptr": "*fp32", "z_ptr": "*i32", "u_ptr": "*fp32", "y_ptr": "*fp32",
                "m_ptr": "*i1" if wm else "*fp32", "bad_ptr": "*i32",
                "n": index, "D": "i32", "T": index, "G": "i32", "DG": "i32", "qmin": "i32", "qmax": "i32",
            }  # fmt: skip
            consts = {"GRAN": gran, "MODE": mode, "WRITE_MASK": wm, "BIG": big, "BLOCK": block}
            out.append(Variant("fake_quant_kernel", sig, consts, warps))
    # tree16_kernel: float32 or float64 source (the first pass reads the input, later ones float64), both blocks
    for src, q in itertools.product(("*fp32", "*fp64"), (1 << 20, 16)):
        sig = {"src_ptr": src, "dst_ptr": "*fp64", "n_valid": "i32", "Q": "i32", "src_stride": "i32", "nqb": "i32"}
        out.append(Variant("tree16_kernel", sig, {"BQ": reduce.tree_block(q)}, 4))
    # nm_kernel: every group size it takes (2 <= m <= 16) maps to one of these (MP, BG)
    for mp, bg in sorted({select.nm_config(m) for m in range(2, 17)}):
        sig = {"w_ptr": "*fp32", "out_ptr": "*i1", "bad_ptr": "*i32", "groups": "i32", "m": "i32", "keep": "i32"}
        out.append(Variant("nm_kernel", sig, {"MP": mp, "BG": bg}, 4))
    return out


def compile_ptx(variant: Variant, arch: int = 90, fusion: bool = False) -> str:
    """The PTX Triton generates for `variant` on CUDA compute capability `arch` (e.g. 90 for H100/H200)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from torch_backend.kernels import _triton_kernels as k

    fn = getattr(k, variant.kernel)
    given = dict(variant.signature) | {name: "constexpr" for name in variant.constexprs}
    params = [p.name for p in fn.params]  # Triton wants the signature in the kernel's parameter order
    missing = [name for name in params if name not in given]
    if missing:
        raise ValueError(f"{variant.kernel}: the audit gives no type for {missing}")
    signature = {name: given[name] for name in params}
    constexprs = {(params.index(name),): value for name, value in variant.constexprs.items()}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    options = {"enable_fp_fusion": fusion, "num_warps": variant.num_warps}
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]


def audit_ptx(ptx: str) -> list[str]:
    """The instructions of `ptx` that break an exactness rule, as `"opcode: why"` (empty: the code is exact)."""
    problems = []
    for opcode in sorted(set(_OPCODE.findall(ptx))):
        for pattern, why in _RULES:
            if pattern.search(opcode):
                problems.append(f"{opcode}: {why}")
                break
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_backend.kernels.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[90], help="compute capabilities (default 90)")
    parser.add_argument("--fusion", action="store_true", help="compile with enable_fp_fusion=True (should fail)")
    args = parser.parse_args(argv)
    try:
        import triton
        from triton.backends.compiler import GPUTarget  # noqa: F401

        from torch_backend.kernels import _triton_kernels as k
    except Exception as exc:
        print(f"cannot audit: Triton is not importable here ({type(exc).__name__}: {exc})")
        return 2
    if k.INTERPRET:
        print("cannot audit: TRITON_INTERPRET is set, so the kernels are interpreted, not compiled")
        return 2
    start, failed = time.perf_counter(), 0
    for arch, variant in itertools.product(args.arch, variants()):
        try:
            ptx = compile_ptx(variant, arch, args.fusion)
        except Exception as exc:  # a kernel that does not compile for CUDA is a failure of the audit
            print(f"FAIL sm_{arch} {variant.label()}: does not compile: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        problems = audit_ptx(ptx)
        if problems:
            failed += 1
            print(f"FAIL sm_{arch} {variant.label()}: " + "; ".join(problems))
    print(
        f"triton {triton.__version__}: {len(args.arch) * len(variants())} kernel variants for sm_"
        + "/sm_".join(map(str, args.arch))
        + f", {failed} failing, in {time.perf_counter() - start:.1f} s"
        + (" (enable_fp_fusion=True)" if args.fusion else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
