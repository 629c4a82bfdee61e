"""Wire contracts (v1) of expert review: rubric versions, reviewers, blind tasks, submissions, adjudication, agreement."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from schemas.common import Name, WireModel

Label = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.\-*]+$")]
Prose = Annotated[str, StringConstraints(max_length=20_000)]
Answer = Annotated[str, StringConstraints(max_length=100_000)]


class RubricDimension(WireModel):
    """One quality dimension, rated on an integer scale."""

    name: Label
    description: Prose = ""
    scale_min: int = Field(1, ge=0, le=100)
    scale_max: int = Field(5, ge=1, le=100)


class Disqualifier(WireModel):
    """An absolute disqualifier: a response that does this is a badcase whatever its ratings."""

    name: Label
    description: Prose = ""


class RubricIn(WireModel):
    """A rubric to store as the next immutable version of its name."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
    dimensions: list[RubricDimension] = Field(min_length=1, max_length=20, description="In rank order.")
    disqualifiers: list[Disqualifier] = Field(default=[], max_length=50)
    categories: list[Label] = Field(min_length=1, max_length=50, description="Failure categories reviewers choose from.")
    tie_break: list[Prose] = Field(default=[], max_length=20)
    scope: dict[str, list[Label]] = Field(default={}, max_length=10, description='e.g. {"buckets": ["code"]}')


class RubricOut(BaseModel):
    """A stored rubric version."""

    id: int
    name: str
    version: int
    dimensions: list[dict[str, Any]]
    disqualifiers: list[Any]
    categories: list[str]
    tie_break: list[Any]
    scope: dict[str, Any]
    status: str
    used: bool
    created_at: datetime


class ReviewerIn(WireModel):
    """A reviewer to create, linked to an existing API key or given a new one."""

    name: Name
    role: Literal["reviewer", "lead"] = "reviewer"
    domains: list[Label] = Field(min_length=1, max_length=50, description='Badcase buckets; "*" for all.')
    api_key_id: int | None = Field(None, ge=1, le=2**62)


class ReviewerOut(BaseModel):
    """A stored reviewer; `api_key` is shown once, when the key was created here."""

    id: int
    name: str
    role: str
    domains: list[str]
    api_key_id: int | None
    api_key: str | None = None


class ShownResponse(BaseModel):
    """One response as shown to the reviewer."""

    label: Literal["A", "B"]
    text: str


class TaskView(BaseModel):
    """The blind view of a review task: no model identity, no other reviewer's answers until the item is decided."""

    task_id: int
    badcase_id: int
    status: str
    lease_expires_at: datetime | None
    bucket: str | None
    prompt: str
    messages: list[dict[str, Any]]
    responses: list[ShownResponse]
    pairwise: bool
    rubric: dict[str, Any]
    submission: dict[str, Any] | None
    resolution: dict[str, Any] | None


class ClaimOut(BaseModel):
    """The claimed task, or none when nothing in the reviewer's domains waits."""

    task: TaskView | None
    message: str = ""


class SubmissionIn(WireModel):
    """A reviewer's answer, validated against the rubric version it names."""

    rubric_version_id: int = Field(ge=1, le=2**62)
    verdict: bool = Field(description="Is this a badcase?")
    category: Label | None = None
    ratings: dict[Label, int] = Field(default={}, max_length=20)
    preference: Literal["A", "B", "tie"] | None = Field(None, description="Which shown response is better.")
    rewrite: Answer | None = Field(None, description="The correct response, rewritten.")
    critique: Prose | None = None
    justification: Prose | None = None


class SubmitOut(BaseModel):
    """A stored submission and where its item stands now."""

    submission_id: int
    task_id: int
    badcase_id: int
    preference: str | None
    badcase_status: str


class ReleaseOut(BaseModel):
    """A released task."""

    task_id: int
    status: str


class AdjudicationIn(WireModel):
    """A lead's decision on an item the reviewers could not settle."""

    outcome: Literal["resolved", "dismissed", "ambiguous"]
    category: Label | None = None
    chosen_response: Answer | None = None
    note: Prose | None = None


class AdjudicationItem(BaseModel):
    """An item waiting for a lead, unblinded."""

    badcase_id: int
    reason: str
    share: float | None
    candidates: list[str]
    rubric_version_id: int | None
    bucket: str | None
    severity: str
    prompt: str
    original: str
    alternative: str | None
    model: dict[str, Any]
    reviews: list[dict[str, Any]]


class AdjudicationOut(BaseModel):
    """The adjudicated item."""

    badcase_id: int
    status: str
    chosen_response: str | None
    admitted: bool


class AgreementReportOut(BaseModel):
    """Agreement over a sliding window of decided items."""

    id: int
    rubric_version_id: int | None
    review_batch: str | None
    n_items: int
    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    status: str
    per_reviewer: dict[str, Any]
    created_at: datetime


class GoldStats(BaseModel):
    """A reviewer's accuracy on gold items."""

    reviewer_id: int
    gold_n: int
    gold_correct: int
    gold_accuracy: float


class AgreementOut(BaseModel):
    """Agreement reports in time order, gold accuracy per reviewer, and the thresholds that apply."""

    reports: list[AgreementReportOut]
    gold: list[GoldStats]
    revise_below: float
    target: float


class ReviewerStats(BaseModel):
    """A reviewer's own figures (no gold figures: they would reveal which items were gold)."""

    reviewer_id: int
    submitted: int
    decided: int
    agreed_with_outcome: int
    agreement_rate: float | None
    pairwise_kappa: float | None
    session_minutes: float
