"""Wire contracts of what the API returns when reading stored objects."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class FeedbackOut(BaseModel):
    """Stored feedback as returned by the API."""

    event_id: str
    kind: str
    source: str
    author_id: str | None
    is_negative: bool
    occurred_at: datetime
    body: dict[str, Any]


class InteractionOut(BaseModel):
    """A stored interaction with the feedback on it."""

    event_id: str
    occurred_at: datetime
    received_at: datetime
    app: str
    conversation_id: str
    turn: int
    prompt: str
    messages: list[dict[str, Any]] | None
    response: str
    model_name: str
    model_version: str
    policy_version: str | None
    prompt_template_id: str | None
    decoding: dict[str, Any] | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    consent_training: bool
    reward_scores: dict[str, float] | None
    verifier: dict[str, Any] | None
    metadata: dict[str, Any]
    descriptors: dict[str, Any] = {}
    feedback: list[FeedbackOut] = []


class DeadLetterOut(BaseModel):
    """A dead letter: what could not be stored, where it came from and why."""

    id: int
    kind: str
    reason: str
    error: str
    topic: str | None
    partition: int | None
    offset: int | None
    payload: str | None
    status: str
    created_at: datetime


class BadcaseReasonOut(BaseModel):
    """One rule that fired, with its evidence."""

    rule: str
    severity: str
    evidence: dict[str, Any]
    rules_version: str
    created_at: datetime


class BadcaseOut(BaseModel):
    """A badcase with why it was flagged and where it stands."""

    id: int
    interaction_event_id: str
    status: str
    severity: str
    priority: float
    reasons: list[str]
    bucket: str | None
    model_version: str | None
    cluster_key: str | None
    cluster_size: int
    is_exploration: bool
    admitted: bool
    required_reviews: int
    submissions_count: int
    created_at: datetime
    resolved_at: datetime | None
    details: list[BadcaseReasonOut] = []
    interaction: InteractionOut | None = None


class Page(BaseModel):
    """A page of results."""

    total: int
    limit: int
    offset: int
    items: list[Any]
