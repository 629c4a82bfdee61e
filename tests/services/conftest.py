"""API fixtures: an app on the test database, a client and one key per role."""

import pytest
from fastapi.testclient import TestClient

from services import auth, db
from services.api import create_app
from services.settings import Settings


@pytest.fixture
def app(database_url):
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
