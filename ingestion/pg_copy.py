"""PostgreSQL's idempotent bulk insert: COPY rows into a temp staging table, then one `INSERT … SELECT … ON
CONFLICT (event_id) DO NOTHING RETURNING event_id, id` from it.

A multi-row VALUES statement with thousands of placeholders costs psycopg more to parse than the insert itself.
"""

from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session


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
