"""Claim-next on a long queue walks the review-order index and stops at the first free slot (PostgreSQL plans)."""

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from badcase import claim_pg
from services import db
from support.review import make_items, make_reviewer

ITEMS = 1500


@pytest.fixture
def long_queue(pg_url):
    engine = db.make_engine(pg_url)
    sessions = db.session_factory(engine)
    with db.unit_of_work(sessions) as s:
        make_items(s, ITEMS, edit=False)
        reviewer = make_reviewer(s, "r0").id
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    yield sessions, reviewer
    engine.dispose()


def plan_nodes(node: dict) -> list[dict]:
    return [node] + [n for child in node.get("Plans", []) for n in plan_nodes(child)]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_claim_statement_walks_the_review_order_index(long_queue, mode):
    sessions, reviewer = long_queue
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    with db.unit_of_work(sessions) as s:
        s.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
        lock = claim_pg.lock_reviewer(s, reviewer, now)
        assert lock.paused_rubrics == []
        stmt = claim_pg._statement(("touch",))
        params = {"rid": reviewer, "now": now, "expires": now, "ab": "AB", "sid": lock.session_id,
                  "any_domain": False, "domains": ["general"], "paused_rubrics": lock.paused_rubrics}
        plan = s.execute(text("EXPLAIN (FORMAT JSON) " + stmt.text), params).scalar_one()
    nodes = plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    scans = {n.get("Index Name") for n in nodes if n["Node Type"] == "Index Scan"}
    assert "ix_badcase_review_order" in scans
    assert not [n for n in nodes if n["Node Type"] == "Sort" and "bc.priority DESC" in n["Sort Key"]]  # no full sort
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == "badcase"]
