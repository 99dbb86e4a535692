"""Every Python block written in a page's Markdown runs.

Code that implements something is embedded from `snippets/` (a ```` ```python ```` fence whose body is a
pymdownx.snippets include `--8<-- "snippets/x.py:section"`) and tested through its module. What is
left are the short usage blocks written in the page itself: "check it yourself" blocks, examples in
admonitions and tabs. This test runs them, so that none can rot as the code or diffusers moves.

For each page, its blocks run in order in ONE fresh Python process (this interpreter, the repository
root as working directory, `FEAST_FAST=1`, `MPLBACKEND=Agg`, one torch thread, the hub offline), sharing one namespace
as a reader pasting them into one session would: a later block may use names from an earlier one.
A block that cannot run by design (a shell-like signature, a hub download) starts with the line
`# not run: <reason>` and is skipped; the reason is required.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGE_TIMEOUT_S = (
    180  # a page's blocks together; the whole test should take well under a minute
)

# An opening fence: indentation, three or more backticks or tildes, then the info string
# (a language, optionally superfences options such as title="x" or hl_lines="1", or {.python ...}).
FENCE_OPEN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$"
)
PYTHON_INFO = re.compile(r"^\{?\s*\.?(?:python|py|python3)(?:[\s}]|$)", re.IGNORECASE)
SNIPPET_INCLUDE = re.compile(
    r"^\s*-{1,}8<-{1,}"
)  # pymdownx.snippets: --8<-- "file:section" (or a block form)
NOT_RUN = re.compile(r"^#\s*not run\s*:(?P<reason>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a Markdown page.

    `line` is the 1-based line of the block's first body line in the .md file; `code` is the body,
    dedented by the fence's indentation (admonitions, tabs, details); `kind` is "run", "include"
    (a pymdownx.snippets include, tested via its module) or "skip" (first line `# not run: reason`).
    """

    page: str
    line: int
    code: str
    kind: str
    reason: str = ""


def _dedent_line(line: str, indent: str) -> str:
    """Remove the fence's indentation from a body line (a blank line may be shorter)."""
    if line.startswith(indent):
        return line[len(indent) :]
    if not line.strip():
        return ""
    return textwrap.dedent(
        line
    )  # less indented than its fence: keep the text, drop the indentation


def python_blocks(markdown: str, page: str = "<md>") -> list[Block]:
    """The fenced Python blocks of a Markdown page, in order.

    Fences of other languages are skipped whole, so a ```` ```python ```` shown *inside* a
    ```` ````markdown ```` example is not taken for a block. A fence closes on a line holding only
    the same fence character, at least as many times as it opened with.

    Raises:
        ValueError: a Python fence is never closed, or mixes a snippet include with other code.
    """
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE_OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        start = i + 1  # index of the first body line
        j = start
        while j < len(lines):
            stripped = lines[j].strip()
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                break
            j += 1
        is_python = bool(PYTHON_INFO.match(info))
        if j == len(lines):
            if is_python:
                raise ValueError(
                    f"{page}:{i + 1}: the ```python fence opened here is never closed"
                )
            break
        if is_python:
            body = [_dedent_line(line, indent) for line in lines[start:j]]
            code = "\n".join(body) + "\n"
            content = [line for line in body if line.strip()]
            includes = [line for line in content if SNIPPET_INCLUDE.match(line)]
            first = content[0].strip() if content else ""
            not_run = NOT_RUN.match(first)
            if includes and len(includes) != len(content):
                raise ValueError(
                    f"{page}:{start + 1}: a ```python block mixes a snippet include ({includes[0].strip()}) "
                    "with other code; embed the section alone, or write the code in snippets/"
                )
            if includes:
                kind, reason = "include", ""
            elif not_run:
                kind, reason = "skip", not_run["reason"].strip()
            else:
                kind, reason = "run", ""
            blocks.append(Block(page, start + 1, code, kind, reason))
        i = j + 1
    return blocks


# The child process: run the blocks of one page in order, in one namespace. Each block is compiled
# with the page as its file name and padded so that traceback line numbers are the .md file's lines.
RUNNER = r"""
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for block in blocks:
    source = "\n" * (block["line"] - 1) + block["code"]
    try:
        exec(compile(source, block["page"], "exec"), namespace)
    except BaseException:
        sys.stdout.flush()
        print(f"@@block-failed@@ {block['line']}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def run_page(
    blocks: list[Block], timeout: float = PAGE_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """Run a page's runnable blocks in a fresh interpreter at the repository root."""
    env = {
        **os.environ,
        "FEAST_FAST": "1",
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        # one thread: the blocks use tiny batches, and torch's thread pool on a shared 2-core CPU
        # costs up to 10x in contention
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        ),
    }
    payload = json.dumps(
        [
            {"page": b.page, "line": b.line, "code": b.code}
            for b in blocks
            if b.kind == "run"
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=payload,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def failure_message(page: str, proc: subprocess.CompletedProcess) -> str:
    """Name the page, the failing block's line in the .md file and the traceback."""
    marker = re.search(r"^@@block-failed@@ (\d+)$", proc.stderr, re.MULTILINE)
    if marker:
        where = f"{page}: the ```python block at line {marker[1]} failed"
        detail = proc.stderr[marker.end() :].strip()
    else:  # died outside a block (import of the runner, a crash, a kill)
        where = f"{page}: the blocks' interpreter exited with status {proc.returncode}"
        detail = proc.stderr.strip()
    tail = proc.stdout.strip()[-1500:]
    return f"{where}\n{detail[-6000:]}" + (
        f"\n--- its stdout (end) ---\n{tail}" if tail else ""
    )


# ----------------------------------------------------------------------------------------------
# The extractor itself
# ----------------------------------------------------------------------------------------------
SAMPLE = """\
# A page

```python title="snippets/forward.py"
--8<-- "snippets/forward.py:q-sample"
```

!!! tip "Try it"

    ```python title="check it yourself"
    import math
    x = math.sqrt(4)

    assert x == 2
    ```

=== "from scratch"

    ??? success "Solution"

        ```py
        y = x + 1
        ```

```python
# not run: needs the hub
pipe = DDPMPipeline.from_pretrained("google/ddpm-cat-256")
```

````markdown
```python
this is an example of Markdown, not a Python block
```
````

```bash
pytest -k q_sample
```

~~~python
# not run:
~~~
"""


def test_extractor_finds_blocks_with_their_lines_kinds_and_dedented_code():
    blocks = python_blocks(SAMPLE, "sample.md")
    assert [(b.line, b.kind) for b in blocks] == [
        (4, "include"),
        (10, "run"),
        (21, "run"),
        (25, "skip"),
        (40, "skip"),
    ]
    assert (
        blocks[1].code == "import math\nx = math.sqrt(4)\n\nassert x == 2\n"
    )  # indentation and blank line
    assert blocks[2].code == "y = x + 1\n"  # eight spaces deep: details inside a tab
    assert blocks[3].reason == "needs the hub"
    assert blocks[4].reason == ""  # the test below refuses this one
    # the line numbers point at the body in the Markdown source
    assert SAMPLE.splitlines()[blocks[1].line - 1].strip() == "import math"


def test_extractor_rejects_unclosed_and_mixed_blocks():
    with pytest.raises(ValueError, match=r"x\.md:3: .*never closed"):
        python_blocks("text\n\n```python\nprint(1)\n", "x.md")
    with pytest.raises(ValueError, match=r"mixes a snippet include"):
        python_blocks(
            '```python\n--8<-- "snippets/forward.py:q-sample"\nprint(1)\n```\n', "x.md"
        )


def test_runner_reports_the_failing_blocks_md_line_and_shares_one_namespace():
    page = "docs/some/page.md"
    blocks = python_blocks(
        "```python\nvalue = 41\n```\n\ntext\n\n```python\nvalue += 1\nassert value == 43, value\n```\n",
        page,
    )
    proc = run_page(blocks, timeout=60)
    assert proc.returncode == 1
    message = failure_message(page, proc)
    assert message.startswith(f"{page}: the ```python block at line 8 failed")
    assert (
        'File "docs/some/page.md", line 9' in message
    )  # the traceback points into the .md file
    assert (
        "AssertionError: 42" in message
    )  # the second block saw the first block's name


# ----------------------------------------------------------------------------------------------
# The pages
# ----------------------------------------------------------------------------------------------
PAGES = sorted(p for p in DOCS.rglob("*.md") if (DOCS / "includes") not in p.parents)
PAGE_IDS = [p.relative_to(REPO).as_posix() for p in PAGES]


def page_blocks(path: Path) -> list[Block]:
    return python_blocks(
        path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix()
    )


def test_pages_have_runnable_blocks():
    # the parametrized test below would pass vacuously if the extractor found nothing
    assert sum(b.kind == "run" for p in PAGES for b in page_blocks(p)) >= 10


@pytest.mark.parametrize("path", PAGES, ids=PAGE_IDS)
def test_python_blocks_of_page_run(path):
    page = path.relative_to(REPO).as_posix()
    blocks = page_blocks(path)
    unexplained = [b.line for b in blocks if b.kind == "skip" and not b.reason]
    assert not unexplained, (
        f"{page}: `# not run:` without a reason at line(s) {unexplained}"
    )
    if not any(b.kind == "run" for b in blocks):
        return  # nothing written in the page itself: its code is embedded and tested via snippets/
    try:
        proc = run_page(blocks)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{page}: its ```python blocks took longer than {PAGE_TIMEOUT_S} s; make them smaller"
        )
    assert proc.returncode == 0, failure_message(page, proc)
