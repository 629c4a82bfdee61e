"""Badcase detection in the ingest pipeline: descriptors stored, rules fire with evidence, routing fills the queue."""

import json
import random

from sqlalchemy import func, select

from ingestion import decode
from schemas import tables as t
from services import db, pipeline
from services import flagging as svc_flagging
from support.events import feedback, interaction

REFUSAL = "I'm sorry, but I can't help with resetting the password for account {n}. Please contact support."


def ingest(app, kind, events, **kw):
    items = decode.decode_batch(kind, json.dumps(events).encode(), 10_000)
    with db.unit_of_work(app.state.sessions) as s:
        if kind == "interaction" and "exploration_share" in kw:
            from ingestion import store
            out = store.store_interactions(s, items, svc_flagging.descriptor_columns(items))
            svc_flagging.flag_interactions(s, out.stored, exploration_share=kw["exploration_share"])
            return out
        return pipeline.ingest(s, kind, items)


def test_descriptors_and_reasons_are_stored(app, client, keys):
    ingest(app, "interaction", [interaction(1, response=REFUSAL.format(n=1)), interaction(2)])
    hdr = {"Authorization": f"Bearer {keys['ops']}"}
    body = client.get("/v1/interactions/int-1", headers=hdr).json()
    d = body["descriptors"]
    assert d["is_refusal"] is True and d["refusal_class"] == "full_refusal"
    assert d["length_chars"] == len(REFUSAL.format(n=1)) and d["domain_bucket"] == "general"
    page = client.get("/v1/badcases?reason=over_refusal", headers=hdr).json()
    assert page["total"] == 1 and page["items"][0]["interaction_event_id"] == "int-1"
    one = client.get(f"/v1/badcases/{page['items'][0]['id']}", headers=hdr).json()
    assert one["details"][0]["rule"] == "over_refusal" and one["details"][0]["evidence"]["refusal_class"] == "full_refusal"
    assert one["interaction"]["event_id"] == "int-1"
    assert client.get("/v1/badcases", headers={"Authorization": f"Bearer {keys['app']}"}).status_code == 403


def test_late_negative_feedback_re_evaluates(app, client, keys):
    ingest(app, "interaction", [interaction(5)])
    hdr = {"Authorization": f"Bearer {keys['lead']}"}
    assert client.get("/v1/badcases?reason=negative_feedback", headers=hdr).json()["total"] == 0
    ingest(app, "feedback", [feedback(1, "int-5", "thumbs", value="down")])
    page = client.get("/v1/badcases?reason=negative_feedback", headers=hdr).json()
    assert page["total"] == 1 and page["items"][0]["severity"] == "high"
    # feedback that arrives first flags the interaction when it arrives
    ingest(app, "feedback", [feedback(2, "int-6", "edit", edited_response="Better.")])
    ingest(app, "interaction", [interaction(6)])
    assert client.get("/v1/badcases?reason=negative_feedback", headers=hdr).json()["total"] == 2


def test_diversity_fills_queue_with_distinct_failures_first(app, monkeypatch):
    # Reviewers are busy while the stream arrives (capacity 0); then 100 slots open.
    from services.settings import Settings
    monkeypatch.setattr(svc_flagging, "get_settings", lambda: Settings(review_capacity=0))
    copies = [interaction(i, response=REFUSAL.format(n=i)) for i in range(500)]
    rng = random.Random(7)
    vocab = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
    distinct = [interaction(1000 + i, response=" ".join(rng.choice(vocab) for _ in range(15))) for i in range(50)]
    ingest(app, "interaction", copies)
    ingest(app, "interaction", distinct)
    ingest(app, "feedback", [feedback(i, f"int-{1000 + i}", "thumbs", value="down") for i in range(50)])

    with db.unit_of_work(app.state.sessions) as s:
        assert s.scalar(select(func.count()).select_from(t.Badcase).where(t.Badcase.status == "queued")) == 0
        moved = svc_flagging.fill_queue(s, capacity=100)
        queued = s.execute(select(t.Interaction.event_id).join(t.Badcase, t.Badcase.interaction_id == t.Interaction.id)
                           .where(t.Badcase.status == "queued")).scalars().all()
        head = s.scalar(select(func.max(t.Badcase.cluster_size)))
    assert {f"int-{1000 + i}" for i in range(50)} <= set(queued)
    assert len([q for q in queued if int(q.split("-")[1]) < 500]) == 1  # the 500 copies collapse into one item
    assert moved == 51 and head == 500
    with db.unit_of_work(app.state.sessions) as s:  # each queued item has its k review slots
        assert s.scalar(select(func.count()).select_from(t.ReviewTask)) == 51 * 3


def test_a_busy_cluster_does_not_starve_lower_priority_failures(app, monkeypatch):
    # 600 copies of one failure: one of them queued, 599 still flagged, all above the new items in priority.
    from services.settings import Settings
    monkeypatch.setattr(svc_flagging, "get_settings", lambda: Settings(review_capacity=0))
    ingest(app, "interaction", [interaction(i, response=REFUSAL.format(n=i)) for i in range(600)])
    with db.unit_of_work(app.state.sessions) as s:
        assert svc_flagging.fill_queue(s, capacity=1) == 1
    rng = random.Random(11)
    vocab = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
    ingest(app, "interaction", [interaction(2000 + i, response=" ".join(rng.choice(vocab) for _ in range(15)))
                                for i in range(20)], exploration_share=1.0)
    with db.unit_of_work(app.state.sessions) as s:
        top = s.scalars(select(t.Badcase.priority).where(t.Badcase.status == "flagged")
                        .order_by(t.Badcase.priority.desc()).limit(500)).all()
        assert len(top) == 500 and min(top) > s.scalar(select(func.max(t.Badcase.priority))
                                                       .where(t.Badcase.is_exploration.is_(True)))
        assert svc_flagging.fill_queue(s, capacity=41) == 20  # the 20 new clusters, past the busy one's rows
        assert s.scalar(select(func.count()).select_from(t.Badcase).where(t.Badcase.status == "queued")) == 21


def test_exploration_share_within_two_points(app):
    n = 4000
    ingest(app, "interaction", [interaction(i) for i in range(n)], exploration_share=0.10)
    with db.unit_of_work(app.state.sessions) as s:
        explored = s.scalar(select(func.count()).select_from(t.Badcase).where(t.Badcase.is_exploration.is_(True)))
    assert abs(explored / n - 0.10) <= 0.02
