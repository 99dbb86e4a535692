"""MkDocs hook: a page's first load fetches what that page shows.

Material's bundle starts its search worker and fetches the whole search index
(``search/search_index.json``) the moment any page opens, whether or not the reader searches.
``hooks/search_on_demand.js``, inlined into each page just before the bundle
(``id="search-on-demand"``), holds both back until the search box first gets focus; search works
as before, the worker and the index arrive when they are wanted.
"""

from __future__ import annotations

import re
from pathlib import Path

SCRIPT = (Path(__file__).resolve().parent / "search_on_demand.js").read_text(
    encoding="utf-8"
)
_BUNDLE = re.compile(
    r'<script src="[^"]*assets/javascripts/bundle\.[\w.]+\.js"></script>'
)


def _inline(output: str, where: str) -> str:
    inline = f'<script id="search-on-demand">{SCRIPT}</script>'
    output, found = _BUNDLE.subn(lambda m: inline + m.group(0), output, count=1)
    if not found:
        raise ValueError(f"{where}: Material's bundle script was not found")
    return output


def on_post_page(output, page, config):
    """Inline the search-on-demand script before Material's bundle."""
    return _inline(output, page.file.src_uri)


def on_post_template(output_content, template_name, config):
    """The same for the pages built from templates alone (404.html)."""
    if "assets/javascripts/bundle." not in output_content:
        return output_content
    return _inline(output_content, template_name)
