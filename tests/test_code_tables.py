"""Every code point: the code tables of `spec.codepoints` checked against definitions written out here with exact
rationals, the docs page kept in step with them, and the tables present in exported vectors."""

from __future__ import annotations

import bisect
import functools
import importlib.util
import math
import pathlib
from fractions import Fraction

import pytest

from reference.quantization.floats import FORMATS
from spec import codepoints, vectors
from spec.conformance import same_bits
from spec.registry import REGISTRY

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("code_tables", ROOT / "scripts" / "code_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_page_is_up_to_date():
    assert _script().main(["--check"]) == 0, "run python scripts/code_tables.py"


def _decoded(code: int, fmt: str):
    """The value of a code, from the format's fields: a Fraction, or 'nan' / '+inf' / '-inf'."""
    f = FORMATS[fmt]
    if not f.signed:
        return "nan" if code == 255 else Fraction(2) ** (code - 127)
    sign = -1 if code >> (f.bits - 1) else 1
    mag = code & ((1 << (f.bits - 1)) - 1)
    if f.has_inf and mag == f.inf_code:
        return "+inf" if sign > 0 else "-inf"
    if f.has_nan and (mag > f.inf_code if f.has_inf else mag == f.nan_code):
        return "nan"
    e, m = mag >> f.mbits, mag & ((1 << f.mbits) - 1)
    if e == 0:
        return sign * Fraction(m, 1 << f.mbits) * Fraction(2) ** (1 - f.bias)
    return sign * (1 + Fraction(m, 1 << f.mbits)) * Fraction(2) ** (e - f.bias)


@pytest.mark.parametrize("fmt", codepoints.FLOAT_FORMATS)
def test_every_code_decodes_to_its_fields(fmt):
    (case,) = [c for c in codepoints.cases("float_decode") if c.args[1] == fmt]
    out = case.call(REGISTRY["float_decode"].reference())
    assert case.args[0].size == 2 ** FORMATS[fmt].bits
    for code, y in zip(case.args[0].tolist(), out.tolist(), strict=True):
        want = _decoded(code, fmt)
        if want == "nan":
            assert math.isnan(y)
        elif isinstance(want, str):
            assert y == (math.inf if want == "+inf" else -math.inf)
        else:
            assert Fraction(y) == want
            if FORMATS[fmt].signed:
                assert (math.copysign(1, y) < 0) == bool(code >> (FORMATS[fmt].bits - 1)), "the sign bit"


@functools.cache
def _grid(fmt):
    """(magnitude code, value) of every finite magnitude, then the next value of the top binade (an overflow)."""
    f = FORMATS[fmt]
    finite = [(c, _decoded(c, fmt)) for c in range(f.max_code + 1)]
    top, below = finite[-1][1], finite[-2][1]
    return finite + [(f.max_code + 1, top + (top - below))]


def _expected_code(x: float, fmt: str, saturate: bool) -> int:
    """Round to nearest, ties to the even code, the exponent range unbounded above (then saturate or overflow)."""
    f = FORMATS[fmt]
    if not f.signed:
        if not x > 0:
            return 255
        k = math.floor(math.log2(x))
        k += Fraction(x) >= Fraction(3, 2) * Fraction(2) ** k  # the nearest power of two, a tie goes up
        if k > 127:
            return 254 if saturate else 255
        return max(k + 127, 0)
    sign = (1 << (f.bits - 1)) if math.copysign(1, x) < 0 else 0
    grid = _grid(fmt)
    ax = abs(Fraction(x))
    i = bisect.bisect_left([v for _, v in grid], ax)
    near = grid[max(i - 1, 0) : i + 1]  # the neighbours around |x|
    best = min(near, key=lambda cv: (abs(cv[1] - ax), cv[0] & 1))  # nearest, then the even code
    if best[0] > f.max_code:
        return sign | (f.max_code if saturate else (f.inf_code if f.has_inf else f.nan_code))
    return sign | best[0]


@pytest.mark.parametrize("case", codepoints.cases("float_encode"), ids=lambda c: f"{c.args[1]}-{c.kwargs}")
def test_every_encode_boundary_rounds_to_nearest_even(case):
    x, fmt = case.args
    out = case.call(REGISTRY["float_encode"].reference())
    want = [_expected_code(float(v), fmt, case.kwargs["saturate"]) for v in x]
    bad = [(float(v), int(o), w) for v, o, w in zip(x, out, want, strict=True) if o != w]
    assert not bad, f"{len(bad)} boundaries differ; first (x, pqref, definition): {bad[:3]}"


def _round(v: Fraction, mode: str) -> int:
    if mode == "half_even":
        return round(v)  # Python rounds a Fraction half to even
    return int(math.copysign(math.floor(abs(v) + Fraction(1, 2)), v))


@pytest.mark.parametrize("case", codepoints.cases("quantize"), ids=lambda c: f"{c.kwargs}")
def test_every_integer_boundary_in_both_modes(case):
    x = case.args[0]
    kw = case.kwargs
    out = case.call(REGISTRY["quantize"].reference())
    want = [min(max(_round(Fraction(float(v)), kw["rounding"]), kw["qmin"]), kw["qmax"]) for v in x]
    assert out.tolist() == want
    mids = [Fraction(k) + Fraction(1, 2) for k in range(kw["qmin"] - 1, kw["qmax"] + 1)]
    assert {Fraction(float(v)) for v in x} >= set(mids), "every midpoint k + 0.5 is a case"


def test_every_nf4_code_and_boundary():
    from reference.quantization.nf4 import NF4

    (dec,) = codepoints.cases("nf4_dequantize")
    assert dec.call(REGISTRY["nf4_dequantize"].reference()).tolist() == NF4.tolist()
    (enc,) = codepoints.cases("nf4_quantize")
    codes, absmax = enc.call(REGISTRY["nf4_quantize"].reference())
    assert absmax.tolist() == [1.0]
    table = [Fraction(float(v)) for v in NF4]
    for v, c in zip(enc.args[0].tolist(), codes.tolist(), strict=True):
        d = [abs(Fraction(v) - t) for t in table]
        assert c == d.index(min(d)), f"{v!r}: the nearest NF4 value, the lower code on a tie"


def test_exported_vectors_carry_the_tables(tmp_path):
    vectors.export(tmp_path, examples=0, names=["float_decode", "nf4_quantize"])
    _, loaded = vectors.load_jsonl(tmp_path)
    tables = [r for r in loaded["float_decode"] if r.source == "table"]
    assert sorted(r.case.args[1] for r in tables) == sorted(codepoints.FLOAT_FORMATS)
    assert all(r.case.args[0].size == 2 ** FORMATS[r.case.args[1]].bits for r in tables)
    assert [r.source for r in loaded["nf4_quantize"]].count("table") == 1
    same_bits(REGISTRY["float_decode"].reference()(*tables[0].case.args), tables[0].expected)
