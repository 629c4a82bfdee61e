"""Wire contract of ingest answers."""

from pydantic import BaseModel


class IngestResult(BaseModel):
    """How a batch was taken: rows stored, and events already stored before (same id, same payload)."""

    received: int
    stored: int
    duplicates: int
