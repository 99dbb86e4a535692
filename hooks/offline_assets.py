"""MkDocs hook: everything a page loads comes from the built site itself.

* Every ``snippets/*.py`` module is copied whole into ``site/snippets/``, and each code block
  titled ``snippets/<module>.py`` gets a link to that file (in the API reference, each module's
  heading is followed by one, in place of mkdocstrings' source listings), so a reader who copies one section can
  fetch the module with its imports and helpers in one click.
* Notebook pages rendered by mkdocs-jupyter carry nbconvert's ``<script>`` tags for MathJax 2 and
  mermaid from a CDN; they are removed here (hooks/katex.py typesets notebook Markdown at build
  time). The JupyterLab theme CSS that nbconvert inlines into each notebook page (~570 kB) is cut
  to the rules whose classes the page uses and the custom properties those rules read (light and
  dark), written to ``site/assets/stylesheets/jupyter-<hash>.css`` and linked instead.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import shutil
from pathlib import Path

try:
    from hooks.page_weight import page_classes, purge_css
except ImportError:  # loaded by MkDocs from its path, with hooks/ on sys.path
    from page_weight import page_classes, purge_css

SNIPPETS_DIR = Path(__file__).resolve().parent.parent / "snippets"
# a warning on a logger under "mkdocs" fails a --strict build
log = logging.getLogger("mkdocs.hooks.offline_assets")

_TITLE = re.compile(r'<span class="filename">(snippets/[\w/]+\.py)</span>')
_THIRD_PARTY_SCRIPT = re.compile(
    r'<script[^>]*\bsrc="https?://[^"]*(?:mathjax|mermaid|require)[^"]*"[^>]*>\s*</script>\s*',
    re.IGNORECASE,
)
_NBCONVERT_MATHJAX_CONFIG = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL
)
# nbconvert's lab template loads mermaid with a dynamic import() from cdnjs inside a module script
# (`import mermaid from ...` in older templates).
_MERMAID_MODULE = re.compile(
    r'<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>\s*',
    re.DOTALL,
)
# The JupyterLab theme that nbconvert inlines into every notebook page (~570 kB): served once instead.
_BIG_INLINE_STYLE = re.compile(
    r'<style type="text/css">\s*(@charset "UTF-8";\s*\.jupyter-wrapper\{.*?)</style>',
    re.DOTALL,
)


_MODULE_HEADING = re.compile(
    r'<h(?P<level>[1-6]) id="snippets\.(?P<module>[\w.]+)" class="doc doc-heading">'
    r"(?:(?!</h(?P=level)>).)*?doc-module-name.*?</h(?P=level)>",
    re.DOTALL,
)


def trim_css(css: str, page_html: str) -> str:
    """Keep the rules of `css` whose selectors need only classes that `page_html` uses.

    A selector survives if every class it requires appears in a ``class`` attribute of the page;
    custom properties (``--jp-*``) survive if a kept declaration reads them, directly or through
    another custom property; ``@keyframes`` and the other at-rules go (no rule the notebooks use
    animates). The purge is hooks/page_weight.py's, the one for all the site's stylesheets.

    Args:
        css: A stylesheet (nbconvert's JupyterLab theme).
        page_html: The whole HTML of the page that uses it.

    Returns:
        The trimmed stylesheet, minified.
    """
    if not isinstance(css, str) or not isinstance(page_html, str):
        raise TypeError("css and page_html must be strings")
    return purge_css(
        css, page_classes(page_html), palette=None, reads=set(), at_rules=False
    )


def _page_dir(page) -> str:
    """The folder of a page's URL, relative to the site root ('.' for the home page)."""
    url = page.url
    return (url.rstrip("/") if url.endswith("/") else posixpath.dirname(url)) or "."


def on_page_content(html, page, config, files):
    """Turn each ``snippets/x.py`` code-block title into a link to the whole module."""

    def link(match: re.Match) -> str:
        path = match.group(1)
        href = posixpath.relpath(path, _page_dir(page))
        return (
            f'<span class="filename"><a class="snippet-source" href="{href}" '
            f'title="Download the whole module">{path}</a></span>'
        )

    html = _TITLE.sub(link, html)

    def module_source(match: re.Match) -> str:
        # The API reference shows no source listings (mkdocstrings' show_source is off): each
        # module's heading is followed by a link to the whole module instead.
        path = f"snippets/{match.group('module').replace('.', '/')}.py"
        if not (SNIPPETS_DIR.parent / path).is_file():
            return match.group(0)
        href = posixpath.relpath(path, _page_dir(page))
        return (
            f'{match.group(0)}\n<p class="module-source">Source: <a class="snippet-source" '
            f'href="{href}" title="Download the whole module"><code>{path}</code></a></p>'
        )

    return _MODULE_HEADING.sub(module_source, html)


def on_post_page(output, page, config):
    """Strip the CDN scripts that nbconvert's template puts into notebook pages; share its CSS."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    output = _NBCONVERT_MATHJAX_CONFIG.sub("", output)
    output = _THIRD_PARTY_SCRIPT.sub("", output)
    output = _MERMAID_MODULE.sub("", output)

    def shared_stylesheet(match: re.Match) -> str:
        css = trim_css(match.group(1), output)
        name = f"assets/stylesheets/jupyter-{hashlib.sha256(css.encode()).hexdigest()[:10]}.css"
        target = Path(config["site_dir"]) / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(css, encoding="utf-8")
        return (
            f'<link rel="stylesheet" href="{posixpath.relpath(name, _page_dir(page))}">'
        )

    return _BIG_INLINE_STYLE.sub(shared_stylesheet, output)


def on_post_build(config):
    site = Path(config["site_dir"])
    out = site / "snippets"
    out.mkdir(parents=True, exist_ok=True)
    root = SNIPPETS_DIR.resolve()
    for module in sorted(SNIPPETS_DIR.rglob("*.py")):
        # never follow a symlink: publish nothing from outside the repository's snippets/
        if module.is_symlink() or not module.resolve().is_relative_to(root):
            log.warning("not publishing %s: a symbolic link", module)
            continue
        target = out / module.relative_to(SNIPPETS_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target, follow_symlinks=False)
