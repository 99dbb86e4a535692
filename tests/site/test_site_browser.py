"""The built site in a real browser: Debian's headless Chromium, every non-loopback host blocked.

Serves the strictly built site on 127.0.0.1 and checks what a reader sees with no internet: math
typeset at build time by KaTeX (on a page, in a notebook's Markdown cells and in docstrings: the
served HTML already holds KaTeX's markup, no TeX is typeset in the browser and no MathJax loads),
KaTeX's stylesheet and fonts only on pages with math, search answering without raw TeX in its
previews, and no failed request, blocked third-party request or console error anywhere.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.sync_api import sync_playwright

LOOPBACK = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Belt and braces: even requests the page router never sees cannot resolve another host.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
FIRST_CONTENT_PAGE = "unit1/forward-process/"
NOTEBOOK_PAGE = "notebooks/forward-process/"
REFERENCE_PAGE = "reference/forward/"
TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """Debian's Chromium: $FEAST_CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium."""
    candidates = [
        os.environ.get("FEAST_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "Chromium was not found (looked at $FEAST_CHROMIUM, `chromium` on PATH and /usr/bin/chromium). "
        "The browser test needs it: run `make browser` (installs Debian's chromium and chromium-driver), "
        "or set FEAST_CHROMIUM to a Chromium binary.",
        pytrace=False,
    )


@dataclass
class Monitor:
    """Everything that went wrong while pages were open."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        return {
            name: list(items) for name, items in vars(self).items() if items
        }  # copies

    def clear(self) -> None:
        for items in vars(self).values():
            items.clear()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A persistent Chromium context with a fresh profile; a request to any other host is aborted."""
    executable = chromium_path()
    monitor = Monitor()

    def route(route):
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            monitor.blocked.append(url)
            route.abort("blockedbyclient")

    def on_failed(request):
        if (
            urlsplit(request.url).hostname in LOOPBACK
        ):  # blocked ones are already recorded
            monitor.failed.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.status >= 400:
            monitor.http_errors.append(f"{response.status} {response.url}")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", route)
        context.on("requestfailed", on_failed)
        context.on("response", on_response)
        context.monitor = monitor
        try:
            yield context
        finally:
            context.close()


def open_page(browser, url: str):
    monitor = browser.monitor
    monitor.clear()  # each test judges only its own pages
    page = browser.new_page()
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and monitor.console_errors.append(f"{page.url}: {msg.text}")
        ),
    )
    page.on(
        "pageerror", lambda error: monitor.page_errors.append(f"{page.url}: {error}")
    )
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, (
        f"{url} answered {response and response.status}"
    )
    browser.last_response = response  # the HTML as served, before any script ran
    return page


def assert_math_typeset(page, response) -> None:
    """The page came with KaTeX's markup in its HTML, loads no MathJax, and its math is visible."""
    served = response.text()
    assert 'class="katex"' in served, f"{page.url}: no KaTeX markup in the served HTML"
    assert "katex-error" not in served, f"{page.url}: KaTeX reported an error"
    assert "mathjax" not in served.lower(), f"{page.url} still refers to MathJax"
    assert page.evaluate("() => typeof window.MathJax") == "undefined"
    assert_math_visible(page)


def assert_math_visible(page) -> None:
    """KaTeX's stylesheet and fonts applied: a formula without its CSS shows as doubled text."""
    page.evaluate("() => document.fonts.ready.then(() => true)")
    state = page.evaluate(
        """() => {
               const math = [...document.querySelectorAll('article .katex')];
               const hidden = math.filter(e => {
                   const mathml = e.querySelector('.katex-mathml');
                   return mathml && mathml.getBoundingClientRect().width > 1;
               }).length;
               const blank = math.filter(e => e.getBoundingClientRect().width < 1).length;
               const glyph = document.querySelector('article .katex .mathnormal');
               const font = glyph ? getComputedStyle(glyph).fontFamily : '';
               return {n: math.length, hidden, blank, font,
                       loaded: document.fonts.check('16px KaTeX_Math')};
           }"""
    )
    assert state["n"] > 0, f"no typeset math on {page.url}"
    assert state["hidden"] == 0, (
        f"KaTeX's CSS is missing on {page.url}: the MathML copy of {state['hidden']} formulas shows"
    )
    assert state["blank"] == 0, f"{state['blank']} formulas on {page.url} are 0 px wide"
    if state["font"]:
        assert "KaTeX_Math" in state["font"] and state["loaded"], (
            f"KaTeX's fonts are not used on {page.url}: {state}"
        )


def math_resources(page) -> list[str]:
    """What the page loaded (from the network or the cache) for math: KaTeX, math.css, MathJax."""
    urls = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [
        url
        for url in urls
        if any(part in url.lower() for part in ("/katex/", "math.css", "mathjax"))
    ]


def untypeset(page, selector: str) -> int:
    """How many elements matching `selector` hold no KaTeX output."""
    return page.evaluate(
        "sel => [...document.querySelectorAll(sel)].filter(e => !e.querySelector('.katex')).length",
        selector,
    )


def prose_text(page, selector: str) -> str:
    """Text of the elements matching `selector`, without code blocks and without typeset math."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(e => {
               const copy = e.cloneNode(true);
               copy.querySelectorAll('pre, code, .katex, script, style').forEach(n => n.remove());
               return copy.textContent;
           }).join('\\n')""",
        selector,
    )


def assert_no_raw_tex(text: str, where: str) -> None:
    for delimiter in ["$$", "\\(", "\\)", "\\[", "\\]", "\\begin{"]:
        assert delimiter not in text, f"raw TeX {delimiter!r} left untypeset on {where}"


def assert_clean(browser, page, where: str) -> None:
    """Let the page's requests settle, close it, and fail on anything that went wrong meanwhile."""
    page.wait_for_load_state("networkidle")
    problems = browser.monitor.problems()
    page.close()
    browser.monitor.clear()
    assert not problems, f"while visiting {where}: {json.dumps(problems, indent=1)}"


def search_word(site: Path, page_url: str) -> str:
    """A word of the page's prose that no other page has, read from the built search index."""
    index = json.loads(
        (site / "search" / "search_index.json").read_text(encoding="utf-8")
    )

    def words(text: str) -> set[str]:
        text = re.sub(r"<(pre|code)\b.*?</\1>", " ", text, flags=re.DOTALL)
        text = re.sub(
            r"\\\(.*?\\\)|\$\$.*?\$\$|\\\[.*?\\\]", " ", text, flags=re.DOTALL
        )
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        # 8+ letters: longer than any word of lunr's English stop-word list ("because", "however")
        return {w.lower() for w in re.findall(r"(?<![\\\w])[A-Za-z]{8,}(?![\w])", text)}

    mine, elsewhere = set(), Counter()
    for doc in index["docs"]:
        location = doc["location"].split("#")[0]
        found = words(doc.get("title", "") + " " + doc.get("text", ""))
        if location == page_url:
            mine |= found
        else:
            elsewhere.update(found)
    assert mine, f"{page_url} has no searchable words in search/search_index.json"
    return min(mine, key=lambda w: (elsewhere[w], -len(w), w))


def test_first_content_page_ships_math_typeset_at_build_time(browser, site_url):
    page = open_page(browser, site_url + FIRST_CONTENT_PAGE)
    assert_math_typeset(page, browser.last_response)
    n_math = page.locator("article .arithmatex").count()
    assert n_math >= 5, (
        f"expected the page's equations, found {n_math} .arithmatex elements"
    )
    assert untypeset(page, "article .arithmatex") == 0, (
        "some equations were not typeset by KaTeX"
    )
    assert page.locator("article .katex-display").count() >= 1
    assert_no_raw_tex(prose_text(page, "article"), FIRST_CONTENT_PAGE)
    # Code is left alone: TeX in code stays source code.
    assert page.locator("article pre .katex").count() == 0
    assert any(
        re.search(r"/assets/katex/katex\.\w+\.min\.css$", url)
        for url in math_resources(page)
    )
    assert_clean(browser, page, FIRST_CONTENT_PAGE)


def test_a_page_without_math_loads_no_math_assets(browser, site_url, built_site):
    html = (built_site / "resources" / "index.html").read_text(encoding="utf-8")
    assert 'class="katex' not in html, "pick a page without math for this test"
    page = open_page(browser, site_url + "resources/")
    page.wait_for_load_state("networkidle")
    assert math_resources(page) == []
    assert page.locator('link[href*="katex"], link[href*="math.css"]').count() == 0
    assert_clean(browser, page, "resources/")


def test_a_long_display_equation_scrolls_in_its_own_box(browser, site_url):
    page = open_page(browser, site_url + FIRST_CONTENT_PAGE)
    page.set_viewport_size({"width": 390, "height": 844})
    box = page.evaluate(
        """() => {
               const boxes = [...document.querySelectorAll('article .katex-display')];
               const wide = boxes.find(b => b.scrollWidth > b.clientWidth + 1);
               if (!wide) return null;
               const style = getComputedStyle(wide);
               return {overflow: style.overflowX, images: style.backgroundImage,
                       attachment: style.backgroundAttachment,
                       page: document.documentElement.scrollWidth,
                       viewport: document.documentElement.clientWidth};
           }"""
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    assert box is not None, "no display equation is wider than a 390 px phone"
    assert box["overflow"] == "auto"
    # The scroll cue: shadows at the edges (radial gradients) under covers that scroll along.
    assert box["images"].count("radial-gradient") == 2 and "local" in box["attachment"]
    assert box["page"] <= box["viewport"], "the equation widened the page itself"
    assert_clean(browser, page, f"{FIRST_CONTENT_PAGE} at 390 px")


def test_search_lists_the_first_content_page(browser, site_url, built_site):
    word = search_word(built_site, FIRST_CONTENT_PAGE)
    page = open_page(browser, site_url)
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially(word, delay=20)
    results = page.locator("a.md-search-result__link")
    results.first.wait_for(state="attached")
    paths = [
        urlsplit(urljoin(page.url, href)).path
        for href in results.evaluate_all("as => as.map(a => a.href)")
    ]
    assert "/" + FIRST_CONTENT_PAGE in paths, (
        f"searching {word!r} listed {paths}, not /{FIRST_CONTENT_PAGE}"
    )
    assert_clean(browser, page, f"search for {word!r}")


def test_the_search_index_loads_only_when_search_is_used(browser, site_url):
    page = open_page(browser, site_url + "resources/")
    page.wait_for_load_state("networkidle")
    loaded = "() => performance.getEntriesByType('resource').map(e => e.name)"
    assert not [u for u in page.evaluate(loaded) if "search_index.json" in u]
    page.locator("input.md-search__input").click()
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".some(e => e.name.endsWith('/search/search_index.json'))"
    )
    assert_clean(browser, page, "resources/ and a click on search")


def test_search_previews_show_no_raw_tex(browser, site_url):
    # "posterior" is on pages whose sentences around it are full of math.
    page = open_page(browser, site_url)
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("posterior", delay=20)
    results = page.locator(".md-search-result__article")
    results.first.wait_for(state="attached")
    page.wait_for_timeout(300)  # let the list fill in
    previews = results.evaluate_all("es => es.map(e => e.textContent)")
    assert len(previews) >= 2
    text = "\n".join(previews)
    assert_no_raw_tex(text, "search previews")
    command = re.search(r".{0,40}\\[a-zA-Z]+.{0,20}", text)
    assert command is None, f"a TeX command in a search preview: {command.group(0)!r}"
    assert_clean(browser, page, "search for 'posterior'")


def test_instant_navigation_brings_typeset_math_and_its_css(browser, site_url):
    # Material swaps the content without a reload; the page's KaTeX stylesheet link comes with it
    # (it sits in the content), so math on the new page is styled although home has none.
    page = open_page(browser, site_url)
    assert math_resources(page) == []
    link = page.locator(f'a[href$="{FIRST_CONTENT_PAGE}"]:visible').first
    link.click()
    page.wait_for_url(f"**/{FIRST_CONTENT_PAGE}")
    page.wait_for_function(
        "() => document.querySelectorAll('article .arithmatex .katex').length > 0"
    )
    page.wait_for_load_state("networkidle")
    assert_no_raw_tex(
        prose_text(page, "article"), f"{FIRST_CONTENT_PAGE} after instant navigation"
    )
    assert_math_visible(page)
    assert_clean(browser, page, f"instant navigation to {FIRST_CONTENT_PAGE}")


NOTEBOOK_PAGES = sorted(
    f"notebooks/{nb.stem}/"
    for nb in (Path(__file__).resolve().parents[2] / "docs" / "notebooks").glob(
        "*.ipynb"
    )
)


@pytest.mark.parametrize("notebook_page", NOTEBOOK_PAGES)
def test_notebook_markdown_cells_ship_typeset_math(browser, site_url, notebook_page):
    NOTEBOOK_PAGE = notebook_page
    page = open_page(browser, site_url + NOTEBOOK_PAGE)
    assert_math_typeset(page, browser.last_response)
    cells = "article .jp-MarkdownCell .jp-RenderedMarkdown"
    n_cells = page.locator(cells).count()
    assert n_cells >= 2, f"expected the notebook's Markdown cells, found {n_cells}"
    assert page.locator(f"{cells} .katex").count() >= 3, (
        "no typeset math in the notebook's Markdown"
    )
    text = prose_text(page, cells)
    assert_no_raw_tex(text, NOTEBOOK_PAGE)
    assert "$" not in text, (
        f"a raw $...$ is left in the notebook's Markdown: {text[text.index('$') - 40 :][:80]!r}"
    )
    assert page.locator("article .jp-OutputArea-output img").count() >= 1, (
        "the notebook's figure is missing"
    )
    assert_clean(browser, page, NOTEBOOK_PAGE)


def test_docstring_math_is_typeset_in_the_api_reference(browser, site_url):
    page = open_page(browser, site_url + REFERENCE_PAGE)
    assert_math_typeset(page, browser.last_response)
    n_math = page.locator("article .doc .arithmatex").count()
    assert n_math >= 2, f"expected math in the docstrings, found {n_math}"
    assert untypeset(page, "article .doc .arithmatex") == 0
    assert_no_raw_tex(prose_text(page, "article .doc"), REFERENCE_PAGE)
    assert_clean(browser, page, REFERENCE_PAGE)


def test_the_router_blocks_and_reports_third_party_requests(browser, site_url):
    # The monitor must be able to fail: a page that asks another host for a script is caught.
    page = open_page(browser, site_url + "404.html")
    page.evaluate(
        """() => new Promise(done => {
               const s = document.createElement('script');
               s.src = 'https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js';
               s.onerror = s.onload = () => done();
               document.head.appendChild(s);
           })"""
    )
    page.close()
    problems = browser.monitor.problems()
    browser.monitor.clear()
    assert problems.get("blocked") == [
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"
    ]
    assert any(
        "ERR_BLOCKED_BY_CLIENT" in error for error in problems.get("console_errors", [])
    )
