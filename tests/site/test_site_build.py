"""The strict build, the nav and the snippet sections: nothing written is left unshown."""

from __future__ import annotations

from pathlib import Path

import yaml
from siteaudit import REPO, markdown_embeds, snippet_sections

DOCS = REPO / "docs"
EXCLUDED = (
    DOCS / "includes"
)  # Markdown fragments auto-appended to pages, not pages themselves


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml without importing what its `!!python/name:` tags point to."""


_ConfigLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: None
)
_ConfigLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def nav_pages(entries) -> list[str]:
    """Every page path in a (nested) MkDocs nav; external URLs are skipped."""
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += nav_pages(value)
        elif isinstance(value, str) and "://" not in value:
            pages.append(value)
    return pages


def docs_pages() -> set[str]:
    files = [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
    return {
        p.relative_to(DOCS).as_posix()
        for p in files
        if EXCLUDED not in p.parents and ".ipynb_checkpoints" not in p.parts
    }


def test_strict_build_passes(site_build):
    assert site_build.returncode == 0, (
        f"`mkdocs build --strict` failed:\n{site_build.log[-4000:]}"
    )
    assert (site_build.site_dir / "index.html").is_file()


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.load(
        (REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_ConfigLoader
    )
    in_nav = nav_pages(config["nav"])
    pages = docs_pages()
    assert pages, "no pages found under docs/"
    assert not pages - set(in_nav), (
        f"pages missing from the nav in mkdocs.yml: {sorted(pages - set(in_nav))}"
    )
    assert not set(in_nav) - pages, (
        f"nav entries without a page under docs/: {sorted(set(in_nav) - pages)}"
    )
    assert len(in_nav) == len(set(in_nav)), "a page is listed twice in the nav"


def test_nav_includes_at_least_one_notebook():
    config = yaml.load(
        (REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_ConfigLoader
    )
    assert any(
        page.startswith("notebooks/") and page.endswith(".ipynb")
        for page in nav_pages(config["nav"])
    )


def all_embeds():
    return [
        embed
        for page in sorted(DOCS.rglob("*.md"))
        for embed in markdown_embeds(
            page.read_text(encoding="utf-8"), page.relative_to(REPO).as_posix()
        )
    ]


def test_every_snippet_section_is_embedded_by_a_page():
    sections = snippet_sections(REPO / "snippets")
    assert sections, "no `# --8<-- [start:name]` sections found in snippets/"
    embeds = all_embeds()
    shown = {(e.file, e.section) for e in embeds}
    whole_files = {e.file for e in embeds if e.section is None}
    unshown = sorted(
        f"{file}:{name}"
        for file, name in sections
        if (file, name) not in shown and file not in whole_files
    )
    assert not unshown, f"snippet sections that no page under docs/ embeds: {unshown}"


def test_every_embed_names_an_existing_section():
    # `check_paths: true` already fails the build on a missing file; this names the page and line.
    sections = snippet_sections(REPO / "snippets")
    missing = [
        f"{e.page}:{e.line} embeds {e.file}:{e.section}"
        for e in all_embeds()
        if not (REPO / e.file).is_file()
        or (e.section is not None and (e.file, e.section) not in sections)
    ]
    assert not missing, "\n".join(missing)


def test_every_embedded_section_is_titled_with_its_module_path():
    embeds = all_embeds()
    assert embeds, "no page embeds a snippet section"
    untitled = [
        f"{e.page}:{e.line}: `{e.file}` embedded in a fence titled {e.fence_title!r}"
        for e in embeds
        if e.fence_title != e.file
    ]
    assert not untitled, (
        'each embed must sit in a fence with title="snippets/<module>.py":\n'
        + "\n".join(untitled)
    )


def test_section_scanner_finds_sections_and_fence_titles(tmp_path: Path):
    # The scanners above must be able to fail: feed them a known module and page.
    pkg = tmp_path / "snippets"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "# --8<-- [start:a]\nx = 1\n# --8<-- [end:a]\n    # --8<-- [start:b-c]\n"
    )
    assert set(snippet_sections(pkg)) == {
        ("snippets/m.py", "a"),
        ("snippets/m.py", "b-c"),
    }
    page = (
        '```python title="snippets/m.py"\n--8<-- "snippets/m.py:a"\n```\n\n'
        '--8<-- "snippets/m.py:b-c"\n\n'
        '    ```python title="snippets/other.py"\n    --8<-- "snippets/m.py:b-c"\n    ```\n'
    )
    embeds = markdown_embeds(page)
    assert [(e.section, e.fence_title) for e in embeds] == [
        ("a", "snippets/m.py"),
        ("b-c", None),
        ("b-c", "snippets/other.py"),
    ]
