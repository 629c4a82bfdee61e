"""The one error body every HTTP error answers with, and the base error class with a stable code."""

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """One problem found in the input: where and what."""

    loc: list[str | int] = []
    msg: str
    type: str | None = None


class ErrorInfo(BaseModel):
    """The error itself: a stable machine code and a human message."""

    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorBody(BaseModel):
    """The one JSON error shape: `{"error": {"code", "message", "details"}}`."""

    error: ErrorInfo


class FFError(Exception):
    """Base of every domain error: a stable `code` and the HTTP status it maps to."""

    code = "error"
    status = 400

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        """The error rendered as the one error body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(FFError):
    """The input does not match the contract."""

    code, status = "validation_error", 422


class MalformedJSON(FFError):
    """The body is not JSON."""

    code, status = "malformed_json", 400


class PayloadTooLarge(FFError):
    """The body or the batch is larger than allowed."""

    code, status = "payload_too_large", 413


class Conflict(FFError):
    """The same id was sent before with a different payload."""

    code, status = "conflict", 409


class NotFound(FFError):
    """No such object."""

    code, status = "not_found", 404


class Unauthorized(FFError):
    """No or an unknown API key."""

    code, status = "unauthorized", 401


class Forbidden(FFError):
    """The key's role may not do this."""

    code, status = "forbidden", 403
