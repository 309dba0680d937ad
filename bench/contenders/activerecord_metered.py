"""activerecord with metrics on (``activerecord.ops.instrument()``), sync and async: run beside
``activerecord`` and ``activerecord-async`` to measure what metrics cost within one run."""

from __future__ import annotations

from bench.contenders import activerecord_async, activerecord_sync


class Contender(activerecord_sync.Contender):
    """The sync activerecord contender with metrics on."""

    metrics = "1"


class AsyncMetered(activerecord_async.Contender):
    """The async activerecord contender with metrics on."""

    metrics = "1"
