"""Dead letters are listed for ops and replayed through the same pipeline after a fix."""

import json

from sqlalchemy import create_engine, func, select

from ingestion import deadletter
from schemas import tables as t
from services import db, replay
from services.settings import Settings
from support.events import interaction


def test_list_and_replay(app, client, keys, database_url):
    good_later = json.dumps(interaction(3)).encode()
    with db.unit_of_work(app.state.sessions) as s:
        deadletter.record(s, [
            deadletter.row(reason="malformed_json", error="bad", topic="ff.interactions", partition=0, offset=1, payload=b"{nope"),
            deadletter.row(reason="validation_error", error="was invalid then", topic="ff.interactions", partition=0,
                           offset=2, payload=good_later),
        ])
        # the same position again (a re-delivery) adds nothing
        assert deadletter.record(s, [deadletter.row(reason="malformed_json", error="bad", topic="ff.interactions",
                                                    partition=0, offset=1, payload=b"{nope")]) == []
    assert client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {keys['reviewer']}"}).status_code == 403
    r = client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {keys['ops']}"})
    assert r.status_code == 200 and [d["reason"] for d in r.json()] == ["validation_error", "malformed_json"]
    out = replay.replay(Settings(database_url=database_url))
    assert out == {"replayed": 1, "still_failing": 1}
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.Interaction)).scalar_one() == 1
        assert sorted(conn.execute(select(t.DeadLetter.status)).scalars()) == ["open", "replayed"]
    engine.dispose()
    r = client.get("/v1/dead-letters?status=open", headers={"Authorization": f"Bearer {keys['ops']}"})
    assert [d["payload"] for d in r.json()] == ["{nope"]
