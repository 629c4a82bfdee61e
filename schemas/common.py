"""Shared base model and small value types of the wire contracts."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = "1"

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@/\-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=200_000)]
Metadata = Annotated[dict[str, Any], Field(max_length=100)]


class WireModel(BaseModel):
    """Base of every wire contract: strict types (no silent coercion), unknown fields rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Timestamped(WireModel):
    """A wire object with a producer-side time; timezone-aware ISO 8601."""

    occurred_at: datetime = Field(description="When the event happened at the producer (ISO 8601 with timezone).")
