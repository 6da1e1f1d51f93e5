// MathJax 3 for pymdownx.arithmatex (generic mode): typeset only what arithmatex marks.
// MathJax itself is served by the site (site/mathjax/, added by docs/hooks/offline_maths.py),
// never by a CDN. MathJax typesets each page it is loaded with; the subscription below
// typesets again when Material swaps the page without a reload (theme feature navigation.instant).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

document$.subscribe(() => {
  // not started yet: its startup typesets the page. Started: typeset what is new, once the
  // first typeset is done. (No output.clearCache(): it drops the CSS of the glyphs on the page.)
  if (!(window.MathJax.startup && MathJax.startup.promise)) return;
  MathJax.startup.promise.then(() => {
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise();
  });
});
