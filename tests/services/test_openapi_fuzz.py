"""Schemathesis over the OpenAPI document: generated requests never get a server error."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, status_code_conformance

from services import auth, db
from services.api import create_app
from services.settings import Settings

_URL = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ff-fuzz-')) / 'ff.db'}"
db.upgrade(_URL)
APP = create_app(Settings(database_url=_URL))
with db.unit_of_work(APP.state.sessions) as _s:
    HEADERS = {"Authorization": f"Bearer {auth.create_key(_s, role='admin', name='fuzz')[1]}"}

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(headers=HEADERS, checks=[not_a_server_error, status_code_conformance])
