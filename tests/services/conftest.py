"""API fixtures: an app on the test database, a client and one key per role."""

import pytest
from fastapi.testclient import TestClient

from services import auth, db, flagging
from services.api import create_app
from services.settings import Settings


@pytest.fixture
def app(database_url, monkeypatch):
    # A new app starts as a new process would: no length baselines read from an earlier test's rows (cached 60 s),
    # no queue fill just done.
    monkeypatch.setitem(flagging._BASELINES, "at", 0.0)
    monkeypatch.setitem(flagging._LAST_FILL, "at", 0.0)
    app = create_app(Settings(database_url=database_url))
    yield app
    app.state.engine.dispose()


@pytest.fixture
def keys(app):
    out = {}
    with db.unit_of_work(app.state.sessions) as session:
        for role in auth.ROLES:
            out[role] = auth.create_key(session, role=role, name=f"test-{role}")[1]
    return out


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}
