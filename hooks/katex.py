r"""MkDocs hook: every equation is typeset by KaTeX when the site is built, not in the browser.

* pymdownx.arithmatex (generic mode) marks math as ``<span class="arithmatex">\(..\)</span>`` and
  ``<div class="arithmatex">\[..\]</div>``, in pages and in mkdocstrings' docstrings alike; the
  Markdown cells of notebooks (mkdocs-jupyter) keep ``$..$`` and ``$$..$$`` in their text. Both are
  replaced by KaTeX's HTML (what the reader sees) and MathML (what a screen reader reads; without
  the TeX annotation, which no tool of the site reads).
* All the math of a build goes through ONE long-lived ``node`` process running
  ``hooks/katex_server.js`` (KaTeX from ``node_modules/``, pinned in package-lock.json and installed
  by ``npm ci``), one request per page; results are cached for the rebuilds of ``mkdocs serve``.
* A TeX error fails the build, naming the page and the TeX (KaTeX's strict mode counts as an error).
* Search: Material's search plugin indexes ``page.content`` in its ``on_page_context``. Just
  before it, the page's content is swapped for a version made for the index (restored right
  after): each inline formula is the text of its MathML (``αˉt``), never raw TeX; display
  equations, code listings (highlighted blocks except API signatures, notebook code cells with
  their outputs) and tables of measured numbers are left out, and in the API reference each
  docstring is indexed by its signature (the names of the object and its parameters, see
  ``signature_names``) and its summary paragraph. Material's own ``data-search-exclude`` cannot do this: its parser matches elements by
  tag name, so an excluded ``<div>`` or ``<span>`` stops being excluded at its first nested
  ``</div>`` or ``</span>``.
* Only a page with math links KaTeX's stylesheet (served from ``site/assets/katex/``, woff2 fonts
  only) and ``stylesheets/math.css``; the links sit in the page content, so Material's instant
  navigation brings them along.
"""

from __future__ import annotations

import atexit
import html
import json
import posixpath
import re
import shutil
import subprocess
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import CombinedEvent, event_priority

REPO = Path(__file__).resolve().parent.parent
SERVER = Path(__file__).resolve().parent / "katex_server.js"
KATEX_DIST = REPO / "node_modules" / "katex" / "dist"
CSS_NAME = "assets/katex/katex.min.css"
MATH_CSS = "stylesheets/math.css"

_ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">(?P<body>.*?)</(?P=tag)>', re.DOTALL
)
_INLINE = re.compile(r"^\\\((?P<tex>.*)\\\)$", re.DOTALL)
_DISPLAY = re.compile(r"^(?:\\\[(?P<a>.*)\\\]|\$\$(?P<b>.*)\$\$)$", re.DOTALL)
# Notebook Markdown: $$..$$ (display) before $..$ (inline); a `\$` is a literal dollar sign.
_DOLLARS = re.compile(
    r"(?<![\\$])\$\$(?P<display>.+?)(?<!\\)\$\$|(?<![\\$])\$(?P<inline>[^$]+?)(?<![\\$])\$(?!\$)",
    re.DOTALL,
)
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^>]*)>")
_MARKDOWN_CELL = "jp-MarkdownOutput"
_MATHML = re.compile(r"<math\b.*?</math>", re.DOTALL)
_ANNOTATION = re.compile(r"<annotation\b.*?</annotation>", re.DOTALL)
# Listings leave the search index: highlighted blocks (but not mkdocstrings' signatures), the
# "Source code in ..." boxes of the API reference and notebook code cells (with their outputs).
_BLOCK = re.compile(r'<(?P<tag>div|details) class="(?P<cls>[^"]*)"[^>]*>')
_LISTING_CLASSES = {"highlight", "jp-CodeCell", "mkdocstrings-source"}
# A benchmark's results embedded from benchmarks/results/*.md, wrapped in
# ``<div class="results" markdown>``: its table and the notes under it (the run's settings, the
# machine) are measurements; the prose around the block says what they measure.
_RESULTS_CLASS = "results"
# mkdocstrings' tables of parameters, return values and exceptions, with their titles.
_DOC_SECTION = re.compile(
    r'<p>\s*<span class="doc-section-title">[^<]*</span>\s*</p>\s*<table>.*?</table>',
    re.DOTALL,
)
# Tables of measured numbers, and the notes of the benchmarks' results on their machine.
_TABLE = re.compile(r"<table>.*?</table>", re.DOTALL)
_TABLE_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
_NUMBER = re.compile(
    r"^(?:n/a|[-+−–~≈<>=×x±*†%.,:/()\s\d]*\d[-+−–~≈<>=×x±*†%.,:/()\s\d]*"
    r"(?:\s*(?:s|ms|µs|min|MB|kB|GB|M|k|steps|x))?)$"
)
_MEASURED_NOTE = re.compile(r"<p><em>Measured \d{4}-\d\d-\d\d\b.*?</p>", re.DOTALL)
# The API reference's link to each module's file (hooks/offline_assets.py): no search term.
_MODULE_SOURCE = re.compile(r'<p class="module-source">.*?</p>', re.DOTALL)
# Markup that a search preview can do without (each is a few bytes, thousands of times).
_UNWRAP = re.compile(r"</?(?:code|p|ul|ol|li)\b[^>]*>")


class KatexServer:
    """One ``node hooks/katex_server.js`` process, answering one JSON line per request."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.cache: dict[tuple[str, bool], dict] = {}

    def _start(self) -> subprocess.Popen:
        node = shutil.which("node")
        if node is None:
            raise PluginError(
                "KaTeX needs Node.js: install `node` and `npm`, then run `npm ci` "
                "(`make build`, `make serve` and `make test` do)."
            )
        if not (KATEX_DIST / "katex.min.css").is_file():
            raise PluginError(
                f"KaTeX is not installed in {KATEX_DIST.parent}: run `npm ci` in {REPO} "
                "(`make build`, `make serve` and `make test` do)."
            )
        return subprocess.Popen(
            [node, str(SERVER)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def render(self, items: list[tuple[str, bool]]) -> list[dict]:
        """KaTeX's answer for each `(tex, display)`: `{"html": ...}` or `{"error": ...}`."""
        todo = sorted({item for item in items if item not in self.cache})
        if todo:
            if self.process is None or self.process.poll() is not None:
                self.process = self._start()
            self.process.stdin.write(json.dumps(todo) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
            if not line:
                raise PluginError("the KaTeX process (hooks/katex_server.js) stopped")
            answers = json.loads(line)
            if isinstance(answers, dict):
                raise PluginError(f"the KaTeX process failed: {answers['error']}")
            self.cache.update(zip(todo, answers))
        return [self.cache[item] for item in items]

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


SERVER_PROCESS = KatexServer()
atexit.register(SERVER_PROCESS.close)


def plain_text(katex_html: str) -> str:
    """The text of KaTeX's MathML for an equation, for the search index (no TeX, no markup)."""
    mathml = _MATHML.search(katex_html)
    if mathml is None:
        raise PluginError(f"KaTeX's output has no MathML: {katex_html[:200]!r}")
    text = re.sub(r"<[^>]+>", "", _ANNOTATION.sub("", mathml.group(0)))
    return html.escape(" ".join(html.unescape(text).split()), quote=False)


def drop_blocks(content: str, is_block) -> str:
    """Remove every element whose start tag satisfies `is_block(match)`, with its content.

    Args:
        content: HTML.
        is_block: Called with a match of `_BLOCK` (a ``<div class=...>`` or
            ``<details class=...>`` start tag).

    Returns:
        `content` without those elements (nested elements of the same tag are counted, so the
        whole element goes).
    """
    out, pos = [], 0
    while True:
        match = next((m for m in _BLOCK.finditer(content, pos) if is_block(m)), None)
        if match is None:
            out.append(content[pos:])
            return "".join(out)
        out.append(content[pos : match.start()])
        depth, end = 1, match.end()
        same_tag = re.compile(rf"<(/?){match.group('tag')}\b[^>]*>")
        for tag in same_tag.finditer(content, match.end()):
            depth += -1 if tag.group(1) else 1
            if depth == 0:
                end = tag.end()
                break
        else:
            raise PluginError(
                f"unbalanced <{match.group('tag')}> after {match.group(0)!r}"
            )
        pos = end


def display_math(katex_html: str) -> bool:
    """Whether KaTeX's output is a display equation (not inline math)."""
    return katex_html.startswith('<span class="katex-display">')


_DOC_CONTENTS = re.compile(r'<div class="doc doc-contents[^"]*">')
_TOP_TAG = re.compile(r"<(/?)(\w+)\b[^>]*?(/?)>")


def docstring_summaries(content: str) -> str:
    """`content` with each API docstring cut to its summary paragraph (mkdocstrings' HTML).

    In each ``<div class="doc doc-contents">``, the first ``<p>`` and the nested API objects
    (``<div class="doc ...">``: a module's functions, a class's methods) stay; the rest of the
    docstring (further paragraphs, lists, admonitions, parameter tables) goes.
    """
    out, pos = [], 0
    for match in _DOC_CONTENTS.finditer(content):
        if match.start() < pos:
            continue  # inside a block already copied below
        out.append(content[pos : match.end()])
        depth, kept_summary, cursor = 0, False, match.end()
        child_start = None
        for tag in _TOP_TAG.finditer(content, match.end()):
            closing, name, self_closing = (
                tag.group(1),
                tag.group(2).lower(),
                tag.group(3),
            )
            if self_closing or name in _VOID:
                continue
            if not closing:
                if depth == 0:
                    child_start = tag.start()
                depth += 1
                continue
            depth -= 1
            if depth < 0:  # the end of doc-contents
                out.append(content[cursor : tag.end()])
                pos = tag.end()
                break
            if depth == 0:
                child = content[child_start : tag.end()]
                out.append(
                    content[cursor:child_start]
                )  # the whitespace between elements
                if name == "p" and not kept_summary:
                    kept_summary = True
                    out.append(child)
                elif child.startswith('<div class="doc '):
                    out.append(docstring_summaries(child))
                cursor = tag.end()
        else:
            raise PluginError(f"unbalanced HTML after {match.group(0)!r}")
    out.append(content[pos:])
    return "".join(out)


def _is_table_of_numbers(match: re.Match) -> bool:
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in _TABLE_CELL.findall(match.group(0))
    ]
    numbers = sum(bool(_NUMBER.match(cell)) for cell in cells)
    return bool(cells) and numbers >= len(cells) / 2


def for_search(content: str) -> str:
    """`content` as the search index stores it: text, few tags, no tables of numbers.

    No ``<p>``, ``<code>`` or list tags; whitespace collapsed, in the ``<pre>`` of API signatures too;
    mkdocstrings' Parameters/Returns/Yields/Raises tables left out (the parameter names are in
    the signature, the summary and prose of the docstring stay); tables whose cells are mostly
    numbers (measured results: the prose around them says what they measure) and the
    "Measured on ..." notes under them left out. These are bytes that every reader downloads
    with the index.
    """
    content = _DOC_SECTION.sub(" ", content)
    content = _TABLE.sub(
        lambda m: " " if _is_table_of_numbers(m) else m.group(0), content
    )
    content = _MEASURED_NOTE.sub(" ", content)
    content = _MODULE_SOURCE.sub(" ", content)
    content = _UNWRAP.sub(lambda m: "" if "code" in m.group(0) else " ", content)
    return re.sub(r"\s+", " ", content)


def _is_listing(match: re.Match) -> bool:
    classes = set(match.group("cls").split())
    if _RESULTS_CLASS in classes:
        return True
    return bool(classes & _LISTING_CLASSES) and "doc-signature" not in classes


def _notebook_math(content: str) -> str:
    """Mark the `$..$`/`$$..$$` of notebook Markdown cells as arithmatex spans.

    Only text inside a ``jp-MarkdownOutput`` element and outside ``<code>``/``<pre>`` is read.
    """
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # (tag, is a Markdown cell or inside one)
    skip_depth = 0
    pos = 0

    def text(chunk: str) -> str:
        in_markdown = bool(stack) and stack[-1][1]
        if not in_markdown or skip_depth:
            return chunk

        def mark(match: re.Match) -> str:
            if match.group("display") is not None:
                return f'<span class="arithmatex">\\[{match.group("display")}\\]</span>'
            return f'<span class="arithmatex">\\({match.group("inline")}\\)</span>'

        return _DOLLARS.sub(mark, chunk)

    # Text between tags is collected whole, so a formula split by an HTML tag stays raw (and
    # the browser test, which looks for a raw `$`, catches it).
    for match in _TAG.finditer(content):
        out.append(text(content[pos : match.start()]))
        closing, tag, attrs = match.group(1), match.group(2).lower(), match.group(3)
        if tag in ("code", "pre", "script", "style"):
            skip_depth += -1 if closing else 1
        elif not attrs.rstrip().endswith("/") and tag not in _VOID:
            if closing:
                while stack and stack.pop()[0] != tag:
                    pass
            else:
                inside = (bool(stack) and stack[-1][1]) or _MARKDOWN_CELL in attrs
                stack.append((tag, inside))
        out.append(match.group(0))
        pos = match.end()
    out.append(text(content[pos:]))
    return "".join(out)


_VOID = {
    "area",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


def _page_dir(page) -> str:
    url = page.url
    return (url.rstrip("/") if url.endswith("/") else posixpath.dirname(url)) or "."


FOR_SEARCH: dict[str, str] = {}  # page -> the content the search index is built from
_REAL: dict[str, str] = {}


@event_priority(100)  # before Material's search plugin (priority 0) reads page.content
def _content_for_search(context, page, config, nav):
    if page.file.src_uri in FOR_SEARCH:
        _REAL[page.file.src_uri] = page.content
        page.content = FOR_SEARCH.pop(page.file.src_uri)
    return context


@event_priority(-100)  # after it: the page is rendered with its real content
def _real_content(context, page, config, nav):
    if page.file.src_uri in _REAL:
        page.content = _REAL.pop(page.file.src_uri)
    return context


on_page_context = CombinedEvent(_content_for_search, _real_content)


def on_page_content(html_content, page, config, files):
    """Typeset the page's math with KaTeX; link KaTeX's CSS if the page has any."""
    if page.file.src_uri.endswith(".ipynb"):
        html_content = _notebook_math(html_content)
    found = list(_ARITHMATEX.finditer(html_content))
    items: list[tuple[str, bool]] = []
    for match in found:
        body = html.unescape(match.group("body")).strip()
        inline = _INLINE.match(body)
        display = _DISPLAY.match(body)
        if inline:
            items.append((inline.group("tex").strip(), False))
        elif display:
            items.append(((display.group("a") or display.group("b")).strip(), True))
        else:
            raise PluginError(
                f"{page.file.src_uri}: math without \\(..\\) or \\[..\\] delimiters: {body!r}"
            )
    answers = SERVER_PROCESS.render(items) if items else []
    errors = [
        f"  {tex!r}: {answer['error']}"
        for (tex, _), answer in zip(items, answers)
        if "error" in answer
    ]
    if errors:
        raise PluginError(
            f"KaTeX cannot typeset {len(errors)} equation(s) on {page.file.src_uri}:\n"
            + "\n".join(errors)
        )
    parts, search_parts, pos = [], [], 0
    for match, answer in zip(found, answers):
        between = html_content[pos : match.start()]
        tag = match.group("tag")
        # The TeX source that KaTeX copies into the MathML is for copy-and-paste tools that
        # the site does not ship; the MathML itself stays for screen readers.
        parts += [
            between,
            f'<{tag} class="arithmatex">{_ANNOTATION.sub("", answer["html"])}</{tag}>',
        ]
        # Inline math is part of a sentence and stays searchable; a display equation's text
        # (``xt=αˉtx0+...``) matches no query anyone types, so it leaves the index.
        search_parts += [
            between,
            ""
            if display_math(answer["html"])
            else f"<{tag}>{plain_text(answer['html'])}</{tag}>",
        ]
        pos = match.end()
    parts.append(html_content[pos:])
    search_parts.append(html_content[pos:])
    html_content = "".join(parts)
    FOR_SEARCH[page.file.src_uri] = for_search(
        docstring_summaries(drop_blocks("".join(search_parts), _is_listing))
    )
    if found:
        base = _page_dir(page)
        links = "".join(
            f'<link rel="stylesheet" href="{posixpath.relpath(name, base)}">'
            for name in (CSS_NAME, MATH_CSS)
        )
        html_content = links + html_content
    return html_content


_FONT_SRC = re.compile(r"src:(?P<urls>[^;}]*)")
_SIGNATURE = re.compile(r"<pre>\s*(?P<sig>.*?)\s*</pre>", re.DOTALL)
_CALL = re.compile(r"^(?P<name>[\w.]+)\((?P<params>.*)\)(?:\s*-&gt;.*)?$", re.DOTALL)


def signature_names(signature: str) -> str:
    """An API signature as the search index keeps it: the name and the parameters' names.

    ``q_sample(x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor`` becomes
    ``q_sample(x0, t, noise)``: every name a reader may search for, without the annotations
    and defaults that the reference page shows in full. A signature that does not parse is
    returned as it is.
    """
    call = _CALL.match(signature.strip())
    if call is None:
        return signature
    names, depth, quote, current = [], 0, "", ""
    for char in html.unescape(call.group("params")) + ",":
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            name = re.split(r"[:=]", current, maxsplit=1)[0].strip()
            names += [name] if name else []
            current = ""
            continue
        current += char
    return f"{call.group('name')}({', '.join(names)})"


def without_title(title: str, text: str) -> str:
    """An API entry's text without the name its title already shows: ``(x0, t, noise) ...``.

    Search matches the title (boosted), and a result shows the title above the text, so the
    name need not be stored twice; text that does not open with ``title(`` is left alone.
    """
    return text[len(title) :] if title and text.startswith(title + "(") else text


def without_empty_page_entries(docs: list[dict]) -> list[dict]:
    """The index's entries without each empty page entry whose first section has its title.

    An API module's page (``reference/forward/``) has no text before its first section, the
    module itself (``reference/forward/#snippets.forward``), which has the same title. Material's
    search worker takes the first entry of a page as the page, so dropping the empty one makes
    that section the page's entry: the same result, stored once.
    """
    kept = []
    for doc, after in zip(docs, [*docs[1:], None]):
        if (
            after is not None
            and not doc["text"]
            and "#" not in doc["location"]
            and after["location"].split("#")[0] == doc["location"]
            and after["title"] == doc["title"]
        ):
            continue
        kept.append(doc)
    return kept


def without_repeats(docs: list[dict]) -> list[dict]:
    """The index's entries without a second entry of the same title and text.

    A function re-exported by another module (`snippets.sampling` re-exports the Karras and
    DPM-Solver samplers) is documented on both modules' pages; search needs it once, at the
    module that defines it (the first, in the reference's order).
    """
    seen, kept = set(), []
    for doc in docs:
        key = (doc["title"], doc["text"])
        if doc["text"] and key in seen:
            continue
        seen.add(key)
        kept.append(doc)
    return kept


def katex_css() -> str:
    """KaTeX's stylesheet with each font's `src` cut to its woff2 file (every browser since 2016)."""
    css = (KATEX_DIST / "katex.min.css").read_text(encoding="utf-8")

    def woff2_only(match: re.Match) -> str:
        sources = [s for s in match.group("urls").split(",") if "woff2" in s]
        if len(sources) != 1:
            raise PluginError(
                f"unexpected @font-face src in katex.min.css: {match.group(0)}"
            )
        return "src:" + sources[0].strip()

    return _FONT_SRC.sub(woff2_only, css)


def on_post_build(config):
    """Serve KaTeX's CSS and woff2 fonts from the site itself; write the search index as UTF-8.

    Material writes ``search/search_index.json`` with every non-ASCII character escaped (six bytes
    for an α); the same JSON in UTF-8 is what the search worker reads, a few percent smaller.
    An API entry's text loses the name its title shows (``without_title``), a page entry with
    no text of its own gives way to its first section (``without_empty_page_entries``), and an
    entry repeated word for word (a re-exported function) is kept once (``without_repeats``).
    """
    index = Path(config["site_dir"]) / "search" / "search_index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        for doc in data.get("docs", []):
            doc["text"] = without_title(
                doc["title"],
                _SIGNATURE.sub(
                    lambda m: signature_names(m.group("sig")),
                    " ".join(doc["text"].split()),
                ),
            )
        data["docs"] = without_repeats(without_empty_page_entries(data.get("docs", [])))
        index.write_text(
            json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            encoding="utf-8",
        )
    dest = Path(config["site_dir"]) / "assets" / "katex"
    (dest / "fonts").mkdir(parents=True, exist_ok=True)
    (dest / "katex.min.css").write_text(katex_css(), encoding="utf-8")
    for font in (KATEX_DIST / "fonts").glob("*.woff2"):
        shutil.copy2(font, dest / "fonts" / font.name)
    shutil.copy2(KATEX_DIST.parent / "LICENSE", dest / "LICENSE")


def on_shutdown():
    SERVER_PROCESS.close()
