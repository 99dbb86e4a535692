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
    // Typeset only inside the classes below. Everything on a Material page sits under an element
    // with an `md-*` class, so ignoring those ignores the page; a processed element typesets its
    // whole subtree (a notebook cell's <p>, <li>, ...). Material's usual ".*|" would also ignore
    // those class-less children and leave notebook Markdown untypeset.
    ignoreHtmlClass: "md-[\\w-]+",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-MarkdownOutput",
  },
};

// Material's instant navigation swaps page content without a reload: typeset the new content.
// Skip the first emission: MathJax's start-up typesets the first page itself, and clearing the
// output cache after that would drop the CSS of every glyph already shown (invisible math).
let initialPage = true;
document$.subscribe(() => {
  if (initialPage) {
    initialPage = false;
    return;
  }
  MathJax.startup.promise = MathJax.startup.promise.then(() => {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise();
  });
});
