"""The site builds strictly, every page carries the version, every entry is on a page; and in headless Chromium, at
1400 px: formulas render before the goldens, nothing overflows, no word breaks inside, the pictures load, the search
finds pages by their common names; three screenshots are saved for a person to look at.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, no extra package). Skipped
where Chromium is not installed (`.ci/run` installs it). Screenshots go to `$PQREF_SCREENSHOTS` if set, else to
`screenshots/` in this run's pytest temp dir (its path is printed).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spec.registry import REGISTRY

pytestmark = pytest.mark.xdist_group("site")  # one worker sets up the module fixtures once

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VJPS = {e.vjp: e.name for e in REGISTRY.values() if e.vjp}
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT, env=env,
                   check=True, capture_output=True)  # fmt: skip
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# ---- the built files ----------------------------------------------------------------------------------------


def test_every_registry_entry_is_on_a_page(site):
    out, _ = site
    for name in REGISTRY:
        if name in VJPS:  # a gradient is a section of its forward entry's page
            html = (out / "algorithms" / VJPS[name] / "index.html").read_text()
            assert f'id="{name}"' in html and 'id="gradient"' in html, name
        else:
            assert (out / "algorithms" / name / "index.html").exists(), name
    html = (out / "algorithms" / "quantize" / "index.html").read_text()
    assert "arithmatex" in html and "katex.min.js" in html and "https://cdn" not in html


def test_algorithm_pages_read_in_order(site):
    """Title with the common name, then definition, semantics, goldens, picture, gradient, see also, paper,
    details; bad inputs, invariants and the PyTorch twin inside collapsed blocks."""
    out, _ = site
    html = (out / "algorithms" / "lsq_quantize" / "index.html").read_text()
    assert re.search(r"<h1[^>]*>LSQ — <code>lsq_quantize</code>", html)
    order = ["definition", "pinned-semantics", "golden-vectors", "picture", "gradient", "see-also", "paper", "details"]
    positions = [html.find(f'id="{a}"') for a in order]
    assert all(p > 0 for p in positions) and positions == sorted(positions), dict(zip(order, positions, strict=True))
    details = html[html.find('id="details"') :]
    for block in ("Bad inputs", "Invariants", "PyTorch implementation"):
        assert re.search(rf"<details[^>]*>\s*<summary>{block}", details), block
    assert 0 < html.find('class="arithmatex"') < html.find('id="golden-vectors"')
    late = []  # on every algorithm page with a formula, the first one comes before the goldens
    for page in (out / "algorithms").glob("*/index.html"):
        text = page.read_text()
        math, goldens = text.find('class="arithmatex"'), text.find('id="golden-vectors"')
        if math > 0 and goldens > 0 and math > goldens:
            late.append(page.parent.name)
    assert not late, late


def test_version_on_every_page_and_search_weights(site):
    from reference.common.version import PQREF_VERSION, SEMANTICS_VERSION

    out, _ = site
    badge = f"{PQREF_VERSION} · semantics {SEMANTICS_VERSION}"
    pages = list(out.rglob("index.html"))
    assert len(pages) > len(REGISTRY) // 2
    missing = [str(p.relative_to(out)) for p in pages if badge not in p.read_text()]
    assert not missing, missing[:5]
    docs = json.loads((out / "search" / "search_index.json").read_text())["docs"]
    boost = {d["location"].split("#")[0]: d.get("boost", 1) for d in docs}
    assert boost["algorithms/nm_mask/"] > 1 and boost["api/reference/pruning/structured/"] < 1
    tags = {d["location"]: d.get("tags", []) for d in docs if "#" not in d["location"]}
    assert (
        "2:4 sparsity" in tags["algorithms/nm_mask/"] and "Stochastic rounding" in tags["algorithms/round_stochastic/"]
    )


def test_divergence_catalog_lists_the_registry_peer_differences(site):
    out, _ = site
    html = (out / "divergences" / "index.html").read_text()
    section = html[html.find('id="recorded-in-the-registry"') :]
    recorded = [(e.name, peer) for e in REGISTRY.values() for peer, _ in e.peers]
    assert len(recorded) >= 13
    for name, _ in recorded:
        assert f'href="../algorithms/{name}/#how-peers-differ"' in section, name
    page = (out / "algorithms" / "fake_quantize" / "index.html").read_text()
    assert 'id="how-peers-differ"' in page and "torch.ao" in page


def test_api_is_split_per_module_and_links_to_algorithm_pages(site):
    out, _ = site
    html = (out / "api" / "reference" / "quantization" / "lsq" / "index.html").read_text()
    assert 'href="../../../../algorithms/lsq_quantize/"' in html
    assert len(html) < 200_000
    assert not (out / "algorithms" / "lsq_quantize_vjp").exists()


# ---- in Chromium --------------------------------------------------------------------------------------------


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe: fd 3 carries commands in, fd 4 replies out, each
    message JSON ending in a NUL byte."""

    def __init__(self, exe: str, profile: Path):
        to_chrome, self._in = os.pipe()
        self._out, from_chrome = os.pipe()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]  # fmt: skip

        def fds():  # the child's fds 3 and 4; dup first so that neither lands on the other
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([exe, *flags], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)  # fmt: skip
        os.close(to_chrome)
        os.close(from_chrome)
        self.buf, self.id = b"", 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def send(self, method, session=None, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._in, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self.id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method, **params):
        return self.send(method, self.session, **params)

    def eval(self, expression):
        r = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return r["result"].get("value")

    def open(self, url, ready="true", timeout=20.0):
        self.page("Page.navigate", url=url)
        self.wait(f"document.readyState === 'complete' && ({ready})", timeout, url)

    def wait(self, condition, timeout=20.0, where=""):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.eval(condition):
                return
            time.sleep(0.02)
        raise AssertionError(f"{where}: not ready after {timeout} s ({condition})")

    def close(self):
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    b.page("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
    yield b
    b.close()


RENDERED = "document.documentElement.hasAttribute('data-pqref-math')"  # katex-init.js has run
# What a reader meets on a page, measured in the browser (positions in CSS px from the top of the page).
LAYOUT = r"""
(() => {
  const art = document.querySelector("article");
  const shown = (e) => e.offsetParent !== null;
  const wide = (e) => e.scrollWidth > e.clientWidth + 1;
  const formula = art.querySelector(".arithmatex .katex"), goldens = document.getElementById("golden-vectors");
  const top = (e) => e ? Math.round(e.getBoundingClientRect().top + window.scrollY) : null;
  return {
    content: Math.round(art.getBoundingClientRect().width),
    katex: art.querySelectorAll(".arithmatex .katex").length,
    formula: top(formula), goldens: top(goldens),
    code: Array.from(art.querySelectorAll("pre > code")).filter(e => shown(e) && wide(e)).map(e => e.textContent.slice(0, 80)),
    math: Array.from(art.querySelectorAll("div.arithmatex")).filter(e => shown(e) && wide(e)).map(e => e.textContent.slice(0, 80)),
    page: document.documentElement.scrollWidth > window.innerWidth,
    broken: Array.from(art.querySelectorAll("td code")).filter(e => shown(e)
      && /^[A-Za-z_][A-Za-z0-9_.]{0,39}$/.test(e.textContent) && e.getClientRects().length > 1).map(e => e.textContent),
    images: Array.from(art.querySelectorAll("img")).map(i => i.complete && i.naturalWidth > 0),
  };
})()
"""
SAMPLE = ["lsq_quantize", "nf4_quantize", "nm_mask", "fake_quantize", "round_half_away", "mx_quantize"]


@needs_chromium
def test_layout_at_1400px(site, browser):
    _, url = site
    for page in [f"algorithms/{n}/" for n in SAMPLE] + ["", "notation/"]:
        browser.open(f"{url}/{page}", RENDERED)
        m = browser.eval(LAYOUT)
        where = f"{page or 'home'}: {m}"
        assert m["content"] >= 1000, where  # the wider grid: was 688 px
        assert not m["code"] and not m["math"] and not m["page"], where
        assert not m["broken"], where  # no "ValueErro / r"
        assert all(m["images"]), where
        if page.startswith("algorithms/"):
            assert m["katex"] > 0 and m["goldens"] and m["formula"] < m["goldens"], where  # definition first
            assert len(m["images"]) >= 1, where


SEARCHES = [("stochastic rounding", "round_stochastic"), ("2:4 sparsity", "nm_mask"), ("LSQ", "lsq_quantize"),
            ("network slimming", "slimming_masks"), ("NF4", "nf4_quantize"), ("banker's rounding", "round_half_even")]  # fmt: skip
RESULTS = "Array.from(document.querySelectorAll('.md-search-result__link')).map(a => a.getAttribute('href'))"


@needs_chromium
def test_search_finds_common_names(site, browser):
    """The first hit for a common name or alias is its algorithm page (one page load: the index is built once)."""
    _, url = site
    first_query, _ = SEARCHES[0]
    browser.open(f"{url}/?q={first_query}", f"{RESULTS}.length > 0")
    for query, page in SEARCHES:
        for value, ready in (("", "=== 0"), (query, "> 0")):  # clear the results, then search
            browser.eval(
                "(() => { const i = document.querySelector('.md-search__input');"
                f" i.value = {json.dumps(value)}; i.dispatchEvent(new KeyboardEvent('keyup')); }})()"
            )
            browser.wait(f"{RESULTS}.length {ready}")
        hits = browser.eval(RESULTS)
        path = hits[0].split("#")[0].split("?")[0].rstrip("/")
        assert path.endswith(f"algorithms/{page}"), (query, hits[:5])


@needs_chromium
def test_screenshots_for_a_person(site, browser, tmp_path_factory):
    _, url = site
    out = Path(os.environ.get("PQREF_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("lsq_quantize", "nf4_quantize", "nm_mask"):
        browser.open(f"{url}/algorithms/{name}/", RENDERED)
        shot = browser.page("Page.captureScreenshot", format="png")["data"]
        (out / f"{name}.png").write_bytes(base64.b64decode(shot))
        assert (out / f"{name}.png").stat().st_size > 20_000
    print(f"screenshots: {out}")
