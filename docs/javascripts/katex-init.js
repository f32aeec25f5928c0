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
  }

  if (typeof document$ !== "undefined" && typeof document$.subscribe === "function") {
    // mkdocs-material emits on first load and after every instant-navigation page swap.
    document$.subscribe(function () { render(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();
