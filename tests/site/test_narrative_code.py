"""Embedded code as the pages show it: no docstrings, valid Python, 88 columns.

`hooks/narrative_code.py` strips docstrings from the fences titled `snippets/*.py` after
pymdownx.snippets has inserted the sections. These tests check the stripper on hand-written
inputs, the whole Markdown pipeline on a real section, and then every section a page embeds, as
the reader sees it.
"""

from __future__ import annotations

import ast
import textwrap

import markdown
import pytest
import yaml
from siteaudit import REPO, markdown_embeds

from hooks.narrative_code import (
    NarrativeCodeExtension,
    strip_docstrings,
    strip_fenced_docstrings,
)

WIDTH = 88  # ruff.toml's line length: the width of a code block on the site


def docstrings(source: str) -> list[str]:
    """The docstrings of `source`, attribute docstrings (a string after an assignment) included."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if not isinstance(
            node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            continue
        body = node.body
        strings = [
            s.value.value
            for i, s in enumerate(body)
            if isinstance(s, ast.Expr)
            and isinstance(s.value, ast.Constant)
            and isinstance(s.value.value, str)
            and (i == 0 or isinstance(body[i - 1], (ast.Assign, ast.AnnAssign)))
        ]
        found.extend(strings)
    return found


# ----------------------------------------------------------------------------------------------
# The stripper
# ----------------------------------------------------------------------------------------------
MODULE = '''\
r"""Module docstring with $\\bar\\alpha$."""

import math

QUOTES = """not a docstring"""  # a triple-quoted constant stays
"""Attribute docstring."""


class Schedule:
    """Class docstring."""

    def __init__(self, n):
        r"""Method docstring,
        over two lines with \\"""quotes\\""" inside."""
        # a comment with """ in it stays
        self.n = n

    def empty(self):
        """Only a docstring."""


def f(x):  # trailing comment
    """Docstring."""

    return math.sqrt(x) + len('"""')
'''

EXPECTED = '''\
import math

QUOTES = """not a docstring"""  # a triple-quoted constant stays


class Schedule:
    def __init__(self, n):
        # a comment with """ in it stays
        self.n = n

    def empty(self):
        ...


def f(x):  # trailing comment
    return math.sqrt(x) + len('"""')
'''


def test_strip_docstrings_removes_every_docstring_and_nothing_else():
    assert docstrings(MODULE)  # the input has them
    stripped = strip_docstrings(MODULE)
    assert stripped == EXPECTED
    assert docstrings(stripped) == []
    namespace: dict = {}
    exec(compile(stripped, "<stripped>", "exec"), namespace)  # still runs
    assert namespace["f"](4) == 5.0
    assert namespace["QUOTES"] == "not a docstring"


def test_strip_docstrings_keeps_code_that_shares_a_line_and_unparsable_code():
    one_liner = 'def f(): "doc"\n'
    assert strip_docstrings(one_liner) == one_liner
    with_statement = 'def f():\n    "doc"; x = 1\n    return x\n'
    assert strip_docstrings(with_statement) == with_statement
    broken = 'def f(:\n    """doc"""\n'
    assert strip_docstrings(broken) == broken
    with pytest.raises(TypeError, match="source"):
        strip_docstrings(b'"""doc"""')


def test_strip_docstrings_keeps_a_method_section_dedented_by_snippets():
    section = textwrap.dedent(
        '''\
        def step(self, x):
            """Docstring of a method embedded without its class."""
            return x
        '''
    )
    assert strip_docstrings(section) == "def step(self, x):\n    return x\n"


def test_fences_titled_with_a_module_path_lose_their_docstrings_and_only_they():
    page = textwrap.dedent(
        '''\
        ```python title="snippets/m.py"
        def f():
            """Doc."""
            return 1
        ```

        !!! tip

            ```python title="snippets/m.py"
            def g():
                """Doc."""

                return 2
            ```

        ```python title="check it yourself"
        def h():
            """Kept: written in the page."""
        ```

        ````markdown
        ```python title="snippets/m.py"
        def k():
            """Kept: an example of Markdown."""
        ```
        ````
        '''
    )
    out = "\n".join(strip_fenced_docstrings(page.splitlines())) + "\n"
    assert out.count('"""Doc."""') == 0
    assert "def f():\n    return 1\n```" in out
    assert (
        '    ```python title="snippets/m.py"\n    def g():\n        return 2\n' in out
    )
    assert '"""Kept: written in the page."""' in out
    assert '"""Kept: an example of Markdown."""' in out


# ----------------------------------------------------------------------------------------------
# The site's Markdown pipeline
# ----------------------------------------------------------------------------------------------
def site_markdown() -> markdown.Markdown:
    """pymdownx.snippets as mkdocs.yml configures it, superfences, and the hook's extension."""
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.Loader)
    assert "hooks/narrative_code.py" in config["hooks"], "the hook is not registered"
    snippets = next(
        ext["pymdownx.snippets"]
        for ext in config["markdown_extensions"]
        if isinstance(ext, dict) and "pymdownx.snippets" in ext
    )
    snippets = {**snippets, "base_path": [str(REPO)], "auto_append": []}
    return markdown.Markdown(
        extensions=[
            "pymdownx.snippets",
            "pymdownx.superfences",
            NarrativeCodeExtension(),
        ],
        extension_configs={"pymdownx.snippets": snippets},
    )


def displayed_section(md: markdown.Markdown, file: str, section: str | None) -> str:
    """A section's code as a page shows it: inserted by pymdownx.snippets, then stripped."""
    target = f"{file}:{section}" if section else file
    lines = [f'```python title="{file}"', f'--8<-- "{target}"', "```"]
    lines = md.preprocessors["snippet"].run(lines)
    lines = md.preprocessors["narrative_code"].run(lines)
    return "\n".join(lines[1:-1]) + "\n"


def test_the_pipeline_embeds_a_real_section_without_its_docstring():
    md = site_markdown()
    page = '```python title="snippets/forward.py"\n--8<-- "snippets/forward.py:q-sample"\n```\n'
    html = md.convert(page)
    assert "q_sample" in html and "broadcast_at" in html
    assert "Ho et al. 2020, Eq. 4" in (REPO / "snippets" / "forward.py").read_text()
    assert "Ho et al. 2020, Eq. 4" not in html  # the docstring's first line
    assert "Args:" not in html


# ----------------------------------------------------------------------------------------------
# Every embedded section, as displayed
# ----------------------------------------------------------------------------------------------
def all_embedded_sections() -> list[tuple[str, str | None]]:
    embeds = {
        (e.file, e.section)
        for page in (REPO / "docs").rglob("*.md")
        for e in markdown_embeds(page.read_text(encoding="utf-8"), str(page))
        if e.fence_title is not None
    }
    return sorted(embeds, key=lambda e: (e[0], e[1] or ""))


EMBEDDED = all_embedded_sections()


def test_pages_embed_sections():
    assert (
        len(EMBEDDED) >= 40
    )  # the parametrized tests below would pass vacuously on none


@pytest.fixture(scope="module")
def md():
    return site_markdown()


@pytest.mark.parametrize(
    "file, section", EMBEDDED, ids=[f"{f}:{s}" for f, s in EMBEDDED]
)
def test_embedded_section_is_valid_python_without_docstrings(md, file, section):
    code = displayed_section(md, file, section)
    assert code.strip(), f"{file}:{section} is empty"
    try:
        found = docstrings(code)
    except SyntaxError as error:  # the stripper leaves unparsable code untouched
        pytest.fail(f"{file}:{section} as embedded is not valid Python: {error}")
    assert found == [], f"{file}:{section} still shows docstrings: {found}"


@pytest.mark.parametrize(
    "file, section", EMBEDDED, ids=[f"{f}:{s}" for f, s in EMBEDDED]
)
def test_embedded_section_fits_88_columns(md, file, section):
    code = displayed_section(md, file, section)
    long = [
        f"{number}: ({len(line)}) {line}"
        for number, line in enumerate(code.splitlines(), start=1)
        if len(line) > WIDTH
    ]
    assert not long, f"{file}:{section} has lines over {WIDTH} columns:\n" + "\n".join(
        long
    )
