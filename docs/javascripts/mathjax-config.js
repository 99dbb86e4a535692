// MathJax 3 configuration (loaded before assets/mathjax/tex-chtml.js, which the build copies from
// the installed django-static-mathjax package: nothing is fetched from another host).
// Typesets pymdownx.arithmatex output (.arithmatex, also inside mkdocstrings docstrings) and the
// Markdown cells of notebooks rendered by mkdocs-jupyter (.jp-MarkdownOutput, which use $...$).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-MarkdownOutput|jp-RenderedMarkdown",
  },
};

// Material's instant navigation swaps page content without a reload: typeset again each time.
document$.subscribe(() => {
  if (!window.MathJax.typesetPromise) return; // first load: MathJax typesets on its own start-up
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
