"""Draw a `pictures.Picture` as one SVG document: plain string building, a few milliseconds per picture, crisp at
any zoom, no plotting library.

Panels are stacked top to bottom in a 760 px wide drawing, except runs of small matrices (`grid`, `heat` of at
most 10 columns), which sit side by side. Every kind of panel the pictures use has a drawer here: `line`,
`levels`, `grid`, `heat`, `bits`, `bars`, `tree`, `hist`, `text`.
"""

from __future__ import annotations

import math

import numpy as np

WIDTH = 760
COLORS = ["#3f51b5", "#e65100", "#2e7d32", "#8e24aa", "#00838f", "#6d4c41", "#c62828", "#f9a825"]
RED = "#c62828"
FONT = 'font-family="Roboto, Helvetica, Arial, sans-serif"'


def esc(s) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def num(v: float) -> str:
    """A coordinate, short."""
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"


def label(v: float) -> str:
    """A tick or cell label: the shortest of a few significant digits, '-0' for negative zero."""
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        m, e = f"{v:.2e}".split("e")
        return f"{m.rstrip('0').rstrip('.')}e{int(e)}"
    return f"{v:.4g}"


class Svg:
    def __init__(self):
        self.parts: list[str] = []

    def add(self, s: str):
        self.parts.append(s)

    def text(self, x, y, s, size=11, anchor="middle", color="#222", weight="normal", baseline="middle", mono=False,
             rotate=None):  # fmt: skip
        fam = 'font-family="Roboto Mono, Consolas, monospace"' if mono else FONT
        rot = f' transform="rotate({rotate} {num(x)} {num(y)})"' if rotate is not None else ""
        self.add(f'<text x="{num(x)}" y="{num(y)}" {fam} font-size="{size}" text-anchor="{anchor}" '
                 f'dominant-baseline="{baseline}" fill="{color}" font-weight="{weight}"{rot}>{esc(s)}</text>')  # fmt: skip

    def line(self, x0, y0, x1, y1, color="#999", width=1.0, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{num(x0)}" y1="{num(y0)}" x2="{num(x1)}" y2="{num(y1)}" stroke="{color}" '
                 f'stroke-width="{width}"{d}/>')  # fmt: skip

    def rect(self, x, y, w, h, fill="none", stroke="none", width=1.0, opacity=None, rx=0):
        o = f' fill-opacity="{opacity}"' if opacity is not None else ""
        self.add(f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" rx="{rx}" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{width}"{o}/>')  # fmt: skip

    def polyline(self, pts, color, width=1.5, dash=None):
        if len(pts) < 2:
            return
        d = f' stroke-dasharray="{dash}"' if dash else ""
        path = " ".join(f"{num(x)},{num(y)}" for x, y in pts)
        self.add(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}" '
                 f'stroke-linejoin="round"{d}/>')  # fmt: skip

    def marker(self, x, y, kind, color, size=3.2, edge=None):
        if kind in (".", "o"):
            r = size * (0.7 if kind == "." else 1.0)
            e = f' stroke="{edge}" stroke-width="0.8"' if edge else ""
            self.add(f'<circle cx="{num(x)}" cy="{num(y)}" r="{r:.1f}" fill="{color}"{e}/>')
        elif kind == "x":
            self.line(x - size, y - size, x + size, y + size, color, 1.3)
            self.line(x - size, y + size, x + size, y - size, color, 1.3)
        elif kind == "_":
            self.line(x - size * 2, y, x + size * 2, y, color, 2.0)


# ---- scales and axes ----------------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out, v = [], start
    while v <= hi + 1e-9 * step:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


class Scale:
    def __init__(self, lo, hi, p0, p1, kind="linear"):
        self.kind = kind
        if kind == "log":
            lo, hi = max(lo, 1e-300), max(hi, 1e-300)
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1
        self.t0, self.t1 = self.t(lo), self.t(hi)

    def t(self, v):
        if self.kind == "log":
            return math.log10(max(v, 1e-300))
        if self.kind == "symlog":
            return math.copysign(math.log10(1 + abs(v) / 0.05), v)
        return v

    def __call__(self, v):
        return self.p0 + (self.t(float(v)) - self.t0) / (self.t1 - self.t0) * (self.p1 - self.p0)

    def ticks(self):
        if self.kind == "log":
            a, b = math.floor(self.t0), math.ceil(self.t1)
            step = max(1, (b - a) // 6)
            return [10.0**k for k in range(a, b + 1, step) if self.lo <= 10.0**k <= self.hi]
        if self.kind == "symlog":
            vals = [0.0] + [s * 2.0**k for k in range(-8, 8) for s in (1, -1)]
            return sorted(v for v in vals if self.lo <= v <= self.hi and (v == 0 or abs(v) >= 0.1))
        return nice_ticks(self.lo, self.hi)


def _bounds(arrays, kind="linear", pad=0.05):
    vals = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays if np.size(a)] or [np.zeros(1)])
    vals = vals[np.isfinite(vals)]
    if kind == "log":
        vals = vals[vals > 0]
    if not vals.size:
        return (0.0, 1.0)
    lo, hi = float(vals.min()), float(vals.max())
    if kind == "log":
        return lo / 1.3, hi * 1.3
    span = hi - lo or max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def tick_labels(ticks, kind="linear") -> list[str]:
    """Labels with as many decimals as the tick step needs (10.2236905, 10.2236910, ...)."""
    if kind != "linear" or len(ticks) < 2:
        return [label(v) for v in ticks]
    step = min(b - a for a, b in zip(ticks, ticks[1:], strict=False))
    d = max(0, -math.floor(math.log10(step) + 1e-9))
    d += 1 if round(step / 10.0**-d, 6) % 1 else 0  # a step of 2.5 needs one more decimal
    if d > 10 or max(abs(v) for v in ticks) >= 1e6:
        return [label(v) for v in ticks]
    return [f"{v:.{d}f}" for v in ticks]


def axes(svg, x0, y0, w, h, sx, sy, xlabel="", ylabel="", grid=True, yticks=True):
    """Frame, ticks, grid and labels of a plot area [x0, x0 + w] x [y0, y0 + h]."""
    xt = sx.ticks()
    for v, text in zip(xt, tick_labels(xt, sx.kind), strict=True):
        x = sx(v)
        if grid:
            svg.line(x, y0, x, y0 + h, "#e6e6e6", 1)
        svg.line(x, y0 + h, x, y0 + h + 4, "#555", 1)
        svg.text(x, y0 + h + 14, text, size=10)
    if yticks:
        yt = sy.ticks()
        for v, text in zip(yt, tick_labels(yt, sy.kind), strict=True):
            y = sy(v)
            if grid:
                svg.line(x0, y, x0 + w, y, "#e6e6e6", 1)
            svg.line(x0 - 4, y, x0, y, "#555", 1)
            svg.text(x0 - 7, y, text, size=10, anchor="end")
    svg.rect(x0, y0, w, h, stroke="#777", width=1)
    if xlabel:
        svg.text(x0 + w / 2, y0 + h + 30, xlabel, size=11, color="#444")
    if ylabel:
        svg.text(x0 - 46, y0 + h / 2, ylabel, size=11, color="#444", rotate=-90)


def legend(svg, x, y, items):
    """items: (label, color, marker or None, line: bool); drawn from (x, y) down, on a white box."""
    items = [i for i in items if i[0]]
    if not items:
        return
    w = 26 + 6.2 * max(len(i[0]) for i in items)
    svg.rect(x - 4, y - 4, w, 16 * len(items) + 6, fill="white", stroke="#ccc", opacity=0.92, rx=3)
    for k, (text, color, mark, is_line) in enumerate(items):
        yy = y + 6 + 16 * k
        if is_line:
            svg.line(x, yy, x + 18, yy, color, 2)
        if mark:
            svg.marker(x + 9, yy, mark, color)
        svg.text(x + 24, yy, text, size=10, anchor="start")


# ---- panels -------------------------------------------------------------------------------------------------


def panel_height(q) -> float:
    d = q.data
    if q.kind == "levels":
        return 50 + 44 * len(d["rows"])
    if q.kind == "bits":
        return 30 + (62 if d["width"] <= 8 else 50) * len(d["words"])
    if q.kind == "text":
        return 24 + 20 * len(d["lines"])
    if q.kind == "grid":
        r, c = np.asarray(d["values"]).shape
        return 28 + r * _cell(c)
    if q.kind == "heat":
        r, c = np.asarray(d["m"]).shape
        return 34 + r * min(22, 300 / max(r, c))
    if q.kind == "tree":
        x = np.asarray(d["x"])
        return 40 + 56 * ((x.size - 1).bit_length() + 1)
    return 290


def _cell(cols):
    return 44 if cols <= 10 else max(22, min(44, (WIDTH - 40) / cols))


def draw_line(svg, q, x0, y0, w, h):
    d = q.data
    series = d["series"]
    xkind, ykind = d.get("xscale", "linear"), d.get("yscale", "linear")
    xs = [s["x"] for s in series] + [s.get("tx", []) for s in series]
    ys = [s["y"] for s in series] + [s.get("ty", []) for s in series] + [d.get("hlines", [])]
    left, bottom = 64, 40
    px0, pw, ph = x0 + left, w - left - 16, h - bottom - (26 if q.title else 10)
    py0 = y0 + h - bottom - ph
    sx = Scale(*_bounds(xs, xkind, 0.02), px0, px0 + pw, xkind)
    sy = Scale(*_bounds(ys, ykind, 0.08), py0 + ph, py0, ykind)
    axes(svg, px0, py0, pw, ph, sx, sy, d.get("xlabel", ""), d.get("ylabel", ""))
    for v in d.get("hlines", []):
        svg.line(px0, sy(v), px0 + pw, sy(v), "#666", 1, "5,4")
    for v in d.get("vlines", []):
        svg.line(sx(v), py0, sx(v), py0 + ph, "#333", 1.2)
    for xv, text in d.get("notes", []):
        svg.text(sx(xv), py0 + 10, text, size=10, color="#333")
    items = []
    for i, s in enumerate(series):
        color = s.get("color", COLORS[i % len(COLORS)])
        x = np.asarray(s["x"], dtype=np.float64)
        y = np.asarray(s["y"], dtype=np.float64)
        ls, mark = s.get("ls", "-"), s.get("marker")
        if ls != "none":
            pts = list(zip(x, y, strict=True))
            if s.get("drawstyle") == "steps-post":
                pts = [p for a, b in zip(pts, pts[1:] + [pts[-1]], strict=True) for p in (a, (b[0], a[1]))]
            seg = []
            for a, b in pts:
                if math.isfinite(a) and math.isfinite(b) and (ykind != "log" or b > 0) and (xkind != "log" or a > 0):
                    seg.append((sx(a), sy(b)))
                else:
                    svg.polyline(seg, color, s.get("lw", 1.6))
                    seg = []
            svg.polyline(seg, color, s.get("lw", 1.6))
        if mark:
            step = max(1, len(x) // 400)
            for a, b in zip(x[::step], y[::step], strict=True):
                if math.isfinite(a) and math.isfinite(b) and (ykind != "log" or b > 0):
                    svg.marker(sx(a), sy(b), mark, color, size=s.get("ms", 4) * 0.8)
        tx, ty = np.asarray(s.get("tx", []), dtype=np.float64), np.asarray(s.get("ty", []), dtype=np.float64)
        for a, b in zip(tx, ty, strict=True):
            svg.marker(sx(a), sy(b), "o", color, size=4.2, edge="#111")
        items.append((s.get("label"), color, mark, ls != "none"))
    legend(svg, px0 + 10, py0 + 10, items)


def draw_levels(svg, q, x0, y0, w, h):
    d = q.data
    rows = d["rows"]
    names = [r.get("name", "") for r in rows]
    left = 14 + 6.0 * max((len(n) for n in names), default=0)
    left = min(max(left, 40), 300)
    px0, pw = x0 + left, w - left - 24
    vals = [np.asarray(r["values"], dtype=np.float64) for r in rows] + [np.asarray(r.get("mark", [])) for r in rows]
    kind = d.get("xscale", "linear")
    sx = Scale(*_bounds(vals, "linear", 0.03), px0, px0 + pw, kind)
    top = y0 + (26 if q.title else 10)
    for v in sx.ticks():
        svg.line(sx(v), top, sx(v), y0 + h - 28, "#eee", 1)
        svg.text(sx(v), y0 + h - 16, label(v), size=10)
    for i, r in enumerate(rows):
        yy = top + 28 + 44 * i
        color = COLORS[i % len(COLORS)]
        svg.line(px0, yy, px0 + pw, yy, "#bbb", 1)
        svg.text(px0 - 10, yy, names[i], size=10, anchor="end", color="#333")
        for m in r.get("mark", []):
            svg.line(sx(m), yy - 12, sx(m), yy + 12, RED, 2.4)
        prev = -1e9
        for v, lab in zip(np.asarray(r["values"], dtype=np.float64), r["labels"], strict=True):
            x = sx(v)
            svg.marker(x, yy, "o", color, 4)
            dy = -12 if x - prev > 9 else -22  # stagger labels that would touch
            svg.text(x, yy + dy, lab, size=9, color="#333")
            prev = x if dy == -12 else prev
    if d.get("xlabel"):
        svg.text(px0 + pw / 2, y0 + h - 3, d["xlabel"], size=11, color="#444")


def _shade(v, top):
    """A blue tint by magnitude."""
    t = 0.12 + 0.6 * (min(abs(v), top) / top if top > 0 and math.isfinite(v) else 0.0)
    r, g, b = 1 - 0.55 * t, 1 - 0.45 * t, 1 - 0.05 * t
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def draw_grid(svg, q, x0, y0, w, h):
    d = q.data
    v = np.asarray(d["values"], dtype=np.float64)
    rows, cols = v.shape
    cell = min(_cell(cols), (w - 10) / cols)
    gx = x0 + (w - cell * cols) / 2
    gy = y0 + 22
    if q.title:
        svg.text(x0 + w / 2, y0 + 10, q.title, size=12, weight="bold")
    finite = np.abs(v[np.isfinite(v)])
    top = float(finite.max()) if finite.size else 1.0
    mask = d.get("mask")
    mask = None if mask is None else np.asarray(mask, bool)
    ties = np.asarray(d.get("ties") if d.get("ties") is not None else np.zeros(v.shape, bool), bool)
    for i in range(rows):
        for j in range(cols):
            x, y = gx + j * cell, gy + i * cell
            pruned = mask is not None and not mask[i, j]
            svg.rect(x, y, cell, cell, fill="#d9d9d9" if pruned else _shade(v[i, j], top), stroke="white", width=1)
            s = label(v[i, j])
            size = 11 if cell >= 40 else (9 if cell >= 30 else 8)
            if len(s) * size * 0.6 > cell - 2:
                s = f"{v[i, j]:.2g}"
            svg.text(x + cell / 2, y + cell / 2, s, size=size, color="#555" if pruned else "#111")
    for r0, c0, hh, ww in d.get("groups") or []:
        svg.rect(gx + c0 * cell, gy + r0 * cell, ww * cell, hh * cell, stroke="#111", width=2)
    for i, j in zip(*np.nonzero(ties), strict=True):
        svg.rect(gx + j * cell + 1.5, gy + i * cell + 1.5, cell - 3, cell - 3, stroke=RED, width=2.6)


def _diverging(v, lim):
    t = max(-1.0, min(1.0, v / lim)) if lim > 0 and math.isfinite(v) else 0.0
    if t >= 0:
        r, g, b = 1.0, 1 - 0.75 * t, 1 - 0.8 * t
    else:
        r, g, b = 1 + 0.8 * t, 1 + 0.6 * t, 1.0
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def draw_heat(svg, q, x0, y0, w, h):
    m = np.asarray(q.data["m"], dtype=np.float64)
    rows, cols = m.shape
    cell = min(22, 300 / max(rows, cols), (w - 10) / cols)
    gx, gy = x0 + (w - cell * cols) / 2, y0 + 28
    finite = np.abs(m[np.isfinite(m)])
    lim = float(finite.max()) if finite.size else 1.0
    svg.text(x0 + w / 2, y0 + 10, f"{q.title}  (red > 0 > blue, |max| {label(lim)})" if q.title else "", size=11)
    for i in range(rows):
        for j in range(cols):
            svg.rect(gx + j * cell, gy + i * cell, cell, cell, fill=_diverging(m[i, j], lim))
    svg.rect(gx, gy, cell * cols, cell * rows, stroke="#888", width=1)


def draw_bits(svg, q, x0, y0, w, h):
    d = q.data
    width = d["width"]
    cell = min(34, (w - 130) / width)
    gx = x0 + (w - cell * width) / 2
    if q.title:
        svg.text(x0 + w / 2, y0 + 10, q.title, size=12, weight="bold")
    row_h = 62 if width <= 8 else 50
    for i, word in enumerate(d["words"]):
        y = y0 + 24 + row_h * i
        owner = d["owner"][i] if i < len(d["owner"]) else [-1] * width
        svg.text(gx - 8, y + cell / 2, f"byte {i}" if width == 8 else f"word {i}", size=10, anchor="end", color="#555")
        for b in range(width):
            x = gx + (width - 1 - b) * cell
            o = owner[b]
            svg.rect(x, y, cell, cell, fill=COLORS[o % len(COLORS)] if o >= 0 else "#eeeeee",
                     opacity=0.3 if o >= 0 else 1, stroke="white")  # fmt: skip
            svg.text(x + cell / 2, y + cell / 2, str((word >> b) & 1), size=11 if cell > 20 else 9)
        svg.text(gx + width * cell, y - 4, "bit 0", size=8, anchor="end", color="#777")
        svg.text(gx, y - 4, f"bit {width - 1}", size=8, anchor="start", color="#777")
        b = 0
        while b < width:  # label each run of bits that one code holds
            o, e = owner[b], b
            while e + 1 < width and owner[e + 1] == o:
                e += 1
            if 0 <= o < len(d["labels"]):
                xc = gx + (width - (b + e + 1) / 2) * cell
                svg.text(xc, y + cell + 10, d["labels"][o], size=9, color=COLORS[o % len(COLORS)])
            b = e + 1


def draw_bars(svg, q, x0, y0, w, h):
    d = q.data
    groups = d["groups"]
    n = sum(len(g["values"]) for g in groups) + len(groups) - 1
    left = 64
    px0, pw, ph = x0 + left, w - left - 16, h - 40
    py0 = y0 + 10
    vals = [np.asarray(g["values"], dtype=np.float64) for g in groups]
    sy = Scale(0.0, _bounds(vals, "linear", 0.1)[1], py0 + ph, py0)
    sx = Scale(-0.6, n - 0.4, px0, px0 + pw)
    axes(svg, px0, py0, pw, ph, Scale(0, 1, px0, px0 + pw), sy, "", d.get("ylabel", ""), grid=True)
    # axes() drew x ticks of a unit scale; cover them with the category axis instead
    svg.rect(px0 - 1, py0 + ph + 1, pw + 2, 24, fill="white")
    k = 0
    bw = 0.7 * (pw / max(n, 1))
    for gi, g in enumerate(groups):
        for j, (v, kept) in enumerate(zip(vals[gi], g["kept"], strict=True)):
            x = sx(k)
            color = COLORS[g["layer"] % len(COLORS)] if kept else "#cccccc"
            svg.rect(x - bw / 2, sy(v), bw, sy(0) - sy(v), fill=color, stroke="#333", width=0.6)
            labs = g.get("labels", [])
            svg.text(x, py0 + ph + 12, labs[j] if j < len(labs) else label(v), size=9, color="#333")
            k += 1
        k += 1


def draw_tree(svg, q, x0, y0, w, h):
    x = [float(v) for v in np.asarray(q.data["x"], dtype=np.float64)]
    n = 1 << (len(x) - 1).bit_length()
    level = x + [0.0] * (n - len(x))
    step = (w - 40) / n
    pos = [x0 + 20 + step * (i + 0.5) for i in range(n)]
    depth = 0
    while True:
        y = y0 + 24 + 56 * depth
        for p, v in zip(pos, level, strict=True):
            svg.rect(p - 30, y - 11, 60, 22, fill="#e8eaf6" if depth else "white", stroke="#888", rx=5)
            svg.text(p, y, f"{v:.6g}", size=10)
        if len(level) == 1:
            break
        half = len(level) // 2
        new = [level[i] + level[i + half] for i in range(half)]
        newpos = [(pos[i] + pos[i + half]) / 2 for i in range(half)]
        for i in range(half):
            for j in (i, i + half):
                svg.line(pos[j], y + 11, newpos[i], y + 45, "#999", 1)
        level, pos, depth = new, newpos, depth + 1
    svg.text(
        x0 + w / 2,
        y0 + h - 6,
        "top: the inputs, zero-padded to a power of two; each row adds a[:h] + a[h:]",
        size=10,
        color="#555",
    )


def draw_hist(svg, q, x0, y0, w, h):
    d = q.data
    values = np.asarray(d["values"], dtype=np.float64)
    counts, edges = np.histogram(values[np.isfinite(values)], bins=80)
    marks = list(d.get("marks", [])) + list(d.get("dashed", [])) + list(d.get("named", {}).values())
    left, bottom = 64, 40
    px0, pw, ph = x0 + left, w - left - 16, h - bottom - 10
    py0 = y0 + 10
    sx = Scale(*_bounds([edges, marks], "linear", 0.02), px0, px0 + pw)
    ykind = "log" if d.get("log") else "linear"
    sy = Scale(0.8 if ykind == "log" else 0.0, max(1.0, float(counts.max())) * 1.15, py0 + ph, py0, ykind)
    axes(svg, px0, py0, pw, ph, sx, sy, d.get("xlabel", ""), "count")
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if c > 0:
            top = sy(c)
            svg.rect(sx(a), top, max(sx(b) - sx(a) - 0.5, 0.5), sy.p0 - top, fill="#9fa8da")
    for m in d.get("marks", []):
        svg.line(sx(m), py0, sx(m), py0 + ph, RED, 1.4)
    for m in d.get("dashed", []):
        svg.line(sx(m), py0, sx(m), py0 + ph, "#333", 1.2, "5,4")
    items = []
    for i, (name, m) in enumerate(d.get("named", {}).items()):
        color = COLORS[i % len(COLORS)]
        svg.line(sx(m), py0, sx(m), py0 + ph, color, 1.8)
        items.append((f"{name} = {label(m)}", color, None, True))
    legend(svg, px0 + pw - 200, py0 + 10, items)


def draw_text(svg, q, x0, y0, w, h):
    if q.title:
        svg.text(x0 + 10, y0 + 10, q.title, size=11, anchor="start", weight="bold")
    for i, line in enumerate(q.data["lines"]):
        svg.text(x0 + 10, y0 + 30 + 20 * i, line, size=11, anchor="start", mono=True)


DRAW = {"line": draw_line, "levels": draw_levels, "grid": draw_grid, "heat": draw_heat, "bits": draw_bits,
        "bars": draw_bars, "tree": draw_tree, "hist": draw_hist, "text": draw_text}  # fmt: skip


def _small(q) -> bool:
    if q.kind == "grid":
        return np.asarray(q.data["values"]).shape[1] <= 10
    if q.kind == "heat":
        return np.asarray(q.data["m"]).shape[1] <= 16
    return False


def render(picture) -> str:
    """The picture as an SVG document (a string)."""
    rows: list[list] = []
    for q in picture.panels:  # runs of small matrices share a row
        if rows and _small(q) and all(_small(r) for r in rows[-1]) and len(rows[-1]) < 3:
            rows[-1].append(q)
        else:
            rows.append([q])
    svg, y = Svg(), 0.0
    for row in rows:
        h = max(panel_height(q) for q in row)
        w = WIDTH / len(row)
        for k, q in enumerate(row):
            if q.title and q.kind in ("line", "levels"):
                svg.text(k * w + w / 2, y + 10, q.title, size=12, weight="bold")
            DRAW[q.kind](svg, q, k * w, y, w, h)
        y += h + 8
    body = "\n".join(svg.parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{num(y)}" '
            f'viewBox="0 0 {WIDTH} {num(y)}"><rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')  # fmt: skip
