"""Generate the registry-driven pages of the site (run by the mkdocs-gen-files plugin at build time).

Writes, into the virtual docs tree:

- `algorithms/<name>.md`: one page per `spec.registry.REGISTRY` entry: summary, pinned semantics, golden vectors,
  bad inputs, invariants, gradient, paper, and both implementations rendered by mkdocstrings;
- `algorithms/index.md`: every entry, grouped by family;
- `api/reference.md`, `api/torch_backend.md`, `api/spec.md`: the API, one mkdocstrings block per module;
- `algorithms/SUMMARY.md`, `api/SUMMARY.md`: the navigation of both sections, read by mkdocs-literate-nav.

Nothing here imports torch: the registry names implementations by dotted path, mkdocstrings reads the source
statically, and the pictures are drawn from the NumPy reference.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import mkdocs_gen_files
from mkdocs.structure.files import InclusionLevel

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the build must work from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

from spec.entry import REFERENCE, literal  # noqa: E402
from spec.registry import REGISTRY  # noqa: E402

TORCH = "torch_backend"
FAMILY_TITLES = {"core": "Core primitives", "quantization": "Quantization", "pruning": "Pruning"}
# Per-module mkdocstrings options. spec.registry re-exports the classes of spec.entry (documented there).
MODULE_OPTIONS = {"spec.registry": {"members": ["REGISTRY", "get"], "show_if_no_docstring": True}}
SPEC_FIRST = ("entry", "registry", "backends", "conformance", "strategies", "validate", "profiles", "cli")

# ---- Markdown helpers ---------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_MD_SPECIAL = re.compile(r"([\\*_\[\]$|])")


def text(s: str) -> str:
    """Plain registry text as Markdown: code spans kept, everything else escaped (`2**b` is not bold)."""
    out, last = [], 0
    for m in _CODE_SPAN.finditer(s):
        out.append(_escape(s[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_escape(s[last:]))
    return "".join(out)


def _escape(s: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", s.replace("&", "&amp;").replace("<", "&lt;"))


def compact(src: str) -> str:
    """Python source on one line: NumPy's column padding and line breaks removed outside string literals."""
    parts = _QUOTED.split(src)
    for i in range(0, len(parts), 2):  # even indices are outside quotes
        p = re.sub(r"\s+", " ", parts[i])
        parts[i] = re.sub(r" ([,\])])", r"\1", re.sub(r"([\[(]) ", r"\1", p))
    return "".join(parts)


def code(src: str) -> str:
    """An inline code span (Python-Markdown's tables do not split cells at a `|` inside one)."""
    fence = "``" if "`" in src else "`"
    return f"{fence}{src}{fence}" if fence == "`" else f"{fence} {src} {fence}"


_CITATION = re.compile(r"arXiv:(?P<arxiv>\d{4}\.\d{4,5})|doi:(?P<doi>10\.\S+?)(?=[.,;]?(?:\s|$))")


def paper_links(s: str) -> str:
    """A citation with its arXiv and DOI identifiers linked."""
    out, last = [], 0
    for m in _CITATION.finditer(s):
        url = f"https://arxiv.org/abs/{m['arxiv']}" if m["arxiv"] else f"https://doi.org/{m['doi']}"
        out += [text(s[last : m.start()]), f"[{text(m.group(0))}]({url})"]
        last = m.end()
    return "".join(out) + text(s[last:])


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mkdocstrings(identifier: str, **options) -> str:
    block = f"::: {identifier}\n"
    if options:
        block += "    options:\n"
        for k, v in options.items():
            block += f"      {k}: {_yaml(v)}\n"
    return block + "\n"


def _yaml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


# ---- algorithm pages ----------------------------------------------------------------------------------------

ENTRIES = list(REGISTRY.values())
FAMILIES: dict[str, list] = defaultdict(list)
for _e in ENTRIES:
    FAMILIES[_e.family].append(_e)
VJP_OF = {e.vjp: e.name for e in ENTRIES if e.vjp}


def family_title(family: str) -> str:
    return FAMILY_TITLES.get(family, family.replace("_", " ").capitalize())


def algorithm_page(e) -> str:
    ref, tb = f"{e.path(REFERENCE)}.{e.name}", f"{e.path(TORCH)}.{e.name}"
    out = [f"# {text(e.name)}\n\n", f"{text(e.summary)}\n\n"]

    if e.vjp:
        grad = (
            f"a custom VJP, the entry [{text(e.vjp)}]({e.vjp}.md): torch's autograd gradient is checked there, "
            "bit for bit, against the reference's"
        )
    elif e.name in VJP_OF:
        grad = f"this is the VJP of [{text(VJP_OF[e.name])}]({VJP_OF[e.name]}.md); torch's side runs autograd"
    else:
        grad = "no VJP in the contract"
    facts = [
        ("Family", f"[{text(family_title(e.family))}](index.md#{e.family})"),
        ("Reference", f"[{code(ref)}](#{ref})"),
        ("PyTorch", f"[{code(tb)}](#{tb})"),
        ("Gradient", grad),
    ]
    if e.paper:
        facts.append(("Paper", paper_links(e.paper)))
    facts += [(text(k), text(v)) for k, v in e.extra]
    out.append("".join(f"- **{k}:** {v}\n" for k, v in facts))

    out.append("\n## Semantics\n\n")
    if e.semantics:
        out.append("".join(f"- {text(s)}\n" for s in e.semantics))
    else:
        out.append("Nothing beyond the reference docstring below.\n")

    out.append("\n## Golden vectors\n\n")
    if e.golden:
        out.append(
            "Exact expected outputs, compared bit for bit on every backend and device "
            "(floats print in their shortest round-trip form).\n\n"
        )
        rows = [
            [code(compact(g.case.repro(e.name))), code(compact(literal(g.expected))), text(g.why)] for g in e.golden
        ]
        out.append(table(["Call", "Expected", "Why"], rows))
    else:
        out.append("None pinned; the Hypothesis strategy and the invariants cover this entry.\n")

    out.append("\n## Bad inputs\n\n")
    if e.bad:
        out.append("Every backend raises the same exception type with the same message.\n\n")
        rows = [[code(compact(b.case.repro(e.name))), code(b.error.__name__), code(b.match)] for b in e.bad]
        out.append(table(["Call", "Raises", "Message contains"], rows))
    else:
        out.append("None pinned beyond the shared checks of `reference.common.validate`.\n")

    out.append("\n## Invariants\n\n")
    if e.invariants:
        out.append("Checked on every generated case, on the reference and on each torch device:\n\n")
        out.append("".join(f"- {text(i.name)}\n" for i in e.invariants))
    else:
        out.append("None beyond bitwise agreement with the reference.\n")

    if e.name in PICTURES:
        out.append(f"\n## Picture\n\n![{text(PICTURES[e.name][1])}]({e.name}.png)\n\n{text(PICTURES[e.name][1])}\n")

    out.append("\n## Reference implementation\n\n")
    out.append(mkdocstrings(ref, heading_level=3))
    out.append("## PyTorch implementation\n\n")
    out.append(mkdocstrings(tb, heading_level=3))
    return "".join(out)


def algorithms_index() -> str:
    out = [
        "# Algorithms\n\n",
        f"The registry holds {len(ENTRIES)} entries. Each page below is generated from its `Entry` in "
        "`spec/catalog/`: the pinned semantics, golden vectors and bad inputs, the invariants, and the docstrings "
        "of both implementations.\n",
    ]
    for family, entries in FAMILIES.items():
        out.append(f"\n## {text(family_title(family))} {{ #{family} }}\n\n")
        rows = [
            [
                f"[{text(e.name)}]({e.name}.md)",
                text(e.summary),
                str(len(e.golden)),
                str(len(e.bad)),
                str(len(e.invariants)),
                f"[{text(e.vjp)}]({e.vjp}.md)" if e.vjp else "",
            ]
            for e in entries
        ]
        out.append(table(["Algorithm", "Summary", "Goldens", "Bad inputs", "Invariants", "VJP"], rows))
    return "".join(out)


def algorithms_summary() -> str:
    lines = ["* [Overview](index.md)"]
    for family, entries in FAMILIES.items():
        lines.append(f"* {family_title(family)}")
        lines += [f"    * [{e.name}]({e.name}.md)" for e in entries]
    return "\n".join(lines) + "\n"


# ---- API pages ----------------------------------------------------------------------------------------------


def modules(package: str, first: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[str]:
    """Public dotted module names under `package`, found on disk (names starting with `_` skipped).

    Top-level names in the order of `first`, else in the order the registry's families use them, else by name;
    a subpackage comes before its modules, which follow the registry's order.
    """
    base = ROOT / package
    found = []
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or any(p.startswith("_") for p in parts) or parts[0] in skip:
            continue
        found.append(".".join(parts))
    used = list(dict.fromkeys(e.module for e in ENTRIES))
    tops = list(first) + [m.split(".")[0] for m in used]

    def key(name: str):
        top = name.split(".")[0]
        return (
            tops.index(top) if top in tops else len(tops),
            name != top,
            used.index(name) if name in used else len(used),
            name,
        )

    return sorted(found, key=key)


def api_page(package: str, title: str, intro: str, first: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> str:
    out = [f"# {title}\n\n", intro, "\n\n", mkdocstrings(package, show_root_heading=False, members=False)]
    for name in modules(package, first, skip):
        if (ROOT / package / name.replace(".", "/")).is_dir():
            out.append(mkdocstrings(f"{package}.{name}", heading_level=2, members=False))
        else:
            dotted = f"{package}.{name}"
            options = {"heading_level": 2 if "." not in name else 3, **MODULE_OPTIONS.get(dotted, {})}
            out.append(mkdocstrings(dotted, **options))
    return "".join(out)


API = [
    (
        REFERENCE,
        "reference (NumPy)",
        "The NumPy reference, module by module. The same functions, with their contract, are on the "
        "[algorithm pages](../algorithms/index.md).",
        (),
        (),
    ),
    (
        TORCH,
        "torch_backend (PyTorch)",
        "The PyTorch backend mirrors `reference` file for file and name for name; each docstring points to the "
        "reference function that defines its semantics.",
        (),
        (),
    ),
    (
        "spec",
        "spec (the contract)",
        "The registry, the Hypothesis strategies, the shared input checks and the bitwise comparison used by "
        "the tests and by `pqref verify`. See [Conformance](../conformance.md) for how they fit together.",
        SPEC_FIRST,
        ("catalog",),  # the catalog is data: its pages are the algorithm pages
    ),
]


# ---- pictures -----------------------------------------------------------------------------------------------


def picture(e):
    """A PNG of the reference's behaviour, or None: the transfer function of an elementwise quantizer (its first
    golden call with the input swept over a range), or the mask a pruning function draws on a random 16 x 16 weight.
    Computed with the NumPy reference; entries where neither applies get no picture."""
    import io

    import numpy as np

    if not e.golden or e.name.endswith("_vjp"):
        return None
    args, kwargs = list(e.golden[0].case.args), dict(e.golden[0].case.kwargs)
    if not args or not isinstance(args[0], np.ndarray) or args[0].dtype != np.float32 or args[0].ndim != 1:
        return None
    fn = e.reference()
    lo, hi = float(args[0].min()), float(args[0].max())
    span = max(hi - lo, 1.0)
    xs = np.linspace(lo - 0.25 * span, hi + 0.25 * span, 1201, dtype=np.float32)
    kind = None
    try:
        ys = fn(xs, *args[1:], **kwargs)
        if isinstance(ys, np.ndarray) and ys.shape == xs.shape and ys.dtype.kind in "fiu":
            kind = "transfer"
    except (TypeError, ValueError):
        pass
    if kind is None:
        w = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
        try:
            ys = fn(w, *args[1:], **kwargs)
            if isinstance(ys, np.ndarray) and ys.shape == w.shape and ys.dtype == bool:
                kind = "mask"
        except (TypeError, ValueError):
            return None
    if kind is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2) if kind == "transfer" else (3.6, 3.6))
    if kind == "transfer":
        ax.plot(xs, ys.astype(np.float64), lw=1.2)
        ax.set_xlabel("input")
        ax.set_ylabel("output")
        ax.grid(True, alpha=0.3)
        caption = f"Transfer function of `{e.name}` with the parameters of its first golden vector."
    else:
        ax.imshow(ys, cmap="Greys_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        caption = f"Mask of `{e.name}` on a random 16 x 16 weight (white: kept), parameters of its first golden vector."
    ax.set_title(e.name)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue(), caption


PICTURES = {}
for _e in ENTRIES:
    _pic = picture(_e)
    if _pic is not None:
        PICTURES[_e.name] = _pic

# ---- write --------------------------------------------------------------------------------------------------

for _name, (_png, _) in PICTURES.items():
    with mkdocs_gen_files.open(f"algorithms/{_name}.png", "wb") as f:
        f.write(_png)

for _e in ENTRIES:
    with mkdocs_gen_files.open(f"algorithms/{_e.name}.md", "w") as f:
        f.write(algorithm_page(_e))

with mkdocs_gen_files.open("algorithms/index.md", "w") as f:
    f.write(algorithms_index())
with mkdocs_gen_files.open("algorithms/SUMMARY.md", "w") as f:
    f.write(algorithms_summary())

_api_nav = []
for _package, _title, _intro, _first, _skip in API:
    with mkdocs_gen_files.open(f"api/{_package}.md", "w") as f:
        f.write(api_page(_package, _title, _intro, _first, _skip))
    _api_nav.append(f"* [{_package}]({_package}.md)")

with mkdocs_gen_files.open("api/SUMMARY.md", "w") as f:
    f.write("\n".join(_api_nav) + "\n")

# The SUMMARY.md files only feed literate-nav (which reads excluded files too); they are not pages of the site.
_files = mkdocs_gen_files.FilesEditor.current().files
for _nav in ("algorithms/SUMMARY.md", "api/SUMMARY.md"):
    _files.get_file_from_path(_nav).inclusion = InclusionLevel.EXCLUDED
