"""How fast the site builds, and how much a reader downloads to open a page.

* **Cold build**: `python -m mkdocs build --strict` in a new process into a fresh temporary folder
  (no previous output, nothing kept in memory), timed from start to exit. Full mode reports the
  median of 3 builds, fast mode 1. mkdocs-jupyter's notebook cache (`.cache/mkdocs-jupyter/`) is
  left in place, as on a developer's machine: the very first build after a clone is slower.
  `FEAST_BENCH_ALLOW_WARNINGS=1` accepts a build that strict mode aborted for warnings only (the
  site is complete by then); the results then say so and list the warnings.
* **Transfer size of a first load**, per page, measured two ways:

  1. *static*: the HTML plus every same-site file it references — `<link rel=stylesheet|icon|
     preload|modulepreload>`, `<script src>`, `<img src>` (or the first `srcset` candidate),
     `<source srcset>`, the `url(...)` and `@import` of those stylesheets, and the search worker
     named in Material's `__config` with the `search/search_index.json` it fetches at start-up
     (unless the page holds both back until the reader searches: hooks/light_pages.py).
     Every image counts, those that load lazily too, and both of a light/dark pair.
     Math is typeset when the site is built (KaTeX, hooks/katex.py): a page with math links
     KaTeX's stylesheet, whose every font this parse counts, while a browser fetches only
     the fonts of the glyphs in use, so for those pages it is an upper bound: the whole page,
     everything a reader who scrolls to its end could download;
  2. *browser* (full mode, when Debian's Chromium is installed, as for the site's browser test):
     each page opened in a fresh headless Chromium context (empty cache) from a local server,
     waiting for its fonts and for the network to go idle, summing the bodies of every response.
     This is what a reader really downloads on opening the page, uncompressed (a real server
     would gzip HTML, CSS and JS). Images carry `loading="lazy"` (hooks/page_weight.py): those
     near the first screen load with it, the rest as the reader scrolls (they are in the static
     figure), and the hidden one of a light/dark pair never does.

  Third-party resources do not exist by construction (the site's offline audit test enforces it).

Targets (reported, never asserted): a cold strict build under 15 s on 2 cores; on first load,
uncompressed, every page at most 1.0 MB and the median page at most 400 kB; the search index at
most 300 kB.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

REPO = Path(__file__).resolve().parent.parent
BUILD_TARGET_S = 15.0
PAGE_TARGET_BYTES = 1.0e6  # 1.0 MB (decimal megabytes), every page
MEDIAN_TARGET_BYTES = 400e3  # the median page
SEARCH_INDEX_TARGET_BYTES = 300e3
TOP = 5
FETCHING_RELS = {
    "stylesheet",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "preload",
    "modulepreload",
    "manifest",
}
_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>['"]?)(?P<url>.*?)(?P=q)\s*\)""", re.IGNORECASE | re.DOTALL
)
COMPRESSED = {
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".woff",
    ".woff2",
    ".gz",
    ".zip",
}
_CSS_IMPORT = re.compile(
    r"""@import\s+(?P<q>['"])(?P<url>[^'"]+)(?P=q)""", re.IGNORECASE
)


def gzipped_size(data: bytes, name: str) -> int:
    """Bytes sent by a server that gzips text (level 6, as nginx and GitHub Pages do); images and fonts as they are."""
    if Path(urlsplit(name).path).suffix.lower() in COMPRESSED:
        return len(data)
    return len(gzip.compress(data, compresslevel=6, mtime=0))


@functools.lru_cache(maxsize=None)
def _gzipped_file_size(path: Path) -> int:
    return gzipped_size(path.read_bytes(), path.name)


def cold_build(site_dir: Path, allow_warnings: bool = False) -> tuple[float, list[str]]:
    """Seconds taken by `mkdocs build --strict` in a new process writing into `site_dir`, and its warnings.

    Args:
        site_dir: A fresh output folder.
        allow_warnings: Accept a build that strict mode aborted for warnings only (MkDocs aborts
            after writing the whole site), so the site can be measured while pages are being written.

    Raises:
        RuntimeError: If the build fails (its log tail is in the message).
    """
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(REPO / "mkdocs.yml"),
        "--site-dir",
        str(site_dir),
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    warnings = [line.strip() for line in log.splitlines() if line.startswith("WARNING")]
    aborted_for_warnings = (
        "in strict mode!" in log and (site_dir / "index.html").is_file()
    )
    if proc.returncode != 0 and not (allow_warnings and aborted_for_warnings):
        raise RuntimeError(
            f"`mkdocs build --strict` failed (exit {proc.returncode}):\n{log[-3000:]}"
        )
    return seconds, warnings


class _Resources(HTMLParser):
    """Collects the URLs that a page makes the browser fetch as it loads, and Material's config."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.config = ""
        self._in_config = False
        self.index_on_demand = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if (
            tag == "link"
            and a.get("href")
            and FETCHING_RELS & set((a.get("rel") or "").lower().split())
        ):
            self.urls.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "script" and a.get("id") == "__config":
            self._in_config = True
        elif tag == "script" and a.get("id") == "search-on-demand":
            self.index_on_demand = (
                True  # hooks/light_pages.py: the index waits for a search
            )
        elif tag in ("img", "source"):
            if a.get("src"):
                self.urls.append(a["src"])
            elif a.get("srcset"):
                self.urls.append(a["srcset"].split(",")[0].split()[0])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_config = False

    def handle_data(self, data):
        if self._in_config:
            self.config += data


def _local_file(site: Path, page_path: Path, url: str) -> Path | None:
    """The built file a same-site URL refers to (relative to the referring file), or None."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or url.startswith("data:"):
        return None
    target = (page_path.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return (
        target if target.is_file() and target.is_relative_to(site.resolve()) else None
    )


def static_page_weight(site: Path, page: Path) -> dict:
    """Bytes of a page and of the same-site files its HTML and stylesheets reference (see module docstring).

    Args:
        site: The built site folder.
        page: An HTML file inside it.

    Returns:
        `{"page", "html_bytes", "resource_bytes", "total_bytes", "gzip_bytes", "files"}`.
    """
    parser = _Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    files: dict[Path, int] = {}
    pending = [(page, url) for url in parser.urls]
    if parser.config.strip():
        config = json.loads(parser.config)
        base = config.get("base", ".")
        # Material's search worker, and the index it fetches at start-up (both wait for the
        # reader's first search on a page that holds them back: hooks/light_pages.py)
        if config.get("search") and not parser.index_on_demand:
            pending.append((page, config["search"]))
            pending.append((page, f"{base}/search/search_index.json"))
    while pending:
        referrer, url = pending.pop()
        target = _local_file(site, referrer, url)
        if target is None or target in files:
            continue
        files[target] = target.stat().st_size
        if target.suffix == ".css":
            css = target.read_text(encoding="utf-8", errors="replace")
            pending += [
                (target, m.group("url"))
                for m in (*_CSS_URL.finditer(css), *_CSS_IMPORT.finditer(css))
            ]
    html_bytes = page.stat().st_size
    gzip_bytes = sum(_gzipped_file_size(path) for path in (page, *files))
    return {
        "page": _url(site, page),
        "html_bytes": html_bytes,
        "resource_bytes": sum(files.values()),
        "total_bytes": html_bytes + sum(files.values()),
        "gzip_bytes": gzip_bytes,
        "files": len(files),
    }


def _url(site: Path, page: Path) -> str:
    rel = page.relative_to(site).as_posix()
    return rel[: -len("index.html")] if rel.endswith("index.html") else rel


def pages(site: Path) -> list[Path]:
    """Every HTML page a reader can open (not the copied MathJax or snippets folders)."""
    skip = {"assets", "snippets", "search"}
    return sorted(
        p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in skip
    )


def chromium() -> str | None:
    """Debian's Chromium, as for the browser test: $FEAST_CHROMIUM, `chromium` on PATH, /usr/bin/chromium."""
    for candidate in (
        os.environ.get("FEAST_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def browser_page_weights(site: Path, urls: list[str], executable: str) -> list[dict]:
    """Bytes each page really loads in headless Chromium with an empty cache (see module docstring)."""
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}/"
    results = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            )
            try:
                for url in urls:
                    results.append(_load(browser, urljoin(root, url), url))
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results


def _load(browser, address: str, url: str) -> dict:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block"
    )
    context.set_default_timeout(60_000)
    responses = []
    remote = []
    context.on("response", lambda response: responses.append(response))
    context.on(
        "request",
        lambda r: (
            urlsplit(r.url).hostname not in ("127.0.0.1", None) and remote.append(r.url)
        ),
    )
    try:
        page = context.new_page()
        page.goto(address, wait_until="load")
        # the math arrives typeset; the browser fetches the fonts of the glyphs in use
        page.evaluate("() => document.fonts.ready.then(() => true)")
        page.wait_for_load_state("networkidle")
        sizes, gzipped = {}, {}
        for response in responses:
            if urlsplit(response.url).hostname == "127.0.0.1" and response.status < 400:
                try:
                    body = response.body()
                    sizes[response.url] = len(body)
                    gzipped[response.url] = gzipped_size(body, response.url)
                except Exception:  # a redirect or a body the browser already dropped
                    continue
    finally:
        context.close()
    return {
        "page": url,
        "total_bytes": sum(sizes.values()),
        "gzip_bytes": sum(gzipped.values()),
        "requests": len(sizes),
        "remote_requests": len(remote),
        "largest": sorted(
            ((u.split("/", 3)[-1], b) for u, b in sizes.items()), key=lambda x: -x[1]
        )[:3],
    }


def run(fast: bool = False) -> dict:
    """Time cold strict builds and weigh every page of the last one.

    Args:
        fast: One build and the static weights only (no browser).

    Returns:
        JSON-serialisable results: build seconds, the pages' weights (top 5 and the total), targets.
    """
    repeats = 1 if fast else 3
    load_before = os.getloadavg()[0]
    notebook_cache = (REPO / ".cache" / "mkdocs-jupyter").is_dir()
    seconds = []
    with tempfile.TemporaryDirectory(prefix="feast-bench-site-") as tmp:
        for i in range(repeats):
            site = Path(tmp) / f"site-{i}"  # a fresh folder each time
            took, warnings = cold_build(
                site, allow_warnings=os.environ.get("FEAST_BENCH_ALLOW_WARNINGS") == "1"
            )
            seconds.append(took)
        html_pages = pages(site)
        static = sorted(
            (static_page_weight(site, p) for p in html_pages),
            key=lambda r: -r["total_bytes"],
        )
        executable = None if fast else chromium()
        browser = None
        browser_note = (
            "fast mode: not measured" if fast else "Chromium not found: not measured"
        )
        if executable:
            browser = sorted(
                browser_page_weights(site, [r["page"] for r in static], executable),
                key=lambda r: -r["total_bytes"],
            )
            browser_note = f"headless Chromium {executable}, fresh context per page, fonts loaded, network idle"
        site_bytes = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        search_index = site / "search" / "search_index.json"
        search_index_bytes = (
            search_index.stat().st_size if search_index.is_file() else 0
        )
    build_median = statistics.median(seconds)
    largest = (browser or static)[0]
    median_page = statistics.median(row["total_bytes"] for row in (browser or static))
    return {
        "build_seconds": [round(s, 2) for s in seconds],
        "build_median_seconds": round(build_median, 2),
        "strict_build_passed": not warnings,
        "strict_warnings": warnings,
        "build_target_seconds": BUILD_TARGET_S,
        "build_target_met": build_median < BUILD_TARGET_S,
        "cores": os.cpu_count(),
        "notebook_cache_present": notebook_cache,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "pages": len(html_pages),
        "site_bytes": site_bytes,
        "static_top": static[:TOP],
        "static_bytes_by_page": {row["page"]: row["total_bytes"] for row in static},
        "static_gzip_bytes_by_page": {row["page"]: row["gzip_bytes"] for row in static},
        "static_max_bytes": static[0]["total_bytes"],
        "browser_note": browser_note,
        "browser_top": None if browser is None else browser[:TOP],
        "browser_bytes_by_page": None
        if browser is None
        else {row["page"]: row["total_bytes"] for row in browser},
        "browser_max_bytes": None if browser is None else browser[0]["total_bytes"],
        "browser_remote_requests": None
        if browser is None
        else sum(r["remote_requests"] for r in browser),
        "page_target_bytes": PAGE_TARGET_BYTES,
        "largest_page": largest["page"],
        "largest_page_bytes": largest["total_bytes"],
        "largest_page_gzip_bytes": max(
            row["gzip_bytes"] for row in (browser or static)
        ),
        "largest_page_measured_by": "static" if browser is None else "browser",
        "page_target_met": largest["total_bytes"] <= PAGE_TARGET_BYTES,
        "page_target_met_gzip": max(row["gzip_bytes"] for row in (browser or static))
        <= PAGE_TARGET_BYTES,
        "median_page_bytes": median_page,
        "median_target_bytes": MEDIAN_TARGET_BYTES,
        "median_target_met": median_page <= MEDIAN_TARGET_BYTES,
        "search_index_bytes": search_index_bytes,
        "search_index_target_bytes": SEARCH_INDEX_TARGET_BYTES,
        "search_index_target_met": 0 < search_index_bytes <= SEARCH_INDEX_TARGET_BYTES,
    }


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown that the benchmarks page includes."""
    r = record["results"]
    builds = ", ".join(f"{s:.1f}" for s in r["build_seconds"])
    lines = []
    if not r["strict_build_passed"]:
        lines += [
            '!!! warning "Measured while other pages were being written"',
            f"    The strict build stopped on {len(r['strict_warnings'])} warning(s) from pages in progress "
            f"(MkDocs had written the whole site); rerun when the build is clean.",
            "",
        ]
    lines += [
        f"Cold `mkdocs build --strict` ({r['pages']} pages, {r['site_bytes'] / 1e6:.1f} MB on disk): median "
        f"**{r['build_median_seconds']:.1f} s** of {len(r['build_seconds'])} ({builds} s) on {r['cores']} cores; "
        f"target < {r['build_target_seconds']:.0f} s: **{'met' if r['build_target_met'] else 'not met'}**. "
        f"Load average (1 min) before and after: {r['load_average_1min'][0]:.1f}, {r['load_average_1min'][1]:.1f} "
        f"(other jobs shared the {r['cores']} cores); mkdocs-jupyter's notebook cache "
        f"{'was' if r['notebook_cache_present'] else 'was not'} present.",
        "",
    ]
    browser = {row["page"]: row for row in (r["browser_top"] or [])}
    static = r["static_bytes_by_page"]
    order = list(browser) or [row["page"] for row in r["static_top"]]
    static_gzip = r["static_gzip_bytes_by_page"]
    lines += [
        "| page | browser: MB loaded | browser: MB gzipped | requests | static parse: MB | static parse: MB gzipped |",
        "|---|---|---|---|---|---|",
    ]
    for page in order:
        b = browser.get(page)
        cells = (
            [
                f"{b['total_bytes'] / 1e6:.2f}",
                f"{b['gzip_bytes'] / 1e6:.2f}",
                str(b["requests"]),
            ]
            if b
            else ["n/a"] * 3
        )
        cells += [f"{static[page] / 1e6:.2f}", f"{static_gzip[page] / 1e6:.2f}"]
        lines.append(f"| `{page or '/'}` | " + " | ".join(cells) + " |")
    met = {True: "met", False: "not met"}
    lines += [
        "",
        f"Largest page ({r['largest_page_measured_by']}): `{r['largest_page'] or '/'}`, "
        f"{r['largest_page_bytes'] / 1e6:.2f} MB uncompressed, the heaviest gzipped {r['largest_page_gzip_bytes'] / 1e6:.2f} MB. "
        f"Target <= {r['page_target_bytes'] / 1e6:.1f} MB: **{met[r['page_target_met']]}** "
        f"uncompressed (a server that does not compress, such as `mkdocs serve`), "
        f"**{met[r['page_target_met_gzip']]}** gzipped (GitHub Pages). "
        f"Browser: {r['browser_note']}"
        + (
            ""
            if r["browser_remote_requests"] is None
            else f"; requests to other hosts: {r['browser_remote_requests']}"
        )
        + ". The browser columns are a first load in a 1280 x 900 window: images load lazily, so "
        "those far below the first screen are not in them; the static columns are the whole page, "
        "every image (both of a light/dark pair) and every font the math could use.",
    ]
    if "median_page_bytes" in r:
        lines += [
            "",
            f"Median page: {r['median_page_bytes'] / 1e3:.0f} kB uncompressed, target <= "
            f"{r['median_target_bytes'] / 1e3:.0f} kB: **{met[r['median_target_met']]}**. "
            f"Search index (`search/search_index.json`, fetched when the reader first searches): "
            f"{r['search_index_bytes'] / 1e3:.0f} kB, target <= "
            f"{r['search_index_target_bytes'] / 1e3:.0f} kB: **{met[r['search_index_target_met']]}**.",
        ]
    if r["browser_top"]:
        top = r["browser_top"][0]
        heaviest = ", ".join(
            f"`{name}` {size / 1e6:.2f} MB" for name, size in top["largest"]
        )
        lines += ["", f"Its heaviest files: {heaviest}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(run(fast=True), indent=2))
