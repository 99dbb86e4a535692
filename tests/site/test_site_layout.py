"""Every page fits its screen: a phone (390x844) and a laptop (1400x900), in headless Chromium.

A page fails when the reader would lose content without knowing it:

* the document is wider than the viewport (the whole page scrolls sideways);
* an element of the content clips what it holds (`overflow: hidden` or `clip` with content wider
  than its box), such as a display equation, a table or a code block cut off at the right edge;
* an element scrolls sideways with no visible cue: no scrollbar that takes room (phones overlay
  theirs, so there the cue must be drawn: the scroll shadows of `docs/stylesheets/layout.css`,
  a gradient background attached `local`);
* something sticks out past the right edge of the screen without being inside a scroll container.

The checks are generic (`scrollWidth > clientWidth`), so they hold for MathJax (`mjx-container`),
KaTeX (`.katex-display`) or any other math renderer, for tables and for code alike.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright
from test_site_browser import CHROMIUM_ARGS, LOOPBACK, TIMEOUT_MS, chromium_path

SIZES = {
    # a phone: overlay scrollbars, touch, the mobile viewport meta tag honoured
    "phone": dict(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=1,
    ),
    "laptop": dict(viewport={"width": 1400, "height": 900}),
}
NOT_PAGES = {"assets", "search", "snippets", "figures", "javascripts", "stylesheets"}

# Runs in the page: every way its content can be cut off, as a list of sentences.
OVERFLOW_JS = r"""
() => {
  const problems = [];
  const viewport = document.documentElement.clientWidth;
  const describe = e => {
    let name = e.tagName.toLowerCase();
    if (e.id) name += '#' + e.id;
    const cls = (e.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean);
    if (cls.length) name += '.' + cls.slice(0, 3).join('.');
    const text = (e.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
    return `<${name}> "${text}"`;
  };
  const width = document.documentElement.scrollWidth;
  if (width > viewport + 1) {
    problems.push(`the page is ${width}px wide in a ${viewport}px viewport (it scrolls sideways)`);
  }
  const scrollsX = s => s.overflowX === 'auto' || s.overflowX === 'scroll';
  // Typeset math and highlighted code are judged by their box, not by the glyphs inside it
  // (MathJax clips its stretchy glyphs and screen-reader copy on purpose).
  const ATOMIC = 'mjx-container, .katex, svg, code, .highlight-ipynb pre';
  const check = e => {
    const s = getComputedStyle(e);
    if (s.display === 'none' || s.visibility === 'hidden') return NodeFilter.FILTER_REJECT;
    if (e.clientWidth <= 1 && e.clientHeight <= 1 && s.position === 'absolute') {
      return NodeFilter.FILTER_REJECT;  // visually hidden (screen readers only)
    }
    if (s.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1) {
      const hidden = e.scrollWidth - e.clientWidth;
      if (!scrollsX(s)) {
        problems.push(`${describe(e)} clips ${hidden}px of its content (overflow-x: ${s.overflowX})`);
      } else {
        const bar = e.offsetHeight - e.clientHeight
          - parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth);
        const shadow = s.backgroundAttachment.includes('local')
          && s.backgroundImage.includes('gradient');
        if (bar < 2 && !shadow) {
          problems.push(`${describe(e)} scrolls ${hidden}px sideways with no visible cue`);
        }
      }
    }
    const box = e.getBoundingClientRect();
    if (box.width > 0 && box.right > viewport + 1) {
      let scroller = e.parentElement;
      while (scroller && scroller !== document.body && !scrollsX(getComputedStyle(scroller))) {
        scroller = scroller.parentElement;
      }
      if (!scroller || scroller === document.body) {
        problems.push(`${describe(e)} sticks out ${Math.round(box.right - viewport)}px past the screen`);
        return NodeFilter.FILTER_REJECT;  // its insides stick out with it
      }
    }
    return e.matches(ATOMIC) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT;
  };
  const content = document.querySelector('.md-content') || document.body;
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_ELEMENT, check);
  while (walker.nextNode()) {}
  return [...new Set(problems)];
}
"""

WAIT_FOR_MATH_JS = """
() => Promise.all([
  document.fonts.ready,
  window.MathJax && MathJax.startup && MathJax.startup.promise
    ? MathJax.startup.promise : Promise.resolve(),
]).then(() => true)
"""


def site_pages(site: Path) -> list[str]:
    """The URL path of every page of the built site (its `index.html` files), and the 404 page."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        rel = index.parent.relative_to(site)
        if rel.parts and rel.parts[0] in NOT_PAGES:
            continue
        pages.append("" if not rel.parts else rel.as_posix() + "/")
    return pages + ["404.html"]


def overflow_report(context, base_url: str, pages: list[str]) -> dict[str, list[str]]:
    """Open each page in one tab of `context`; return {page: problems} for the pages with any."""
    report = {}
    page = context.new_page()
    for path in pages:
        response = page.goto(base_url + path, wait_until="load")
        assert response is not None and (response.ok or path == "404.html"), path
        page.evaluate(WAIT_FOR_MATH_JS)
        problems = page.evaluate(OVERFLOW_JS)
        if problems:
            report[path or "/"] = problems
    page.close()
    return report


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def new_context(chromium, size: str):
    context = chromium.new_context(**SIZES[size], service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)

    def route(route):
        url = urlsplit(route.request.url)
        # The search index plays no part in layout; building it in a worker on every page load
        # would only slow the walk down.
        if url.hostname in LOOPBACK and not url.path.endswith("search_index.json"):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.route("**/*", route)
    return context


def test_site_pages_lists_every_page(built_site):
    pages = site_pages(built_site)
    assert "" in pages and "unit1/forward-process/" in pages
    assert "reference/forward/" in pages and "notebooks/forward-process/" in pages
    assert len(pages) >= 40


def walk(browser, base_url: str, pages: list[str], size: str):
    """`overflow_report` at one size, in a context of its own; an error is returned, not raised."""
    try:
        context = new_context(browser, size)
        try:
            return overflow_report(context, base_url, pages)
        finally:
            context.close()
    except Exception as error:  # raised again by that size's test
        return error


def walk_in_own_browser(base_url: str, pages: list[str], size: str):
    # Playwright's sync API is bound to the thread that started it: one instance per thread.
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            return walk(browser, base_url, pages, size)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def overflow_reports(chromium, site_url, built_site) -> dict:
    """{size: overflow_report, or the error that stopped the walk} for every size.

    The sizes are walked at the same time: the first in `chromium`, each other one in a browser
    of its own on a thread. A page load keeps about one core busy, so on two cores the walks
    take about the time of one.
    """
    pages = site_pages(built_site)
    first, *others = SIZES
    with ThreadPoolExecutor(max_workers=max(len(others), 1)) as pool:
        futures = {
            size: pool.submit(walk_in_own_browser, site_url, pages, size)
            for size in others
        }
        reports = {first: walk(chromium, site_url, pages, first)}
        reports.update({size: future.result() for size, future in futures.items()})
    return reports


@pytest.mark.parametrize("size", SIZES)
def test_no_page_overflows(overflow_reports, size):
    report = overflow_reports[size]
    if isinstance(report, Exception):
        raise report
    lines = [f"{page}: {problem}" for page, ps in report.items() for problem in ps]
    assert not report, (
        f"{len(report)} pages overflow at {SIZES[size]['viewport']}:\n"
        + "\n".join(lines[:80])
    )


BAD_PAGE = """<!doctype html><meta name="viewport" content="width=device-width">
<style>body{margin:0} .box{width:200px} .wide{width:600px;height:20px}</style>
<div class="md-content">
  <div class="box" id="clip" style="overflow:hidden"><div class="wide"></div></div>
  <div class="box" id="bare" style="overflow-x:auto;scrollbar-width:none"><div class="wide"></div></div>
  <div class="box" id="ok" style="overflow-x:auto;background:linear-gradient(to right,white,transparent) local"><div class="wide"></div></div>
  <div class="box" id="fits" style="overflow:hidden"><div style="width:100px"></div></div>
  <p id="out" style="white-space:nowrap;width:2000px">a line that does not wrap</p>
</div>"""


def test_the_overflow_check_catches_each_kind_of_overflow(chromium):
    context = new_context(chromium, "phone")
    try:
        page = context.new_page()
        page.set_content(BAD_PAGE)
        problems = "\n".join(page.evaluate(OVERFLOW_JS))
    finally:
        context.close()
    assert "the page is 2000px wide in a 390px viewport" in problems
    assert '<div#clip.box> "" clips 400px' in problems
    assert '<div#bare.box> "" scrolls 400px sideways with no visible cue' in problems
    assert "<p#out>" in problems and "sticks out" in problems
    assert "#ok" not in problems and "#fits" not in problems
