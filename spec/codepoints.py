"""Every code point of every format of 8 bits or fewer, as vectors: each code's decoded value, and each encode
rounding boundary (every representable value, every midpoint between neighbours, each with its two float32
neighbours, both signs) in each rounding mode the format has.

| format | decode entry | encode entry | modes |
|---|---|---|---|
| int2 ... int8, signed and unsigned | `dequantize` (scale 1, zero 0) | `quantize` (scale 1, zero 0) | `half_even`, `half_away` |
| FP8 E4M3FN, E5M2 | `float_decode` | `float_encode` | `saturate=True` and `False` (ties to even) |
| FP6 E2M3, E3M2, FP4 E2M1 | `float_decode` | `float_encode` | `saturate=True` (no Inf, no NaN) |
| E8M0 | `float_decode` | `float_encode` | `saturate=True` and `False` (ties up) |
| NF4 | `nf4_dequantize` (absmax 1) | `nf4_quantize` (one block with absmax 1) | the lower code on a midpoint |

`cases(name)` gives the cases of one registry entry; `pqref vectors export` adds them to that entry's vectors
with `"source": "table"`, and `scripts/code_tables.py` prints them as the docs page `code-tables.md`. Everything
here is computed from the format tables in milliseconds.
"""

from __future__ import annotations

import functools

import numpy as np

from spec.entry import Case

__all__ = ["FLOAT_FORMATS", "INT_WIDTHS", "cases", "float_boundaries", "int_boundaries", "nf4_boundaries"]

F32 = np.float32
FLOAT_FORMATS = ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn", "float8_e8m0fnu")
INT_WIDTHS = (2, 3, 4, 5, 6, 7, 8)
INT_MODES = ("half_even", "half_away")


def _neighbours(points) -> np.ndarray:
    """float32 points (from float64), each with its two float32 neighbours; sorted, unique, finite."""
    with np.errstate(over="ignore"):
        p = np.asarray(points, dtype=np.float64).astype(F32)
    p = p[np.isfinite(p)]
    p = np.concatenate([p, np.nextafter(p, F32(np.inf)), np.nextafter(p, F32(-np.inf))])
    return np.unique(p[np.isfinite(p)])


@functools.cache
def float_boundaries(fmt: str) -> np.ndarray:
    """Encode inputs for a float format: every positive value, every midpoint of neighbours, the overflow
    threshold (max plus half the top spacing), half the smallest value, each with its float32 neighbours and with
    both signs (E8M0, unsigned, gets its positive side, 0 and -1)."""
    from reference.quantization.floats import FORMATS, float_decode

    form = FORMATS[fmt]
    v = float_decode(np.arange(2**form.bits, dtype=np.uint8), fmt).astype(np.float64)
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    extra = [v[-1] + (v[-1] - v[-2]) / 2, v[0] / 2]
    positive = _neighbours(np.concatenate([v, (v[:-1] + v[1:]) / 2, extra]))
    positive = positive[positive > 0]
    if not form.signed:
        return np.concatenate([F32([0.0, -1.0]), positive])
    return np.concatenate([-positive[::-1], F32([-0.0, 0.0]), positive])


@functools.cache
def int_boundaries(bits: int, signed: bool) -> np.ndarray:
    """Quantize inputs for a `bits`-bit integer code at scale 1: every integer from qmin - 1 to qmax + 1, every
    midpoint k + 0.5 between them, each with its float32 neighbours."""
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    k = np.arange(lo - 1, hi + 2, dtype=np.float64)
    return _neighbours(np.concatenate([k, k[:-1] + 0.5]))


@functools.cache
def nf4_boundaries() -> np.ndarray:
    """nf4_quantize inputs in [-1, 1]: every NF4 value and every midpoint (rounded to float32), with neighbours."""
    from reference.quantization.nf4 import NF4

    v = NF4.astype(np.float64)
    x = _neighbours(np.concatenate([v, (v[:-1] + v[1:]) / 2]))
    return x[(x >= -1) & (x <= 1)]


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def cases(name: str) -> list[Case]:
    """The code-table cases of registry entry `name` (none for most entries)."""
    return list(_CASES().get(name, ()))


@functools.cache
def _CASES() -> dict[str, tuple[Case, ...]]:  # noqa: N802 - a cached table
    from reference.quantization.floats import FORMATS

    one, zero = np.array(1.0, dtype=F32), np.array(0, dtype=np.int32)
    out: dict[str, list[Case]] = {k: [] for k in ("float_decode", "float_encode", "quantize", "dequantize")}
    for fmt in FLOAT_FORMATS:
        form = FORMATS[fmt]
        out["float_decode"].append(Case((np.arange(2**form.bits, dtype=np.uint8), fmt)))
        for saturate in (True, False) if (form.has_inf or form.has_nan) else (True,):
            out["float_encode"].append(Case((float_boundaries(fmt), fmt), {"saturate": saturate}))
    for bits in INT_WIDTHS:
        for signed in (True, False):
            qmin, qmax = int_range(bits, signed)
            out["dequantize"].append(Case((np.arange(qmin, qmax + 1, dtype=np.int32), one, zero)))
            for mode in INT_MODES:
                x = int_boundaries(bits, signed)
                out["quantize"].append(Case((x, one, zero), {"qmin": qmin, "qmax": qmax, "rounding": mode}))
    x = np.concatenate([F32([1.0]), nf4_boundaries()])  # a leading 1.0 makes the block's absmax 1: u = x exactly
    out["nf4_quantize"] = [Case((x,), {"block_size": int(x.size)})]
    out["nf4_dequantize"] = [Case((np.arange(16, dtype=np.uint8), F32([1.0])), {"block_size": 16})]
    return {k: tuple(v) for k, v in out.items()}
