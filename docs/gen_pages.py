"""Generate the registry-driven pages of the site (run by the mkdocs-gen-files plugin at build time).

Writes, into the virtual docs tree:

- `algorithms/<name>.md`: one page per `spec.registry.REGISTRY` entry, ordered for a reader: the common name and
  function name, the summary, the definition (the reference docstring: its formula first), the pinned semantics,
  the golden vectors, a picture drawn by the reference, the gradient (the VJP entry's formula, semantics and
  goldens: a VJP has no page of its own), see also, the paper; bad inputs, invariants and the PyTorch twin
  collapsed at the end;
- `algorithms/<topic>/index.md` and `algorithms/index.md`: the entries by topic (`docs/sitegen/topics.py`);
- `api/reference.md`, `api/torch_backend.md` and one page per module under `api/reference/` and
  `api/torch_backend/`, linking each registry function to its algorithm page instead of repeating it;
  `api/spec.md`: the contract's API;
- the table algorithm -> paper -> page into `index.md`, the registry's peer differences into `divergences.md`;
- `algorithms/SUMMARY.md`, `api/SUMMARY.md`: the navigation, read by mkdocs-literate-nav.

Nothing here imports torch: the registry names implementations by dotted path, mkdocstrings reads the source
statically, and the pictures are drawn from the NumPy reference.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

import mkdocs_gen_files
from mkdocs.structure.files import InclusionLevel

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "docs"):  # the build must work from a checkout, installed or not
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from sitegen import pictures, topics  # noqa: E402

from spec.entry import REFERENCE, literal  # noqa: E402
from spec.registry import REGISTRY  # noqa: E402

TORCH = "torch_backend"
# Per-module mkdocstrings options. spec.registry re-exports the classes of spec.entry (documented there).
MODULE_OPTIONS = {"spec.registry": {"members": ["REGISTRY", "get"], "show_if_no_docstring": True}}
SPEC_FIRST = ("entry", "registry", "backends", "conformance", "strategies", "validate", "profiles", "cli")

ENTRIES = list(REGISTRY.values())
VJP_OF = {e.vjp: e.name for e in ENTRIES if e.vjp}  # VJP entry -> its forward entry (whose page shows it)
PAGES = [e for e in ENTRIES if e.name not in VJP_OF]
BY_TOPIC = {t.slug: [e for e in PAGES if topics.topic_of(e) == t.slug] for t in topics.TOPICS}
# The head of a family of names ("LSQ" for "LSQ+", "LSQ initial step", ...) weighs more in the search.
_COMMON = {e.name: topics.common_name(e) for e in PAGES if topics.common_name(e)}
HEADS = {n for n, c in _COMMON.items() if any(o != c and o.startswith(c) for o in _COMMON.values())}

# ---- Markdown helpers ---------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_MD_SPECIAL = re.compile(r"([\\*_\[\]$|])")
# Bare entry names worth linking in prose: names with an underscore (plain words like `split` stay words).
_BARE = re.compile(r"\b(" + "|".join(sorted((re.escape(n) for n in REGISTRY if "_" in n), key=len, reverse=True))
                   + r")\b")  # fmt: skip


def page_of(name: str) -> str:
    """The page (and anchor) of an entry, relative to `algorithms/`."""
    return f"{VJP_OF[name]}.md#{name}" if name in VJP_OF else f"{name}.md"


def text(s: str, base: str | None = "", skip: str = "") -> str:
    """Registry text as Markdown: code spans kept, everything else escaped (`2**b` is not bold); entry names, in
    a code span or bare, link to their pages (`base`: the path from the page to `algorithms/`; None: no links)."""
    out, last = [], 0
    for m in _CODE_SPAN.finditer(s):
        out.append(_prose(s[last : m.start()], base, skip))
        out.append(_code_link(m.group(0), m.group(2), base, skip))
        last = m.end()
    out.append(_prose(s[last:], base, skip))
    return "".join(out)


def _code_link(span: str, inner: str, base, skip) -> str:
    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", inner)
    if base is None or not name or name.group(0) not in REGISTRY or name.group(0) == skip:
        return span
    rest = inner[name.end() :]
    if rest and not rest.startswith("("):
        return span
    return f"[{span}]({base}{page_of(name.group(0))})"


def _prose(s: str, base, skip) -> str:
    if base is None:
        return _escape(s)
    out, last = [], 0
    for m in _BARE.finditer(s):
        if m.group(1) == skip:
            continue
        out.append(_escape(s[last : m.start()]))
        out.append(f"[`{m.group(1)}`]({base}{page_of(m.group(1))})")
        last = m.end()
    return "".join(out) + _escape(s[last:])


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
        out += [text(s[last : m.start()], None), f"[{text(m.group(0), None)}]({url})"]
        last = m.end()
    return "".join(out) + text(s[last:], None)


def short_paper(s: str) -> str:
    """'Esser et al., 2020' from a full citation."""
    m = re.match(r"(.+?\b(?:19|20)\d\d[a-z]?)\b", s)
    return m.group(1) if m else s.split(".")[0]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mkdocstrings(identifier: str, indent: str = "", **options) -> str:
    block = f"{indent}::: {identifier}\n"
    if options:
        block += f"{indent}    options:\n"
        for k, v in options.items():
            block += f"{indent}      {k}: {_yaml(v)}\n"
    return block + "\n"


def _yaml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def front_matter(title: str, tags=(), boost: float | None = None, exclude: bool = False) -> str:
    """YAML front matter: the page title, search tags (weighted most by the search) and the search boost."""
    out = ["---", f"title: {_quote(title)}"]
    if tags:
        out.append("tags:")
        out += [f"  - {_quote(t)}" for t in tags]
    if boost is not None or exclude:
        out.append("search:")
        out.append("  exclude: true" if exclude else f"  boost: {boost}")
    return "\n".join(out) + "\n---\n\n"


# ---- algorithm pages ----------------------------------------------------------------------------------------


def title(e, markdown: bool = True) -> str:
    name = f"`{e.name}`" if markdown else e.name
    common = topics.common_name(e)
    return f"{common} — {name}" if common else name


def nav_title(e) -> str:
    return topics.common_name(e) or e.name


def signature(e) -> str:
    return f"{e.name}{inspect.signature(e.reference())}"


def goldens(e, skip) -> str:
    rows = [[code(compact(g.case.repro(e.name))), code(compact(literal(g.expected))), text(g.why, "", skip)]
            for g in e.golden]  # fmt: skip
    return table(["Call", "Expected", "Why"], rows)


def bad_table(e) -> str:
    rows = [[code(compact(b.case.repro(e.name))), code(b.error.__name__), code(b.match)] for b in e.bad]
    return table(["Call", "Raises", "Message contains"], rows)


def indent(s: str, by: str = "    ") -> str:
    return "".join(by + line if line.strip() else line for line in s.splitlines(keepends=True))


def algorithm_page(e) -> str:
    ref_id, tb_id = f"{e.path(REFERENCE)}.{e.name}", f"{e.path(TORCH)}.{e.name}"
    topic = topics.TOPIC[topics.topic_of(e)]
    vjp = REGISTRY.get(e.vjp) if e.vjp else None
    names = [topics.common_name(e), *topics.aliases(e), e.name]
    out = [front_matter(title(e, markdown=False), [n for n in names if n], boost=3 if e.name in HEADS else 2)]
    out.append(f"# {title(e)}\n\n{text(e.summary, '', e.name)}\n\n")

    facts = []
    if topics.aliases(e):
        facts.append("**Also known as:** " + ", ".join(_escape(a) for a in topics.aliases(e)))
    facts.append(f"**Topic:** [{topic.title}]({topic.slug}/index.md)")
    if e.paper:
        facts.append(f"**Paper:** [{_escape(short_paper(e.paper))}](#paper)")
    if vjp:
        facts.append("**Gradient:** [below](#gradient)")
    facts.append("[Notation](../notation.md)")
    out.append(" · ".join(facts) + "\n\n")

    out.append("## Definition\n\n")
    out.append(f"```python\n{signature(e)}\n```\n\n")
    out.append(mkdocstrings(ref_id, show_root_heading=False, show_root_toc_entry=False, heading_level=3))

    out.append("## Pinned semantics\n\n")
    if e.semantics:
        out.append("".join(f"- {text(s, '', e.name)}\n" for s in e.semantics))
    else:
        out.append("Nothing beyond the definition above.\n")

    out.append("\n## Golden vectors\n\n")
    if e.golden:
        out.append("Exact expected outputs, compared bit for bit on every backend and device (floats print in their "
                   "shortest round-trip form).\n\n")  # fmt: skip
        out.append(goldens(e, e.name))
    else:
        out.append("None pinned; the Hypothesis strategy and the invariants cover this entry.\n")

    if e.name in PICTURES:
        caption = PICTURES[e.name].caption
        out.append(f"\n## Picture\n\n![{text(caption, None)}]({e.name}.svg)\n\n{text(caption, '', e.name)}\n")

    if vjp:
        out.append(gradient_section(e, vjp))

    related = topics.see_also(e, REGISTRY, doc=e.reference().__doc__ or "")
    if related:
        out.append("\n## See also\n\n")
        out.append("".join(f"- [{title(REGISTRY[n])}]({page_of(n)}): {text(REGISTRY[n].summary, '', n)}\n"
                           for n in related))  # fmt: skip

    if e.peers:
        out.append("\n## How peers differ\n\n")
        out.append("".join(f"- **{_escape(peer)}:** {text(what, '', e.name)}\n" for peer, what in e.peers))
        out.append(
            "\nAll recorded differences: the [divergence catalog](../divergences.md#recorded-in-the-registry).\n"
        )

    if e.paper:
        out.append(f"\n## Paper\n\n{paper_links(e.paper)}\n")
    for k, v in e.extra:
        out.append(f"\n**{text(k, None)}:** {text(v, '', e.name)}\n")

    out.append("\n## Details\n\n")
    out.append(details(e, ref_id, tb_id))
    if vjp:
        out.append(details(vjp, f"{vjp.path(REFERENCE)}.{vjp.name}", f"{vjp.path(TORCH)}.{vjp.name}", "Gradient: "))
    return "".join(out)


def gradient_section(e, vjp) -> str:
    out = [f'\n## Gradient {{ #gradient }}\n\n<a id="{vjp.name}"></a>\n\n']
    out.append(f"The registry entry `{vjp.name}` ({text(vjp.summary.rstrip('.'), '', e.name)}): torch's autograd gradient of "
               f"`{e.name}` is checked against it, bit for bit, on every device.\n\n")  # fmt: skip
    out.append(f"```python\n{signature(vjp)}\n```\n\n")
    out.append(mkdocstrings(f"{vjp.path(REFERENCE)}.{vjp.name}", show_root_heading=False, show_root_toc_entry=False,
                            heading_level=3))  # fmt: skip
    if vjp.semantics:
        out.append("### Pinned semantics of the gradient\n\n")
        out.append("".join(f"- {text(s, '', vjp.name)}\n" for s in vjp.semantics))
    if vjp.golden:
        out.append("\n### Golden vectors of the gradient\n\n")
        out.append(goldens(vjp, vjp.name))
    return "".join(out)


def details(e, ref_id, tb_id, prefix="") -> str:
    """Bad inputs, invariants and the PyTorch twin, collapsed."""
    out = []
    if e.bad:
        body = "Every backend raises the same exception type with the same message.\n\n" + bad_table(e)
    else:
        body = "None pinned beyond the shared checks of `reference.common.validate`.\n"
    out.append(f'??? note "{prefix}Bad inputs ({len(e.bad)})"\n\n{indent(body)}\n')
    if e.invariants:
        body = "Checked on every generated case, on the reference and on each torch device:\n\n" + "".join(
            f"- {text(i.name, '', e.name)}\n" for i in e.invariants
        )
    else:
        body = "None beyond bitwise agreement with the reference.\n"
    out.append(f'??? note "{prefix}Invariants ({len(e.invariants)})"\n\n{indent(body)}\n')
    body = f"`{tb_id}`, the twin of `{ref_id}`: same parameters, same bits.\n\n" + mkdocstrings(
        tb_id, show_root_heading=False, show_root_toc_entry=False, heading_level=4
    )
    out.append(f'??? note "{prefix}PyTorch implementation"\n\n{indent(body)}\n')
    return "".join(out)


def topic_table(entries, base="") -> str:
    rows = [[f"[{_escape(nav_title(e))}]({base}{e.name}.md)", code(e.name), text(e.summary, base, e.name),
             _escape(short_paper(e.paper)) if e.paper else ""] for e in entries]  # fmt: skip
    return table(["Algorithm", "Function", "Summary", "Paper"], rows)


def topic_page(t) -> str:
    entries = BY_TOPIC[t.slug]
    tags = [t.title] + [topics.common_name(e) for e in entries if topics.common_name(e)]
    return (
        front_matter(t.title, tags[:1], boost=1)
        + f"# {t.title}\n\n{text(t.intro, '../')}\n\n"
        + topic_table(entries, "../")
    )


def algorithms_index() -> str:
    out = [
        front_matter("Algorithms", boost=0.5),
        "# Algorithms\n\n",
        f"The registry holds {len(ENTRIES)} entries ({len(VJP_OF)} of them gradients, shown on their algorithm's "
        "page), by topic. Each page is generated from its `Entry` in `spec/catalog/`: the definition first, then the "
        "pinned semantics, golden vectors, a picture and the gradient; bad inputs, invariants and the PyTorch twin "
        "at the end. Symbols are defined on the [notation](../notation.md) page.\n",
    ]
    for t in topics.TOPICS:
        if BY_TOPIC[t.slug]:
            out.append(f"\n## [{t.title}]({t.slug}/index.md)\n\n{text(t.intro, '')}\n\n")
            out.append(topic_table(BY_TOPIC[t.slug]))
    return "".join(out)


def algorithms_summary() -> str:
    lines = ["* [Overview](index.md)"]
    for t in topics.TOPICS:
        if BY_TOPIC[t.slug]:
            lines.append(f"* {t.title}")
            lines.append(f"    * [Overview]({t.slug}/index.md)")
            lines += [f"    * [{nav_title(e)}]({e.name}.md)" for e in BY_TOPIC[t.slug]]
    return "\n".join(lines) + "\n"


def papers_table() -> str:
    """The home page's table: algorithm -> paper -> page, by topic."""
    rows = []
    for t in topics.TOPICS:
        for e in BY_TOPIC[t.slug]:
            if e.paper:
                rows.append([f"[{_escape(nav_title(e))}](algorithms/{e.name}.md)", code(e.name), paper_links(e.paper),
                             f"[{t.title}](algorithms/{t.slug}/index.md)"])  # fmt: skip
    return table(["Algorithm", "Function", "Paper", "Topic"], rows)


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


def public_defs(package: str, name: str) -> list[str]:
    """The public functions and classes a module defines (read statically: torch is never imported)."""
    path = ROOT / package / name.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")]


def module_page(package: str, name: str) -> str:
    dotted = f"{package}.{name}"
    rel = "../" * (name.count(".") + 2)  # from api/<package>/<a>/<b>.md up to the site root
    entries = [e for e in ENTRIES if e.module == name]
    out = [front_matter(dotted, boost=0.1), f"# `{dotted}`\n\n"]
    if entries:
        out.append("The algorithms of this module are documented, with their contract, on their own pages:\n\n")
        rows = [[f"[{_escape(title(e, markdown=False))}]({rel}algorithms/{page_of(e.name)})",
                 text(e.summary, None)] for e in entries]  # fmt: skip
        out.append(table(["Algorithm", "Summary"], rows) + "\n")
    members = [m for m in public_defs(package, name) if m not in REGISTRY]
    options = {"show_root_heading": False, "heading_level": 2, **MODULE_OPTIONS.get(dotted, {})}
    if entries or (ROOT / package / name.replace(".", "/")).is_dir():
        options.setdefault("members", members if members else False)
    out.append(mkdocstrings(dotted, **options))
    return "".join(out)


def api_package_page(package: str, title_: str, intro: str, names: list[str]) -> str:
    out = [front_matter(title_, boost=0.1), f"# {title_}\n\n", intro, "\n\n"]
    out.append(mkdocstrings(package, show_root_heading=False, members=False))
    rows = []
    for name in names:
        n = sum(1 for e in PAGES if e.module == name)
        rows.append([f"[`{package}.{name}`]({package}/{name.replace('.', '/')}.md)",
                     f"{n} algorithm{'s' if n != 1 else ''}" if n else ""])  # fmt: skip
    out.append(table(["Module", "Registry entries"], rows))
    return "".join(out)


def api_page(package: str, title_: str, intro: str, first: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> str:
    """One page for a whole package (the contract's `spec`)."""
    out = [front_matter(title_, boost=0.1), f"# {title_}\n\n", intro, "\n\n"]
    out.append(mkdocstrings(package, show_root_heading=False, members=False))
    for name in modules(package, first, skip):
        if (ROOT / package / name.replace(".", "/")).is_dir():
            out.append(mkdocstrings(f"{package}.{name}", heading_level=2, members=False))
        else:
            dotted = f"{package}.{name}"
            options = {"heading_level": 2 if "." not in name else 3, **MODULE_OPTIONS.get(dotted, {})}
            out.append(mkdocstrings(dotted, **options))
    return "".join(out)


SPLIT_API = [
    (REFERENCE, "reference (NumPy)", "The NumPy reference, one page per module. Each algorithm is documented with its "
     "contract on its [algorithm page](../algorithms/index.md); the module pages link there and show the other "
     "public functions."),
    (TORCH, "torch_backend (PyTorch)", "The PyTorch backend mirrors `reference` file for file and name for name; each "
     "algorithm's PyTorch docstring is on its algorithm page (under Details). The module pages show the rest: the "
     "training layer, the kernels, the helpers."),
]  # fmt: skip
SPEC_API = ("spec", "spec (the contract)", "The registry, the Hypothesis strategies, the shared input checks and the "
            "bitwise comparison used by the tests and by `pqref verify`. See [Conformance](../conformance.md) for how "
            "they fit together.", SPEC_FIRST, ("catalog",))  # fmt: skip

# ---- peer differences ---------------------------------------------------------------------------------------


def peer_section() -> str:
    """The registry's recorded peer differences (`Entry.peers`), each linked to its algorithm page."""
    rows = [
        [f"[{_escape(title(e, markdown=False))}](algorithms/{page_of(e.name)}#how-peers-differ)", _escape(peer),
         text(what, "algorithms/", e.name)]
        for e in ENTRIES
        for peer, what in e.peers
    ]  # fmt: skip
    if not rows:
        return ""
    return (
        "\n## Recorded in the registry {#recorded-in-the-registry}\n\n"
        f"Every peer difference the registry records (`Entry.peers`, {len(rows)} in all, from "
        f"{len({r[0] for r in rows})} entries), generated with the site; each is also on its algorithm's page. "
        "The measured counts above are for the differences a snippet can show on any machine.\n\n"
        + table(["Algorithm", "Peer", "What it does differently"], rows)
    )


# ---- pictures -----------------------------------------------------------------------------------------------


PICTURES = {}
for _e in PAGES:
    _pic = pictures.picture(_e)
    if _pic is not None:
        PICTURES[_e.name] = _pic

# ---- write --------------------------------------------------------------------------------------------------

for _name, _pic in PICTURES.items():
    with mkdocs_gen_files.open(f"algorithms/{_name}.svg", "w") as f:
        f.write(pictures.render(_pic))

for _e in PAGES:
    with mkdocs_gen_files.open(f"algorithms/{_e.name}.md", "w") as f:
        f.write(algorithm_page(_e))
for _t in topics.TOPICS:
    if BY_TOPIC[_t.slug]:
        with mkdocs_gen_files.open(f"algorithms/{_t.slug}/index.md", "w") as f:
            f.write(topic_page(_t))
with mkdocs_gen_files.open("algorithms/index.md", "w") as f:
    f.write(algorithms_index())
with mkdocs_gen_files.open("algorithms/SUMMARY.md", "w") as f:
    f.write(algorithms_summary())

_api_nav = []
for _package, _title, _intro in SPLIT_API:
    _names = modules(_package)
    with mkdocs_gen_files.open(f"api/{_package}.md", "w") as f:
        f.write(api_package_page(_package, _title, _intro, _names))
    _api_nav.append(f"* {_title}")
    _api_nav.append(f"    * [Overview]({_package}.md)")
    for _name in _names:
        with mkdocs_gen_files.open(f"api/{_package}/{_name.replace('.', '/')}.md", "w") as f:
            f.write(module_page(_package, _name))
        _api_nav.append(f"    * [{_name}]({_package}/{_name.replace('.', '/')}.md)")
with mkdocs_gen_files.open("api/spec.md", "w") as f:
    f.write(api_page(*SPEC_API))
_api_nav.append(f"* [{SPEC_API[1]}](spec.md)")
with mkdocs_gen_files.open("api/SUMMARY.md", "w") as f:
    f.write("\n".join(_api_nav) + "\n")

with mkdocs_gen_files.open("index.md", "r") as f:
    _home = f.read()
with mkdocs_gen_files.open("index.md", "w") as f:
    f.write(_home.replace("<!-- papers -->", papers_table()))
_peers = peer_section()
if _peers:
    with mkdocs_gen_files.open("divergences.md", "a") as f:
        f.write(_peers)

# The SUMMARY.md files only feed literate-nav (which reads excluded files too); they are not pages of the site.
_files = mkdocs_gen_files.FilesEditor.current().files
for _nav in ("algorithms/SUMMARY.md", "api/SUMMARY.md"):
    _files.get_file_from_path(_nav).inclusion = InclusionLevel.EXCLUDED
