"""Request dependencies: the unit-of-work session, the authenticated key, the size-limited raw body."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from schemas import tables as t
from schemas.errors import Forbidden, PayloadTooLarge, Unauthorized
from services import auth
from services.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back on error."""
    with request.app.state.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session)]
# Database ids in paths: bounded so an out-of-range number is a 422, not a driver overflow.
ObjectId = Annotated[int, Path(ge=1, le=2**62)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def require(*roles: str):
    """A dependency that admits keys of the given roles (admin always) and returns the key row."""

    def _check(request: Request, session: SessionDep) -> t.ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing `Authorization: Bearer <key>` header")
        key = auth.authenticate(session, token.strip())
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        if not auth.allowed(key.role, roles):
            raise Forbidden(f"role {key.role!r} may not do this; needs one of {', '.join(roles)}")
        request.state.key = key
        return key

    return _check


async def raw_body(request: Request) -> bytes:
    """The request body, refused with 413 once it exceeds the configured size."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


BodyDep = Annotated[bytes, Depends(raw_body)]
