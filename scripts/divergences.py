"""Regenerate docs/divergences.md: where peers differ from pqref, each with a runnable snippet and its count.

Every number on the page is measured by running the snippet shown above it (this script executes the snippet
text itself), and is printed with the version of the peer it measured (and the machine). A count is a record of
that version, never a requirement: tests/test_divergences.py checks the page against a new measurement only when
the installed peer has the recorded version.

    python scripts/divergences.py            # rewrite docs/divergences.md
    python scripts/divergences.py --print    # print the page instead
"""

from __future__ import annotations

import argparse
import platform
import textwrap
from pathlib import Path

# (title, peer distribution, explanation, snippet); `HARDWARE` lists the titles whose count also depends on the CPU
SNIPPETS = [
    (
        "torch.ao per-tensor fake quantization multiplies by 1/scale",
        "torch",
        "`torch.fake_quantize_per_tensor_affine` computes `x * (1 / s)`; pqref divides, `x / s`, as ONNX does. The "
        "two differ next to rounding midpoints whenever `1 / s` is inexact.",
        """
        import numpy as np, torch
        import reference as ref
        s = np.float32(0.1)
        mid = (np.arange(-128, 127, dtype=np.float32) + np.float32(0.5)) * s   # the rounding midpoints
        x = np.concatenate([(mid.view(np.int32) + d).view(np.float32) for d in range(-4, 5)])  # and 4 ulps around
        ours = ref.fake_quantize(x, np.array(s), np.array(0, np.int32), qmin=-128, qmax=127)
        theirs = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), 0, -128, 127).numpy()
        differ, total = int((ours.view(np.uint32) != theirs.view(np.uint32)).sum()), x.size
        """,
    ),
    (
        "torch.ao per-channel fake quantization, same cause",
        "torch",
        "`torch.fake_quantize_per_channel_affine` also multiplies by the reciprocal of each channel's scale.",
        """
        import numpy as np, torch
        import reference as ref
        scales = np.float32([0.1, 0.0173, 0.3, 0.7])
        k = np.arange(-128, 127, dtype=np.float32) + np.float32(0.5)
        mid = (k[None, :] * scales[:, None]).astype(np.float32)
        x = np.concatenate([(mid.view(np.int32) + d).view(np.float32) for d in range(-4, 5)], axis=1)
        zp = np.zeros(4, np.int32)
        ours = ref.fake_quantize(x, scales, zp, qmin=-128, qmax=127, axis=0)
        theirs = torch.fake_quantize_per_channel_affine(torch.from_numpy(x), torch.from_numpy(scales),
                                                        torch.from_numpy(zp), 0, -128, 127).numpy()
        differ, total = int((ours.view(np.uint32) != theirs.view(np.uint32)).sum()), x.size
        """,
    ),
    (
        "torch.nn.utils.prune breaks magnitude ties with topk",
        "torch",
        "`l1_unstructured` prunes the k smallest `|w|` chosen by `torch.topk`, whose order among equal values is "
        "unspecified (and differs between CPU and CUDA). pqref keeps the lower flat index.",
        """
        import numpy as np, torch
        from torch.nn.utils import prune
        import reference as ref
        layer = torch.nn.Linear(8, 8, bias=False)
        with torch.no_grad():
            layer.weight.fill_(1.0)                                      # 64 equal magnitudes
        prune.l1_unstructured(layer, "weight", amount=0.25)
        theirs = layer.weight_mask.bool().numpy()
        ours = ref.magnitude_mask(np.ones((8, 8), np.float32), 0.25)
        differ, total = int((ours != theirs).sum()), ours.size
        """,
    ),
    (
        "torch CPU float64 sqrt is not correctly rounded",
        "torch",
        "With torch 2.13 on an AVX512 CPU, `torch.sqrt` on float64 differs from the correctly rounded square root "
        "(NumPy's) by one ulp on some inputs. pqref's L2 norms settle the float32 result exactly instead.",
        """
        import numpy as np, torch
        s = np.random.default_rng(0).uniform(0, 1000, size=1_000_000)
        theirs = torch.sqrt(torch.from_numpy(s)).numpy()
        differ, total = int((theirs.view(np.uint64) != np.sqrt(s).view(np.uint64)).sum()), s.size
        """,
    ),
    (
        "Masking by multiplication",
        "numpy",
        "`w * mask` gives `-0.0` for pruned negative weights and NaN for pruned Inf or NaN; `apply_mask` gives `+0.0`.",
        """
        import numpy as np
        import reference as ref
        w = np.float32([-1.0, np.inf, np.nan, -0.0, 2.0])
        mask = np.array([False, False, False, False, True])
        theirs = w * mask.astype(np.float32)
        ours = ref.apply_mask(w, mask)
        differ, total = int((ours.view(np.uint32) != theirs.view(np.uint32)).sum()), w.size
        """,
    ),
]


HARDWARE = {"torch CPU float64 sqrt is not correctly rounded"}


def peer_version(dist: str) -> str:
    from importlib import metadata

    return metadata.version(dist)


def measure():
    """One row per snippet: (title, peer, peer version, why, code, differ, total)."""
    import warnings

    warnings.filterwarnings("ignore")
    rows = []
    for title, peer, why, code in SNIPPETS:
        code = textwrap.dedent(code).strip()
        scope: dict = {}
        exec(compile(code, title, "exec"), scope)  # the snippet on the page is exactly what ran
        rows.append((title, peer, peer_version(peer), why, code, scope["differ"], scope["total"]))
    return rows


def measured_line(peer, version, differ, total) -> str:
    """The page's record of one measurement; tests/test_divergences.py reads it back with `MEASURED`."""
    return f"**Measured** with {peer} {version} ({platform.machine()}): {differ:,} of {total:,} elements differ."


MEASURED = r"\*\*Measured\*\* with (\S+) (\S+) \((\S+)\): ([\d,]+) of ([\d,]+) elements differ\."


def page(rows) -> str:
    peers = sorted({(peer, version) for _, peer, version, *_ in rows})
    out = [
        "# Divergence catalog",
        "",
        "Where widely used libraries compute something other than pqref's pinned semantics. Each entry shows the "
        "snippet that measured it, the peer version it measured and the count that snippet printed when this page "
        f"was generated ({', '.join(f'{p} {v}' for p, v in peers)}, {platform.machine()}). A count records that "
        "version: another version may agree with pqref, or differ elsewhere. Regenerate with "
        "`python scripts/divergences.py`.",
        "",
        "More divergences are recorded in the test suite with the peer versions measured (`tests/test_peers.py`, "
        "`tests/test_lowbit.py`, `tests/test_quant_misc.py`): the ONNX reference evaluator wraps around instead of "
        "saturating once `|x / s| >= 2**31` (onnx 1.16 and 1.23); onnx 1.16's FP8 QuantizeLinear without "
        "saturation gives 448 for 480 in E4M3FN and NaN for E5M2 overflow; ml_dtypes 0.6 (not 0.7) and torch "
        "2.13's CPU cast send the float32 subnormals in (2**-127, 1.5 * 2**-127) to E8M0 code 1; and "
        "`torch.fake_quantize_per_channel_affine` returns `qmin` once `x / s >= 2**63` (torch 2.13).",
        "",
        "| divergence | measured with | elements that differ |",
        "|---|---|---|",
    ]
    for title, peer, version, _, _, differ, total in rows:
        out.append(f"| [{title}](#{_anchor(title)}) | {peer} {version} | {differ:,} of {total:,} |")
    for title, peer, version, why, code, differ, total in rows:
        out += ["", f"## {title} {{#{_anchor(title)}}}", "", why, "", "```python", code, "```", "",
                measured_line(peer, version, differ, total)]  # fmt: skip
    return "\n".join(out) + "\n"


def _anchor(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the page instead of writing it")
    args = parser.parse_args()
    text = page(measure())
    if args.print:
        print(text)
    else:
        path = Path(__file__).resolve().parents[1] / "docs" / "divergences.md"
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
