"""MkDocs hook: what a reader downloads to open a page (measured by benchmarks/site_build.py).

Runs after the other hooks (last in ``mkdocs.yml``):

* **Images** load when they come near the screen: every ``<img>`` without a ``loading``
  attribute gets ``loading="lazy"``, and the hidden one of a light/dark pair is then never
  fetched. The figures that notebook outputs embed as base64 (``data:image/png``) are written
  out as files next to the page, with their width and height, so the HTML stays small and the
  images load as the reader scrolls.
* **Code** drops Pygments' spans that change nothing on screen (names, whitespace).
* **Stylesheets** shrink to the rules the site can use. Material's ``main`` and ``palette``
  stylesheets keep a rule when every class its selector needs appears in some built page or in
  Material's scripts (which add classes as the reader interacts), and a palette rule when its
  colour is the site's; custom properties stay whenever anything reads them. KaTeX's stylesheet
  keeps the rules whose classes some page's math uses.
* **KaTeX's fonts** are cut to the characters that occur in the site's pages (as WOFF; the
  characters of every page, not only of the math, so a new formula on an old page cannot miss a
  glyph), named after their content.
* Each changed file gets a new name from a hash of its content (a browser that cached the old
  file cannot mix the two), and every page is pointed at it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import logging
import re
import struct
from functools import lru_cache
from pathlib import Path

import tinycss2
from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.page_weight")
KATEX_FONTS = (
    Path(__file__).resolve().parent.parent / "node_modules" / "katex" / "dist" / "fonts"
)

_IMG = re.compile(r"<img\b(?P<attrs>[^>]*?)(?P<end>/?>)", re.IGNORECASE)
_DATA_PNG = re.compile(r'src="data:image/png;base64,(?P<data>[A-Za-z0-9+/=\s]+)"')
_CLASS_ATTR = re.compile(r'class="([^"]*)"')
_PLAIN_TOKEN = re.compile(r'<span class="[nw]">(?P<text>[^<]*)</span>')
# Attributes whose values decide whether a rule applies: the palette, and the text direction.
_PALETTE_ATTR = re.compile(
    r'\b(data-md-color-primary|data-md-color-accent|data-md-color-scheme|dir)="([^"]*)"'
)
_PALETTE_SELECTOR = re.compile(
    r"\[(data-md-color-primary|data-md-color-accent|data-md-color-scheme|dir)=['\"]?([\w-]+)['\"]?\]"
)
_VAR = re.compile(r"var\(\s*(--[\w-]+)")
_WORD = re.compile(r"[A-Za-z_][\w-]*")
_TAGS = re.compile(r"<[^>]+>")


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def lazy_images(html: str, page_dir: Path | None = None) -> str:
    """`html` with ``loading="lazy"`` on every image, and embedded PNGs written to `page_dir`.

    Args:
        html: A page's HTML.
        page_dir: Where the page's ``index.html`` is written; if given, each
            ``src="data:image/png;base64,..."`` becomes a file there, named by its hash.

    Returns:
        The HTML with the images changed.
    """

    def one(match: re.Match) -> str:
        attrs = match.group("attrs")
        if page_dir is not None:
            embedded = _DATA_PNG.search(attrs)
            if embedded:
                data = base64.b64decode(embedded.group("data"))
                name = f"{hashlib.sha256(data).hexdigest()[:12]}.png"
                page_dir.mkdir(parents=True, exist_ok=True)
                (page_dir / name).write_bytes(data)
                size = _png_size(data)
                attrs = attrs.replace(embedded.group(0), f'src="{name}"')
                if size and "width=" not in attrs and "height=" not in attrs:
                    attrs += f' width="{size[0]}" height="{size[1]}"'
        if "loading=" not in attrs:
            attrs += ' loading="lazy"'
        if "decoding=" not in attrs:
            attrs += ' decoding="async"'
        return f"<img{attrs}{match.group('end')}"

    return _IMG.sub(one, html)


def plain_code_tokens(html: str) -> str:
    """`html` without Pygments' spans for names (``n``) and whitespace (``w``) in code.

    Material colours a name with ``--md-code-hl-name-color``, which is the code's own colour
    (``--md-code-fg-color``), and whitespace not at all, so these spans change nothing a reader
    sees; they are a quarter of the markup of a highlighted listing.
    """
    return _PLAIN_TOKEN.sub(r"\g<text>", html)


@event_priority(-100)  # after every other hook has changed the page
def on_post_page(output, page, config):
    """Lazy images; a notebook's embedded figures become files beside the page; lighter code;
    no indentation."""
    page_dir = None
    if page.file.src_uri.endswith(".ipynb"):
        page_dir = Path(config["site_dir"]) / Path(page.file.dest_uri).parent
    return collapse_whitespace(plain_code_tokens(lazy_images(output, page_dir)))


# ---------------------------------------------------------------- stylesheets


def _selectors(prelude) -> list[list]:
    parts: list[list] = [[]]
    for token in prelude:
        if token == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _required_classes(selector) -> set[str]:
    """The classes a selector requires (not those inside ``:not(...)`` and other functions)."""
    classes, prev = set(), None
    for token in selector:
        if token.type == "ident" and prev is not None and prev == ".":
            classes.add(token.value)
        prev = token
    return classes


def page_classes(html: str) -> set[str]:
    """Every class named in a ``class`` attribute of `html`."""
    return {c for attr in _CLASS_ATTR.findall(html) for c in attr.split()}


@lru_cache(maxsize=8)
def _parse_css(css: str) -> tuple:
    """`css` as a tree: ``("rule", selectors, declarations)``, ``("at", head, tree)`` for
    ``@media``/``@supports``, ``("raw", text, None)`` for other at-rules. Each selector is
    (its text, the classes it requires, the palette attributes it requires). Cached: a
    notebook page's 570 kB JupyterLab stylesheet is the same on every notebook page."""

    def tree(rules) -> tuple:
        out = []
        for rule in rules:
            if rule.type == "qualified-rule":
                selectors = tuple(
                    (
                        text,
                        frozenset(_required_classes(sel)),
                        tuple(_PALETTE_SELECTOR.findall(text)),
                    )
                    for sel in _selectors(rule.prelude)
                    for text in [tinycss2.serialize(sel).strip()]
                )
                declarations = tuple(
                    (
                        # custom property names are case-sensitive, the others are not
                        d.name if d.name.startswith("--") else d.lower_name,
                        tinycss2.serialize(d.value).strip(),
                        d.important,
                    )
                    for d in tinycss2.parse_declaration_list(
                        rule.content, skip_comments=True, skip_whitespace=True
                    )
                    if d.type == "declaration"
                )
                out.append(("rule", selectors, declarations))
            elif rule.type == "at-rule" and rule.lower_at_keyword in (
                "media",
                "supports",
            ):
                head = f"@{rule.at_keyword} {tinycss2.serialize(rule.prelude).strip()}"
                inner = tinycss2.parse_rule_list(
                    rule.content, skip_comments=True, skip_whitespace=True
                )
                out.append(("at", head, tree(inner)))
            elif rule.type == "at-rule" and rule.lower_at_keyword == "charset":
                continue
            elif rule.type != "error":
                out.append(("raw", tinycss2.serialize([rule]), None))
        return tuple(out)

    return tree(
        tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    )


def purge_css(
    css: str,
    classes: set[str],
    palette: dict[str, set[str]] | None,
    reads: set[str] | None = None,
    at_rules: bool = True,
) -> str:
    """Keep the rules of `css` that can apply to the site, and the custom properties read.

    The one stylesheet purge of the site: Material's and KaTeX's stylesheets (here) and the
    JupyterLab theme of notebook pages (hooks/offline_assets.py) go through it.

    Args:
        css: A stylesheet.
        classes: Every class the site's pages and scripts can use.
        palette: For ``data-md-color-primary``, ``-accent``, ``-scheme`` and ``dir``, the
            values the pages set (a rule for right-to-left text or another colour goes); None
            keeps every rule whatever the attributes it requires.
        reads: Custom properties (``--x``) that something outside `css` reads; if given, a
            custom property definition stays only when a kept declaration of `css` reads it
            (directly or through another custom property) or it is in `reads`. If None, every
            definition stays.
        at_rules: Keep ``@font-face``, ``@keyframes`` and the other at-rules besides
            ``@media`` and ``@supports`` (those are purged inside) as they are.

    Returns:
        The stylesheet, minified, without the rules no selector of which can match.
    """
    if not isinstance(css, str):
        raise TypeError(f"css must be a string, got {type(css).__name__}")

    def selector_can_match(required: frozenset, attributes: tuple) -> bool:
        if not required <= classes:
            return False
        return palette is None or all(
            value in palette.get(kind, set()) for kind, value in attributes
        )

    def shake(tree) -> list:
        out = []
        for kind, head, body in tree:
            if kind == "rule":
                kept = [
                    text for text, req, attrs in head if selector_can_match(req, attrs)
                ]
                if kept:
                    out.append(("rule", ",".join(kept), body))
            elif kind == "at":
                inner = shake(body)
                if inner:
                    out.append(("at", head, inner))
            elif at_rules:
                out.append((kind, head, body))
        return out

    def declarations(tree):
        for kind, head, body in tree:
            if kind == "rule":
                yield from body
            elif kind == "at":
                yield from declarations(body)

    kept = shake(_parse_css(css))
    needed = None
    if reads is not None:
        values: dict[str, list[str]] = {}
        todo = list(reads)
        for name, value, _ in declarations(kept):
            if name.startswith("--"):
                values.setdefault(name, []).append(value)
            else:
                todo += _VAR.findall(value)
        for kind, head, _ in kept:
            if kind == "raw":
                todo += _VAR.findall(head)
        needed = set()
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                for value in values.get(name, []):
                    todo += _VAR.findall(value)

    def emit(tree) -> str:
        out = []
        for kind, head, body in tree:
            if kind == "raw":
                out.append(head)
                continue
            if kind == "rule":
                text = ";".join(
                    f"{name}:{value}{' !important' if important else ''}"
                    for name, value, important in body
                    if needed is None or not name.startswith("--") or name in needed
                )
            else:
                text = emit(body)
            if text:
                out.append(f"{head}{{{text}}}")
        return "".join(out)

    return emit(kept)


# Material components whose styles and scripts ship with every site, each with the setting that
# turns it on: without that setting no page shows one, and their rules leave the stylesheet.
# (Their class names are in Material's bundle, which is why the purge keeps them otherwise.)
_COMPONENTS = {
    "md-version": lambda config: bool(config["extra"].get("version")),
    "md-source": lambda config: bool(config.get("repo_url")),
    "md-tag": lambda config: "tags" in config["plugins"],
    "md-tooltip2": lambda config: "content.tooltips" in _features(config),
    "md-annotation": lambda config: "content.code.annotate" in _features(config),
    "md-status": lambda config: False,  # a page's status icon is in its HTML when set
}


def _features(config) -> list:
    theme = config["theme"]
    features = theme.get("features") if hasattr(theme, "get") else None
    return list(features or [])


def unused_components(config, classes: set[str]) -> tuple[str, ...]:
    """Class prefixes of the Material components that no page of this site can show.

    Args:
        config: The MkDocs config.
        classes: Every class in the built pages (a component a page shows stays).
    """
    return tuple(
        prefix
        for prefix, enabled in _COMPONENTS.items()
        if not enabled(config) and not any(c.startswith(prefix) for c in classes)
    )


_WHITESPACE_SAFE = re.compile(
    r"(<(pre|textarea|script|style|code)\b.*?</\2\s*>)", re.IGNORECASE | re.DOTALL
)
_INDENT = re.compile(r"[ \t\r\f]*\n\s*")


def collapse_whitespace(html: str) -> str:
    """`html` with every run of whitespace that holds a line break cut to one line break.

    A browser shows such a run as one space anyway (or nothing, between blocks), so the page
    looks the same; the indentation of Material's templates is a tenth of a page. The text of
    ``<pre>``, ``<textarea>``, ``<code>``, ``<script>`` and ``<style>`` is left as it is.
    """
    parts = _WHITESPACE_SAFE.split(html)
    # split() returns text, (element, tag name), text, ...: only the text between is changed
    out = []
    for i in range(0, len(parts), 3):
        out.append(_INDENT.sub("\n", parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


_SITEMAP_LASTMOD = re.compile(r"\s*<lastmod>[^<]*</lastmod>")


def compact_sitemap(site: Path) -> None:
    """Cut ``sitemap.xml`` to the page addresses, as Material's instant navigation reads it.

    Every page fetches the sitemap on load (instant navigation learns from it which links are
    the site's own); the build date of each page and the indentation are a half of it.
    """
    for path in (site / "sitemap.xml", site / "sitemap.xml.gz"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
        text = re.sub(r">\s+<", "><", _SITEMAP_LASTMOD.sub("", text))
        data = text.encode()
        path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _hashed(path: Path, data: bytes) -> Path:
    """Write `data` beside `path` under a name holding its hash; remove `path`."""
    digest = hashlib.sha256(data).hexdigest()[:10]
    stem = path.name.split(".")[0]
    suffix = ".min.css" if path.name.endswith(".min.css") else path.suffix
    target = path.with_name(f"{stem}.{digest}{suffix}")
    target.write_bytes(data)
    if target != path:
        path.unlink()
    return target


def _katex_fonts(site: Path, text: str, katex_dir: Path) -> dict[str, str]:
    """Subset every KaTeX font to the characters of `text`; old name -> new name."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(
        logging.ERROR
    )  # KaTeX's fonts' old timestamps

    unicodes = {ord(c) for c in text} | set(range(0x20, 0x7F))
    renames = {}
    for font_path in sorted((katex_dir / "fonts").glob("*.woff2")):
        # read KaTeX's TrueType copy: decoding WOFF2 would need the Brotli module
        source = KATEX_FONTS / (font_path.name[: -len(".woff2")] + ".ttf")
        if not source.is_file():
            log.info("KaTeX font %s left whole (no %s)", font_path.name, source)
            continue
        font = TTFont(source)
        options = subset.Options()
        options.flavor = "woff"
        options.hinting = False
        options.desubroutinize = True
        options.name_IDs = []
        options.notdef_outline = True
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        buffer = io.BytesIO()
        font.flavor = "woff"
        font.save(buffer)
        data = buffer.getvalue()
        stem = font_path.name[: -len(".woff2")]
        name = f"{stem}.{hashlib.sha256(data).hexdigest()[:10]}.woff"
        (font_path.parent / name).write_bytes(data)
        renames[font_path.name] = name
    return renames


@event_priority(-100)  # after hooks/katex.py has written KaTeX's stylesheet and fonts
def on_post_build(config):
    """Purge and rename Material's and KaTeX's stylesheets, subset KaTeX's fonts, relink pages."""
    site = Path(config["site_dir"])
    pages = [p for p in site.rglob("*.html") if p.parts[len(site.parts)] != "snippets"]
    htmls = {p: p.read_text(encoding="utf-8") for p in pages}
    classes: set[str] = set()
    palette: dict[str, set[str]] = {}
    for html in htmls.values():
        classes |= page_classes(html)
        for kind, value in _PALETTE_ATTR.findall(html):
            palette.setdefault(kind, set()).add(value)
    scripts = "".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in (site / "assets" / "javascripts").rglob("*.js")
    )
    unused = unused_components(config, classes)
    script_words = {
        word
        for word in _WORD.findall(scripts)
        if word in classes or not word.startswith(unused)
    }
    # Custom properties read anywhere outside Material's own two stylesheets stay defined.
    reads = set(_VAR.findall(scripts)) | set(_VAR.findall("".join(htmls.values())))
    stylesheets = site / "assets" / "stylesheets"
    material = sorted(stylesheets.glob("main.*.min.css")) + sorted(
        stylesheets.glob("palette.*.min.css")
    )
    for css_path in site.rglob("*.css"):
        if css_path not in material:
            reads |= set(
                _VAR.findall(css_path.read_text(encoding="utf-8", errors="replace"))
            )
    renames: dict[str, str] = {}
    # main reads what palette defines and the other way round: each counts the other's reads
    sources = [p.read_text(encoding="utf-8") for p in material]
    first = [purge_css(css, classes | script_words, palette) for css in sources]
    for i, (path, css) in enumerate(zip(material, sources)):
        others = {
            v for j, text in enumerate(first) if j != i for v in _VAR.findall(text)
        }
        css = purge_css(css, classes | script_words, palette, reads | others)
        renames[path.name] = _hashed(path, css.encode()).name

    # mkdocstrings' stylesheet, linked by every page: cut to the classes the pages use
    for css_path in (site / "assets").glob("_mkdocstrings.css"):
        css = purge_css(css_path.read_text(encoding="utf-8"), classes, palette)
        renames[css_path.name] = _hashed(css_path, css.encode()).name

    katex_dir = site / "assets" / "katex"
    katex_css = katex_dir / "katex.min.css"
    if katex_css.is_file():
        text = "".join(_TAGS.sub("", html) for html in htmls.values())
        import html as html_lib

        fonts = _katex_fonts(site, html_lib.unescape(text), katex_dir)
        css = purge_css(katex_css.read_text(encoding="utf-8"), classes, palette)
        for old, new in fonts.items():
            css = css.replace(f"fonts/{old}", f"fonts/{new}").replace(
                f'{new}) format("woff2")', f'{new}) format("woff")'
            )
        for old in fonts:
            (katex_dir / "fonts" / old).unlink()
        renames[katex_css.name] = _hashed(katex_css, css.encode()).name

    compact_sitemap(site)
    link = re.compile(
        r'(href="[^"]*/?)('
        + "|".join(re.escape(name) for name in sorted(renames, key=len, reverse=True))
        + r')"'
    )
    for path, html in htmls.items():
        new = link.sub(lambda m: f'{m.group(1)}{renames[m.group(2)]}"', html)
        if new != html:
            path.write_text(new, encoding="utf-8")
