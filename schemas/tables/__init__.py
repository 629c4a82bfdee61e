"""All SQL tables, in one home: the declarative `Base` with its naming convention, and every mapped class."""

from schemas.tables.base import Base, metadata
from schemas.tables.auth import ApiKey
from schemas.tables.ingest import DeadLetter, PartitionOffset
from schemas.tables.interaction import Feedback, Interaction

__all__ = ["Base", "metadata", "ApiKey", "DeadLetter", "PartitionOffset", "Feedback", "Interaction"]
