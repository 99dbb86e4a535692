"""MkDocs hook: everything a page loads comes from the built site itself.

* MathJax 3 is copied into ``site/assets/mathjax/`` from the installed PyPI package
  ``django-static-mathjax`` (pinned in requirements.txt), so math typesets with no internet.
* Every ``snippets/*.py`` module is copied whole into ``site/snippets/``, and each code block
  titled ``snippets/<module>.py`` gets a link to that file, so a reader who copies one section can
  fetch the module with its imports and helpers in one click.
* Notebook pages rendered by mkdocs-jupyter carry nbconvert's ``<script>`` tags for MathJax 2 and
  mermaid from a CDN; they are removed here (the site's own MathJax typesets notebook Markdown).
  The JupyterLab theme CSS that nbconvert inlines into each notebook page is written once to
  ``site/assets/stylesheets/jupyter-<hash>.css`` and linked instead.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import shutil
from pathlib import Path

import mathjax  # the ``mathjax`` package installed by django-static-mathjax

MATHJAX_SRC = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
# The combined TeX-input/CHTML-output component, plus what it may load on demand:
# web fonts, TeX extensions (autoload) and the accessibility/menu parts.
# The speech-rule-engine maps (English, Nemeth braille, shared base) let the accessibility explorer
# of MathJax's right-click menu work offline too; MathJax looks for them at [mathjax]/sre/mathmaps.
MATHJAX_PARTS = [
    "tex-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "input/mml.js",  # the accessibility explorer re-parses the MathML output
    "a11y",
    "ui",
    "adaptors",
    "sre/mathmaps/base.json",
    "sre/mathmaps/en.json",
    "sre/mathmaps/nemeth.json",
]
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

    return _TITLE.sub(link, html)


def on_post_page(output, page, config):
    """Strip the CDN scripts that nbconvert's template puts into notebook pages; share its CSS."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    output = _NBCONVERT_MATHJAX_CONFIG.sub("", output)
    output = _THIRD_PARTY_SCRIPT.sub("", output)
    output = _MERMAID_MODULE.sub("", output)

    def shared_stylesheet(match: re.Match) -> str:
        css = match.group(1)
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
    dest = site / "assets" / "mathjax"
    for part in MATHJAX_PARTS:
        src = MATHJAX_SRC / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    shutil.copy2(MATHJAX_SRC.parent / "LICENSE", dest / "LICENSE")

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
