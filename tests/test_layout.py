"""The package's import graph: no module imports itself back through others.

The layers contract (``lint-imports``, run by ``nox -s lint``) keeps imports pointing down the
layers; this keeps every layer free of cycles inside it too.
"""

from __future__ import annotations

import grimp


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("activerecord", exclude_type_checking_imports=True)
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("activerecord") and graph.chain_exists(importer=imported, imported=module)
    )
    assert cycles == []


def test_importing_the_package_loads_no_driver() -> None:
    import subprocess
    import sys

    drivers = "('aiosqlite', 'asyncpg', 'psycopg', 'pymysql', 'asyncmy')"
    code = f"import sys, activerecord; print(sorted(m for m in {drivers} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
