"""One picture per registry entry, computed with the NumPy reference and chosen to show what the entry pins.

`picture(entry)` returns a `Picture`: panels of data (never torch, never a hand-written result: every value drawn
is an output of a `reference` function on the inputs shown) and `facts` that `tests/test_docs_rules.py` checks
without drawing (a quantizer shows at least three output levels, a rounding picture marks its ties, a mask marks
the ties at its cut, a block picture shows at least two blocks). `render(picture)` draws it as SVG (`svg.py`).

Kinds of panel: `line` (a transfer function or a curve: series, tie marks, axis scales), `levels` (the values of
a format on a number line, each labelled with its code), `grid` (a small matrix, every cell annotated, pruned
cells grey, ties at the cut outlined in red, groups or blocks outlined), `heat` (a larger matrix as a heat map),
`bits` (packed words, each bit coloured by the code it holds), `bars`, `tree` (the pairwise summation tree),
`hist` (a histogram with marked values).

An entry with no builder here gets a generic picture from its first golden vector (`_auto`); an entry for which
that fails gets none, and the docs test names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import reference as ref

F = np.float32


@dataclass
class Panel:
    kind: str
    title: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class Picture:
    caption: str
    panels: list[Panel]
    facts: dict = field(default_factory=dict)
    # "steps": a quantizer or rounding (>= 3 levels unless "binary"); "ties": ties must be marked;
    # "groups": group or block outlines must be drawn; "blocks": at least two blocks
    needs: tuple[str, ...] = ()


BUILDERS = {}


def builds(*names):
    def register(fn):
        for n in names:
            BUILDERS[n] = fn
        return fn

    return register


def picture(e) -> Picture | None:
    """The picture of entry `e` (None for a VJP: its page shows the forward entry's picture)."""
    if e.name.endswith("_vjp"):
        return None
    fn = BUILDERS.get(e.name)
    if fn is not None:
        return fn(e)
    return _auto(e)


# ---- facts --------------------------------------------------------------------------------------------------


def problems(p: Picture) -> list[str]:
    """What hides the semantics in picture `p` (empty when it shows them)."""
    f, out = p.facts, []
    if not p.panels:
        out.append("no panel")
    if "steps" in p.needs:
        low = 2 if "binary" in p.needs else 3
        if f.get("levels", 0) < low:
            out.append(f"{f.get('levels', 0)} distinct output levels visible (want >= {low})")
        if f.get("levels", 0) > 64:
            out.append(f"{f['levels']} levels: the range is so wide that the steps are invisible")
    if "ties" in p.needs and f.get("ties", 0) < 1:
        out.append("no tie is marked")
    if "groups" in p.needs and f.get("groups", 0) < 2:
        out.append("fewer than two groups or blocks outlined")
    if "blocks" in p.needs and f.get("blocks", 0) < 2:
        out.append("fewer than two blocks shown")
    if "levels" in p.needs and f.get("levels", 0) < 3:
        out.append("fewer than three code levels shown")
    for q in p.panels:
        for s in q.data.get("series", []) if q.kind == "line" else []:
            narrow = _narrow_steps(s["x"], s["y"])
            if narrow:
                out.append(f"{narrow:.0%} of the samples of {s.get('label') or 'a curve'} lie on steps narrower than "
                           f"{NARROW} samples: the range hides the steps")  # fmt: skip
    return out


NARROW = 8


def _narrow_steps(x, y) -> float:
    """For a densely sampled function of x: the fraction of samples on constant runs of 2 to NARROW - 1 samples
    (a step function swept over so wide a range that each step is a few pixels); 0 for anything else."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if y.size < 200 or x.shape != y.shape or not np.all(np.diff(x) > 0):
        return 0.0
    change = np.flatnonzero(np.diff(y) != 0)
    runs = np.diff(np.concatenate([[-1], change, [y.size - 1]]))
    short = runs[(runs >= 2) & (runs < NARROW)].sum()
    return float(short / y.size) if short > 0.3 * y.size else 0.0


def _distinct(*arrays) -> int:
    vals = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    return len(np.unique(vals + 0.0))  # -0.0 and +0.0 are one level


def _grid(lo, hi, n=1601):
    return np.linspace(lo, hi, n, dtype=np.float64).astype(F)


# ---- transfer functions: rounding and quantizers -------------------------------------------------------------


def _transfer(fn, lo, hi, ties=(), label=None, n=1601):
    """A series over [lo, hi] (dense) and the outputs exactly at the tie inputs `ties`."""
    xs = _grid(lo, hi, n)
    ys = np.asarray(fn(xs))
    tx = np.asarray([t for t in ties if lo <= t <= hi], dtype=F)
    ty = np.asarray(fn(tx)) if tx.size else np.zeros(0, F)
    return {"x": xs, "y": ys, "tx": tx, "ty": ty, "label": label}


def _line_picture(caption, series, xlabel="input x", ylabel="output", title="", needs=("steps", "ties"), **kw):
    levels = _distinct(*[s["y"] for s in series])
    ties = sum(len(s.get("tx", ())) for s in series)
    panel = Panel("line", title, {"series": series, "xlabel": xlabel, "ylabel": ylabel, **kw})
    return Picture(caption, [panel], {"levels": levels, "ties": ties}, needs)


def _halves(lo, hi, step=1.0, offset=0.0):
    k0, k1 = math.floor((lo - offset) / step), math.ceil((hi - offset) / step)
    return [offset + (k + 0.5) * step for k in range(k0, k1)]


@builds("round_half_even", "round_half_away", "round_floor", "round_ceil")
def _rounding(e):
    fn = e.reference()
    what = {
        "round_half_even": "ties go to the even neighbour: 0.5 to +0, 1.5 and 2.5 to 2, -0.5 to -0",
        "round_half_away": "ties go away from zero: 0.5 to 1, 1.5 to 2, 2.5 to 3, -0.5 to -1",
        "round_floor": "every input goes down; the marked midpoints are not special",
        "round_ceil": "every input goes up; the marked midpoints are not special",
    }[e.name]
    s = _transfer(fn, -2.9, 2.9, _halves(-2.9, 2.9))
    return _line_picture(f"`{e.name}` on [-2.9, 2.9]; the dots are the outputs exactly at the midpoints k + 0.5: "
                         f"{what}.", [s], equal=True)  # fmt: skip


@builds("round_with")
def _round_with(e):
    series = [
        _transfer(lambda x, m=m: ref.round_with(x, mode=m), -2.9, 2.9, _halves(-2.9, 2.9), label=m)
        for m in ("half_even", "half_away")
    ]
    return _line_picture("`round_with` by name: `half_even` and `half_away` agree everywhere but at the "
                         "midpoints (dots), where `half_even` picks the even neighbour.", series, equal=True)  # fmt: skip


@builds("round_stochastic")
def _round_stochastic(e):
    grid = np.arange(-1.0, 2.0 + 1e-9, 1 / 32, dtype=F)
    draws = 512
    out = ref.round_stochastic(np.repeat(grid, draws), (0, 0)).reshape(grid.size, draws)
    up = (out > np.floor(grid)[:, None]).mean(axis=1)
    one = ref.round_stochastic(grid, (0, 1))
    series = [
        {"x": grid, "y": up, "label": "fraction of 512 draws rounded up", "marker": "."},
        {"x": grid, "y": one, "label": "one draw per input, key (0, 1)", "marker": "x", "ls": "none"},
    ]
    p = _line_picture("`round_stochastic` with key (0, 0): each input is rounded up with probability equal to its "
                      "fractional part, so the fraction of draws that round up (blue) ramps from 0 to 1 between "
                      "consecutive integers; integers never move. Orange: the outcomes for key (0, 1), one draw per "
                      "input: a pure function of the key and the flat index.", series, ylabel="P(up), output",
                      needs=("steps",))  # fmt: skip
    p.facts["levels"] = _distinct(one)
    return p


def _affine(x, s=0.5, z=0, qmin=-4, qmax=3, axis=None, fn=ref.fake_quantize, **kw):
    return fn(x, np.asarray(s, F), np.asarray(z, np.int32), qmin=qmin, qmax=qmax, axis=axis, **kw)


@builds("quantize")
def _quantize(e):
    s = _transfer(lambda x: _affine(x, fn=ref.quantize, z=1), -3.2, 2.2, _halves(-3.2, 2.2, 0.5))
    return _line_picture("`quantize` with s = 0.5, z = 1, codes [-4, 3]: `clip(rne(x / s) + z)`. The dots are "
                         "the codes exactly at the midpoints x = (k + 0.5) s: half to even. Beyond the range the "
                         "codes clip.", [s], ylabel="code q")  # fmt: skip


@builds("dequantize")
def _dequantize(e):
    q = np.arange(-4, 4, dtype=np.int32)
    y = ref.dequantize(q, np.asarray(0.5, F), np.asarray(1, np.int32))
    series = [{"x": q, "y": y, "marker": "o", "ls": "none"}]
    return _line_picture("`dequantize` with s = 0.5, z = 1: each code q gives (q - z) s; code z gives exactly "
                         "+0.0.", series, xlabel="code q", needs=("steps",))  # fmt: skip


@builds("fake_quantize")
def _fake_quantize(e):
    x = _grid(-3.2, 2.2)
    two = np.stack([x, x])
    y = ref.fake_quantize(two, np.asarray([0.5, 0.25], F), np.asarray([0, 2], np.int32), qmin=-4, qmax=3, axis=0)
    ties0 = np.asarray(_halves(-3.2, 2.2, 0.5), F)
    ties1 = np.asarray(_halves(-3.2, 2.2, 0.25), F)
    ties1 = ties1[(ties1 > -1.6) & (ties1 < 0.6)]
    ty = ref.fake_quantize(np.stack([ties0, ties0]), np.asarray([0.5, 0.25], F), np.asarray([0, 2], np.int32),
                           qmin=-4, qmax=3, axis=0)  # fmt: skip
    ty1 = ref.fake_quantize(np.stack([ties1, ties1]), np.asarray([0.5, 0.25], F), np.asarray([0, 2], np.int32),
                            qmin=-4, qmax=3, axis=0)  # fmt: skip
    series = [
        {"x": x, "y": y[0], "tx": ties0, "ty": ty[0], "label": "channel 0: s = 0.5, z = 0"},
        {"x": x, "y": y[1], "tx": ties1, "ty": ty1[1], "label": "channel 1: s = 0.25, z = 2"},
    ]
    return _line_picture("`fake_quantize` per channel (axis 0), codes [-4, 3]: each channel has its own step and "
                         "zero point, so its own levels and clipping range. Dots: the outputs exactly at the "
                         "midpoints, rounded half to even.", series, equal=True)  # fmt: skip


@builds("integer_range")
def _integer_range(e):
    rows = []
    for bits, signed, narrow in [(3, True, False), (3, True, True), (3, False, False), (4, True, False)]:
        lo, hi = ref.integer_range(bits, signed=signed, narrow_range=narrow)
        codes = np.arange(lo, hi + 1)
        rows.append({"values": codes, "labels": [str(c) for c in codes],
                     "name": f"bits={bits}, signed={signed}, narrow={narrow}"})  # fmt: skip
    p = Picture("`integer_range`: the codes of 3- and 4-bit integers; a narrow range drops the most negative code "
                "so that the range is symmetric.", [Panel("levels", "", {"rows": rows, "xlabel": "code"})])  # fmt: skip
    p.facts["levels"] = max(len(r["values"]) for r in rows)
    p.needs = ("levels",)
    return p


@builds("qparams_from_range", "minmax_qparams", "symmetric_scale")
def _qparams(e):
    rows = []
    lo, hi = F(-0.3), F(1.0)
    for symmetric in (False, True):
        s, z = ref.qparams_from_range(np.asarray([lo]), np.asarray([hi]), qmin=0, qmax=15, symmetric=symmetric)
        codes = np.arange(0, 16, dtype=np.int32)
        vals = ref.dequantize(codes, s.reshape(()), z.reshape(()))
        rows.append({"values": vals, "labels": [str(c) for c in codes], "mark": [float(lo), float(hi)],
                     "name": f"{'symmetric' if symmetric else 'asymmetric'}: s = {float(s[0]):.6g}, z = {int(z[0])}"})  # fmt: skip
    caption = {
        "qparams_from_range": "`qparams_from_range` for the range [-0.3, 1.0] (red) and codes [0, 15]: the levels "
        "(q - z) s, labelled with their codes. Asymmetric: the range fills the codes and 0.0 is exactly a level; "
        "symmetric: the zero point sits mid-range.",
        "minmax_qparams": "`minmax_qparams` per tensor gives the range [min, max] = [-0.3, 1.0] (red) of the data, "
        "and with it the scale and zero point of `qparams_from_range`: the levels (q - z) s for codes [0, 15].",
        "symmetric_scale": "The levels a 4-bit range gets for the range [-0.3, 1.0] (red): asymmetric and symmetric. "
        "`symmetric_scale` picks s = amax / 7 ('qmax') or amax / 7.5 ('half_range', torch.ao), where amax lands "
        "on a .5 tie.",
    }[e.name]
    p = Picture(caption, [Panel("levels", "", {"rows": rows, "xlabel": "real value"})])
    p.facts["levels"] = 16
    p.needs = ("levels",)
    return p


@builds("affine_zero_point")
def _zero_point(e):
    series = []
    for conv in ("pqref", "torch_ao", "onnx", "tflite"):
        fn = lambda m, conv=conv: ref.affine_zero_point(m, np.ones_like(m), qmin=-3, qmax=4, convention=conv)  # noqa: E731
        s = _transfer(fn, -3.9, 0.0, _halves(-3.9, 0.0), label=conv)
        s["y"] = s["y"].astype(np.float64) + 0.06 * len(series)
        s["ty"] = s["ty"].astype(np.float64) + 0.06 * len(series)
        series.append(s)
    return _line_picture("`affine_zero_point` with s = 1, codes [-3, 4], as the range minimum moves (curves "
                         "offset slightly to be told apart): the conventions agree except at the ties "
                         "min / s = -k - 0.5 (dots).", series, xlabel="range minimum", ylabel="zero point")  # fmt: skip


# ---- binary, ternary, learned steps -------------------------------------------------------------------------

_W = np.sort(np.random.default_rng(7).standard_normal(400).astype(F) * F(0.8))


@builds("binarize")
def _binarize(e):
    s = _transfer(ref.binarize, -2.0, 2.0, [0.0])
    s["tx"], s["ty"] = np.asarray([0.0, -0.0], F), ref.binarize(np.asarray([0.0, -0.0], F))
    return _line_picture("`binarize`: sign with sign(0) = +1; the dots are x = +0.0 and x = -0.0, both mapped to "
                         "+1.", [s], needs=("steps", "binary", "ties"))  # fmt: skip


@builds("binary_connect")
def _binary_connect(e):
    grid = np.arange(-1.5, 1.5 + 1e-9, 1 / 32, dtype=F)
    draws = 512
    out = ref.binary_connect(np.repeat(grid, draws), stochastic=True, key=(0, 0)).reshape(grid.size, draws)
    series = [
        {"x": grid, "y": ref.binary_connect(grid), "label": "deterministic: sign, sign(0) = +1"},
        {
            "x": grid,
            "y": (out > 0).mean(axis=1),
            "label": "stochastic, key (0, 0): fraction of 512 draws = +1",
            "marker": ".",
        },  # fmt: skip
    ]
    p = _line_picture("`binary_connect`: deterministic sign, or +1 with probability hard_sigmoid(w) = clip((w + 1) / "
                      "2, 0, 1), drawn from the key.", series, xlabel="weight w", needs=("steps", "binary"))  # fmt: skip
    p.facts["levels"] = 2
    return p


def _sorted_weights(e, fn, caption, lines=(), needs=("steps",)):
    y = np.asarray(fn(_W))
    series = [{"x": np.arange(_W.size), "y": _W, "label": "w (400 weights, sorted)", "color": "#9e9e9e"},
              {"x": np.arange(_W.size), "y": y, "label": f"{e.name}(w)"}]  # fmt: skip
    p = _line_picture(caption, series, xlabel="weight index (sorted)", ylabel="value", needs=needs, hlines=lines)
    p.facts["levels"] = _distinct(y)
    return p


@builds("xnor_binarize", "xnor_scale")
def _xnor(e):
    a = float(ref.xnor_scale(_W))
    return _sorted_weights(e, ref.xnor_binarize,
                           f"`xnor_binarize` of 400 sorted weights: alpha sign(w) with alpha = `xnor_scale`(w) = "
                           f"mean|w| = {a:.4g} (dashed), sign(0) = +1.", lines=[a, -a], needs=("steps", "binary"))  # fmt: skip


@builds("twn_ternarize", "twn_params")
def _twn(e):
    delta, alpha = (float(v) for v in ref.twn_params(_W))
    return _sorted_weights(e, ref.twn_ternarize,
                           f"`twn_ternarize` of 400 sorted weights: |w| <= delta = 0.7 mean|w| = {delta:.4g} (dashed) "
                           f"goes to 0, the rest to +-alpha = {alpha:.4g}, the mean |w| above delta (`twn_params`).",
                           lines=[delta, -delta, alpha, -alpha])  # fmt: skip


@builds("ttq_quantize")
def _ttq(e):
    wp, wn = np.asarray(1.5, F), np.asarray(0.75, F)
    d = float(0.05 * np.abs(_W).max())
    return _sorted_weights(e, lambda w: ref.ttq_quantize(w, wp, wn, t=0.05),
                           f"`ttq_quantize` with learned scales wp = 1.5, wn = 0.75 and t = 0.05: |w| <= t max|w| = "
                           f"{d:.3g} (dashed) goes to 0, w above to +wp, below to -wn.", lines=[d, -d])  # fmt: skip


@builds("dorefa_weight")
def _dorefa_w(e):
    return _sorted_weights(e, lambda w: ref.dorefa_weight(w, 2),
                           "`dorefa_weight` with k = 2 bits on 400 sorted weights: tanh, normalized by max|tanh w| "
                           "to [0, 1], rounded to 3 steps, mapped to {-1, -1/3, 1/3, 1}.")  # fmt: skip


@builds("dorefa_activation")
def _dorefa_a(e):
    s = _transfer(lambda x: ref.dorefa_activation(x, 2), -0.4, 1.4, _halves(0, 1, 1 / 3))
    return _line_picture("`dorefa_activation` with k = 2 bits: clip to [0, 1], then rne(3 y) / 3. Dots: the "
                         "midpoints (k + 0.5) / 3, rounded half to even.", [s], equal=True)  # fmt: skip


@builds("pact_quantize")
def _pact(e):
    s = _transfer(lambda x: ref.pact_quantize(x, np.asarray(3.0, F), 2), -1.0, 4.0, _halves(0, 3, 1.0))
    return _line_picture("`pact_quantize` with alpha = 3 and k = 2 bits: clip to [0, alpha], step s = alpha / 3 = 1. "
                         "Dots: the midpoints, rounded half to even.", [s], equal=True)  # fmt: skip


@builds("lsq_quantize")
def _lsq(e):
    fn = lambda x: ref.lsq_quantize(x, np.asarray(0.5, F), bits=3, signed=True)  # noqa: E731
    s = _transfer(fn, -2.9, 2.4, _halves(-2.5, 2.0, 0.5))
    return _line_picture("`lsq_quantize` with step s = 0.5, signed 3 bits (codes -4 to 3): rne(clip(x / s, -4, 3)) "
                         "s. Dots: the outputs exactly at the midpoints (k + 0.5) s, rounded half to even; beyond "
                         "-2 and 1.5 the codes clip.", [s], equal=True)  # fmt: skip


@builds("lsq_plus_quantize")
def _lsq_plus(e):
    fn = lambda x: ref.lsq_plus_quantize(x, np.asarray(0.5, F), np.asarray(-0.25, F), bits=2, signed=False)  # noqa: E731
    s = _transfer(fn, -1.0, 2.0, _halves(-0.25, 1.25, 0.5, -0.25))
    return _line_picture("`lsq_plus_quantize` with step 0.5, offset beta = -0.25, unsigned 2 bits: the levels "
                         "beta + {0, 1, 2, 3} s. Dots: the midpoints, rounded half to even.", [s], equal=True)  # fmt: skip


@builds("lsq_grad_scale")
def _lsq_gs(e):
    ns = np.unique(np.round(np.logspace(0, 6, 60)).astype(int))
    series = [{"x": ns, "y": [ref.lsq_grad_scale(int(n), qp) for n in ns], "label": f"Qp = {qp}"}
              for qp in (1, 7, 127)]  # fmt: skip
    return _line_picture("`lsq_grad_scale(N, Qp)` = 1 / sqrt(N Qp): the step's gradient shrinks with the number "
                         "of elements N and the code range Qp.", series, xlabel="N", ylabel="g_s",
                         xscale="log", yscale="log", needs=())  # fmt: skip


@builds("lsq_init_scale")
def _lsq_init(e):
    s = float(ref.lsq_init_scale(_W, bits=3, signed=True))
    marks = [k * s for k in range(-4, 4)]
    return Picture(f"`lsq_init_scale` of 400 normal weights, signed 3 bits: s = 2 mean|w| / sqrt(3) = {s:.4g}; "
                   "the lines are the levels k s of the initial quantizer.",
                   [Panel("hist", "", {"values": _W, "marks": marks, "xlabel": "weight"})], {"levels": 8})  # fmt: skip


# ---- floats, MX, NVFP4, powers of two ----------------------------------------------------------------------


def _format_values(fmt, n):
    codes = np.arange(n, dtype=np.uint8)
    return codes, ref.float_decode(codes, fmt)


@builds("float_encode", "float_decode")
def _floats(e):
    codes, vals = _format_values("float4_e2m1fn", 16)
    row = {"values": vals, "labels": [str(c) for c in codes], "name": "FP4 E2M1: all 16 codes (8 is -0)"}
    c8, v8 = _format_values("float8_e4m3fn", 256)
    pos = (v8 > 0) & np.isfinite(v8)
    series = [{"x": c8[pos], "y": v8[pos], "marker": ".", "ls": "none", "label": "E4M3FN"}]
    c5, v5 = _format_values("float8_e5m2", 256)
    pos5 = (v5 > 0) & np.isfinite(v5)
    series.append({"x": c5[pos5], "y": v5[pos5], "marker": ".", "ls": "none", "label": "E5M2"})
    verb = "decodes" if e.name == "float_decode" else "encodes"
    p = Picture(f"`{e.name}` {verb} between float32 and codes. Top: the 16 FP4 E2M1 values with their codes. "
                "Bottom: every positive finite FP8 value against its code on a log axis: the spacing doubles each "
                "binade, E5M2 trades precision for range.",
                [Panel("levels", "FP4 E2M1", {"rows": [row], "xlabel": "value"}),
                 Panel("line", "FP8 positive values", {"series": series, "xlabel": "code", "ylabel": "value",
                                                        "yscale": "log"})],
                {"levels": 15}, ("levels",))  # fmt: skip
    return p


@builds("float_quantize")
def _float_quantize(e):
    _, v = _format_values("float4_e2m1fn", 8)
    mids = [(float(a) + float(b)) / 2 for a, b in zip(v[:-1], v[1:], strict=True)]
    ties = mids + [-m for m in mids]
    s = _transfer(lambda x: ref.float_quantize(x, "float4_e2m1fn"), -7.5, 7.5, ties)
    return _line_picture("`float_quantize` to FP4 E2M1 (saturating): the 15 values 0, +-0.5, 1, 1.5, 2, 3, 4, 6. "
                         "Dots: the midpoints between levels, rounded half to even (to the level with an even "
                         "mantissa); beyond 6 the output saturates.", [s], equal=True)  # fmt: skip


def _blocks_picture(e, x, y, size, caption, scales=None):
    n = x.size // size
    series = [{"x": np.arange(x.size), "y": x, "label": "x", "marker": "o", "ls": "none", "color": "#9e9e9e"},
              {"x": np.arange(x.size), "y": y, "label": f"{e.name.replace('_quantize', '')} value", "marker": "_",
               "ls": "none", "ms": 12}]  # fmt: skip
    panel = Panel("line", "", {"series": series, "xlabel": "element index", "ylabel": "value",
                               "vlines": [k * size - 0.5 for k in range(1, n)], "notes": scales or []})  # fmt: skip
    return Picture(caption, [panel], {"blocks": n, "levels": _distinct(y)}, ("blocks",))


def _two_scales(n, size, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal(size).astype(F) * F(s) for s in (0.15, 2.0, 0.6, 6.0)[: n // size]]
    return np.concatenate(parts)


@builds("mx_quantize", "mx_dequantize", "mx_fake_quantize")
def _mx(e):
    x = _two_scales(64, 32, 1)
    scales, codes = ref.mx_quantize(x, "mxfp4_e2m1")
    y = ref.mx_dequantize(scales, codes, "mxfp4_e2m1")
    notes = [(16 + 32 * i, f"scale 2^{int(s) - 127}") for i, s in enumerate(scales)]
    return _blocks_picture(e, x, y, 32, f"`{e.name}`, MXFP4 (E2M1 elements), blocks of 32: each block shares one "
                           "E8M0 scale 2^(floor(log2 amax) - 2), so the small block keeps fine levels and the large "
                           "one coarse ones; the elements are FP4 values times the block's scale.", notes)  # fmt: skip


@builds("nvfp4_quantize", "nvfp4_dequantize")
def _nvfp4(e):
    x = _two_scales(48, 16, 2)
    g = ref.nvfp4_global_scale(x, direction="decode")
    scales, codes = ref.nvfp4_quantize(x, g, direction="decode")
    y = ref.nvfp4_dequantize(scales, codes, g, direction="decode")
    return _blocks_picture(e, x, y, 16, f"`{e.name}` (global scale direction 'decode'), blocks of 16: each block "
                           "has its own E4M3 scale, the elements are E2M1 values times it.")  # fmt: skip


@builds("nvfp4_global_scale")
def _nvfp4_g(e):
    amax = np.logspace(-2, 3, 60).astype(F)
    dec = [float(ref.nvfp4_global_scale(np.asarray([a], F), direction="decode")) for a in amax]
    enc = [float(ref.nvfp4_global_scale(np.asarray([a], F), direction="encode")) for a in amax]
    series = [
        {"x": amax, "y": dec, "label": "'decode': amax / 2688"},
        {"x": amax, "y": enc, "label": "'encode': 2688 / amax"},
    ]
    return _line_picture("`nvfp4_global_scale`: the two directions in which toolchains store NVFP4's per-tensor "
                         "scale (2688 = 448 x 6, the E4M3 times the E2M1 maximum).", series, xlabel="amax",
                         ylabel="global scale", xscale="log", yscale="log", needs=())  # fmt: skip


@builds("pow2_exponent_range", "pow2_encode", "pow2_decode")
def _pow2_levels(e):
    rows = []
    for bits in (3, 4, 5):
        emin, emax = ref.pow2_exponent_range(bits, 0)
        codes = np.arange(2**bits, dtype=np.uint8)
        try:
            vals = ref.pow2_decode(codes, bits=bits, emax=0)
            keep = np.ones(codes.size, bool)
        except ValueError:
            keep = np.asarray([_pow2_ok(c, bits) for c in codes])
            vals = ref.pow2_decode(codes[keep], bits=bits, emax=0)
        rows.append({"values": vals, "labels": [str(c) for c in codes[keep]],
                     "name": f"bits={bits}: exponents [{emin}, {emax}]"})  # fmt: skip
    p = Picture(f"`{e.name}`, INQ levels with emax = 0: 0 and +-2^e for e in `pow2_exponent_range`, labelled with "
                "their sign-magnitude codes (symmetric log axis).",
                [Panel("levels", "", {"rows": rows, "xlabel": "value", "xscale": "symlog"})],
                {"levels": max(len(r["values"]) for r in rows)}, ("levels",))  # fmt: skip
    return p


def _pow2_ok(c, bits):
    try:
        ref.pow2_decode(np.asarray([c], np.uint8), bits=bits, emax=0)
        return True
    except ValueError:
        return False


@builds("pow2_quantize")
def _pow2_q(e):
    fn = lambda x: ref.pow2_quantize(x, bits=4, emax=0)  # noqa: E731
    mids = [0.75, 0.375, 0.1875, 0.09375]
    s = _transfer(fn, -1.3, 1.3, mids + [-m for m in mids])
    return _line_picture("`pow2_quantize` with 4 bits (INQ), emax = 0: levels 0, +-2^-3 ... +-1, rounding in the "
                         "linear domain. Dots: the midpoints between powers, which go to the larger power.", [s],
                         equal=True)  # fmt: skip


@builds("pow2_emax")
def _pow2_emax(e):
    xs = np.logspace(-2, 2, 801).astype(F)
    ys = np.asarray([ref.pow2_emax(np.asarray([x], F)) for x in xs])
    ties = np.asarray([0.75 * 2.0**k for k in range(-6, 7) if 0.01 <= 0.75 * 2.0**k <= 100], F)
    ty = np.asarray([ref.pow2_emax(np.asarray([t], F)) for t in ties])
    series = [{"x": xs, "y": ys, "tx": ties, "ty": ty}]
    return _line_picture("`pow2_emax` = floor(log2(4 max|x| / 3)): it steps up exactly at max|x| = 0.75 2^k (dots).",
                         series, xlabel="max |x|", ylabel="emax", xscale="log")  # fmt: skip


# ---- codebooks and NF4 -------------------------------------------------------------------------------------


@builds("kmeans_codebook")
def _kmeans(e):
    w = np.concatenate([_W[::2] * F(0.4) - F(1), _W[1::2] * F(0.3) + F(1)])
    _, init = ref.kmeans_codebook(w, 4, iterations=0)
    _, book = ref.kmeans_codebook(w, 4, iterations=20)
    return Picture("`kmeans_codebook` with k = 4 on a two-cluster weight: the linear initialization (dashed, "
                   "iteration 0) and the codebook after 20 iterations (solid).",
                   [Panel("hist", "", {"values": w, "marks": list(book), "dashed": list(init), "xlabel": "weight"})],
                   {"levels": 4})  # fmt: skip


@builds("codebook_assign", "codebook_decode")
def _codebook(e):
    book = np.asarray([-1.0, -0.25, 0.5, 1.5], F)
    mids = [(float(a) + float(b)) / 2 for a, b in zip(book[:-1], book[1:], strict=True)]
    if e.name == "codebook_assign":
        s = _transfer(lambda x: ref.codebook_assign(x, book), -1.8, 2.2, mids)
        return _line_picture("`codebook_assign` to the codebook [-1, -0.25, 0.5, 1.5]: the index of the nearest "
                             "entry; at a midpoint (dots) the lower index wins.", [s], ylabel="index")  # fmt: skip
    s = _transfer(lambda x: ref.codebook_decode(ref.codebook_assign(x, book), book), -1.8, 2.2, mids)
    return _line_picture("`codebook_decode(codebook_assign(x))` with the codebook [-1, -0.25, 0.5, 1.5]: every "
                         "weight becomes its entry; at a midpoint (dots) the lower entry wins.", [s], equal=True)  # fmt: skip


@builds("nf4_quantize", "nf4_dequantize")
def _nf4(e):
    codes = np.arange(16, dtype=np.uint8)
    levels = ref.nf4_dequantize(codes, np.asarray([1.0], F), block_size=16)
    row = {"values": levels, "labels": [str(c) for c in codes], "name": "NF4 values (absmax 1)"}
    x = _two_scales(128, 64, 3)
    c, absmax = ref.nf4_quantize(x, block_size=64)
    y = ref.nf4_dequantize(c, absmax, block_size=64)
    blocks = _blocks_picture(e, x, y, 64, "")
    return Picture(f"`{e.name}`. Top: the 16 NF4 values (quantiles of a normal distribution, exactly 0 at code 7) "
                   "with their codes. Bottom: 128 weights in two blocks of 64; each block is scaled by its absmax, so "
                   "the levels follow the block.",
                   [Panel("levels", "NF4 codes", {"rows": [row], "xlabel": "value"}), *blocks.panels],
                   {"levels": 16, "blocks": 2}, ("levels", "blocks"))  # fmt: skip


@builds("nf4_double_quantize", "nf4_double_dequantize")
def _nf4_double(e):
    absmax = np.abs(np.random.default_rng(4).standard_normal(512)).astype(F) + F(0.5)
    q, s, off = ref.nf4_double_quantize(absmax, block_size=256)
    y = ref.nf4_double_dequantize(q, s, off, block_size=256)
    return _blocks_picture(e, absmax, y, 256, f"`{e.name}`: 512 block absmax values in two blocks of 256, minus "
                           "their mean, as symmetric int8 per block; the decoded values (bars) sit on each block's "
                           "256 levels.")  # fmt: skip


# ---- observers ---------------------------------------------------------------------------------------------


def _batches():
    rng = np.random.default_rng(5)
    return [rng.standard_normal(64).astype(F) * F(1 + 0.5 * math.sin(i / 3)) for i in range(30)]


@builds("minmax_observer", "ema_minmax_observer")
def _observer(e):
    state, mins, maxs, bmin, bmax = None, [], [], [], []
    for b in _batches():
        state = ref.minmax_observer(b, state) if e.name == "minmax_observer" else \
            ref.ema_minmax_observer(b, state, averaging_constant=0.2)  # fmt: skip
        mins.append(float(state[0]))
        maxs.append(float(state[1]))
        bmin.append(float(b.min()))
        bmax.append(float(b.max()))
    t = np.arange(len(mins))
    series = [{"x": t, "y": bmin, "marker": ".", "ls": "none", "color": "#9e9e9e", "label": "batch min / max"},
              {"x": t, "y": bmax, "marker": ".", "ls": "none", "color": "#9e9e9e"},
              {"x": t, "y": mins, "label": "observed min"}, {"x": t, "y": maxs, "label": "observed max"}]  # fmt: skip
    how = "the running extremes" if e.name == "minmax_observer" else "moving averages (c = 0.2) of the batch extremes"
    return _line_picture(f"`{e.name}` over 30 batches: the state is {how}, passed in and returned.", series,
                         xlabel="batch", ylabel="value", needs=())  # fmt: skip


@builds("percentile_amax", "mse_amax")
def _calibration(e):
    x = np.random.default_rng(6).laplace(size=20000).astype(F)
    marks = {f"p{p}": float(ref.percentile_amax(x, p)) for p in (99.0, 99.9)}
    marks["mse, 4 bits"] = float(ref.mse_amax(x, bits=4))
    marks["max"] = float(np.abs(x).max())
    return Picture(f"`{e.name}` on 20,000 Laplace samples: the clipping ranges that percentile and MSE calibration "
                   "choose for |x|, against the maximum.",
                   [Panel("hist", "", {"values": np.abs(x), "named": marks, "xlabel": "|x|", "log": True})], {})  # fmt: skip


# ---- packing and checkpoint codecs -------------------------------------------------------------------------


def _bits_panel(title, words, width, owner, labels):
    """`words`: unsigned ints of `width` bits; `owner[w][b]`: index of the code that bit b of word w holds."""
    return Panel("bits", title, {"words": [int(w) for w in words], "width": width, "owner": owner, "labels": labels})


@builds("pack_bits", "unpack_bits")
def _pack_bits(e):
    codes = np.asarray([5, 3, 7, 1, 6], np.uint8)
    packed = ref.pack_bits(codes, 3)
    owner = [[(8 * i + b) // 3 if 8 * i + b < 15 else -1 for b in range(8)] for i in range(packed.size)]
    return Picture(f"`{e.name}`: the 3-bit codes [5, 3, 7, 1, 6] in {packed.size} bytes, code 0 in the lowest bits "
                   "of byte 0 (bit 0 at the right); colours tell the codes apart, a code can straddle two bytes.",
                   [_bits_panel("", packed, 8, owner, [f"code {i} = {c}" for i, c in enumerate(codes)])], {"codes": 5})  # fmt: skip


@builds("pack_nibbles", "unpack_nibbles")
def _nibbles(e):
    codes = np.asarray([1, 2, 3, 4], np.uint8)
    panels = []
    for order in ("low_first", "high_first"):
        packed = ref.pack_nibbles(codes, order=order)
        first_low = order == "low_first"
        owner = [[2 * i + ((b >= 4) == first_low) for b in range(8)] for i in range(packed.size)]
        panels.append(
            _bits_panel(f"order='{order}'", packed, 8, owner, [f"code {i} = {c}" for i, c in enumerate(codes)])
        )
    return Picture(f"`{e.name}`: the codes [1, 2, 3, 4] two per byte, low-first (ONNX, MX) and high-first "
                   "(bitsandbytes, torchao NF4).", panels, {"codes": 4})  # fmt: skip


@builds("gptq_pack", "gptq_unpack")
def _gptq_pack(e):
    codes = (np.arange(8 * 8).reshape(8, 8) % 16).astype(np.uint8)
    scales = np.ones((8, 1), np.float16)
    zeros = np.full((8, 1), 8, np.int32)
    qw = ref.gptq_pack(codes, scales, zeros, np.zeros(8, np.int32), bits=4, zero_format="v2")[0]
    owner = [[b // 4 for b in range(32)]]
    return Picture(f"`{e.name}`, 4 bits: word (0, 0) of qweight holds the codes of input rows 0 to 7 of output "
                   "column 0, row 0 in the lowest bits (qweight is (in_features / 8, out_features)).",
                   [_bits_panel("qweight[0, 0]", [int(qw[0, 0]) & 0xFFFFFFFF], 32, owner,
                                [f"q[0, {k}] = {codes[0, k]}" for k in range(8)])], {"codes": 8})  # fmt: skip


@builds("awq_pack", "awq_unpack")
def _awq_pack(e):
    codes = np.tile(np.arange(8, dtype=np.uint8)[:, None], (1, 8))  # (out_features, in_features): code = output
    scales = np.ones((8, 1), np.float16)
    zeros = np.full((8, 1), 8, np.int32)
    qw = int(np.asarray(ref.awq_pack(codes, scales, zeros)[0]).ravel()[0]) & 0xFFFFFFFF
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    owner = [[order[b // 4] for b in range(32)]]
    return Picture(f"`{e.name}`: one int32 word of qweight holds the 4-bit codes of eight consecutive output "
                   "columns (here each code is its column's index) in AWQ's order 0, 2, 4, 6, 1, 3, 5, 7 from the "
                   "lowest bits up.",
                   [_bits_panel("qweight[0, 0]", [qw], 32, owner, [f"column {k}" for k in range(8)])], {"codes": 8})  # fmt: skip


def _golden_case(name):
    from spec.registry import REGISTRY

    return REGISTRY[name].golden[0].case


@builds("pack_quantized", "unpack_quantized")
def _pack_quantized(e):
    q = np.asarray([[-8, -7, 0, 7, 1, 2, 3, 4]], np.int8)
    w = ref.pack_quantized(q, bits=4, packed_dim=1)
    owner = [[b // 4 for b in range(32)]]
    return Picture(f"`{e.name}`, 4 bits: the signed codes [-8, -7, 0, 7, 1, 2, 3, 4] offset by 8 and packed into "
                   "one int32 word, code 0 in the lowest bits.",
                   [_bits_panel("", [int(w.ravel()[0]) & 0xFFFFFFFF], 32, owner,
                                [f"q[{k}] = {q[0, k]}" for k in range(8)])], {"codes": 8})  # fmt: skip


def _heat_picture(caption, mats, titles, facts=None):
    """Matrices side by side: small ones with every value written in its cell, larger ones as heat maps."""
    panels = []
    for m, t in zip(mats, titles, strict=True):
        m = np.asarray(m, dtype=np.float64)
        if m.ndim == 2 and m.shape[0] <= 8 and m.shape[1] <= 10:
            panels.append(Panel("grid", t, {"values": m, "mask": None, "ties": None, "groups": None}))
        else:
            panels.append(Panel("heat", t, {"m": m}))
    return Picture(caption, panels, facts or {})


@builds("gptq_decode", "awq_decode")
def _decode(e):
    case = _golden_case(e.name)
    w = np.asarray(e.reference()(*case.args, **case.kwargs))
    return _heat_picture(f"`{e.name}` of its golden checkpoint: the float32 weight scales * (q - z), exactly.",
                         [w], ["decoded weight"])  # fmt: skip


@builds("gguf_quantize", "gguf_dequantize")
def _gguf(e):
    x = _two_scales(64, 32, 8)
    y = ref.gguf_dequantize(ref.gguf_quantize(x, "Q4_0"), "Q4_0")
    return _blocks_picture(e, x, y, 32, f"`{e.name}` as Q4_0 (blocks of 32, one float16 scale each, 16 levels): "
                           "llama.cpp's reference quantizer, and back.")  # fmt: skip


# ---- masks -------------------------------------------------------------------------------------------------

_WM = np.asarray(
    [
        [0.5, -2.0, 1.0, 0.25, -1.5, 3.0, -0.5, 1.0],
        [-1.0, 0.75, -3.0, 1.0, 0.5, -0.25, 2.0, -1.0],
        [2.5, -0.5, 1.0, -1.75, 0.25, 1.0, -2.0, 0.5],
        [-0.75, 1.25, -1.0, 0.5, 2.0, -1.0, 0.75, -2.5],
    ],
    F,
)


def _mask_picture(e, w, mask, caption, score=None, groups=None, ties=None, title_after="mask"):
    """Before (w) and after (kept values, pruned cells grey); ties at the cut outlined in red."""
    score = np.abs(w) if score is None else np.asarray(score)
    mask = np.asarray(mask, bool)
    if ties is None:
        kept, pruned = score[mask], score[~mask]
        ties = np.zeros(mask.shape, bool)
        if kept.size and pruned.size:
            cut_hi, cut_lo = kept.min(), pruned.max()
            if cut_hi == cut_lo:
                ties = score == cut_hi
    before = Panel("grid", "w", {"values": w, "mask": None, "ties": ties, "groups": groups})
    after = Panel(
        "grid", title_after, {"values": np.where(mask, w, F(0)), "mask": mask, "ties": ties, "groups": groups}
    )
    facts = {"kept": int(mask.sum()), "pruned": int((~mask).sum()), "ties": int(ties.sum()),
             "groups": 0 if groups is None else len(groups)}  # fmt: skip
    return Picture(caption, [before, after], facts, ("ties",))


@builds("magnitude_mask")
def _magnitude(e):
    m = ref.magnitude_mask(_WM, 0.5)
    return _mask_picture(e, _WM, m, "`magnitude_mask(w, 0.5)` on a 4 x 8 weight: the 16 smallest |w| are pruned "
                         "(grey, +0.0). The weights with |w| = 1 straddle the cut (red): the lower flat indices "
                         "(row-major) are kept.")  # fmt: skip


@builds("magnitude_mask_by_count", "keep_largest", "score_mask", "prune_total_mask", "prune_remaining_mask",
        "imp_mask")  # fmt: skip
def _by_count(e):
    if e.name == "keep_largest":
        m = ref.keep_largest(np.abs(_WM), 13)
        cap = "`keep_largest(|w|, 13)`: a mask of the 13 largest scores; among equal scores at the cut (red) the " \
              "lower flat indices win."  # fmt: skip
    elif e.name == "score_mask":
        m = ref.score_mask(np.abs(_WM), 0.6)
        cap = "`score_mask(|w|, 0.6)`: any score ranked as magnitude pruning ranks |w|; ties at the cut (red) go " \
              "to the lower flat index."  # fmt: skip
    elif e.name == "magnitude_mask_by_count":
        m = ref.magnitude_mask_by_count(_WM, 19)
        cap = "`magnitude_mask_by_count(w, 19)`: exactly 19 smallest |w| are pruned; ties at the cut (red) are " \
              "kept from the lower flat index on."  # fmt: skip
    else:
        prev = ref.magnitude_mask(_WM, 0.25)
        f = 0.3 if e.name == "prune_total_mask" else 0.5
        m = e.reference()(_WM, prev, f)
        what = {"prune_total_mask": f"a fraction {f} of all 32 weights", "prune_remaining_mask":
                f"a fraction {f} of the 24 still kept", "imp_mask": f"a fraction {f} of the 24 surviving weights"}[e.name]  # fmt: skip
        cap = f"`{e.name}` after a first round at sparsity 0.25 (8 pruned): this round prunes {what}, by |w|, " \
              f"leaving {int(m.sum())}; ties at the cut (red) keep the lower flat index."  # fmt: skip
    return _mask_picture(e, _WM, m, cap)


@builds("magnitude_mask_by_threshold")
def _by_threshold(e):
    m = ref.magnitude_mask_by_threshold(_WM, 1.0)
    ties = np.abs(_WM) == 1.0
    return _mask_picture(e, _WM, m, "`magnitude_mask_by_threshold(w, 1.0)`: only |w| strictly above 1 is kept; the "
                         "weights exactly at the threshold (red) are pruned.", ties=ties)  # fmt: skip


@builds("random_mask")
def _random_mask(e):
    m = ref.random_mask(_WM, 0.5, (0, 0))
    p = _mask_picture(e, _WM, m, "`random_mask(w, 0.5, key=(0, 0))`: exactly rne(0.5 x 32) = 16 weights pruned, "
                      "chosen uniformly by the key, whatever their values.", ties=np.zeros(_WM.shape, bool))  # fmt: skip
    p.needs = ()
    return p


@builds("global_magnitude_masks")
def _global(e):
    ws = [_WM[:2], _WM[2:] * F(0.5)]
    ms = ref.global_magnitude_masks(ws, 0.6)
    w = np.concatenate(ws)
    m = np.concatenate(ms)
    lost = [int((~x).sum()) for x in ms]
    return _mask_picture(e, w, m, "`global_magnitude_masks([w0, w1], 0.6)`: rows 0-1 are one tensor, rows 2-3 "
                         f"another at half the scale; one ranking over both prunes rne(0.6 x 32) = {sum(lost)}, "
                         f"{lost[0]} of w0 and {lost[1]} of the smaller w1. Ties at the cut (red): the lower index "
                         "in the concatenation wins.", groups=[(0, 0, 2, 8), (2, 0, 2, 8)])  # fmt: skip


@builds("apply_mask", "lottery_rewind")
def _apply(e):
    w = _WM.copy()
    mask = ref.magnitude_mask(_WM, 0.5)
    if e.name == "apply_mask":
        w[0, 0], w[1, 5], w[2, 4] = np.inf, np.nan, F(-0.0)
        out = ref.apply_mask(w, mask)
        cap = "`apply_mask(w, mask)` = where(mask, w, +0.0): pruned cells become +0.0, so a pruned -0.25 does not " \
              "become -0.0 and a pruned inf or NaN does not become NaN (as w * mask would)."  # fmt: skip
    else:
        w = w * F(0.5)
        out = ref.lottery_rewind(w, mask)
        cap = "`lottery_rewind(w0, mask)`: the surviving weights are reset to their values w0 at initialization " \
              "(left), the pruned ones to +0.0."  # fmt: skip
    p = _mask_picture(e, w, mask, cap, ties=np.zeros(w.shape, bool))
    p.panels[1].data["values"] = out
    p.needs = ()
    return p


@builds("ln_structured_mask")
def _ln(e):
    m = ref.ln_structured_mask(_WM, 0.5, p=2, axis=0)
    norms = np.sqrt((_WM.astype(np.float64) ** 2).sum(axis=1))
    p = _mask_picture(e, _WM, m, "`ln_structured_mask(w, 0.5, p=2, axis=0)`: rows (output channels) ranked by "
                      "their L2 norm " + ", ".join(f"{v:.3g}" for v in norms) + "; the half with the smallest norm "
                      "is pruned whole.", ties=np.zeros(_WM.shape, bool), groups=[(r, 0, 1, 8) for r in range(4)])  # fmt: skip
    p.needs = ("groups",)
    return p


@builds("nm_mask")
def _nm(e):
    w = np.concatenate([_WM, _WM[:, ::-1] * F(0.5)], axis=1)
    m = ref.nm_mask(w, 2, 4)
    groups = [(r, c, 1, 4) for r in range(w.shape[0]) for c in range(0, w.shape[1], 4)]
    ties = np.zeros(w.shape, bool)
    for r, c, _, _ in groups:
        g, mg = np.abs(w[r, c : c + 4]), m[r, c : c + 4]
        if g[mg].min() == g[~mg].max():
            ties[r, c : c + 4] = g == g[mg].min()
    p = _mask_picture(e, w, m, "`nm_mask(w, 2, 4)`, 2:4 sparsity along the last axis: in every group of 4 "
                      "consecutive weights (outlined) the 2 largest |w| are kept. Red: equal magnitudes at a "
                      "group's cut; the lower index wins.", groups=groups, ties=ties)  # fmt: skip
    p.needs = ("groups", "ties")
    return p


@builds("block_mask", "block_scores")
def _block(e):
    w = np.concatenate([_WM, _WM[::-1] * F(0.75)], axis=0)
    m = ref.block_mask(w, 0.5, (2, 2))
    groups = [(r, c, 2, 2) for r in range(0, 8, 2) for c in range(0, 8, 2)]
    s = ref.block_scores(w, (2, 2))
    p = _mask_picture(e, w, m, "`block_mask(w, 0.5, (2, 2))`: every 2 x 2 tile (outlined) is scored by its L2 norm "
                      "(`block_scores`: " + ", ".join(f"{v:.3g}" for v in s.ravel()[:4]) + ", ...); the half of the "
                      "tiles with the smallest norm is pruned whole.", groups=groups, ties=np.zeros(w.shape, bool))  # fmt: skip
    p.needs = ("groups",)
    return p


@builds("wanda_mask", "wanda_scores")
def _wanda(e):
    x = np.random.default_rng(9).standard_normal((16, 8)).astype(F) * np.asarray([3, 1, 1, 0.2, 1, 2, 0.5, 1], F)
    s = ref.wanda_scores(_WM, x)
    m = ref.wanda_mask(_WM, x, 0.5)
    p = _mask_picture(e, _WM, m, "`wanda_mask(w, x, 0.5)`: each weight is scored |w_ij| ||x_j|| with the input "
                      "feature norms of 16 calibration rows, and half of every output row (outlined) is pruned. A "
                      "large weight on a quiet feature (column 3) goes; a small one on a loud feature stays.",
                      score=s, groups=[(r, 0, 1, 8) for r in range(4)])  # fmt: skip
    p.needs = ("groups",)
    return p


@builds("taylor_mask", "taylor_scores", "fpgm_mask", "fpgm_scores")
def _channel(e):
    g = np.random.default_rng(10).standard_normal(_WM.shape).astype(F)
    if e.name.startswith("taylor"):
        m = ref.taylor_mask(_WM, g, 0.5, axis=0)
        s = ref.taylor_scores(_WM, g, axis=0)
        cap = "`taylor_mask(w, g, 0.5, axis=0)`: rows scored by (sum of w g)^2 (`taylor_scores`: " + \
              ", ".join(f"{v:.3g}" for v in s) + "); the half with the smallest score is pruned whole."  # fmt: skip
    else:
        m = ref.fpgm_mask(_WM, 0.5, axis=0)
        s = ref.fpgm_scores(_WM, axis=0)
        cap = "`fpgm_mask(w, 0.5, axis=0)`: each row (filter) is scored by its summed distance to all rows (" + \
              ", ".join(f"{v:.3g}" for v in s) + "); the rows nearest the geometric median are pruned."  # fmt: skip
    p = _mask_picture(e, _WM, np.broadcast_to(np.asarray(m).reshape(-1, 1) if np.asarray(m).ndim == 1 else m,
                                              _WM.shape), cap, ties=np.zeros(_WM.shape, bool),
                      groups=[(r, 0, 1, 8) for r in range(4)])  # fmt: skip
    p.needs = ("groups",)
    return p


@builds("slimming_masks", "group_masks")
def _slimming(e):
    gammas = [np.asarray(v, F) for v in ([0.9, 0.1, 0.5, 0.05], [0.3, 0.3, 0.02, 0.7, 0.2], [0.04, 0.03, 0.01])]
    masks = ref.slimming_masks(gammas, 0.5) if e.name == "slimming_masks" else ref.group_masks(gammas, 0.5)
    bars = [
        {"layer": i, "values": np.abs(g), "kept": np.asarray(m, bool)}
        for i, (g, m) in enumerate(zip(gammas, masks, strict=True))
    ]
    what = "|gamma| of three batch-norm layers" if e.name == "slimming_masks" else "scores of three channel groups"
    p = Picture(f"`{e.name}(..., 0.5)`: the {what} ranked together, one global threshold prunes half of the 12 "
                "channels (grey), but every layer keeps at least one (the third would lose all).",
                [Panel("bars", "", {"groups": bars, "ylabel": "score"})],
                {"kept": int(sum(m.sum() for m in masks))})  # fmt: skip
    return p


@builds("group_scores")
def _group_scores(e):
    v = [np.asarray([3.0, -4.0, 1.0, 1.0], F), np.asarray([2.0, 0.5], F)]
    u = [np.asarray([0, 0, 1, 1], np.int64), np.asarray([0, 1], np.int64)]
    s = ref.group_scores(v, u, 2)
    bars = [{"layer": 0, "values": np.asarray(s), "kept": np.ones(2, bool)}]
    return Picture("`group_scores`: unit 0 owns row [3, -4] of one member and 2 of another, unit 1 owns [1, 1] and "
                   f"0.5: the mean over the member slices of their l2 norms gives {[float(t) for t in s]}.",
                   [Panel("bars", "", {"groups": bars, "ylabel": "score"})], {})  # fmt: skip


# ---- saliency scores, regularization ----------------------------------------------------------------------


@builds("movement_scores", "snip_scores")
def _scores(e):
    g = np.random.default_rng(11).standard_normal(_WM.shape).astype(F)
    if e.name == "movement_scores":
        s = ref.movement_scores(np.zeros_like(_WM), _WM, g)
        cap = "`movement_scores(0, w, g)`: one step of -w g: weights moving away from zero (w and the descent " \
              "direction -g agree in sign) gain score, whatever their size."  # fmt: skip
    else:
        s = ref.snip_scores(_WM, g)
        cap = "`snip_scores(w, g)` = |w g|: the connection sensitivity of each weight, ranked by `score_mask`."
    return _heat_picture(cap, [_WM, g, s], ["w", "g", "score"])


@builds("l1_penalty", "l1_subgradient", "l1_proximal", "slimming_penalty_grad")
def _l1(e):
    if e.name == "l1_proximal":
        s = _transfer(lambda w: ref.l1_proximal(w, 1.0, 0.5), -2.0, 2.0, [0.5, -0.5])
        return _line_picture("`l1_proximal(w, lr=1, lam=0.5)`: soft thresholding sign(w) max(|w| - 0.5, 0); "
                             "everything in [-0.5, 0.5] becomes 0.", [s], xlabel="w", needs=(), equal=True)  # fmt: skip
    if e.name == "l1_penalty":
        xs = _grid(-2.0, 2.0, 401)
        ys = [float(ref.l1_penalty(np.asarray([x, F(1.0)]), 0.5)) for x in xs]
        return _line_picture("`l1_penalty([w, 1], 0.5)` = 0.5 (|w| + 1) as w moves: the kink at 0 is what drives "
                             "weights to exactly zero.", [{"x": xs, "y": ys}], xlabel="w", ylabel="penalty",
                             needs=())  # fmt: skip
    if e.name == "l1_subgradient":
        s = _transfer(lambda w: ref.l1_subgradient(w, 0.5), -2.0, 2.0, [0.0])
        return _line_picture("`l1_subgradient(w, 0.5)` = 0.5 sign(w), with sign(0) = 0 (dot).", [s], xlabel="w",
                             ylabel="subgradient")  # fmt: skip
    s = _transfer(lambda g: ref.slimming_penalty_grad([np.zeros_like(g)], [g], 0.5)[0], -2.0, 2.0, [0.0])
    return _line_picture("`slimming_penalty_grad` with zero gradient and lam = 0.5: the term added is lam sign(gamma), "
                         "0 at gamma = 0 (dot).", [s], xlabel="gamma", ylabel="added gradient")  # fmt: skip


@builds("group_lasso_penalty", "group_lasso_proximal")
def _group_lasso(e):
    out = ref.group_lasso_proximal(_WM, 1.0, 1.5, axis=0)
    norms = np.sqrt((_WM.astype(np.float64) ** 2).sum(axis=1))
    pen = float(ref.group_lasso_penalty(_WM, 1.5, axis=0))
    p = _heat_picture(f"`{e.name}` with lam = 1.5 over the rows (axis 0): the penalty is lam sum ||w_g|| = {pen:.4g} "
                      f"(row norms {', '.join(f'{v:.3g}' for v in norms)}); the proximal step shrinks each row "
                      "toward 0 by lr lam in norm, a row with a norm below that becomes 0 whole.",
                      [_WM, out], ["w", "group_lasso_proximal(w, 1, 1.5)"])  # fmt: skip
    return p


# ---- schedules ---------------------------------------------------------------------------------------------


@builds("agp_sparsity", "linear_sparsity", "cosine_sparsity", "exponential_sparsity")
def _schedules(e):
    ts = np.arange(0, 121)
    series = []
    for name in ("agp_sparsity", "linear_sparsity", "cosine_sparsity", "exponential_sparsity"):
        fn = getattr(ref, name)
        ys = [fn(int(t), s_i=0.0, s_f=0.9, t0=10, n=10, dt=10) for t in ts]
        series.append({"x": ts, "y": ys, "label": name, "lw": 2.5 if name == e.name else 1.0,
                       "drawstyle": "steps-post"})  # fmt: skip
    p = _line_picture(f"`{e.name}` (thick) and the other schedules, from 0 to 0.9 sparsity in n = 10 updates every "
                      "dt = 10 steps from t0 = 10: the sparsity changes only at update steps.", series,
                      xlabel="step t", ylabel="sparsity", needs=("steps",))  # fmt: skip
    p.facts["levels"] = _distinct(series[0]["y"])
    return p


@builds("iterative_sparsities", "imp_schedule")
def _iterative(e):
    rounds = np.arange(1, 9)
    if e.name == "iterative_sparsities":
        series = [{"x": rounds, "y": ref.iterative_sparsities(0.1, 8, mode=m), "label": f"mode='{m}'", "marker": "o"}
                  for m in ("remaining", "total")]  # fmt: skip
        cap = "`iterative_sparsities(0.1, 8)`: the sparsity after each round when each round prunes 10% of the " \
              "remaining weights (geometric) or 10% of all weights (linear)."  # fmt: skip
    else:
        series = [{"x": np.arange(0, 9), "y": ref.imp_schedule(1000, 0.2, 8), "marker": "o"}]
        cap = "`imp_schedule(1000, 0.2, 8)`: survivors after each round, m <- m - rne(0.2 m)."
    p = _line_picture(cap, series, xlabel="round", ylabel="sparsity" if e.name == "iterative_sparsities" else
                      "survivors", needs=("steps",))  # fmt: skip
    return p


@builds("pruned_count")
def _pruned_count(e):
    s = np.arange(0, 1.0001, 0.0005)
    ys = [ref.pruned_count(float(v), 5) for v in s]
    ties = [k / 10 for k in (1, 3, 5, 7, 9)]
    series = [{"x": s, "y": ys, "tx": ties, "ty": [ref.pruned_count(t, 5) for t in ties]}]
    return _line_picture("`pruned_count(s, 5)` = rne(5 s): at the ties 5 s = k + 0.5 (dots) the count rounds to "
                         "even, so 0.5 of 5 prunes 2 and 0.7 of 5 prunes 4.", series, xlabel="sparsity s",
                         ylabel="pruned of 5")  # fmt: skip


# ---- sparse formats ----------------------------------------------------------------------------------------


@builds("to_bitmask", "from_bitmask", "to_csr", "from_csr")
def _formats(e):
    w = _WM[:2].copy()
    m = ref.magnitude_mask(w, 0.5)
    if "bitmask" in e.name:
        bits, values = ref.to_bitmask(w, m)
        owner = [[8 * i + b for b in range(8)] for i in range(bits.size)]
        return Picture(f"`{e.name}`: the mask of a 2 x 8 weight (kept cells coloured) as bits, element 0 in the low "
                       f"bit of byte 0, and the {values.size} kept values in flat order.",
                       [_mask_picture(e, w, m, "").panels[1],
                        _bits_panel("mask bits", bits, 8, owner, []),
                        Panel("text", "values", {"lines": [str([float(v) for v in values])]})], {})  # fmt: skip
    indptr, indices, values = ref.to_csr(w, m)
    return Picture(f"`{e.name}`: the kept entries of a 2 x 8 weight in compressed sparse rows.",
                   [_mask_picture(e, w, m, "").panels[1],
                    Panel("text", "CSR", {"lines": [f"indptr  = {indptr.tolist()}", f"indices = {indices.tolist()}",
                                                     f"values  = {[float(v) for v in values]}"]})], {})  # fmt: skip


@builds("dense_bytes", "bitmask_bytes", "csr_bytes", "quantized_bytes")
def _bytes(e):
    shape = (4096, 4096)
    n = shape[0] * shape[1]
    dens = np.linspace(0.0, 1.0, 41)
    series = [
        {"x": dens, "y": [ref.dense_bytes(shape, 16) / 2**20] * dens.size, "label": "dense, 16 bits"},
        {"x": dens, "y": [ref.bitmask_bytes(shape, int(d * n), 16) / 2**20 for d in dens], "label": "bitmask"},
        {"x": dens, "y": [ref.csr_bytes(shape, int(d * n), 16, 32) / 2**20 for d in dens], "label": "CSR, int32"},
        {
            "x": dens,
            "y": [ref.quantized_bytes(shape, 4, groups=n // 128, scale_bits=16) / 2**20] * dens.size,
            "label": "dense int4, g128",
        },  # fmt: skip
    ]
    return _line_picture(f"`{e.name}` and the other counters for a 4096 x 4096 weight of 16-bit values: the bytes "
                         "of each encoding against the fraction kept.", series, xlabel="density (kept fraction)",
                         ylabel="MiB", needs=())  # fmt: skip


# ---- exact primitives, linear algebra, random ---------------------------------------------------------------


@builds("tree_sum", "tree_mean")
def _tree(e):
    x = np.asarray([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], F)
    total = ref.tree_sum(x)
    return Picture(f"`{e.name}` of 6 values: zero-padded to 8, then a[:h] + a[h:] in float64 until one value is "
                   f"left (= {float(total)!r}); the shape of the tree depends only on the length.",
                   [Panel("tree", "", {"x": x})], {})  # fmt: skip


@builds("lp_norm")
def _lp(e):
    t = np.linspace(0, 2 * np.pi, 721)
    series = []
    for p in (1, 2):
        pts = np.stack([np.cos(t), np.sin(t)], axis=1).astype(F)
        r = ref.lp_norm(pts, p=p, axis=1).astype(np.float64)
        series.append({"x": pts[:, 0] / r, "y": pts[:, 1] / r, "label": f"p = {p}"})
    return _line_picture("The unit balls of `lp_norm`: every direction scaled to norm 1 with p = 1 (a diamond) and "
                         "p = 2 (a circle).", series, xlabel="x0", ylabel="x1", needs=(), equal=True)  # fmt: skip


@builds("exact_sum", "exact_sum_state", "exact_sum_combine", "exact_sum_round", "exact_dot")
def _exact(e):
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.standard_normal(200) * 1e8, rng.standard_normal(200)])
    x = np.concatenate([x, -x[:200]])
    naive, exact = [], []
    for _ in range(40):
        p = rng.permutation(x.size)
        naive.append(float(np.cumsum(x[p])[-1]))
        shards = np.array_split(x[p], 4)
        st = ref.exact_sum_combine([ref.exact_sum_state(s) for s in shards])
        exact.append(float(ref.exact_sum_round(st)))
    truth = float(ref.exact_sum(x))
    series = [{"x": np.arange(40), "y": naive, "marker": "o", "ls": "none", "label": "float64 left-to-right sum"},
              {"x": np.arange(40), "y": exact, "marker": "x", "ls": "none",
               "label": "exact_sum_round(exact_sum_combine(states of 4 shards))"}]  # fmt: skip
    return _line_picture(f"`{e.name}`: 600 float64 values (large ones cancelling) summed in 40 random orders. A "
                         "left-to-right sum gives a different result per order; the exact sum, through states of 4 "
                         f"shards, gives {truth!r} every time.", series, xlabel="order", ylabel="sum", needs=())  # fmt: skip


@builds("exact_matmul", "exact_gram", "gptq_hessian")
def _gram(e):
    x = np.random.default_rng(13).standard_normal((12, 6))
    if e.name == "exact_matmul":
        b = np.random.default_rng(14).standard_normal((6, 6))
        return _heat_picture("`exact_matmul(a, b)`: every entry the exact dot product of a row and a column, "
                             "rounded once.", [x, b, ref.exact_matmul(x, b)], ["a", "b", "a b"])  # fmt: skip
    if e.name == "exact_gram":
        g = ref.exact_gram(x)
        return _heat_picture("`exact_gram(x)` = x^T x, each entry an exact dot product rounded once: exactly "
                             "symmetric.", [x, g], ["x (12 x 6)", "x^T x"])  # fmt: skip
    h = ref.gptq_hessian(x.astype(F))
    return _heat_picture("`gptq_hessian(x)` = fl64(2 exact_gram(x) / n) of 12 calibration rows of 6 inputs.",
                         [x, h], ["x", "H"])  # fmt: skip


def _spd(n=6, seed=15):
    a = np.random.default_rng(seed).standard_normal((2 * n, n))
    return ref.exact_gram(a) / (2 * n) + np.eye(n) * 0.1


@builds("cholesky", "triangular_solve", "cholesky_inverse", "gptq_factor", "gptq_damp")
def _chol(e):
    h = _spd()
    lo = ref.cholesky(h)
    if e.name == "cholesky":
        return _heat_picture("`cholesky(h)`: the lower factor l with l l^T = h.", [h, lo], ["h", "l"])
    if e.name == "triangular_solve":
        b = np.eye(6)
        return _heat_picture("`triangular_solve(l, I)`: column by column forward substitution gives l^-1, lower "
                             "triangular.", [lo, ref.triangular_solve(lo, b)], ["l", "l^-1"])  # fmt: skip
    if e.name == "cholesky_inverse":
        return _heat_picture("`cholesky_inverse(l)` = (l l^T)^-1, exactly symmetric.", [lo, ref.cholesky_inverse(lo)],
                             ["l", "h^-1"])  # fmt: skip
    if e.name == "gptq_factor":
        return _heat_picture("`gptq_factor(h)`: U, upper triangular with U^T U = h^-1.", [h, ref.gptq_factor(h)],
                             ["H", "U"])  # fmt: skip
    h2 = h.copy()
    h2[2, :] = 0
    h2[:, 2] = 0
    return _heat_picture("`gptq_damp(h, 0.1)`: the dead input 2 (H_22 = 0) gets H_22 = 1, then 0.1 times the mean "
                         "of the diagonal is added to it.", [h2, ref.gptq_damp(h2, 0.1)[0]], ["H", "damped H"])  # fmt: skip


@builds("gptq_order")
def _order(e):
    d = np.asarray([1.0, 3.0, 3.0, 2.0, 0.5, 3.0])
    order = ref.gptq_order(np.diag(d))
    bars = [
        {
            "layer": 0,
            "values": d,
            "kept": np.ones(d.size, bool),
            "labels": [f"#{list(order).index(i)}" for i in range(d.size)],
        }
    ]
    return Picture(f"`gptq_order`: columns by decreasing Hessian diagonal; the three equal diagonals (3) keep their "
                   f"index order: {list(map(int, order))}. Labels: each column's position.",
                   [Panel("bars", "", {"groups": bars, "ylabel": "H_jj"})], {})  # fmt: skip


@builds("gptq", "sparsegpt")
def _gptq(e):
    rng = np.random.default_rng(16)
    w = rng.standard_normal((8, 16)).astype(F)
    x = rng.standard_normal((64, 16)).astype(F)
    h = ref.gptq_hessian(x)
    if e.name == "gptq":
        q = ref.gptq(w, h, bits=3).weight
        return _heat_picture("`gptq(w, h, bits=3)`: each column is quantized in turn and its error pushed onto the "
                             "columns not yet quantized through the inverse Hessian.", [w, q, q - w],
                             ["w", "GPTQ w", "difference"])  # fmt: skip
    res = ref.sparsegpt(w, h, n=2, m=4)
    q, m = res.weight, res.mask
    groups = [(r, c, 1, 4) for r in range(8) for c in range(0, 16, 4)]
    return Picture("`sparsegpt(w, h, n=2, m=4)`: 2:4 groups (outlined) pruned one column block at a time, the "
                   "kept weights updated to compensate.",
                   [Panel("grid", "w", {"values": w, "mask": None, "ties": np.zeros(w.shape, bool), "groups": groups,
                                         "plain": True}),
                    Panel("grid", "SparseGPT w", {"values": q, "mask": m, "ties": np.zeros(w.shape, bool),
                                                   "groups": groups, "plain": True})],
                   {"groups": len(groups)}, ("groups",))  # fmt: skip


@builds("hadamard_matrix", "hadamard_transform")
def _hadamard(e):
    if e.name == "hadamard_matrix":
        return _heat_picture("`hadamard_matrix(16)`: +-1 entries, orthogonal rows.",
                             [ref.hadamard_matrix(16)], ["H (16 x 16)"])  # fmt: skip
    x = np.random.default_rng(17).standard_normal((1, 32)).astype(F) * F(0.3)
    x[0, 5] = 8.0
    y = ref.hadamard_transform(x)
    series = [{"x": np.arange(32), "y": x[0], "label": "x (one outlier)", "marker": "o"},
              {"x": np.arange(32), "y": y[0], "label": "hadamard_transform(x)", "marker": "."}]  # fmt: skip
    return _line_picture("`hadamard_transform`: an orthogonal rotation spreads an outlier over all coordinates, so a "
                         "quantizer's range shrinks.", series, xlabel="coordinate", ylabel="value", needs=())  # fmt: skip


@builds("threefry2x32", "random_bits", "uniform", "make_key", "split", "fold_in")
def _random(e):
    if e.name == "make_key":
        keys = np.asarray([ref.make_key(s) for s in range(32)], dtype=np.uint64)
        bits = ((keys[:, :, None] >> np.arange(32, dtype=np.uint64)) & 1).reshape(32, 64)
        return _heat_picture("`make_key(seed)` for seeds 0 to 31: the 64 bits of each key (a row); consecutive seeds "
                             "give unrelated keys.", [bits], ["key bits"])  # fmt: skip
    if e.name in ("split", "fold_in"):
        keys = ref.split((0, 0), 16) if e.name == "split" else [ref.fold_in((0, 0), i) for i in range(16)]
        rows = np.stack([ref.uniform(tuple(int(v) for v in k), (48,)) for k in keys])
        how = "split((0, 0), 16)" if e.name == "split" else "fold_in((0, 0), i), i = 0..15"
        return _heat_picture(f"`{e.name}`: 48 uniform numbers from each of the keys {how} (one row per key): "
                             "independent streams.", [rows], ["uniform(key, (48,))"])  # fmt: skip
    if e.name == "uniform":
        u = ref.uniform((0, 0), (20000,))
        return Picture("`uniform((0, 0), (20000,))`: float32 on the 2^-24 grid in [0, 1), flat.",
                       [Panel("hist", "", {"values": u, "xlabel": "value"})], {})  # fmt: skip
    if e.name == "random_bits":
        b = ref.random_bits((0, 0), (32,))
        bits = (b[:, None].astype(np.uint64) >> np.arange(32, dtype=np.uint64)) & 1
        return _heat_picture("`random_bits((0, 0), (32,))`: 32 words of 32 bits (a row each), a pure function of the "
                             "key and the flat index.", [bits], ["bits"])  # fmt: skip
    ctr = np.arange(32, dtype=np.int64)
    y0, y1 = ref.threefry2x32((0, 0), ctr, np.zeros(32, np.int64))
    words = np.asarray(y0, dtype=np.uint64)
    bits = (words[:, None] >> np.arange(32, dtype=np.uint64)) & 1
    return _heat_picture("`threefry2x32(key, x0, 0)` for the counters x0 = 0..31: the bits of the first output word "
                         "(a row each); consecutive counters give unrelated words.", [bits], ["output bits"])  # fmt: skip


@builds("cr_exp", "cr_log", "cr_pow", "cr_sigmoid", "cr_sqrt")
def _transcendental(e):
    rng = {"cr_exp": (-4.0, 2.0), "cr_log": (0.05, 4.0), "cr_pow": (0.0, 2.0), "cr_sigmoid": (-8.0, 8.0),
           "cr_sqrt": (0.0, 4.0)}[e.name]  # fmt: skip
    fn = (lambda x: ref.cr_pow(x, np.asarray(1.5, F))) if e.name == "cr_pow" else e.reference()
    xs = _grid(*rng, 801)
    ys = fn(xs)
    lib = {"cr_exp": np.exp, "cr_log": np.log, "cr_sigmoid": lambda v: 1 / (1 + np.exp(-v)), "cr_sqrt": np.sqrt,
           "cr_pow": lambda v: np.power(v, F(1.5))}[e.name]  # fmt: skip
    with np.errstate(all="ignore"):
        other = np.asarray(lib(xs), dtype=F)
    differ = int((other.view(np.uint32) != ys.view(np.uint32)).sum())
    what = "x**1.5" if e.name == "cr_pow" else e.name[3:]
    return _line_picture(f"`{e.name}`: {what} on [{rng[0]}, {rng[1]}], each output the float32 nearest the exact value. "
                         f"NumPy's float32 {what} differs from it on {differ} of these {xs.size} inputs.",
                         [{"x": xs, "y": ys}], needs=())  # fmt: skip


# ---- AdaRound, HQQ, AWQ, SmoothQuant -----------------------------------------------------------------------


@builds("rectified_sigmoid")
def _rect_sigmoid(e):
    s = _transfer(ref.rectified_sigmoid, -8.0, 8.0)
    return _line_picture("`rectified_sigmoid(v)` = clip(sigmoid(v) (1.1 + 0.1) - 0.1, 0, 1): AdaRound's soft rounding "
                         "offset, exactly 0 or 1 beyond |v| of about 3.", [s], xlabel="v", ylabel="h(v)", needs=())  # fmt: skip


@builds("adaround_regularizer")
def _ada_reg(e):
    xs = _grid(-6.0, 6.0, 601)
    series = [{"x": xs, "y": [float(ref.adaround_regularizer(np.asarray([v], F), beta=b)) for v in xs],
               "label": f"beta = {b:g}"} for b in (20.0, 8.0, 2.0)]  # fmt: skip
    return _line_picture("`adaround_regularizer` of one weight, 1 - |2 h(v) - 1|^beta: large beta (early) leaves "
                         "h(v) free, small beta (late) pushes every h(v) to 0 or 1.", series, xlabel="v",
                         ylabel="regularizer", needs=())  # fmt: skip


@builds("adaround_beta")
def _ada_beta(e):
    steps = np.arange(0, 1001, 5)
    series = [{"x": steps, "y": [ref.adaround_beta(int(t), 1000) for t in steps]}]
    return _line_picture("`adaround_beta(step, 1000)`: no regularizer during the warm-up (20% of the iterations), "
                         "then beta decays linearly from 20 to 2.", series, xlabel="step", ylabel="beta", needs=())  # fmt: skip


@builds("adaround_init", "adaround_step", "adaround_quantize")
def _adaround(e):
    rng = np.random.default_rng(18)
    w = (rng.standard_normal((4, 8)) * 0.6).astype(F)
    scale = np.full((4, 1), 0.25, F)
    zp = np.zeros((4, 1), np.int32)
    v = ref.adaround_init(w, scale)
    if e.name == "adaround_init":
        h = ref.rectified_sigmoid(v)
        frac = (w / scale - np.floor(w / scale)).astype(F)
        return _heat_picture("`adaround_init(w, s)`: V chosen so that the soft offset h(V) equals the fractional part "
                             "of w / s, so the soft weight starts at w.", [frac, h], ["frac(w / s)", "h(V)"])  # fmt: skip
    if e.name == "adaround_quantize":
        v2 = np.where(rng.random(w.shape) < 0.5, F(3.0), F(-3.0))
        q = ref.adaround_quantize(w, v2, scale, zp, qmin=-8, qmax=7)
        near = ref.quantize(w, scale[:, 0], zp[:, 0], qmin=-8, qmax=7, axis=0)
        return _heat_picture("`adaround_quantize(w, V, s = 0.25, z = 0)`: the codes floor(w / s) + [V >= 0], each "
                             "weight rounded down or up as learned (here V = +-3 at random), against the codes of "
                             "rounding to nearest (right).", [w, q, near], ["w", "AdaRound codes", "nearest codes"])  # fmt: skip
    x = rng.standard_normal((32, 8)).astype(F)
    hess = ref.gptq_hessian(x)
    m, sv = np.zeros_like(w), np.zeros_like(w)
    track = []
    for t in range(40):
        v, m, sv = ref.adaround_step(w, hess, v, m, sv, scale, zp, step=t, qmin=-8, qmax=7, beta=2.0, lam=0.5, lr=0.05)
        track.append(ref.rectified_sigmoid(v)[0])
    track = np.asarray(track)
    series = [{"x": np.arange(1, 41), "y": track[:, j], "label": f"w[0, {j}]" if j < 3 else None} for j in range(8)]
    return _line_picture("`adaround_step`, 40 Adam steps on a 4 x 8 layer (lam = 0.5, beta = 2): the soft offsets "
                         "h(V) of row 0 move toward 0 or 1, each weight choosing to round down or up.", series,
                         xlabel="step", ylabel="h(V)", needs=())  # fmt: skip


@builds("hqq_shrink")
def _hqq_shrink(e):
    series = [
        _transfer(lambda x, p=p: ref.hqq_shrink(x, beta=2.0, p=p), -3.0, 3.0, label=f"p = {p}") for p in (1.0, 0.7, 0.4)
    ]
    return _line_picture("`hqq_shrink(x, beta=2, p)`: sign(x) max(|x| - |x|^(p-1) / beta, 0); p = 1 is soft "
                         "thresholding, smaller p shrinks small values harder and large ones less.", series, needs=())  # fmt: skip


@builds("hqq")
def _hqq(e):
    w = (np.random.default_rng(19).standard_normal((4, 16)) * 0.5).astype(F)
    w[1, 3] = 3.0
    r = ref.hqq(w, bits=2, group_size=16)
    rtn = ref.hqq(w, bits=2, group_size=16, optimize=False)
    out = [np.asarray(getattr(r, "weight", r[0] if isinstance(r, tuple) else r)),
           np.asarray(getattr(rtn, "weight", rtn[0] if isinstance(rtn, tuple) else rtn))]  # fmt: skip
    return _heat_picture("`hqq(w, bits=2, group_size=16)` with an outlier in row 1: the half-quadratic solver moves "
                         "each group's zero point so that most weights fit (middle); min-max alone (right) spends "
                         "the levels on the outlier.", [w, out[0], out[1]], ["w", "HQQ", "min-max (optimize=False)"])  # fmt: skip


@builds("awq_act_scale", "awq_scales", "awq", "smoothquant_scales", "smoothquant")
def _scaling(e):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((64, 8)).astype(F) * np.asarray([0.5, 8, 1, 1, 0.2, 1, 4, 1], F)
    w = (rng.standard_normal((4, 8)) * 0.5).astype(F)
    if e.name.startswith("smoothquant"):
        amax = np.abs(x).max(axis=0).astype(F)
        series = [{"x": np.arange(8), "y": amax, "label": "max |X_j|", "marker": "o"},
                  {"x": np.arange(8), "y": ref.smoothquant_scales(amax, w), "label": "smoothing factor s_j (alpha 0.5)",
                   "marker": "o"}]  # fmt: skip
        return _line_picture(f"`{e.name}`: input channels with large activations (1 and 6) get large factors; X / s "
                             "and W * s keep the product and even out the activation ranges.", series,
                             xlabel="input channel j", ylabel="value", needs=())  # fmt: skip
    act = ref.awq_act_scale(x)
    series = [{"x": np.arange(8), "y": act, "label": "awq_act_scale: mean |x_j|", "marker": "o"}]
    for a in (0.25, 0.5, 1.0):
        series.append(
            {"x": np.arange(8), "y": ref.awq_scales(act, a), "label": f"awq_scales, alpha = {a}", "marker": "."}
        )
    return _line_picture(f"`{e.name}`: AWQ scales input channels by their mean activation to the power alpha (searched "
                         "on a grid), so the salient channels (1 and 6) are quantized with more precision.", series,
                         xlabel="input channel j", ylabel="value", needs=())  # fmt: skip


# ---- the generic picture ------------------------------------------------------------------------------------


def _auto(e):
    """From the first golden: a transfer function for an elementwise float32 function (its input range, every
    golden input marked), else heat maps of its array inputs and outputs."""
    if not e.golden:
        return None
    case = e.golden[0].case
    fn = e.reference()
    args = list(case.args)
    if args and isinstance(args[0], np.ndarray) and args[0].dtype == F and args[0].ndim == 1:
        finite = args[0][np.isfinite(args[0])]
        lo, hi = (float(np.percentile(finite, 5)), float(np.percentile(finite, 95))) if finite.size else (-1, 1)
        span = max(hi - lo, 1.0)
        try:
            s = _transfer(lambda x: fn(x, *args[1:], **case.kwargs), lo - 0.25 * span, hi + 0.25 * span, finite)
            if s["y"].shape == s["x"].shape:
                return _line_picture(f"`{e.name}` with the parameters of its first golden vector; dots: the golden's "
                                     "inputs.", [s], needs=())  # fmt: skip
        except (TypeError, ValueError):
            pass
    mats, titles = [], []
    try:
        out = fn(*args, **case.kwargs)
    except (TypeError, ValueError):
        return None
    for name, a in [*((f"argument {i}", a) for i, a in enumerate(args)), ("output", out)]:
        for k, v in enumerate(a if isinstance(a, tuple | list) else [a]):
            if isinstance(v, np.ndarray) and v.dtype.kind in "fiub" and 0 < v.ndim <= 2 and v.size > 1:
                mats.append(np.atleast_2d(v).astype(np.float64))
                titles.append(name if k == 0 else f"{name}[{k}]")
    if not mats:
        return None
    return _heat_picture(f"`{e.name}` on its first golden vector: inputs and outputs.", mats[:4], titles[:4])


# ---- drawing ------------------------------------------------------------------------------------------------


def render(p: Picture) -> str:
    """The picture as an SVG document (`sitegen.svg`)."""
    from sitegen import svg

    return svg.render(p)
