"""The multi-database demo runs on SQLite files and tells what happened."""

from __future__ import annotations

from pathlib import Path

from activerecord import ConnectionManager
from activerecord.demo.multidb import run_multidb_demo


def test_multidb_demo(tmp_path: Path) -> None:
    lines: list[str] = []
    run_multidb_demo(tmp_path, lines.append)
    text = "\n".join(lines)
    assert "this request reads it back through using_read_replica(): 1 order(s)" in text
    assert "another request reads the replica, which lags: 0 order(s)" in text
    assert "after replication the replica has it: 1 order(s)" in text
    assert "ReadOnlyError" in text
    assert "reads fall back to the primary -> 1 order(s)" in text
    assert "on_all_shards().count() = 6" in text
    assert "find_user(" in text
    assert sorted(p.name for p in tmp_path.glob("user_shard_*.db")) == [f"user_shard_{n}.db" for n in range(4)]
    assert not ConnectionManager.is_configured("multidb_orders")
