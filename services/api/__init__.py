"""The FastAPI application: assembles routers, dependencies and the one error handler."""

from services.api.app import create_app, served_app

__all__ = ["create_app", "served_app"]
