r"""The build hooks on their own: KaTeX at build time (hooks/katex.py) and the notebook CSS trim.

These run in a second each (one `node` process for the whole module), without building the site;
tests/site/test_site_browser.py checks the built pages in a browser.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError

from hooks import katex
from hooks.offline_assets import trim_css

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (katex.KATEX_DIST / "katex.min.css").is_file(),
    reason="KaTeX needs Node.js and `npm ci` (make does both)",
)


def fake_page(src_uri: str, url: str):
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri), url=url, content=None)


def test_notebook_math_marks_dollars_only_in_markdown_text():
    html = (
        '<div class="jp-RenderedHTMLCommon jp-MarkdownOutput"><p>Noise $x_t$ costs \\$5,'
        " not $$5$$.</p><p>$$\na < b\n$$</p><pre>$kept$</pre><code>$kept$</code></div>"
        '<div class="jp-OutputArea"><pre>$output$</pre><p>$also kept$</p></div>'
    )
    out = katex._notebook_math(html)
    assert '<span class="arithmatex">\\(x_t\\)</span>' in out
    assert '<span class="arithmatex">\\[5\\]</span>' in out
    assert '<span class="arithmatex">\\[\na < b\n\\]</span>' in out
    assert "\\$5" in out  # an escaped dollar is a dollar sign
    assert "<pre>$kept$</pre><code>$kept$</code>" in out
    assert "<pre>$output$</pre><p>$also kept$</p>" in out  # outside a Markdown cell


@needs_node
def test_katex_renders_inline_and_display_math_and_reports_errors():
    good, display, bad, unicode_letter = katex.SERVER_PROCESS.render(
        [
            ("x_t = \\sqrt{\\bar\\alpha_t}\\,x_0", False),
            ("\\epsilon \\tag{4}", True),
            ("\\frac{a", False),
            ("é", False),
        ]
    )
    assert (
        '<span class="katex">' in good["html"] and "katex-display" not in good["html"]
    )
    assert (
        '<span class="katex-display">' in display["html"] and "(4)" in display["html"]
    )
    assert "error" in bad and "error" in unicode_letter  # strict mode is an error too


@needs_node
def test_a_tex_error_fails_the_build_naming_the_page_and_the_tex():
    page = fake_page("papers/broken.md", "papers/broken/")
    with pytest.raises(PluginError, match=r"papers/broken\.md") as error:
        katex.on_page_content(
            '<p><span class="arithmatex">\\(\\frac{a}{\\)</span></p>', page, {}, None
        )
    assert "\\\\frac{a}{" in str(error.value)


@needs_node
def test_a_page_with_math_ships_typeset_math_and_links_katex_css():
    page = fake_page("unit1/x.md", "unit1/x/")
    html = katex.on_page_content(
        '<p>Let <span class="arithmatex">\\(\\alpha &lt; 1\\)</span>.</p>\n'
        '<div class="arithmatex">\\[\nx_t = \\sqrt{\\bar\\alpha_t}\\,x_0\n\\]</div>',
        page,
        {},
        None,
    )
    assert html.startswith(
        '<link rel="stylesheet" href="../../assets/katex/katex.min.css">'
        '<link rel="stylesheet" href="../../stylesheets/math.css">'
    )
    assert html.count('<span class="katex">') == 2
    assert '<div class="arithmatex"><span class="katex-display">' in html
    assert "\\(" not in html and "\\[" not in html


@needs_node
def test_a_page_without_math_links_no_math_css():
    page = fake_page("resources.md", "resources/")
    html = katex.on_page_content("<p>No math, $5 only.</p>", page, {}, None)
    assert html == "<p>No math, $5 only.</p>"


@needs_node
def test_search_indexes_plain_math_and_no_listings_then_the_page_gets_its_html():
    page = fake_page("reference/x.md", "reference/x/")
    html = katex.on_page_content(
        '<p>Sample <span class="arithmatex">\\(x_t \\sim q\\)</span>.</p>'
        '<div class="doc-signature highlight"><pre><code>q_sample(x0, t)</code></pre></div>'
        '<div class="language-python highlight"><pre><code>def body(): pass</code></pre>'
        "<div>nested</div></div>"
        '<details class="mkdocstrings-source"><summary>Source code in x.py</summary></details>'
        "<p>After.</p>",
        page,
        {},
        None,
    )
    page.content = html
    katex._content_for_search({}, page, {}, None)
    indexed = page.content
    assert "xt∼q" in indexed and "katex" not in indexed and "\\" not in indexed
    assert "<pre>q_sample(x0, t)</pre>" in indexed  # the API signature stays searchable
    assert "def body" not in indexed and "nested" not in indexed
    assert "Source code" not in indexed and "After." in indexed
    katex._real_content({}, page, {}, None)
    assert page.content == html


def test_drop_blocks_removes_nested_elements_whole():
    html = (
        '<div class="highlight"><div><div>a</div></div>b</div>c'
        '<details class="mkdocstrings-source"><details class="note">d</details>e</details>f'
    )
    assert katex.drop_blocks(html, katex._is_listing) == "cf"


@needs_node
def test_katex_css_keeps_only_woff2_fonts_that_exist():
    css = katex.katex_css()
    assert ".woff)" not in css and ".ttf" not in css and 'format("woff")' not in css
    fonts = {name for name in css.split("url(")[1:]}
    assert len(fonts) >= 15
    for entry in fonts:
        name = entry.split(")")[0].strip("'\"")
        assert name.endswith(".woff2")
        assert (katex.KATEX_DIST / name).is_file(), name


def test_trim_css_keeps_rules_for_classes_the_page_uses_and_the_variables_they_read():
    css = (
        ".w{--used:var(--chained);--chained:red;--unused:blue}"
        "[data-md-color-scheme=slate] .w{--chained:white}"
        ".w .jp-Cell{color:var(--used)}"
        ".w .jp-Dialog{color:var(--unused)}"
        ".jp-Cell:not(.jp-mod-active),.jp-Toolbar{margin:0}"
        "@media (max-width:760px){.jp-Cell{padding:0}.jp-Toolbar{padding:1px}}"
        "@keyframes spin{to{transform:rotate(1turn)}}"
    )
    page = '<div class="w"><div class="jp-Cell x">text</div></div>'
    out = trim_css(css, page)
    assert out == (
        ".w{--used:var(--chained);--chained:red}"
        "[data-md-color-scheme=slate] .w{--chained:white}"
        ".w .jp-Cell{color:var(--used)}"
        ".jp-Cell:not(.jp-mod-active){margin:0}"
        "@media (max-width:760px){.jp-Cell{padding:0}}"
    )
    with pytest.raises(TypeError, match="css"):
        trim_css(None, page)


class _VisibleText(HTMLParser):
    """The text a reader sees as prose: outside code, scripts and KaTeX's output."""

    SKIP = {"pre", "code", "script", "style", "textarea"}

    def __init__(self):
        super().__init__()
        self.skip = 0
        self.katex_depth = 0  # open <span>s inside a KaTeX formula
        self.text: list[str] = []
        self.dollar_next_to_math = (
            ""  # the text before the first `$` that touches a formula
        )

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "span" and self.katex_depth:
            self.katex_depth += 1
        elif tag == "span" and "katex" in (dict(attrs).get("class") or "").split():
            self.katex_depth = 1
            if "".join(self.text[-1:]).endswith("$") and not self.dollar_next_to_math:
                self.dollar_next_to_math = "".join(self.text)[-80:]
            self.text.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip -= 1
        elif tag == "span" and self.katex_depth:
            self.katex_depth -= 1

    def handle_data(self, data):
        if self.skip or self.katex_depth:
            return
        if data.startswith("$") and self.text and self.text[-1] == " ":
            self.dollar_next_to_math = (
                self.dollar_next_to_math or "".join(self.text)[-80:]
            )
        self.text.append(data)


def test_no_built_page_shows_raw_tex(built_site):
    pages = [
        page
        for page in built_site.rglob("*.html")
        if page.relative_to(built_site).parts[0] not in ("assets", "snippets")
    ]
    assert len(pages) > 20
    problems = []
    for page in pages:
        parser = _VisibleText()
        parser.feed(page.read_text(encoding="utf-8"))
        text = "".join(parser.text)
        raw = [d for d in ("$$", "\\(", "\\)", "\\[", "\\]", "\\begin{") if d in text]
        if raw:
            at = text.find(raw[0])
            problems.append(
                f"{page.relative_to(built_site)}: {raw} in "
                f"{text[max(at - 60, 0) : at + 40]!r}"
            )
        if parser.dollar_next_to_math:
            problems.append(
                f"{page.relative_to(built_site)}: a $ next to typeset math after "
                f"{parser.dollar_next_to_math!r}"
            )
    assert not problems, "raw TeX in the built pages:\n" + "\n".join(problems)


def test_every_page_holds_the_search_index_back_until_a_search(built_site):
    pages = [
        page
        for page in built_site.rglob("*.html")
        if page.relative_to(built_site).parts[0] not in ("assets", "snippets")
    ]
    missing = []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        script = html.find('<script id="search-on-demand">')
        bundle = re.search(r'<script src="[^"]*assets/javascripts/bundle\.', html)
        if bundle is None or not 0 <= script < bundle.start():
            missing.append(str(page.relative_to(built_site)))
    assert "404.html" in {p.name for p in pages}
    assert not missing, f"pages that fetch the search index at start-up: {missing}"


@needs_node
def test_search_index_keeps_prose_signatures_and_docstring_summaries_only():
    page = fake_page("reference/y.md", "reference/y/")
    html = katex.on_page_content(
        '<p>Page prose, then <span class="arithmatex">\\(\\alpha\\)</span>.</p>'
        '<div class="arithmatex">\\[\nx_t = \\beta_t\n\\]</div>'
        '<div class="doc doc-object"><h3 id="f">f</h3>'
        '<div class="doc-signature highlight"><pre><code>f(\n    a: int,\n)</code></pre></div>'
        '<div class="doc doc-contents "><p>Summary of f.</p><p>Extended prose.</p>'
        '<p><span class="doc-section-title">Parameters:</span></p>\n<table><tr>'
        "<td>a</td><td>Described here.</td></tr></table></div></div><p>After.</p>",
        page,
        {},
        None,
    )
    page.content = html
    katex._content_for_search({}, page, {}, None)
    indexed = page.content
    katex._real_content({}, page, {}, None)
    assert "<pre>f( a: int, )</pre>" in indexed  # the signature, on one line
    assert "Page prose" in indexed and "α" in indexed and "After." in indexed
    assert "Summary of f." in indexed
    assert "β" not in indexed  # a display equation is no search term
    assert "Extended prose" not in indexed and "Described here" not in indexed
    assert "Described here" in html and "application/x-tex" not in html


def test_purge_css_keeps_what_the_site_can_use():
    from hooks.page_weight import purge_css

    css = (
        "@font-face{font-family:K;src:url(k.woff)}"
        ":root{--icon-used:url(a.svg);--icon-unused:url(b.svg);--chain:var(--end);--end:1px}"
        ".md-used{mask:var(--icon-used);margin:var(--chain)}"
        ".md-unused{mask:var(--icon-unused)}"
        ".md-used:not(.md-unused),.md-gone .md-used{color:red}"
        "[data-md-color-primary=indigo]{--p:blue}[data-md-color-primary=deep-purple]{--p:purple}"
        "[dir=rtl] .md-used{margin:0}"
        "@media print{.md-unused{display:none}.md-used{display:block}}"
        "@keyframes spin{to{transform:rotate(1turn)}}"
    )
    palette = {"data-md-color-primary": {"deep-purple"}, "dir": {"ltr"}}
    out = purge_css(css, {"md-used"}, palette, reads={"--p"})
    assert out == (
        "@font-face{font-family:K;src:url(k.woff)}"
        ":root{--icon-used:url(a.svg);--chain:var(--end);--end:1px}"
        ".md-used{mask:var(--icon-used);margin:var(--chain)}"
        ".md-used:not(.md-unused){color:red}"
        "[data-md-color-primary=deep-purple]{--p:purple}"
        "@media print{.md-used{display:block}}"
        "@keyframes spin{to{transform:rotate(1turn)}}"
    )
    with pytest.raises(TypeError, match="css"):
        purge_css(None, set(), {})


def test_images_load_lazily_and_embedded_pngs_become_files(tmp_path):
    import base64
    import struct
    import zlib

    from hooks.page_weight import lazy_images

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00" * 2))
        + chunk(b"IEND", b"")
    )
    html = (
        '<img src="a.svg" alt="a"><img src="b.svg" loading="eager" alt="b">'
        f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    )
    out = lazy_images(html, tmp_path)
    assert '<img src="a.svg" alt="a" loading="lazy" decoding="async">' in out
    assert 'loading="eager"' in out and out.count('loading="lazy"') == 2
    (written,) = tmp_path.glob("*.png")
    assert written.read_bytes() == png and "data:" not in out
    assert f'src="{written.name}" width="3" height="2"' in out


def test_code_loses_only_the_token_spans_that_change_nothing_on_screen():
    from hooks.page_weight import plain_code_tokens

    html = (
        '<code><span class="k">def</span><span class="w"> </span><span class="nf">f</span>'
        '<span class="p">(</span><span class="n">x</span><span class="p">)</span></code>'
    )
    assert plain_code_tokens(html) == (
        '<code><span class="k">def</span> <span class="nf">f</span>'
        '<span class="p">(</span>x<span class="p">)</span></code>'
    )


def test_search_leaves_out_tables_of_numbers_and_keeps_tables_of_words():
    numbers = (
        "<table><tr><th>sampler</th><th>FID</th><th>time (s)</th></tr>"
        "<tr><td>DDPM</td><td>6.6</td><td>712.2</td></tr>"
        "<tr><td>DDIM</td><td>10.9</td><td>n/a</td></tr></table>"
    )
    words = (
        "<table><tr><th>File</th><th>Holds</th></tr>"
        "<tr><td>config.json</td><td>the model config</td></tr></table>"
    )
    note = "<p><em>Measured 2026-11-29 at commit <code>abc</code> on 2 cores.</em></p>"
    indexed = katex.for_search(
        f"<p>Prose.</p>{numbers}{words}{note}<ul><li>Item</li></ul>"
    )
    assert (
        "712.2" not in indexed and "DDPM" not in indexed and "Measured" not in indexed
    )
    assert "the model config" in indexed and "Prose." in indexed and "Item" in indexed
    assert "<li>" not in indexed and "<p>" not in indexed


def test_signatures_in_the_search_index_keep_the_names():
    names = katex.signature_names
    assert names(
        "q_sample(x0: Tensor, t: Tensor, noise: Tensor | None = None) -&gt; Tensor"
    ) == ("q_sample(x0, t, noise)")
    assert names("f(a, *, sep: str = &quot;,&quot;, d: dict[str, int] = {}, **kw)") == (
        "f(a, *, sep, d, **kw)"
    )
    assert names("Bases: Module") == "Bases: Module"  # not a signature: left alone


def test_trim_css_is_the_purge_of_page_weight():
    """The notebook pages' stylesheet goes through the same purge as the site's (one code)."""
    from hooks import offline_assets, page_weight

    assert offline_assets.purge_css is page_weight.purge_css


def test_collapse_whitespace_keeps_preformatted_text():
    from hooks.page_weight import collapse_whitespace

    html = (
        "<div>\n    <p>a\n      b</p>\n  </div>\n"
        "<pre><code>x\n    y</code></pre><code>k\n  l</code>"
        "<script>\n  var s = `\n  `;</script><textarea>t\n  u</textarea>"
    )
    assert collapse_whitespace(html) == (
        "<div>\n<p>a\nb</p>\n</div>\n"
        "<pre><code>x\n    y</code></pre><code>k\n  l</code>"
        "<script>\n  var s = `\n  `;</script><textarea>t\n  u</textarea>"
    )


def test_unused_material_components_leave_the_stylesheet():
    from hooks.page_weight import unused_components

    config = {
        "extra": {},
        "repo_url": None,
        "plugins": {"search": None},
        "theme": {"features": ["navigation.instant"]},
    }
    unused = unused_components(config, {"md-typeset", "md-status--new"})
    assert {"md-version", "md-source", "md-tag", "md-tooltip2", "md-annotation"} <= set(
        unused
    )
    assert "md-status" not in unused  # a page shows one
    config["theme"]["features"].append("content.code.annotate")
    assert "md-annotation" not in unused_components(config, set())


def test_sitemap_keeps_only_the_addresses(tmp_path):
    import gzip

    from hooks.page_weight import compact_sitemap

    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<urlset>\n    <url>\n'
        "         <loc>https://x.org/a/</loc>\n         <lastmod>2026-11-29</lastmod>\n"
        "    </url>\n</urlset>"
    )
    (tmp_path / "sitemap.xml").write_text(xml)
    (tmp_path / "sitemap.xml.gz").write_bytes(gzip.compress(xml.encode()))
    compact_sitemap(tmp_path)
    expected = (
        '<?xml version="1.0" encoding="UTF-8"?><urlset><url>'
        "<loc>https://x.org/a/</loc></url></urlset>"
    )
    assert (tmp_path / "sitemap.xml").read_text() == expected
    assert (
        gzip.decompress((tmp_path / "sitemap.xml.gz").read_bytes()).decode() == expected
    )


def test_search_entries_store_an_api_name_once():
    assert katex.without_title("q_sample", "q_sample(x0, t) Eq. 4.") == "(x0, t) Eq. 4."
    assert (
        katex.without_title("q_sample", "q_sampler(x0) Other.")
        == "q_sampler(x0) Other."
    )
    assert katex.without_title("Noise", "Noise schedules.") == "Noise schedules."
    docs = [
        {"location": "reference/forward/", "title": "snippets.forward", "text": ""},
        {
            "location": "reference/forward/#snippets.forward",
            "title": "snippets.forward",
            "text": "Forward noising.",
        },
        {"location": "reference/forward/#q", "title": "q", "text": "(x0)"},
        {"location": "unit1/", "title": "Unit 1", "text": ""},
        {"location": "unit1/#intro", "title": "Introduction", "text": "Prose."},
        {"location": "papers/", "title": "Papers", "text": ""},
    ]
    kept = katex.without_empty_page_entries(docs)
    # The module's empty page entry gives way to the module; a page whose first section has
    # another title, and a last page with no sections, keep theirs.
    assert [d["location"] for d in kept] == [
        "reference/forward/#snippets.forward",
        "reference/forward/#q",
        "unit1/",
        "unit1/#intro",
        "papers/",
    ]


def test_search_leaves_out_an_embedded_results_block_and_keeps_the_prose_around_it():
    content = (
        "<p>What the benchmark measures.</p>"
        '<div class="results"><div class="md-typeset__scrollwrap"><table><tr><th>a</th></tr>'
        "<tr><td>ours</td></tr></table></div><p>500 samples, seed 0, load average 1.0.</p></div>"
        "<p>Reproduce: <code>python -m benchmarks x</code>.</p>"
    )
    indexed = katex.for_search(katex.drop_blocks(content, katex._is_listing))
    assert "load average" not in indexed and "ours" not in indexed
    assert (
        "What the benchmark measures." in indexed
        and "python -m benchmarks x" in indexed
    )


def test_a_re_exported_function_is_indexed_once_at_its_defining_module():
    docs = [
        {
            "location": "reference/karras/#k.euler",
            "title": "euler",
            "text": "(x) Euler.",
        },
        {
            "location": "reference/sampling/#s.euler",
            "title": "euler",
            "text": "(x) Euler.",
        },
        {
            "location": "reference/sampling/#s.ddim",
            "title": "ddim",
            "text": "(x) Euler.",
        },
        {"location": "a/", "title": "A", "text": ""},
        {"location": "b/", "title": "A", "text": ""},
    ]
    assert [d["location"] for d in katex.without_repeats(docs)] == [
        "reference/karras/#k.euler",
        "reference/sampling/#s.ddim",  # same text, another name: kept
        "a/",
        "b/",  # empty entries are pages: kept
    ]
