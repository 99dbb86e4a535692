"""Notebook pages: their `.ipynb` to download, an "Open in Colab" link, no prompt column on phones."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nbformat
import pytest
import yaml
from mkdocs.exceptions import ConfigurationError
from siteaudit import REPO, resolve_local
from test_site_browser import browser, open_page  # noqa: F401  (a fixture, and a helper)

from hooks.notebooks import add_actions, colab_url, github_repository

NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))
ids = [nb.stem for nb in NOTEBOOKS]


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml without importing what its `!!python/name:` tags point to."""


_ConfigLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: None
)


def extra() -> dict:
    config = yaml.load((REPO / "mkdocs.yml").read_text("utf-8"), Loader=_ConfigLoader)
    return config["extra"]


class _Links(HTMLParser):
    """The `<a>` elements inside `p.notebook-actions`: (attributes, text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict, str]] = []
        self._inside = False
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "p" and "notebook-actions" in (attrs.get("class") or "").split():
            self._inside = True
        elif tag == "a" and self._inside:
            self.links.append((attrs, ""))
            self._text = []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._text is not None:
            attrs, _ = self.links[-1]
            self.links[-1] = (attrs, "".join(self._text).strip())
            self._text = None
        elif tag == "p":
            self._inside = False


def test_colab_url_is_built_from_the_repository_url():
    url = colab_url(
        "https://github.com/owner/repo", "docs/notebooks/a.ipynb", branch="dev"
    )
    assert url == (
        "https://colab.research.google.com/github/owner/repo/blob/dev/docs/notebooks/a.ipynb"
    )
    assert github_repository("https://github.com/o-1/r.x.git") == ("o-1", "r.x")


@pytest.mark.parametrize(
    "repository",
    [
        None,
        "",
        "https://gitlab.com/owner/repo",
        "https://github.com/owner",
        "owner/repo",
    ],
)
def test_a_repository_that_is_not_on_github_is_rejected_by_name(repository):
    with pytest.raises(ConfigurationError, match="extra.repository"):
        colab_url(repository, "docs/notebooks/a.ipynb")


@pytest.mark.parametrize(
    ("path", "branch", "argument"),
    [
        ("docs/a.md", "main", "notebook_path"),
        ("/abs/a.ipynb", "main", "notebook_path"),
        ("../a.ipynb", "main", "notebook_path"),
        ("docs/a.ipynb", "", "branch"),
        ("docs/a.ipynb", "a b", "branch"),
    ],
)
def test_colab_url_rejects_bad_paths_and_branches_by_name(path, branch, argument):
    with pytest.raises(ValueError, match=argument):
        colab_url("https://github.com/owner/repo", path, branch)


def test_actions_go_under_the_first_title_or_first_of_all():
    page = '<div><h1 id="t">Title<a href="#t">¶</a></h1><p>x</p><h1>Other</h1></div>'
    assert add_actions(page, "<p>A</p>") == (
        '<div><h1 id="t">Title<a href="#t">¶</a></h1><p>A</p><p>x</p><h1>Other</h1></div>'
    )
    assert add_actions("<p>x</p>", "<p>A</p>") == "<p>A</p><p>x</p>"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_notebook_page_offers_its_ipynb_and_an_open_in_colab_link(built_site, notebook):
    page = built_site / "notebooks" / notebook.stem / "index.html"
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    by_text = {text: attrs for attrs, text in parser.links}
    assert set(by_text) == {"Download the notebook (.ipynb)", "Open in Colab"}, (
        parser.links
    )

    download = by_text["Download the notebook (.ipynb)"]
    assert "download" in download
    resolved = resolve_local(built_site, page, download["href"])
    assert resolved is not None, f"{download['href']} leaves the site"
    served = resolved[0]
    assert served.is_file(), f"{download['href']} is not served next to {page}"
    assert served.read_bytes() == notebook.read_bytes(), (
        "the download is not the notebook"
    )

    settings = extra()
    expected = colab_url(
        settings["repository"],
        notebook.relative_to(REPO).as_posix(),
        settings.get("repository_branch", "main"),
    )
    assert by_text["Open in Colab"]["href"] == expected


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_notebook_opened_in_colab_clones_the_configured_repository(notebook):
    # In Colab the notebook has no repository around it: its first code cell clones the one that
    # the "Open in Colab" link points to.
    nb = nbformat.read(notebook, as_version=4)
    first = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "google.colab" in first, f"{notebook.name} does not set itself up in Colab"
    clones = re.findall(r'"git", "clone", [^\]]*?"(https://[^"]+)"', first)
    assert clones == [extra()["repository"]], clones


def displays(page, selector: str) -> list[str]:
    """The computed `display` of every element that matches `selector` in the article."""
    return page.locator(f"article {selector}").evaluate_all(
        "es => es.map(e => getComputedStyle(e).display)"
    )


def test_prompt_column_shows_on_a_desktop_and_hides_on_a_phone(browser, site_url):  # noqa: F811
    page = open_page(browser, site_url + f"notebooks/{NOTEBOOKS[0].stem}/")
    page.set_viewport_size({"width": 1400, "height": 900})
    desktop = displays(page, ".jp-CodeCell .jp-InputPrompt")  # "In [n]:"
    assert desktop and "none" not in desktop, desktop
    page.set_viewport_size({"width": 390, "height": 844})
    phone = displays(page, ".jp-InputPrompt, .jp-OutputPrompt")
    assert set(phone) == {"none"}, phone
    editor = page.locator("article .jp-CodeCell .jp-InputArea-editor").first
    assert editor.bounding_box()["width"] > 300, "code cells are still narrow"
    page.close()


def test_download_link_downloads_after_instant_navigation(browser, site_url):  # noqa: F811
    # A reader arrives from another page (Material's instant navigation swaps the page in place)
    # and clicks the button: the browser saves the notebook instead of showing its JSON.
    page = open_page(browser, site_url + "unit1/")
    name = NOTEBOOKS[0].stem
    page.locator(f'article a[href$="notebooks/{name}/"]').first.click()
    page.wait_for_url(f"**/notebooks/{name}/")
    with page.expect_download() as download:
        page.get_by_text("Download the notebook (.ipynb)").click()
    assert download.value.suggested_filename == f"{name}.ipynb"
    page.close()
