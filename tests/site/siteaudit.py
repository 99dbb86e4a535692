"""Static checks of a built site: no third-party resources, links that resolve, snippet embeds.

Plain functions over strings and paths, so that tests can feed them both the real built site and
small hand-written bad inputs (an auditor that has never failed proves nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# <link rel=...> values that only *name* another document; the browser fetches nothing for them.
NAVIGATIONAL_RELS = {
    "canonical",
    "alternate",
    "author",
    "license",
    "next",
    "prev",
    "help",
    "me",
    "bookmark",
}

# Attributes through which an element makes the browser fetch something when the page loads.
FETCHING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
}

_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>['"]?)(?P<url>.*?)(?P=q)\s*\)""", re.IGNORECASE | re.DOTALL
)
_CSS_IMPORT = re.compile(
    r"""@import\s+(?P<q>['"])(?P<url>[^'"]+)(?P=q)""", re.IGNORECASE
)
# Static `import x from "URL"`, `import "URL"`, `export ... from "URL"`, dynamic `import("URL")`,
# `importScripts("URL")` and `new Worker("URL")`, with the URL as a string literal.
_JS_IMPORTS = [
    re.compile(
        r"""\bimport\s*(?:[\w$*{}\s,]+?\s*from\s*)?(?P<q>['"`])(?P<url>[^'"`]+)(?P=q)"""
    ),
    re.compile(
        r"""\bexport\s*[\w$*{}\s,]+?\s*from\s*(?P<q>['"`])(?P<url>[^'"`]+)(?P=q)"""
    ),
    re.compile(r"""\bimport\s*\(\s*(?P<q>['"`])(?P<url>[^'"`]+)(?P=q)"""),
    re.compile(r"""\bimportScripts\s*\(\s*(?P<q>['"`])(?P<url>[^'"`]+)(?P=q)"""),
    re.compile(
        r"""\bnew\s+(?:Shared)?Worker\s*\(\s*(?P<q>['"`])(?P<url>[^'"`]+)(?P=q)"""
    ),
]


def is_remote(url: str) -> bool:
    """True when fetching `url` would contact a host other than the site's own (loopback)."""
    url = url.strip()
    if url.startswith("//"):  # protocol-relative: a remote host
        return (urlsplit("http:" + url).hostname or "") not in LOCAL_HOSTS
    parts = urlsplit(url)
    if parts.scheme.lower() in {"http", "https", "ws", "wss", "ftp"}:
        return (parts.hostname or "") not in LOCAL_HOSTS
    return False  # relative path, data:, blob:, about:, javascript:, #fragment


def _srcset_urls(value: str) -> list[str]:
    return [item.strip().split()[0] for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Finding:
    """One resource that a page would load from a third-party host."""

    where: str
    what: str
    url: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} loads {self.url}"


def audit_css(css: str, where: str = "<css>") -> list[Finding]:
    """Remote `url(...)` and `@import` in a stylesheet."""
    found = [
        Finding(where, "CSS url()", m["url"])
        for m in _CSS_URL.finditer(css)
        if is_remote(m["url"])
    ]
    found += [
        Finding(where, "CSS @import", m["url"])
        for m in _CSS_IMPORT.finditer(css)
        if is_remote(m["url"])
    ]
    return found


def audit_js(js: str, where: str = "<js>") -> list[Finding]:
    """Remote ES module imports, dynamic imports, importScripts() and workers in a script."""
    return [
        Finding(where, "JS import", m["url"])
        for pattern in _JS_IMPORTS
        for m in pattern.finditer(js)
        if is_remote(m["url"])
    ]


class _ResourceParser(HTMLParser):
    def __init__(self, where: str):
        super().__init__(convert_charrefs=True)
        self.where = where
        self.findings: list[Finding] = []
        self._in: str | None = None  # "script" or "style" while inside one
        self._buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = {name.lower(): (value or "") for name, value in attrs}
        tag = tag.lower()
        for name in FETCHING_ATTRS.get(tag, ()):
            if name in attrs:
                urls = _srcset_urls(attrs[name]) if name == "srcset" else [attrs[name]]
                self.findings += [
                    Finding(self.where, f"<{tag} {name}>", u)
                    for u in urls
                    if is_remote(u)
                ]
        if tag == "link" and "href" in attrs:
            rels = set(attrs.get("rel", "").lower().split())
            fetches = (
                not rels or rels - NAVIGATIONAL_RELS
            )  # stylesheet, preload, preconnect, icon, ...
            if fetches and is_remote(attrs["href"]):
                self.findings.append(
                    Finding(
                        self.where,
                        f"<link rel={' '.join(sorted(rels))}>",
                        attrs["href"],
                    )
                )
            if "imagesrcset" in attrs:
                urls = _srcset_urls(attrs["imagesrcset"])
                self.findings += [
                    Finding(self.where, "<link imagesrcset>", u)
                    for u in urls
                    if is_remote(u)
                ]
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            target = attrs.get("content", "").partition("url=")[2]
            if is_remote(target):
                self.findings.append(Finding(self.where, "<meta refresh>", target))
        if "style" in attrs:
            self.findings += audit_css(
                attrs["style"], f"{self.where} (style attribute)"
            )
        if tag in {"script", "style"}:
            self._in, self._buffer = tag, []

    def handle_data(self, data):
        if self._in:
            self._buffer.append(data)

    def handle_endtag(self, tag):
        if self._in and tag.lower() == self._in:
            text = "".join(self._buffer)
            if self._in == "style":
                self.findings += audit_css(text, f"{self.where} (<style>)")
            else:
                self.findings += audit_js(text, f"{self.where} (inline <script>)")
            self._in = None


def audit_html(html: str, where: str = "<html>") -> list[Finding]:
    """Every resource an HTML page loads from a third-party host (hyperlinks are not resources)."""
    parser = _ResourceParser(where)
    parser.feed(html)
    parser.close()
    return parser.findings


def audit_site(site: Path) -> list[Finding]:
    """Audit every HTML, CSS and JavaScript file of a built site."""
    findings: list[Finding] = []
    for path in sorted(site.rglob("*")):
        if not path.is_file():
            continue
        where = str(path.relative_to(site))
        suffix = path.suffix.lower()
        if suffix in {".html", ".htm", ".css", ".js", ".mjs"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if suffix in {".html", ".htm"}:
                findings += audit_html(text, where)
            elif suffix == ".css":
                findings += audit_css(text, where)
            else:
                findings += audit_js(text, where)
    return findings


# ------------------------------------------------------------------------------------------------
# Links and anchors


class _LinkParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag in {"a", "map"} else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(("a", attrs["href"]))
        elif tag in {"script", "img", "iframe", "source"} and attrs.get("src"):
            self.links.append((tag, attrs["src"]))
        elif (
            tag == "link"
            and attrs.get("href")
            and not set((attrs.get("rel") or "").split()) & NAVIGATIONAL_RELS
        ):
            self.links.append((tag, attrs["href"]))


def parse_links(html: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The element ids of a page and its (tag, url) links and local resources."""
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    return parser.ids, parser.links


def resolve_local(site: Path, page: Path, url: str) -> tuple[Path, str] | None:
    """The file in `site` that a relative or root-relative `url` on `page` points to, and its fragment.

    Returns None for links that leave the site (a scheme or a host) or are fragment-free
    special links (``mailto:``, ``javascript:``, ``data:``).
    """
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        target = page
    else:
        base = site if path.startswith("/") else page.parent
        target = (base / path.lstrip("/")).resolve()
        if target.is_dir() or path.endswith("/"):
            target = target / "index.html"
    return target, unquote(parts.fragment)


def broken_links(site: Path) -> list[str]:
    """Every relative link, local resource or #fragment in the built site that does not resolve."""
    site = site.resolve()
    pages = sorted(site.rglob("*.html"))
    parsed = {page: parse_links(page.read_text(encoding="utf-8")) for page in pages}
    problems = []
    for page, (_, links) in parsed.items():
        for tag, url in links:
            resolved = resolve_local(site, page, url)
            if resolved is None:
                continue
            target, fragment = resolved
            where = f"{page.relative_to(site)}: <{tag}> {url!r}"
            if site not in target.parents and target != site:
                problems.append(f"{where} points outside the site")
            elif not target.is_file():
                problems.append(f"{where} -> missing file {target.relative_to(site)}")
            elif fragment and tag == "a" and target.suffix == ".html":
                ids = (
                    parsed[target][0]
                    if target in parsed
                    else parse_links(target.read_text("utf-8"))[0]
                )
                if fragment not in ids:
                    problems.append(
                        f"{where} -> no element with id {fragment!r} in {target.relative_to(site)}"
                    )
    return problems


# ------------------------------------------------------------------------------------------------
# Snippet sections

SECTION_START = re.compile(
    r"^\s*#\s*--8<--\s*\[start:(?P<name>[^\]]+)\]\s*$", re.MULTILINE
)
# `--8<-- "snippets/x.py:name"` (a named section) in a Markdown page.
EMBED = re.compile(
    r"""^(?P<indent>[ \t]*)-{1,}8<-{1,}\s+(?P<q>["'])(?P<file>snippets/[^"':]+\.py)(?::(?P<section>[^"':]+))?(?P=q)\s*$""",
    re.MULTILINE,
)
FENCE_OPEN = re.compile(
    r"""^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$"""
)
TITLE = re.compile(r"""\btitle=(?P<q>["'])(?P<title>[^"']*)(?P=q)""")


def snippet_sections(snippets: Path) -> dict[tuple[str, str], Path]:
    """Every `# --8<-- [start:name]` section: {("snippets/x.py", name): file}."""
    root = snippets.parent
    sections = {}
    for module in sorted(snippets.rglob("*.py")):
        rel = module.relative_to(root).as_posix()
        for m in SECTION_START.finditer(module.read_text(encoding="utf-8")):
            sections[(rel, m["name"].strip())] = module
    return sections


@dataclass(frozen=True)
class Embed:
    """One `--8<-- "snippets/x.py:name"` line of a Markdown page and the fence around it."""

    page: str
    line: int
    file: str
    section: str | None
    fence_title: str | None  # None when the line is not inside a fenced code block


def markdown_embeds(markdown: str, page: str = "<md>") -> list[Embed]:
    """The snippet embeds of one Markdown page, with the title of the code fence each sits in."""
    embeds = []
    open_fence: tuple[str, str | None] | None = None  # (fence marker, title)
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = FENCE_OPEN.match(line)
        if open_fence is None and fence:
            title = TITLE.search(fence["info"])
            open_fence = (fence["fence"], title["title"] if title else None)
            continue
        if open_fence is not None:
            marker, stripped = open_fence[0], line.strip()
            if len(stripped) >= len(marker) and stripped == marker[0] * len(stripped):
                open_fence = None
                continue
        m = EMBED.match(line)
        if m:
            embeds.append(
                Embed(
                    page,
                    number,
                    m["file"],
                    m["section"],
                    open_fence[1] if open_fence else None,
                )
            )
    return embeds
