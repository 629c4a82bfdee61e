"""Application factory."""

import logging

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services import db, runtime
from services.api import badcases, drift, errors, health, ingest, ops, retrain
from services.api import ops_page
from services.api import review, ui
from services.settings import Settings, get_settings

log = logging.getLogger("ff.api")


def _openapi(app: FastAPI):
    def build():
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for path in schema.get("paths", {}).values():
            for op in path.values():
                comps.update(op.pop("x-defs", {}) or {})
        app.openapi_schema = schema
        return schema

    return build


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API on the given settings (default: from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(title="Feedback Factory", version="0.1.0",
                  description="Production feedback and badcase monitoring for LLMs.")
    app.state.settings = settings
    app.state.engine = db.make_engine(settings.database_url)
    app.state.sessions = db.session_factory(app.state.engine)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(ops.router)
    app.include_router(review.router)
    app.include_router(ui.router)
    app.include_router(badcases.router)
    app.include_router(drift.router)
    app.include_router(retrain.router)
    app.include_router(ops_page.router)
    app.openapi = _openapi(app)
    return app


def served_app(settings: Settings | None = None) -> FastAPI:
    """The app as `serve` runs it: built, then the start-up heap frozen out of the collector's way."""
    app = create_app(settings)
    runtime.tune_gc(app.state.settings)
    return app
