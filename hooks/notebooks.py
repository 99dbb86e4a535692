"""MkDocs hook: every notebook page offers its ``.ipynb`` and an "Open in Colab" link.

mkdocs-jupyter (``include_source: true`` in mkdocs.yml) copies each notebook next to the page it
renders, so ``notebooks/<name>/<name>.ipynb`` is served by the site itself. This hook puts two links
under the notebook's title: a download link to that copy, and a plain link that opens the
repository's copy in Google Colab. Nothing is loaded from Colab or GitHub: both are ordinary
hyperlinks that the reader chooses to follow.

The repository is set once, in mkdocs.yml::

    extra:
      repository: https://github.com/<owner>/<repo>
      repository_branch: main        # optional, "main" by default

(not ``repo_url``: with it the Material theme asks api.github.com for the repository's stars on
every page load).
"""

from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import ConfigurationError

COLAB = "https://colab.research.google.com/github"
_GITHUB_REPOSITORY = re.compile(
    r"https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?"
)
_FIRST_H1_END = re.compile(r"</h1>", re.IGNORECASE)


def github_repository(url: object) -> tuple[str, str]:
    """Split a GitHub repository URL into its owner and name.

    Args:
        url: The value of ``extra.repository`` in mkdocs.yml, e.g.
            ``https://github.com/owner/repo``.

    Returns:
        ``(owner, repo)``.

    Raises:
        ConfigurationError: If ``url`` is not the URL of a GitHub repository.
    """
    match = _GITHUB_REPOSITORY.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise ConfigurationError(
            "extra.repository must be a GitHub repository URL like "
            f"https://github.com/<owner>/<repo>, got {url!r}"
        )
    return match["owner"], match["repo"]


def colab_url(repository: str, notebook_path: str, branch: str = "main") -> str:
    """The Colab URL that opens a notebook of the repository.

    Args:
        repository: ``https://github.com/<owner>/<repo>``.
        notebook_path: The notebook's path inside the repository, e.g.
            ``docs/notebooks/forward-process.ipynb``.
        branch: The branch (or tag) whose copy Colab opens.

    Returns:
        ``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/<path>``.

    Raises:
        ConfigurationError: If ``repository`` is not a GitHub repository URL.
        ValueError: If ``notebook_path`` is not a relative ``.ipynb`` path or ``branch`` is empty.
    """
    owner, repo = github_repository(repository)
    if (
        not isinstance(notebook_path, str)
        or not notebook_path.endswith(".ipynb")
        or notebook_path.startswith("/")
        or ".." in notebook_path.split("/")
    ):
        raise ValueError(
            "notebook_path must be a relative path to an .ipynb file, "
            f"got {notebook_path!r}"
        )
    if not isinstance(branch, str) or not branch.strip() or " " in branch:
        raise ValueError(f"branch must be a branch or tag name, got {branch!r}")
    return f"{COLAB}/{owner}/{repo}/blob/{branch}/{notebook_path}"


def notebook_actions(download_href: str, colab_href: str) -> str:
    """The HTML of the two links shown under a notebook's title."""
    name = posixpath.basename(download_href)
    return (
        '<p class="notebook-actions">'
        f'<a class="md-button md-button--primary" href="{html.escape(download_href)}" '
        f'download="{html.escape(name)}" title="Download {html.escape(name)}">'
        "Download the notebook (.ipynb)</a> "
        f'<a class="md-button" href="{html.escape(colab_href)}" rel="noopener" '
        'title="Open a copy of this notebook in Google Colab (leaves this site)">'
        "Open in Colab</a></p>"
    )


def add_actions(page_html: str, actions: str) -> str:
    """Insert ``actions`` right after the page's first ``<h1>``, or first if it has none."""
    match = _FIRST_H1_END.search(page_html)
    if match is None:
        return actions + page_html
    return page_html[: match.end()] + actions + page_html[match.end() :]


def on_config(config):
    """Check ``extra.repository`` (and ``extra.repository_branch``) once, when the build starts."""
    github_repository(config["extra"].get("repository"))
    branch = config["extra"].get("repository_branch", "main")
    if not isinstance(branch, str) or not branch.strip() or " " in branch:
        raise ConfigurationError(
            f"extra.repository_branch must be a branch or tag name, got {branch!r}"
        )
    return config


def on_page_content(page_html, page, config, files):
    """Give every notebook page its download and Colab links."""
    src_uri = page.file.src_uri
    if not src_uri.endswith(".ipynb"):
        return page_html
    # The notebook's path in the repository: docs_dir relative to mkdocs.yml's folder.
    docs_dir = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent
    in_repository = (docs_dir / src_uri).relative_to(root).as_posix()
    colab = colab_url(
        config["extra"]["repository"],
        in_repository,
        config["extra"].get("repository_branch", "main"),
    )
    # mkdocs-jupyter copies the notebook into the folder of the page's own HTML file.
    return add_actions(page_html, notebook_actions(posixpath.basename(src_uri), colab))
