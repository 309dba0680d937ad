"""Every ```python block in docs/ and README.md runs: each page's blocks in order, as one script, in a fresh
interpreter and an empty working folder. Blocks fenced ```{.python .no-run} need a server and are
covered by the tests of their feature instead (the braces are Markdown's attribute syntax: an info
string with a space, such as "python no-run", would not open a code block at all)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [*DOCS, ROOT / "README.md"]
BLOCK = re.compile(r"^```(python|\{\.python[^\n]*\})\n(.*?)^```", re.MULTILINE | re.DOTALL)


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
    missing = [p.name for p in DOCS if p.name not in nav]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"
