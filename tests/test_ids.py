"""The 64-bit id generator: unique, time-ordered, positive, spread over shards."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from activerecord import IdGenerator, generate_id, id_timestamp


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
