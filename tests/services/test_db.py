"""Pooled PostgreSQL connections: one that sat idle is pinged at checkout, and a dead one is replaced."""

import time

from sqlalchemy import create_engine, text

from services import db


def test_an_idle_connection_killed_server_side_is_replaced_at_checkout(postgresql_database_url, monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_S", 0.2)
    engine = db.make_engine(postgresql_database_url)
    admin = create_engine(postgresql_database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as conn:
            assert conn.execute(text(f"SELECT pg_terminate_backend({pid})")).scalar()
        time.sleep(0.4)
        with engine.connect() as conn:  # no error: the ping found it dead and the pool connected anew
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()
