"""MkDocs hooks of the site (`hooks:` in mkdocs.yml).

- The package and semantics versions on every page: in the header next to the site name (linked to the
  changelog) and in the footer.
- Names of registry entries become links everywhere: every `<code>name</code>` (or `<code>name(...)</code>`) whose
  name is a registry entry, outside a link and a code block, links to the entry's algorithm page (a VJP to the
  Gradient section of its forward entry's page). This reaches the docstrings that mkdocstrings renders and the
  hand-written pages alike.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reference.common.version import PQREF_VERSION, SEMANTICS_VERSION  # noqa: E402
from spec.registry import REGISTRY  # noqa: E402

VERSION = f"{PQREF_VERSION} · semantics {SEMANTICS_VERSION}"
_VJP_OF = {e.vjp: e.name for e in REGISTRY.values() if e.vjp}

_SKIP = re.compile(r"<a\b[^>]*>.*?</a>|<pre\b[^>]*>.*?</pre>|<h[1-6]\b[^>]*>.*?</h[1-6]>", re.S)
_CODE = re.compile(r"<code>([A-Za-z_][A-Za-z0-9_]*)((?:\([^<]*\))?)</code>")


def target(name: str) -> str:
    """The site path (and anchor) of an entry's documentation."""
    return f"algorithms/{_VJP_OF[name]}/#{name}" if name in _VJP_OF else f"algorithms/{name}/"


def on_config(config):
    config.copyright = f"pqref {VERSION}"
    return config


def on_page_content(html, page, config, files):
    here = page.url

    def link(m):
        name = m.group(1)
        if name not in REGISTRY:
            return m.group(0)
        dest = target(name)
        if dest.split("#")[0] == here:
            return m.group(0)
        return f'<a href="{get_relative_url(dest, here)}">{m.group(0)}</a>'

    out, last = [], 0
    for m in _SKIP.finditer(html):
        out.append(_CODE.sub(link, html[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_CODE.sub(link, html[last:]))
    return "".join(out)


_TOPIC = re.compile(r'(<div class="md-header__topic">\s*<span class="md-ellipsis">\s*)([^<]*?)(\s*</span>)')


def on_post_page(output, page, config):
    href = get_relative_url("changelog/", page.url)
    badge = f'<a class="pqref-version" href="{href}" title="package version · semantics version">{VERSION}</a>'
    return _TOPIC.sub(lambda m: m.group(1) + m.group(2) + " " + badge + m.group(3), output, count=1)
