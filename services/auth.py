"""API keys with roles: keys are random, shown once, and stored only as a SHA-256 hash."""

import hashlib
import secrets
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas import tables as t
from schemas.errors import InvalidInput

ROLES = ("app", "reviewer", "lead", "ops", "admin")
# What each role may do besides its own name; admin may do everything.
IMPLIES = {"lead": {"reviewer"}, "admin": set(ROLES)}


def hash_key(key: str) -> str:
    """SHA-256 of a key (keys carry 256 bits of entropy, so a fast hash is safe)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, role: str, name: str) -> tuple[t.ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    plain = "ff_" + secrets.token_urlsafe(32)
    row = t.ApiKey(name=name, role=role, key_hash=hash_key(plain), prefix=plain[:10])
    session.add(row)
    session.flush()
    return row, plain


def authenticate(session: Session, plain: str) -> t.ApiKey | None:
    """The live key row matching a presented key, if any."""
    row = session.scalar(select(t.ApiKey).where(t.ApiKey.key_hash == hash_key(plain)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def allowed(role: str, needed: tuple[str, ...]) -> bool:
    """Whether a key of `role` may call an endpoint open to `needed` roles."""
    return role in needed or bool(IMPLIES.get(role, set()) & set(needed))

