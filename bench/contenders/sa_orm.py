"""SQLAlchemy 2 ORM with a Session: unit of work, identity map, mapped instances."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.orm import Session

from bench.contenders.base import OnBatch, SyncContender
from bench.contenders.sa_schema import Item, Narrow, StreamItem
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import W8_POOL, NarrowRow, Row

_DICT_COLUMNS = (Item.id, Item.name, Item.value, Item.score, Item.created_at)


class Contender(SyncContender):
    """A fresh Session per workload, so no workload is served from another's identity map."""

    packages = ("SQLAlchemy", "psycopg", "PyMySQL")
    streaming = "Session.scalars(select(Entity).execution_options(yield_per=batch)).partitions()"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.engine = create_engine(
            target.sqlalchemy_url(asynchronous=False), pool_size=W8_POOL, max_overflow=0
        )  # W8's pool

    def reset(self) -> None:
        with Session(self.engine) as session, session.begin():
            for statement in reset_statements(self.target.backend):
                session.execute(text(statement))

    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        ids: list[int] = []
        with Session(self.engine) as session, session.begin():
            for row in rows:
                item = Item(**row._asdict())
                session.add(item)
                session.flush()  # the pk is wanted now, as when a caller needs the id
                ids.append(item.id)
        return ids

    def bulk_insert(self, rows: Sequence[Row]) -> None:
        # ORM bulk INSERT (SQLAlchemy 2 style): no instances, executemany/insertmanyvalues.
        with Session(self.engine) as session, session.begin():
            session.execute(insert(Item), [row._asdict() for row in rows])

    def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(insert(Narrow), [row._asdict() for row in rows])

    def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        # ORM bulk INSERT with RETURNING (insertmanyvalues), the keys in parameter order.
        stmt = insert(Narrow).returning(Narrow.id, sort_by_parameter_order=True)
        with Session(self.engine) as session, session.begin():
            return list(session.scalars(stmt, [row._asdict() for row in rows]))

    # W8: a session per operation, as per request.

    def mixed_get(self, pk: int) -> bool:
        with Session(self.engine) as session:
            return session.get(Item, pk) is not None

    def mixed_update(self, pk: int, value: int) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(Item).where(Item.id == pk).values(value=value))

    def mixed_insert(self, row: Row) -> int:
        with Session(self.engine) as session, session.begin():
            item = Item(**row._asdict())
            session.add(item)
            session.flush()
            return item.id

    def release(self) -> None:
        self.engine.dispose()

    def fetch_objects(self) -> int:
        with Session(self.engine) as session:
            return len(session.scalars(select(Item)).all())

    def fetch_dicts(self) -> int:
        with Session(self.engine) as session:
            return len([dict(m) for m in session.execute(select(*_DICT_COLUMNS)).mappings()])

    def get_by_pk(self, ids: Sequence[int]) -> int:
        with Session(self.engine) as session:
            return sum(session.get(Item, pk) is not None for pk in ids)

    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        with Session(self.engine) as session:
            return sum(
                len(
                    session.scalars(
                        select(Item).where(Item.value < threshold).order_by(Item.id).limit(page_size).offset(offset)
                    ).all()
                )
                for offset in offsets
            )

    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        with Session(self.engine) as session, session.begin():
            for pk, value in updates:
                session.execute(update(Item).where(Item.id == pk).values(value=value))

    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        with Session(self.engine) as session:
            result = session.scalars(select(StreamItem).execution_options(yield_per=batch_size))
            for batch in result.partitions():
                on_batch(len(batch))
                count += len(batch)
        return count

    def close(self) -> None:
        self.engine.dispose()
