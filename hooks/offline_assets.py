"""MkDocs hook: everything a page loads comes from the built site itself.

* MathJax 3 is copied into ``site/assets/mathjax/`` from the installed PyPI package
  ``django-static-mathjax`` (pinned in requirements.txt), so math typesets with no internet.
* Every ``snippets/*.py`` module is copied whole into ``site/snippets/``, and each code block
  titled ``snippets/<module>.py`` gets a link to that file, so a reader who copies one section can
  fetch the module with its imports and helpers in one click.
* Notebook pages rendered by mkdocs-jupyter carry nbconvert's ``<script>`` tags for MathJax 2 and
  mermaid from a CDN; they are removed here (the site's own MathJax typesets notebook Markdown).
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path

import mathjax  # the ``mathjax`` package installed by django-static-mathjax

MATHJAX_SRC = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
# The combined TeX-input/CHTML-output component, plus what it may load on demand:
# web fonts, TeX extensions (autoload) and the accessibility/menu parts.
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "ui", "adaptors"]
SNIPPETS_DIR = Path(__file__).resolve().parent.parent / "snippets"

_TITLE = re.compile(r'<span class="filename">(snippets/[\w/]+\.py)</span>')
_THIRD_PARTY_SCRIPT = re.compile(
    r'<script[^>]*\bsrc="https?://[^"]*(?:mathjax|mermaid|require)[^"]*"[^>]*>\s*</script>\s*', re.I
)
_NBCONVERT_MATHJAX_CONFIG = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S
)
_MERMAID_MODULE = re.compile(
    r'<script type="module">\s*import mermaid from [^<]*</script>', re.S
)


def on_page_content(html, page, config, files):
    """Turn each ``snippets/x.py`` code-block title into a link to the whole module."""
    page_dir = posixpath.dirname(page.url.rstrip("/")) if not page.url.endswith("/") else page.url.rstrip("/")

    def link(match: re.Match) -> str:
        path = match.group(1)
        href = posixpath.relpath(path, page_dir or ".")
        return (
            f'<span class="filename"><a class="snippet-source" href="{href}" '
            f'title="Download the whole module">{path}</a></span>'
        )

    return _TITLE.sub(link, html)


def on_post_page(output, page, config):
    """Strip the CDN scripts that nbconvert's template puts into notebook pages."""
    if page.file.src_uri.endswith(".ipynb"):
        output = _NBCONVERT_MATHJAX_CONFIG.sub("", output)
        output = _THIRD_PARTY_SCRIPT.sub("", output)
        output = _MERMAID_MODULE.sub("", output)
    return output


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
    for module in sorted(SNIPPETS_DIR.glob("*.py")):
        shutil.copy2(module, out / module.name)
