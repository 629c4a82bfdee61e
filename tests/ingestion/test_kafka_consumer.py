"""Kafka ingestion against a real Tansu broker and PostgreSQL: nothing lost, nothing doubled."""

import os
import signal
import socket
import urllib.request
from pathlib import Path
import threading
import time

import pytest
from sqlalchemy import func, select

from schemas import tables as t
from support.events import feedback, interaction
from conftest import PARTITIONS, encode  # tests/ingestion/conftest.py
from services.broker import free_port


def stored_ids(stream) -> list[str]:
    with stream.engine.connect() as conn:
        return conn.execute(select(t.Interaction.event_id)).scalars().all()


def children(pid: int) -> set[int]:
    """The member processes of a supervisor (multiprocessing's resource tracker is its child too)."""
    pids = {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    return {p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "supervisor-and-2-members"])
def test_sigkill_mid_stream_then_restart_stores_exactly_once(stream, processes):
    n = 20_000
    stream.produce(encode([interaction(i) for i in range(n)]))
    first = stream.start_consumer("a", FF_KAFKA_MAX_POLL_RECORDS=300, FF_CONSUMER_PROCESSES=processes)
    stream.wait_for(lambda: stream.count() >= 4_000, what="4,000 rows before the kill")
    members = children(first.pid) if processes > 1 else set()
    assert len(members) == (processes if processes > 1 else 0)
    first.send_signal(signal.SIGKILL)
    first.wait()
    stream.wait_for(lambda: not any(map(running, members)), timeout=10, what="members to die with their supervisor")
    killed_at = stream.count()
    assert killed_at < n, "the consumer finished before it could be killed mid-stream"
    stream.start_consumer("b", FF_CONSUMER_PROCESSES=processes)
    stream.wait_for(lambda: stream.count() >= n and stream.all_committed(), timeout=180, what="all rows and offsets")
    ids = stored_ids(stream)
    assert len(ids) == n and len(set(ids)) == n
    assert set(ids) == {f"int-{i}" for i in range(n)}
    assert stream.all_committed()


def test_poison_messages_are_dead_lettered_and_the_rest_stored(stream):
    good = [interaction(i) for i in range(2_000)]
    values = encode(good)
    poison = []
    for k in range(20):  # 1 %: half bad JSON, half wrong schema (a wrong type, or a NUL PostgreSQL cannot store)
        wrong = {"turn": "x"} if k % 4 else {"response": "nul \x00 inside"}
        bad = b'{"event_id": "broken-' + str(k).encode() + b'", ' if k % 2 else encode([{**interaction(90_000 + k), **wrong}])[0]
        poison.append(bad)
        values.insert(k * 100 + 50, bad)
    stream.produce(values)
    stream.start_consumer()
    stream.wait_for(lambda: stream.count() >= 2_000 and stream.count(t.DeadLetter) >= 20 and stream.all_committed(),
                    what="good rows stored and poison dead-lettered")
    assert stream.count() == 2_000
    with stream.engine.connect() as conn:
        rows = conn.execute(select(t.DeadLetter.reason, t.DeadLetter.payload, t.DeadLetter.topic, t.DeadLetter.error)).all()
    assert len(rows) == 20
    assert sorted(r.payload for r in rows) == sorted(poison)
    assert {r.reason for r in rows} == {"malformed_json", "validation_error"}
    assert all(r.topic == stream.topics["interaction"] and r.error for r in rows)
    # ... and each is on the DLQ topic with its reason and source position in headers
    from kafka import KafkaConsumer
    c = KafkaConsumer(stream.topics["dlq"], bootstrap_servers=stream.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000, group_id=None)
    dlq = list(c)
    c.close()
    assert sorted(m.value for m in dlq) == sorted(poison)
    h = dict(dlq[0].headers)
    assert h["ff-source-topic"] == stream.topics["interaction"].encode() and int(h["ff-source-offset"]) >= 0
    assert h["ff-reason"] in (b"malformed_json", b"validation_error")


def test_feedback_topic_and_out_of_order_linking(stream):
    stream.produce(encode([feedback(i, f"int-{i}") for i in range(50)]), kind="feedback")
    stream.produce(encode([interaction(i) for i in range(50)]))
    stream.start_consumer()
    stream.wait_for(lambda: stream.count() == 50 and stream.count(t.Feedback) == 50, what="rows")
    with stream.engine.connect() as conn:
        stream.wait_for(lambda: conn.execute(select(func.count()).select_from(t.Feedback)
                                             .where(t.Feedback.interaction_id.is_not(None))).scalar_one() == 50
                        or conn.rollback(), what="feedback linked")


def test_two_consumers_share_and_take_over(stream):
    n = 12_000
    stream.produce(encode([interaction(i) for i in range(n)]))
    a = stream.start_consumer("a", FF_KAFKA_MAX_POLL_RECORDS=100)
    b = stream.start_consumer("b", FF_KAFKA_MAX_POLL_RECORDS=100)
    stream.wait_for(lambda: stream.count() >= 2_000, what="first rows")
    a.send_signal(signal.SIGKILL)
    a.wait()
    stream.wait_for(lambda: stream.count() >= n and stream.all_committed(), timeout=180, what="takeover")
    assert stream.count() == n and len(set(stored_ids(stream))) == n
    assert b.poll() is None


def test_supervised_members_share_the_stream_restart_and_sum_their_metrics(stream):
    n = 3_000
    stream.produce(encode([interaction(i) for i in range(n)]))
    port = free_port()
    sup = stream.start_consumer("s", FF_CONSUMER_PROCESSES=2, FF_KAFKA_METRICS_PORT=port, FF_KAFKA_MAX_POLL_RECORDS=100)
    stream.wait_for(lambda: stream.count() >= n and stream.all_committed(), what="all rows and offsets")
    members = children(sup.pid)
    assert len(members) == 2
    victim = min(members)
    os.kill(victim, signal.SIGKILL)  # a member dies: the supervisor starts another in its place
    stream.wait_for(lambda: len(children(sup.pid)) == 2 and victim not in children(sup.pid), timeout=30,
                    what="a replacement member")
    stream.produce(encode([interaction(i) for i in range(n, 2 * n)]))
    stream.wait_for(lambda: stream.count() >= 2 * n and stream.all_committed(), what="the second half stored")
    assert stream.count() == 2 * n and len(set(stored_ids(stream))) == 2 * n
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    stored = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith('ff_consumer_records_total{kind="interaction",outcome="stored"}')]
    assert stored == [2 * n]  # one series, summed over the members, the dead one included
    lag = [line for line in text.splitlines() if line.startswith("ff_consumer_lag{")]
    assert len(lag) == PARTITIONS and all(line.endswith(" 0.0") for line in lag)  # every partition, latest report
    members = children(sup.pid)
    sup.send_signal(signal.SIGTERM)  # each member finishes its batch, commits and leaves; then the supervisor exits
    assert sup.wait(timeout=30) == 0
    assert not any(map(running, members))
    assert stream.all_committed()


class FlakyProxy:
    """A TCP proxy in front of PostgreSQL that can drop all connections and refuse new ones for a while."""

    def __init__(self, target_port: int = 5432):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown, not just close: the other direction's thread is blocked in recv on these sockets, and a
            # close() would neither wake it nor send the FIN (PostgreSQL would keep the backend, and its locks)
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def _accept(self):
        while True:
            client, _ = self.sock.accept()
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def outage(self):
        self.up = False
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns.clear()


def test_database_outage_loses_and_doubles_nothing(stream):
    proxy = FlakyProxy()
    url = stream.database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    n = 15_000
    stream.produce(encode([interaction(i) for i in range(n)]))
    stream.start_consumer(FF_DATABASE_URL=url, FF_KAFKA_MAX_POLL_RECORDS=200)
    stream.wait_for(lambda: stream.count() >= 2_000, what="first rows")
    proxy.outage()
    during = stream.count()
    time.sleep(10)
    assert stream.count() == during  # nothing got through while the database was unreachable
    proxy.up = True
    stream.wait_for(lambda: stream.count() >= n and stream.all_committed(), timeout=180, what="recovery")
    assert stream.count() == n and len(set(stored_ids(stream))) == n
    assert "database_unavailable" in stream.logs()
