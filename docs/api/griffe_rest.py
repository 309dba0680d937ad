"""A griffe extension for the API reference: the docstrings' reStructuredText habits, read as
Markdown. Their ``>>>`` examples (doctest blocks) become fenced ``pycon`` code, so Markdown neither
reads the prompts as quotes nor the ``__dunder__`` names in them as bold text; a paragraph ending
in ``::`` (before an indented block, which Markdown shows as code anyway) ends in one colon."""

from __future__ import annotations

from typing import Any

import griffe


def to_markdown(text: str) -> str:
    """``text`` with every doctest block (from a ``>>>`` line to the next blank line) fenced, and
    the ``::`` that introduces a literal block made a plain colon."""
    out: list[str] = []
    indent: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if indent is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
        elif indent is not None and not stripped:
            out.append(f"{indent}```")
            indent = None
        if indent is None and line.endswith("::"):
            line = line[:-1]
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


class RestToMarkdown(griffe.Extension):
    """Applies `to_markdown` to every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
