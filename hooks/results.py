"""MkDocs hook: measured numbers in prose are read from ``benchmarks/results/*.json`` at build time.

A page never types a measured number; it writes where the number is::

    DDPM with 250 steps reaches an FID of {{ result("sampler_quality", "rows[sampler=ddpm,steps=250].fid", ".1f") }}

and the build replaces the expression with the formatted value. The three arguments:

* the benchmark: ``benchmarks/results/<name>.json``, whose ``results`` object the path starts in
  (a path starting with ``/`` starts at the top of the file instead: ``/seconds``, ``/date``);
* the path: keys separated by dots; a number indexes a list (``floor_fids_by_seed.2``); a key
  holding a dot, a slash or other punctuation is written in single quotes
  (``'minutes_to_1.2x_floor'.'ours/unconditional'``);
  ``key[field=value,...]`` keeps the items of a list whose fields equal the values (numbers are
  compared as numbers: ``steps=250`` matches ``250``, ``minutes=10`` matches ``10.0``), and must
  keep exactly one unless the path ends with an aggregate: ``|min``, ``|max``, ``|count``;
  ``*`` takes every value of an object (``samplers.*.ratio|max``);
* the format: a Python format spec (``".1f"``, ``",d"``, ``".2%"``), optionally after a scale
  ``/N`` or ``*N``: ``"/60:.0f"`` turns seconds into whole minutes, ``"/1e6:.1f"`` parameters into
  millions.

An expression that does not resolve (no such file, key or item, several items where one is
expected) stops the build with an error naming the page and the expression. The test
``tests/site/test_results_numbers.py`` renders every page the same way. Only the exact form
``{{ result("...", "...", "...") }}`` is replaced, so other ``{{`` in code blocks are left alone.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
EXPRESSION = re.compile(
    r'\{\{\s*result\(\s*"([\w-]+)"\s*,\s*"([^"]+)"\s*,\s*"([^"]*)"\s*\)\s*\}\}'
)
_SEGMENT = re.compile(r"^('[^']*'|[\w+-]+|\*)(?:\[([^\]]*)\])?$")
# a dot separates keys unless it is inside [...] or inside '...' (an even number of quotes follows)
_SEPARATOR = re.compile(r"\.(?![^\[]*\])(?=(?:[^']*'[^']*')*[^']*$)")
AGGREGATES = {"min": min, "max": max, "count": len}


class ResultError(ValueError):
    """A `result(...)` expression that does not resolve to one number."""


@lru_cache(maxsize=None)
def load(name: str, results_dir: Path = RESULTS) -> dict:
    """The whole JSON record of benchmark `name`."""
    path = results_dir / f"{name}.json"
    if not path.is_file():
        raise ResultError(f"no results file {path}")
    return json.loads(path.read_text())


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _matches(item, conditions: dict) -> bool:
    return isinstance(item, dict) and all(
        k in item and item[k] == v for k, v in conditions.items()
    )


def resolve(name: str, path: str, results_dir: Path = RESULTS):
    """The value at `path` in benchmark `name`'s record (see the module docstring)."""
    record = load(name, results_dir)
    value = record if path.startswith("/") else record.get("results", {})
    path, _, aggregate = path.lstrip("/").partition("|")
    if aggregate and aggregate not in AGGREGATES:
        raise ResultError(
            f"unknown aggregate |{aggregate}; use one of {list(AGGREGATES)}"
        )
    many = False  # after a filter that kept several items, keys map over them
    for segment in _SEPARATOR.split(path):
        match = _SEGMENT.match(segment)
        if not match:
            raise ResultError(f"bad path segment {segment!r}")
        key, conditions = match.groups()
        quoted = key.startswith("'")
        key = key[1:-1] if quoted else key
        values = value if many else [value]
        out = []
        if key == "*" and not quoted:  # every value of a dict
            if many or not isinstance(value, dict):
                raise ResultError(f"{name}: '*' needs a dict at {path!r}")
            value, many = list(value.values()), True
            continue
        for v in values:
            if (
                isinstance(v, list)
                and not quoted
                and key.isdigit()
                and int(key) < len(v)
            ):
                out.append(v[int(key)])
            elif isinstance(v, dict) and key in v:
                out.append(v[key])
            else:
                raise ResultError(f"{name}: no {key!r} at {segment!r} of {path!r}")
        if conditions is not None:
            wanted = dict(
                (k.strip(), _parse_value(v.strip()))
                for k, v in (c.split("=", 1) for c in conditions.split(","))
            )
            if many or not isinstance(out[0], list):
                raise ResultError(f"{name}: {key!r} is not a list to filter")
            out = [item for item in out[0] if _matches(item, wanted)]
            if not out:
                raise ResultError(f"{name}: no item of {key!r} has {wanted}")
            many = True
        value = out if many else out[0]
    if aggregate:
        if not isinstance(value, list) or not value:
            raise ResultError(f"|{aggregate} needs a list (or a filter) with items")
        return AGGREGATES[aggregate](value)
    if many:
        if len(value) != 1:
            raise ResultError(
                f"{name}: {path!r} matches {len(value)} items; "
                "narrow the filter or end with |min, |max or |count"
            )
        value = value[0]
    return value


def format_value(value, spec: str) -> str:
    """Format a resolved value: an optional scale (`/N:` or `*N:`), then a Python format spec."""
    scale = re.match(r"^([/*])([0-9.e+-]+):(.*)$", spec)
    if scale:
        op, factor, spec = scale.group(1), float(scale.group(2)), scale.group(3)
        value = value / factor if op == "/" else value * factor
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ResultError(f"{value!r} is not a number or a string")
    return format(value, spec)


def render(markdown: str, results_dir: Path = RESULTS) -> str:
    """Replace every `{{ result(...) }}` of a page's Markdown by its formatted value."""

    def replace(match: re.Match) -> str:
        name, path, spec = match.groups()
        try:
            return format_value(resolve(name, path, results_dir), spec)
        except (ResultError, ValueError, TypeError) as error:
            raise ResultError(f"{match.group(0)}: {error}") from None

    return EXPRESSION.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files):
    from mkdocs.exceptions import PluginError

    try:
        return render(markdown)
    except ResultError as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from None


def on_pre_build(config):
    load.cache_clear()  # `mkdocs serve` re-reads results files that changed


def on_serve(server, config, builder):
    """`mkdocs serve` rebuilds when a results file changes."""
    server.watch(str(RESULTS))
    return server
