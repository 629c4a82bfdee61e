"""PostgreSQL's idempotent bulk insert: COPY rows into a temp staging table, then one `INSERT … SELECT … ON
CONFLICT (event_id) DO NOTHING RETURNING event_id, id` from it.

A multi-row VALUES statement with thousands of placeholders costs psycopg more to parse than the insert itself.
"""

from collections.abc import Iterable, Sequence

import psycopg
from psycopg.adapt import Dumper
from sqlalchemy.orm import Session


class Utf8(bytes):
    """Text already encoded as UTF-8 (a canonical JSON document): COPYed as it is. As a `str` it would be decoded
    only to be encoded again, ~2 µs per 1 KB document with a non-ASCII character (measured)."""


class _Utf8Dumper(Dumper):
    def dump(self, obj: bytes) -> bytes:
        return obj


psycopg.adapters.register_dumper(Utf8, _Utf8Dumper)


def staged_insert(session: Session, *, stage: str, like: str, columns: str, rows: Iterable[Sequence],
                  insert: str) -> dict[str, int]:
    """COPY `rows` (values for `columns`) into temp table `stage`, shaped as the query `like` (made on first use,
    emptied at commit), run `insert` (it reads `stage`); the event ids and row ids it returned."""
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS {like} WITH NO DATA")
        with cur.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(insert)
        inserted = dict(cur.fetchall())
        cur.execute(f"TRUNCATE {stage}")
    return inserted
