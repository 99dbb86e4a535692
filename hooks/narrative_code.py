"""MkDocs hook: a page's embedded code shows the lines that compute, not the docstrings.

A page embeds a section of a tested module with pymdownx.snippets, in a fence titled with the
module's path (```` ```python title="snippets/forward.py" ````). The prose around the block already
states what the docstring says, often as the same equation typeset, so on the pages the block shows
the signature and the body: this hook registers a Python-Markdown preprocessor that runs after
pymdownx.snippets has inserted the section (priority 32) and before superfences reads the fences
(priority 25), and removes module, class, function and attribute docstrings from every Python
fence whose title is a ``snippets/*.py`` path.

The page still embeds the tested file, never a copy, and the API reference (mkdocstrings, which
does not go through fences) keeps every docstring in full. Docstrings are found with :mod:`ast`,
so a triple quote inside a string or a comment is never taken for one, and what is left is still
valid Python: a body that held only its docstring becomes ``...``.
"""

from __future__ import annotations

import ast
import re

from markdown import Extension
from markdown.preprocessors import Preprocessor

# After pymdownx.snippets (32) and superfences' raw-block pass (31.05), before its fences (25).
PRIORITY = 30
# An opening fence: indentation, three or more backticks or tildes, then the info string.
_FENCE_OPEN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$"
)
_PYTHON_INFO = re.compile(r"^\{?\s*\.?(?:python|py|python3)(?:[\s}]|$)", re.IGNORECASE)
_SNIPPET_TITLE = re.compile(r"""\btitle\s*=\s*(["'])snippets/[\w/]+\.py\1""")

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_string(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _docstrings(tree: ast.Module):
    """Yield `(docstring, owner's body)` for every docstring, outermost first.

    A docstring is the first statement of a module, class or function body when it is a string,
    or a string right after an assignment in a module or class body (an attribute docstring, which
    mkdocstrings shows in the reference).
    """
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, *_DEFINITIONS)):
            continue
        body = node.body
        if body and _is_string(body[0]):
            yield body[0], body
        if isinstance(node, (ast.Module, ast.ClassDef)):
            for previous, statement in zip(body, body[1:]):
                if isinstance(previous, (ast.Assign, ast.AnnAssign)) and _is_string(
                    statement
                ):
                    yield statement, body


def strip_docstrings(source: str) -> str:
    """Remove the module, class, function and attribute docstrings from Python source.

    Only whole lines are removed: a docstring that shares a line with other code
    (``def f(): "doc"``) is kept. Blank lines right after a removed docstring that opens a body go
    with it, and a body
    that held nothing but its docstring becomes ``...`` at the docstring's indentation, so the
    result parses whenever `source` did. Source that does not parse is returned unchanged.

    Args:
        source: Python code, as a module or a section of one (already dedented).

    Returns:
        The code without docstrings, with a trailing newline if `source` had one.

    Raises:
        TypeError: If `source` is not a string.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()  # 0-based line numbers
    replace: dict[int, str] = {}  # 0-based line number -> new line
    for doc, body in _docstrings(tree):
        first, last = doc.lineno - 1, doc.end_lineno - 1
        before = lines[first].encode("utf-8")[: doc.col_offset].decode("utf-8")
        after = lines[last].encode("utf-8")[doc.end_col_offset :].decode("utf-8")
        after = after.strip()
        if before.strip() or (after and not after.startswith("#")):
            continue  # shares its lines with other code: leave it
        span = range(first, last + 1)
        if len(body) == 1 and body is not tree.body:
            drop.update(span)
            replace[first] = before + "...\n"
            continue
        drop.update(span)
        if doc is not body[0]:
            continue  # an attribute docstring: the blank lines around it stay
        following = last + 1
        while following < len(lines) and not lines[following].strip():
            drop.add(following)
            following += 1
    out = []
    for number, line in enumerate(lines):
        if number in replace:
            out.append(replace[number])
        elif number not in drop:
            out.append(line)
    return "".join(out)


def _dedent(line: str, indent: str) -> str:
    if line.startswith(indent):
        return line[len(indent) :]
    return line.lstrip(" \t") if not line.strip() else line


def strip_fenced_docstrings(lines: list[str]) -> list[str]:
    """Strip docstrings from the Python fences titled ``snippets/*.py`` of a Markdown page.

    Fences of other languages are passed over whole, so a block shown inside a ```` ````markdown ````
    example is left as written.

    Args:
        lines: The page's lines, after pymdownx.snippets has inserted the sections.

    Returns:
        The page's lines with those fences' bodies stripped of docstrings.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        out.append(lines[i])
        i += 1
        if not opening:
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        body: list[str] = []
        while i < len(lines):
            stripped = lines[i].strip()
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                break
            body.append(lines[i])
            i += 1
        if _PYTHON_INFO.match(info) and _SNIPPET_TITLE.search(info):
            code = "".join(_dedent(line, indent) + "\n" for line in body)
            stripped_code = strip_docstrings(code)
            body = [
                (indent + line) if line else line for line in stripped_code.splitlines()
            ]
        out.extend(body)
        if i < len(lines):
            out.append(lines[i])  # the closing fence
            i += 1
    return out


class NarrativeCodePreprocessor(Preprocessor):
    """Runs :func:`strip_fenced_docstrings` on every page."""

    def run(self, lines: list[str]) -> list[str]:
        return strip_fenced_docstrings(lines)


class NarrativeCodeExtension(Extension):
    """Registers the preprocessor between pymdownx.snippets and superfences."""

    def extendMarkdown(self, md):  # noqa: N802 (Python-Markdown's name)
        md.preprocessors.register(
            NarrativeCodePreprocessor(md), "narrative_code", PRIORITY
        )


def on_config(config):
    """Add the extension to the site's Markdown extensions."""
    config.markdown_extensions.append(NarrativeCodeExtension())
    return config
