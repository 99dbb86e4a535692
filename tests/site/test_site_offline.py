"""Offline: no built page loads anything from a host other than the site's own."""

from __future__ import annotations

import re

from siteaudit import audit_css, audit_html, audit_js, audit_site, is_remote

BAD_HTML = """<!doctype html><html><head>
<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">
<link rel="preconnect" href="https://fonts.gstatic.com">
<link rel="preload" as="script" href="//cdn.example.org/x.js">
<link rel="modulepreload" href="https://esm.sh/y.js">
<link rel="icon" href="http://cdn.example.org/favicon.ico">
<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
<script type="module">import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs";</script>
<style>@import "https://example.org/a.css"; body { background: url(https://example.org/bg.png) }</style>
</head><body>
<img src="https://example.org/figure.png" srcset="local.png 1x, https://example.org/f2.png 2x">
<iframe src="https://www.youtube.com/embed/xyz"></iframe>
<video poster="https://example.org/p.jpg"><source src="https://example.org/v.mp4"></video>
<audio src="https://example.org/a.mp3"></audio>
<div style="background-image: url('https://example.org/s.png')"></div>
<script>import("https://example.org/dyn.js"); importScripts('https://example.org/w.js');</script>
</body></html>"""

GOOD_HTML = """<!doctype html><html><head>
<link rel="canonical" href="https://diffusion-model-feast.github.io/unit1/">
<link rel="stylesheet" href="../assets/stylesheets/main.css">
<link rel="icon" href="data:image/png;base64,iVBORw0KGgo=">
<script src="../assets/mathjax/tex-chtml.js"></script>
<script src="http://127.0.0.1:8000/livereload.js"></script>
<script>var paper = "https://arxiv.org/abs/2006.11239"; import("./local.js");</script>
<style>body { background: url("data:image/svg+xml;charset=utf-8,<svg xmlns='http://www.w3.org/2000/svg'/>") }</style>
</head><body>
<a href="https://arxiv.org/abs/2006.11239">DDPM</a>
<img src="../figures/x.png" alt="">
</body></html>"""


def test_is_remote_tells_third_party_hosts_from_the_site_itself():
    for url in [
        "https://cdn.jsdelivr.net/x.js",
        "http://example.org",
        "//fonts.gstatic.com/f.woff2",
        "wss://h/",
    ]:
        assert is_remote(url), url
    for url in [
        "assets/x.js",
        "../x.css",
        "/x.js",
        "#top",
        "data:image/png;base64,AA",
        "blob:x",
        "http://127.0.0.1:8000/x.js",
        "http://localhost/x",
        "mailto:a@b.c",
    ]:
        assert not is_remote(url), url


def test_auditor_flags_every_kind_of_third_party_resource():
    findings = audit_html(BAD_HTML, "bad.html")
    urls = {f.url for f in findings}
    expected = {
        "https://fonts.googleapis.com/css?family=Roboto",
        "https://fonts.gstatic.com",
        "//cdn.example.org/x.js",
        "https://esm.sh/y.js",
        "http://cdn.example.org/favicon.ico",
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
        "https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs",
        "https://example.org/a.css",
        "https://example.org/bg.png",
        "https://example.org/figure.png",
        "https://example.org/f2.png",
        "https://www.youtube.com/embed/xyz",
        "https://example.org/p.jpg",
        "https://example.org/v.mp4",
        "https://example.org/a.mp3",
        "https://example.org/s.png",
        "https://example.org/dyn.js",
        "https://example.org/w.js",
    }
    assert urls == expected
    assert all(str(f).startswith("bad.html") for f in findings)


def test_auditor_accepts_hyperlinks_canonical_links_and_local_resources():
    assert audit_html(GOOD_HTML) == []


def test_auditor_reads_standalone_css_and_js():
    assert [
        f.url
        for f in audit_css(
            "@import 'https://x.org/a.css';\n.a{src:url( //x.org/f.woff2 )}"
        )
    ] == [
        "//x.org/f.woff2",
        "https://x.org/a.css",
    ]
    js = 'import{a as b}from"https://esm.sh/a";export * from "https://esm.sh/b";new Worker("https://x.org/w.js")'
    assert sorted(f.url for f in audit_js(js)) == [
        "https://esm.sh/a",
        "https://esm.sh/b",
        "https://x.org/w.js",
    ]
    assert audit_js('import{a}from"./a.js";const u="https://arxiv.org";fetch(u)') == []


def test_built_site_loads_nothing_from_a_third_party_host(built_site):
    audited = [p for p in built_site.rglob("*") if p.suffix in {".html", ".css", ".js"}]
    assert len(audited) > 20, "the audit found too few files: is this the built site?"
    findings = audit_site(built_site)
    assert not findings, "third-party resources in the built site:\n" + "\n".join(
        map(str, findings)
    )


def test_notebook_pages_carry_no_cdn_scripts(built_site):
    # nbconvert's template references MathJax 2, require.js and mermaid on CDNs; the hook strips them.
    pages = sorted((built_site / "notebooks").rglob("index.html"))
    assert pages, "no notebook page in the built site"
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "jp-Notebook" in html, f"{page} was not rendered by mkdocs-jupyter"
        for cdn in (
            "cdn.jsdelivr.net",
            "cdnjs.cloudflare.com",
            "unpkg.com",
            "require.js",
            "MathJax.Hub",
        ):
            assert cdn not in html, (
                f"{page.relative_to(built_site)} still mentions {cdn}"
            )
        # The JupyterLab theme (~570 kB) is one shared stylesheet, not inlined into every notebook page.
        assert '@charset "UTF-8";.jupyter-wrapper{' not in html
        assert re.search(
            r'<link rel="stylesheet" href="[./]*assets/stylesheets/jupyter-\w+\.css">',
            html,
        )


def test_math_is_typeset_at_build_time_with_katex_served_by_the_site(built_site):
    katex = built_site / "assets" / "katex"
    # hooks/page_weight.py names the stylesheet and the fonts after their content
    (css_path,) = katex.glob("katex.*.min.css")
    css = css_path.read_text(encoding="utf-8")
    fonts = re.findall(r"url\(([^)]+)\)", css)
    assert len(fonts) >= 15, "KaTeX's stylesheet names no fonts"
    for font in fonts:
        assert re.fullmatch(r"fonts/KaTeX_[\w-]+\.[0-9a-f]{10}\.woff2?", font), (
            f"a font other than a subset WOFF in {css_path.name}: {font}"
        )
        assert (katex / font).is_file(), (
            f"{css_path.name} names {font}, which is not served"
        )
    assert not list(katex.rglob("*.ttf"))
    assert not (built_site / "assets" / "mathjax").exists(), "MathJax is still copied"
    for page in [
        "unit1/forward-process/index.html",
        "notebooks/forward-process/index.html",
        "reference/forward/index.html",
    ]:
        html = (built_site / page).read_text(encoding="utf-8")
        assert 'class="katex"' in html, f"{page} has no KaTeX markup"
        assert (
            f"assets/katex/{css_path.name}" in html and "stylesheets/math.css" in html
        )
        assert "mathjax" not in html.lower(), f"{page} still refers to MathJax"


def test_pages_without_math_link_no_math_assets(built_site):
    without = [
        page
        for page in built_site.rglob("index.html")
        if page.relative_to(built_site).parts[0] not in ("assets", "snippets")
        and 'class="katex' not in page.read_text(encoding="utf-8")
    ]
    assert len(without) >= 2, "expected some pages without math"
    for page in without:
        html = page.read_text(encoding="utf-8")
        assert "assets/katex/" not in html and "math.css" not in html, (
            f"{page.relative_to(built_site)} has no math but links math assets"
        )


def test_notebook_stylesheet_is_trimmed_to_what_notebooks_use(built_site):
    sheets = sorted((built_site / "assets" / "stylesheets").glob("jupyter-*.css"))
    assert sheets, "no notebook stylesheet"
    for sheet in sheets:
        css = sheet.read_text(encoding="utf-8")
        assert len(css) < 60_000, f"{sheet.name} is {len(css)} bytes"
        # the rules the notebook pages need, for both colour schemes
        for needed in (
            ".jp-OutputArea",
            ".jp-InputPrompt",
            "[data-md-color-scheme=slate]",
        ):
            assert needed in css, f"{sheet.name} lost {needed}"
