"""The examples in docs/ and README.md pass ``mypy --strict``, as users' code written from them would.

Each page's runnable ```python blocks are checked as the one script `test_docs` runs. Blocks
fenced ```{.python .no-run} are left out: they are fragments of server set-ups (top-level
``await``, names defined elsewhere) that are not programs on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .test_docs import PAGES, runnable_code


@pytest.mark.parametrize("page", [p for p in PAGES if runnable_code(p)], ids=lambda p: p.name)
def test_page_examples_type_check(page: Path, mypy_check: Callable[[str], tuple[str, int]]) -> None:
    out, status = mypy_check(runnable_code(page))
    assert status == 0, f"{page.name}:\n{out}"
