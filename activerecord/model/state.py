"""What a record knows besides its field values: one slotted object per record.

The field values live in the instance ``__dict__`` (CPython's fastest attribute path); everything
else about the record sits on one `RecordState` stored under ``STATE``, so the record's own
bookkeeping has one home and one name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STATE = "_ar_state"
"""The instance attribute that holds a record's `RecordState`."""


class RecordState:
    """The bookkeeping of one record.

    ``saved`` is the snapshot of the field values last read or written (None until the record
    is saved or loaded, and again once it is deleted): dirty tracking compares to it. ``using``
    is the connection the record came from (None: its model's). ``relations`` holds the loaded
    relations by name, created on the first one.
    """

    __slots__ = ("relations", "saved", "using")

    saved: Sequence[Any] | None
    using: str | None
    relations: dict[str, Any] | None

    def copy(self) -> RecordState:
        """An independent copy, with the snapshot as a plain tuple (a driver's row may not pickle)."""
        new = RecordState()
        saved = self.saved
        new.saved = saved if saved is None or type(saved) is tuple else tuple(saved)
        new.using = self.using
        new.relations = None if self.relations is None else dict(self.relations)
        return new


def new_state() -> RecordState:
    """The state of a record that was neither saved nor loaded."""
    state = RecordState()
    state.saved = None
    state.using = None
    state.relations = None
    return state


def state_of(record: Any) -> RecordState:
    """The `RecordState` of ``record``."""
    state: RecordState = record.__dict__[STATE]
    return state


__all__ = ["STATE", "RecordState", "new_state", "state_of"]
