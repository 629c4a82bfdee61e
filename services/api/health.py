"""Liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services import db

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request):
    """The database answers; 503 otherwise."""
    if db.ping(request.app.state.engine):
        return {"status": "ready", "database": "ok"}
    return JSONResponse({"error": {"code": "not_ready", "message": "database unreachable", "details": []}}, 503)


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
