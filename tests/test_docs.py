"""Every ```python block in docs/ and README.md runs: each page's blocks in order, as one script, in a fresh
interpreter and an empty working folder. Blocks fenced ```{.python .no-run} need a server and are
covered by the tests of their feature instead (the braces are Markdown's attribute syntax: an info
string with a space, such as "python no-run", would not open a code block at all).

The API reference pages (docs/api/) hold ``::: activerecord.X`` directives that the docs build
expands from the docstrings, not code to run; they are checked for covering every public name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import activerecord

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))
PAGES = [*DOCS, ROOT / "README.md"]
BLOCK = re.compile(r"^```(python|\{\.python[^\n]*\})\n(.*?)^```", re.MULTILINE | re.DOTALL)
DIRECTIVE = re.compile(r"^::: (\S+)", re.MULTILINE)
# The public modules beside activerecord.__all__.
PUBLIC_MODULES = ("errors", "migrations")
# ConnectionManager is an instance: its methods are rendered from its class, which is internal.
INTERNAL_TARGETS = {"activerecord.connections.manager.ConnectionRegistry"}


def runnable_code(page: Path) -> str:
    blocks = [code for opts, code in BLOCK.findall(page.read_text()) if "no-run" not in opts]
    return "\n".join(blocks)


@pytest.mark.parametrize("page", [p for p in PAGES if runnable_code(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    # (Prefixed: a script named after its page, fastapi.py say, would shadow the package it imports.)
    script = tmp_path / f"page_{page.stem}.py"
    script.write_text(runnable_code(page))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{page.name} failed:\n{proc.stdout}\n{proc.stderr}"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [str(p.relative_to(ROOT / "docs")) for p in [*DOCS, *API_PAGES]]
    missing = [name for name in missing if re.search(rf"[\s:]{re.escape(name)}$", nav, re.MULTILINE) is None]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"


def test_the_api_reference_covers_exactly_the_public_names() -> None:
    targets = [t for page in API_PAGES for t in DIRECTIVE.findall(page.read_text())]
    assert not [p.name for p in API_PAGES if BLOCK.search(p.read_text())], "API pages hold no runnable code"
    # The error classes in __all__ are re-exports, documented on the page of their module.
    reexported = {
        n for n in activerecord.__all__ if getattr(getattr(activerecord, n), "__module__", "") == "activerecord.errors"
    }
    public = {f"activerecord.{n}" for n in activerecord.__all__ if n not in {*PUBLIC_MODULES, *reexported}}
    public |= {f"activerecord.{module}" for module in PUBLIC_MODULES}
    assert sorted(set(targets) - public - INTERNAL_TARGETS) == [], "directives must name public names"
    assert sorted(public - set(targets)) == [], "public names missing from docs/api/"
    assert len(targets) == len(set(targets)), "a name documented twice"
