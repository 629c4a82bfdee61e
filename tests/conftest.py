"""Shared fixtures: real databases (SQLite file and a per-run PostgreSQL database built with Alembic), the API, keys."""

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from schemas.tables import metadata
from services import db

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("FF_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def shared_data_dir() -> Path:
    """`../shared/data` beside the repository (FF_SHARED_DATA overrides)."""
    return Path(os.environ.get("FF_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    assert path.is_dir(), f"shared data not found at {path}"
    return path


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgresql_database_url():
    """A uniquely named PostgreSQL database for this run, migrated to head, dropped afterwards."""
    name = f"ff_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    db.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory):
    """A SQLite file database for this run, migrated to head."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ff.db'}"
    db.upgrade(url)
    return url


def truncate_all(url: str) -> None:
    """Empty every table (tests that commit through the API start clean)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [tb.name for tb in reversed(metadata.sorted_tables)]
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for n in tables:
                conn.execute(text(f'DELETE FROM "{n}"'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """Each test using it runs on SQLite and on PostgreSQL, starting from empty tables."""
    url = request.getfixturevalue(f"{request.param}_database_url")
    truncate_all(url)
    return url


@pytest.fixture
def pg_url(postgresql_database_url):
    """PostgreSQL only, empty tables."""
    truncate_all(postgresql_database_url)
    return postgresql_database_url
