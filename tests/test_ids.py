"""The 64-bit id generator: unique, time-ordered, positive, spread over shards."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from activerecord import IdGenerator, configure_ids, generate_id, id_timestamp
from activerecord.errors import ConfigurationError


def test_ids_are_positive_64_bit_and_strictly_increasing() -> None:
    ids = [generate_id() for _ in range(20_000)]
    assert all(0 < i < 2**63 for i in ids)
    assert all(a < b for a, b in pairwise(ids))


def test_ids_carry_their_time() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=2)
    made = id_timestamp(generate_id())
    after = datetime.now(UTC) + timedelta(milliseconds=2)
    assert before <= made <= after


def test_ids_are_unique_across_threads() -> None:
    generator = IdGenerator(node=5)
    found: list[list[int]] = []

    def make() -> None:
        found.append([generator.next_id() for _ in range(5000)])

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for part in found for i in part]
    assert len(set(every)) == len(every) == 40_000


def test_generators_with_different_nodes_never_collide() -> None:
    a, b = IdGenerator(node=1), IdGenerator(node=2)
    ids_a = {a.next_id() for _ in range(5000)}
    ids_b = {b.next_id() for _ in range(5000)}
    assert not ids_a & ids_b
    assert {(i >> 12) & 0x3FF for i in ids_a} == {1}


def test_low_bits_spread_evenly_for_modulo_sharding() -> None:
    # One id per millisecond (low traffic) must still land on every shard.
    generator = IdGenerator(node=0)
    counts: Counter[int] = Counter()
    for _ in range(400):
        counts[generator.next_id() % 4] += 1
        time.sleep(0.0011)
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 40


def test_a_burst_beyond_one_millisecond_capacity_stays_unique_and_ordered() -> None:
    generator = IdGenerator(node=3)
    ids = [generator.next_id() for _ in range(10_000)]  # more than 2048 per millisecond
    assert all(a < b for a, b in pairwise(ids))


@pytest.mark.parametrize("node", [-1, 1024, "1", True, 1.5])
def test_node_numbers_are_checked(node: object) -> None:
    with pytest.raises(ValueError, match="node"):
        IdGenerator(node=node)  # type: ignore[arg-type]


def node_of(value: int) -> int:
    return (value >> 12) & 0x3FF


def ids_from_parent_and_forked_child(count: int) -> tuple[list[int], list[int]]:
    """``count`` ids from `generate_id` in this process and as many in a child forked from it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids through the pipe, then leave without pytest's teardown
        try:
            os.close(read_end)
            with os.fdopen(write_end, "w") as out:
                out.write(" ".join(str(generate_id()) for _ in range(count)))
        finally:
            os._exit(0)
    os.close(write_end)
    parent = [generate_id() for _ in range(count)]
    with os.fdopen(read_end) as inp:
        child = [int(v) for v in inp.read().split()]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return parent, child


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("configured", [None, 7], ids=["random-node", "configured-node"])
def test_a_forked_worker_gets_its_own_node_and_never_collides(configured: int | None) -> None:
    configure_ids(node=configured)
    try:
        generate_id()  # the generator exists before the fork, as in a pre-forking server
        parent, child = ids_from_parent_and_forked_child(3000)
    finally:
        configure_ids(node=None)
    assert len(child) == 3000
    parent_nodes, child_nodes = {node_of(i) for i in parent}, {node_of(i) for i in child}
    assert len(parent_nodes) == len(child_nodes) == 1
    assert parent_nodes != child_nodes
    if configured is not None:
        assert parent_nodes == {configured}
    assert not set(parent) & set(child)
    assert len(set(parent)) == len(set(child)) == 3000


def test_configure_ids_sets_the_node_of_generate_id() -> None:
    configure_ids(node=42)
    try:
        assert {node_of(generate_id()) for _ in range(100)} == {42}
    finally:
        configure_ids(node=None)


@pytest.mark.parametrize("node", [-1, 1024, "3", True])
def test_configure_ids_rejects_bad_nodes(node: object) -> None:
    with pytest.raises(ConfigurationError, match="from 0 to 1023"):
        configure_ids(node=node)  # type: ignore[arg-type]


def run_with_node_env(value: str) -> subprocess.CompletedProcess[str]:
    code = "from activerecord import generate_id; print((generate_id() >> 12) & 0x3FF)"
    env = {**os.environ, "ACTIVERECORD_ID_NODE": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_node_can_come_from_the_environment() -> None:
    proc = run_with_node_env("513")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "513"


def test_a_bad_node_in_the_environment_is_a_configuration_error() -> None:
    proc = run_with_node_env("node-1")
    assert proc.returncode != 0
    assert "ConfigurationError: ACTIVERECORD_ID_NODE must be an integer from 0 to 1023, not 'node-1'" in proc.stderr
