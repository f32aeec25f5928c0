// Render the math that pymdownx.arithmatex (generic mode) leaves in the page, with the vendored KaTeX.
// Inline math arrives as <span class="arithmatex">\( ... \)</span>, display math as
// <div class="arithmatex">\[ ... \]</div>. No network access is needed.
(function () {
  "use strict";

  var DELIMITERS = [
    { left: "\\(", right: "\\)", display: false },
    { left: "\\[", right: "\\]", display: true },
    { left: "$$", right: "$$", display: true },
  ];

  function render(root) {
    if (typeof renderMathInElement !== "function") return;
    var nodes = (root || document).querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], { delimiters: DELIMITERS, throwOnError: false });
    }
    fit(root || document);
    mark();
  }

  // A display formula wider than the column is scaled down to fit (to 60% at most; beyond that it scrolls).
  function fit(root) {
    var blocks = root.querySelectorAll("div.arithmatex");
    for (var i = 0; i < blocks.length; i++) {
      var katex = blocks[i].querySelector(".katex-display > .katex");
      if (!katex) continue;
      katex.style.fontSize = "";
      var room = blocks[i].clientWidth, need = katex.scrollWidth;
      if (need > room && room > 0) {
        katex.style.fontSize = Math.max(0.6, (room - 2) / need) * 1.21 + "em";
      }
    }
  }
  window.addEventListener("resize", function () { fit(document); });

  // Readiness marks for the site's browser test: rendered formulas and loaded images, as data attributes.
  function mark() {
    var html = document.documentElement;
    html.setAttribute("data-pqref-math", String(document.querySelectorAll(".arithmatex .katex").length));
    var images = document.querySelectorAll("article img");
    var loaded = 0;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) loaded++;
    }
    html.setAttribute("data-pqref-images", loaded + "/" + images.length);
  }
  window.addEventListener("load", mark);

  if (typeof document$ !== "undefined" && typeof document$.subscribe === "function") {
    // mkdocs-material emits on first load and after every instant-navigation page swap.
    document$.subscribe(function () { render(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();
