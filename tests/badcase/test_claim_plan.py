"""Claim-next on PostgreSQL: on a long queue it walks the review-order index and stops at the first free slot
(custom and generic plans: psycopg prepares a statement it runs often, and PostgreSQL may then plan it
generically); concurrent claims of one reviewer get one slot."""

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import select, text

from badcase import claim_pg, queue
from schemas import tables as t
from services import db
from support.review import answer, make_items, make_reviewer

ITEMS = 1500
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)
TYPES = {"rid": "bigint", "now": "timestamptz", "expires": "timestamptz", "ab": "text", "sid": "bigint",
         "any_domain": "boolean", "domains": "text[]"}


@pytest.fixture
def long_queue(pg_url):
    engine = db.make_engine(pg_url)
    sessions = db.session_factory(engine)
    with db.unit_of_work(sessions) as s:
        items = make_items(s, ITEMS, edit=False)
        reviewer = make_reviewer(s, "r0")
        rubric = items[0].rubric_version_id
    for _ in range(20):  # some history: the reviewer's claims and submissions
        with db.unit_of_work(sessions) as s:
            c = queue.claim_next(s, s.get(t.Reviewer, reviewer.id), NOW, 600, 90)
            queue.submit(s, c.task_id, s.get(t.Reviewer, reviewer.id), answer(rubric, preference=None), NOW)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    yield sessions, reviewer.id
    engine.dispose()


def plan_nodes(node: dict) -> list[dict]:
    return [node] + [n for child in node.get("Plans", []) for n in plan_nodes(child)]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_claim_statement_walks_the_review_order_index(long_queue, mode):
    sessions, reviewer = long_queue
    sql = claim_pg._statement(("touch",)).text
    names = list(dict.fromkeys(re.findall(r"(?<!:):(\w+)", sql)))
    assert set(names) == set(TYPES)
    positional = re.sub(r"(?<!:):(\w+)", lambda m: f"${names.index(m.group(1)) + 1}", sql)
    values = {"rid": reviewer, "now": NOW + timedelta(minutes=1), "expires": NOW, "ab": "AB", "sid": 1,
              "any_domain": False, "domains": ["general"]}
    raw = sessions.kw["bind"].raw_connection()
    try:
        cur = psycopg.ClientCursor(raw.driver_connection)  # values inlined: EXECUTE's own parameters are untyped
        cur.execute(f"SET plan_cache_mode = {mode}")
        cur.execute(f"PREPARE claim ({', '.join(TYPES[n] for n in names)}) AS {positional}")
        cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE claim ({', '.join(f'%s::{TYPES[n]}' for n in names)})",
                    [values[n] for n in names])
        plan = cur.fetchone()[0]
        raw.rollback()
    finally:
        raw.close()
    nodes = plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    scans = {n.get("Index Name") for n in nodes if n["Node Type"] == "Index Scan"}
    assert "ix_badcase_review_order" in scans
    assert not [n for n in nodes if n["Node Type"] == "Sort" and "bc.priority DESC" in n["Sort Key"]]  # no full sort
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == "badcase"]
    if mode == "force_generic_plan":  # the plan is generic: parameters, not the values, in its conditions
        assert "$1" in json.dumps(plan)


def test_two_claims_of_one_reviewer_at_once_get_one_slot(pg_url):
    """A second claim waits on the reviewer lock while the first leases; it then resumes that slot (a double click
    must not lease two)."""
    engine = db.make_engine(pg_url)
    sessions = db.session_factory(engine)
    try:
        with db.unit_of_work(sessions) as s:
            make_items(s, 3, edit=False)
            rid = make_reviewer(s, "r0").id
        first = sessions()
        got = queue.claim_next(first, first.get(t.Reviewer, rid), NOW, 600, 90)  # holds the reviewer lock
        second: dict = {}

        def claim_again():
            with db.unit_of_work(sessions) as s:
                c = queue.claim_next(s, s.get(t.Reviewer, rid), NOW, 600, 90)
                second.update(task_id=c.task_id, resumed=c.resumed)

        th = threading.Thread(target=claim_again)
        th.start()
        time.sleep(0.3)  # it is waiting on the lock, its snapshot taken
        first.commit()
        first.close()
        th.join(10)
        assert second == {"task_id": got.task_id, "resumed": True}
        with sessions() as s:
            leased = s.scalars(select(t.ReviewTask.id).where(t.ReviewTask.status == "leased")).all()
        assert leased == [got.task_id]
    finally:
        engine.dispose()
