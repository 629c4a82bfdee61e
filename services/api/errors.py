"""One handler renders every error as the one error body; nothing leaks as a bare 500 page."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from schemas.errors import ErrorBody, FFError

log = logging.getLogger("ff.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
          422: "validation_error"}

ERROR_RESPONSES = {s: {"model": ErrorBody, "description": c.replace("_", " ")} for s, c in _CODES.items()
                   if s in (400, 401, 403, 404, 409, 413, 422)}


def _body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or []}}


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(FFError)
    async def _ff(_: Request, exc: FFError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        details = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse(_body("validation_error", "the request does not match the contract", details), 422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException):
        code = _CODES.get(exc.status_code, "error")
        return JSONResponse(_body(code, str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("api.unhandled_error", exc_info=exc)
        return JSONResponse(_body("internal_error", "internal error"), 500)
