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


def test_math_is_served_from_the_site(built_site):
    mathjax = built_site / "assets" / "mathjax"
    assert (mathjax / "tex-chtml.js").stat().st_size > 100_000
    assert any((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    for page in ["unit1/forward-process/index.html", "index.html"]:
        html = (built_site / page).read_text(encoding="utf-8")
        assert (
            "assets/mathjax/tex-chtml.js" in html
            and "javascripts/mathjax-config.js" in html
        )
