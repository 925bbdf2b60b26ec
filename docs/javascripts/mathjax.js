// MathJax for pymdownx.arithmatex (generic mode), as the Material for MkDocs
// documentation sets it up. MathJax itself (3.2.2, tex-svg-full.js: every
// TeX extension built in, so nothing is loaded on demand, and glyphs drawn
// as SVG paths, so no font files) is served from assets/mathjax/, with this
// site: no page needs the network.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  svg: {
    // One <defs> of glyph paths per page, shared by every formula.
    fontCache: "global"
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
    // The menu's speech and explorer options would fetch their rule sets
    // from a CDN.
    enableMenu: false
  }
};

document$.subscribe(() => {
  if (!MathJax.startup || !MathJax.typesetPromise) return;
  MathJax.startup.output.clearCache()
  MathJax.typesetClear()
  MathJax.texReset()
  MathJax.typesetPromise()
})
