"""The site builds strictly, and in headless Chromium an algorithm page renders its formulas and loads its plot.

Skipped where Chromium is not installed (`.ci/run` installs it).
"""

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT, env=env,
                   check=True, capture_output=True)  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_every_registry_entry_has_a_page(site):
    from spec.registry import REGISTRY

    out, _ = site
    for name in REGISTRY:
        assert (out / "algorithms" / name / "index.html").exists(), name
    html = (out / "algorithms" / "quantize" / "index.html").read_text()
    assert "arithmatex" in html and "katex.min.js" in html and "https://cdn" not in html


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("page", ["round_half_away", "magnitude_mask"])
def test_formula_renders_and_plot_loads_in_chromium(site, page, tmp_path):
    _, url = site
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path}", "--virtual-time-budget=15000", "--dump-dom",
           f"{url}/algorithms/{page}/"]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    math = re.search(r'data-pqref-math="(\d+)"', dom)
    images = re.search(r'data-pqref-images="(\d+)/(\d+)"', dom)
    assert math and int(math.group(1)) > 0, "no formula was rendered by KaTeX"
    assert 'class="katex' in dom
    assert images and int(images.group(2)) >= 1 and images.group(1) == images.group(2), images and images.group(0)
