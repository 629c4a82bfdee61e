"""Shared bench helpers: a scratch PostgreSQL database, events, medians."""

import os
import statistics
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from sqlalchemy import create_engine, text  # noqa: E402

PG_ADMIN_URL = os.environ.get("FF_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_postgres():
    """A fresh PostgreSQL database migrated to head, dropped afterwards."""
    from services import db

    name = f"ff_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def truncate(url: str, *tables: str) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


def median(xs):
    return statistics.median(xs)


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes on this machine, by kind: the consumer's
    processes, PostgreSQL backends, the Tansu broker, the rest; and the machine's busy time (Linux /proc)."""
    out = {"consume": 0.0, "postgres": 0.0, "tansu": 0.0, "other": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        kind = ("consume" if "services.cli consume" in cmd or "multiprocessing.spawn" in cmd
                else "postgres" if cmd.startswith("postgres") else "tansu" if "tansu" in cmd else "other")
        out[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        ticks = list(map(int, f.readline().split()[1:]))
    out["machine_busy"] = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    return out
