"""API keys: only a hash of the key is stored."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class ApiKey(Base):
    """A bearer key with one role (`app`, `reviewer`, `lead`, `ops`, `admin`)."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
