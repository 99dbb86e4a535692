"""Internal links, anchors and the downloadable snippet modules of the built site."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from siteaudit import REPO, broken_links, markdown_embeds, resolve_local

SNIPPETS = REPO / "snippets"


def test_link_checker_reports_missing_pages_and_anchors(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text(
        '<h2 id="here">x</h2><a href="#here">ok</a><a href="#gone">bad</a>'
    )
    (tmp_path / "index.html").write_text(
        '<a href="a/">ok</a><a href="a/#here">ok</a><a href="a/#nope">bad</a><a href="b/">bad</a>'
        '<a href="https://arxiv.org/abs/1">external</a><script src="js/missing.js"></script>'
        '<a href="/a/index.html#here">ok</a><a href="../../etc/passwd">outside</a>'
    )
    problems = broken_links(tmp_path)
    assert len(problems) == 5, problems
    assert sum("'#gone'" in p for p in problems) == 1
    assert sum("'nope'" in p for p in problems) == 1
    assert sum("missing file b/index.html" in p for p in problems) == 1
    assert sum("js/missing.js" in p for p in problems) == 1
    assert sum("outside the site" in p for p in problems) == 1
    assert sum("'../../etc/passwd'" in p for p in problems) == 1


def test_internal_links_and_anchors_resolve(built_site):
    pages = list(built_site.rglob("*.html"))
    assert len(pages) >= 5
    problems = broken_links(built_site)
    assert not problems, "broken internal links:\n" + "\n".join(problems)


class _SnippetTitles(HTMLParser):
    """Collects the code-block titles (`span.filename`) of a page and the link inside each."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.titles: list[tuple[str, str | None]] = []  # (text, href)
        self._depth = 0
        self._text: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._depth:
            self._depth += 1
            if tag == "a":
                self._href = attrs.get("href")
        elif tag == "span" and "filename" in (attrs.get("class") or "").split():
            self._depth, self._text, self._href = 1, [], None

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1
            if not self._depth:
                self.titles.append(("".join(self._text).strip(), self._href))

    def handle_data(self, data):
        if self._depth:
            self._text.append(data)


def built_page(site: Path, md: Path) -> Path:
    """The HTML file MkDocs writes for a Markdown page (directory URLs)."""
    rel = md.relative_to(REPO / "docs").with_suffix("")
    if rel.name in {"index", "README"}:
        return site / rel.parent / "index.html"
    return site / rel / "index.html"


def test_site_serves_every_snippet_module_whole(built_site):
    modules = sorted(SNIPPETS.rglob("*.py"))
    assert modules
    for module in modules:
        served = built_site / module.relative_to(REPO)
        assert served.is_file(), (
            f"{served.relative_to(built_site)} is not in the built site"
        )
        assert served.read_bytes() == module.read_bytes(), (
            f"{served} differs from {module}"
        )


def test_every_embedded_section_links_to_its_whole_module(built_site):
    pages = [
        p
        for p in sorted((REPO / "docs").rglob("*.md"))
        if "includes" not in p.relative_to(REPO / "docs").parts
    ]
    checked = 0
    for md in pages:
        embeds = markdown_embeds(md.read_text(encoding="utf-8"), md.name)
        if not embeds:
            continue
        html_path = built_page(built_site, md)
        parser = _SnippetTitles()
        parser.feed(html_path.read_text(encoding="utf-8"))
        titles = [
            (text, href)
            for text, href in parser.titles
            if re.fullmatch(r"snippets/[\w/]+\.py", text)
        ]
        for module in sorted({e.file for e in embeds}):
            links = [href for text, href in titles if text == module]
            want = sum(e.file == module for e in embeds)
            assert len(links) >= want, (
                f"{html_path}: {want} blocks embed {module}, {len(links)} titled ones found"
            )
            for href in links:
                assert href, f"{html_path}: the title {module} is not a link"
                target, _ = resolve_local(built_site, html_path, href)
                assert target == (built_site / module).resolve(), (
                    f"{html_path}: {module} links to {href}"
                )
                assert target.read_bytes() == (REPO / module).read_bytes()
                checked += 1
    assert checked, "no embedded snippet section was found in the built pages"
