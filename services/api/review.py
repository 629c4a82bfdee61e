"""Review endpoints: claim / submit / release blind tasks, rubric versions, reviewers, adjudication, agreement."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from badcase import consensus, rubric_store
from schemas import tables as t
from schemas.errors import ErrorBody, NotFound
from schemas.review import (AdjudicationIn, AdjudicationItem, AdjudicationOut, AgreementOut, ClaimOut, ReleaseOut,
                            ReviewerIn, ReviewerOut, ReviewerStats, RubricIn, RubricOut, SubmissionIn, SubmitOut,
                            TaskView)
from services import review
from services.api.deps import ObjectId, SessionDep, SettingsDep, require
from services.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["review"])
RESPONSES = {**ERROR_RESPONSES, 429: {"model": ErrorBody, "description": "session cap reached: take a break"}}
Reviewer = Annotated[t.ApiKey, Depends(require("reviewer"))]
Lead = Annotated[t.ApiKey, Depends(require("lead"))]


@router.post("/review/claim", response_model=ClaimOut, responses=RESPONSES)
def claim(request: Request, key: Reviewer, settings: SettingsDep) -> ClaimOut:
    """Lease the next item in your domains (highest priority first); returns the task you hold if you hold one."""
    task = review.claim(request.app.state.sessions, settings, key)
    if task is None:
        return ClaimOut(task=None, message="nothing to review in your domains right now")
    return ClaimOut(task=TaskView(**task))


@router.get("/review/tasks/{task_id}", response_model=TaskView, responses=RESPONSES)
def get_task(task_id: ObjectId, key: Reviewer, session: SessionDep) -> TaskView:
    """The blind view of one of your tasks: prompt and responses as A/B, no model identity, no other reviews."""
    return TaskView(**review.view(session, key, task_id))


@router.post("/review/tasks/{task_id}/submit", response_model=SubmitOut, responses=RESPONSES)
def submit(task_id: ObjectId, body: SubmissionIn, request: Request, key: Reviewer, settings: SettingsDep) -> SubmitOut:
    """Submit your answer on a leased task, validated against the rubric version it names."""
    out = review.submit(request.app.state.sessions, settings, key, task_id, body.model_dump())
    return SubmitOut(submission_id=out.submission_id, task_id=out.task_id, badcase_id=out.badcase_id,
                     preference=out.preference, badcase_status=out.badcase_status)


@router.post("/review/tasks/{task_id}/release", response_model=ReleaseOut, responses=RESPONSES)
def release(task_id: ObjectId, request: Request, key: Reviewer) -> ReleaseOut:
    """Give a leased task back to the queue; you will not get this item again."""
    task = review.release(request.app.state.sessions, key, task_id)
    return ReleaseOut(task_id=task.id, status=task.status)


@router.get("/review/me/stats", response_model=ReviewerStats, responses=RESPONSES)
def my_stats(key: Reviewer, session: SessionDep) -> ReviewerStats:
    """Your submissions, agreement with the items' outcomes, latest pairwise kappa and session time."""
    reviewer = review.reviewer_for_key(session, key)
    return ReviewerStats(**consensus.reviewer_stats(session, reviewer.id, review.now()))


@router.get("/review/adjudication", response_model=list[AdjudicationItem], responses=RESPONSES)
def adjudication_queue(_: Lead, session: SessionDep,
                       limit: int = Query(100, ge=1, le=1000)) -> list[AdjudicationItem]:
    """Items the reviewers could not settle (or whose rewrite a lead must pick), unblinded, oldest first."""
    return [AdjudicationItem(**item) for item in review.adjudication_queue(session, limit)]


@router.post("/review/adjudication/{badcase_id}", response_model=AdjudicationOut, responses=RESPONSES)
def adjudicate(badcase_id: ObjectId, body: AdjudicationIn, key: Lead, session: SessionDep) -> AdjudicationOut:
    """Decide an item in adjudication: resolved (with category and chosen response), dismissed or ambiguous."""
    row = review.adjudicate(session, key, badcase_id, body.model_dump())
    return AdjudicationOut(badcase_id=row.id, status=row.status, chosen_response=row.chosen_response,
                           admitted=row.admitted)


@router.get("/rubrics", response_model=list[RubricOut], responses=RESPONSES,
            dependencies=[Depends(require("reviewer", "ops"))])
def list_rubrics(session: SessionDep, name: str | None = Query(None, max_length=100)) -> list[RubricOut]:
    """Every rubric version, newest first (the default rubric is seeded on first use)."""
    return [RubricOut(**review.rubric_out(r)) for r in rubric_store.list_versions(session, name)]


@router.get("/rubrics/{rubric_id}", response_model=RubricOut, responses=RESPONSES,
            dependencies=[Depends(require("reviewer", "ops"))])
def get_rubric(rubric_id: ObjectId, session: SessionDep) -> RubricOut:
    """One rubric version."""
    rubric_store.ensure_default(session)
    row = session.get(t.RubricVersion, rubric_id)
    if row is None:
        raise NotFound(f"no rubric version {rubric_id}")
    return RubricOut(**review.rubric_out(row))


@router.post("/rubrics", response_model=RubricOut, status_code=201, responses=RESPONSES,
             dependencies=[Depends(require("lead"))])
def create_rubric(body: RubricIn, session: SessionDep) -> RubricOut:
    """Store a rubric as the next version of its name; versions are immutable (there is no update)."""
    row = rubric_store.create_version(session, body.model_dump())
    return RubricOut(**review.rubric_out(row))


@router.post("/reviewers", response_model=ReviewerOut, status_code=201, responses=RESPONSES)
def create_reviewer(body: ReviewerIn, key: Lead, session: SessionDep) -> ReviewerOut:
    """Create a reviewer with expertise domains, linked to an API key by id or to a new key (shown once)."""
    row, plain = review.create_reviewer(session, key, name=body.name, role=body.role, domains=list(body.domains),
                                        api_key_id=body.api_key_id)
    return ReviewerOut(id=row.id, name=row.name, role=row.role, domains=row.domains, api_key_id=row.api_key_id,
                       api_key=plain)


@router.get("/agreement", response_model=AgreementOut, responses=RESPONSES,
            dependencies=[Depends(require("lead", "ops"))])
def agreement(session: SessionDep,
              rubric_version: int | None = Query(None, ge=1, le=2**62),
              batch: str | None = Query(None, max_length=64),
              reviewer: int | None = Query(None, ge=1, le=2**62),
              since: datetime | None = None, until: datetime | None = None,
              limit: int = Query(500, ge=1, le=5000)) -> AgreementOut:
    """Agreement reports over time (by rubric version, batch, reviewer, time) and gold accuracy per reviewer."""
    rows = consensus.reports(session, rubric_version_id=rubric_version, batch=batch, reviewer_id=reviewer,
                             since=since, until=until, limit=limit)
    reports = [{c: getattr(r, c) for c in ("id", "rubric_version_id", "review_batch", "n_items", "krippendorff_alpha",
                                          "fleiss_kappa", "status", "per_reviewer")} | {"created_at": r.created_at}
               for r in rows]
    return AgreementOut(reports=reports, gold=consensus.gold_accuracy(session, reviewer, since, until),
                        revise_below=consensus.REVISE_BELOW, target=consensus.TARGET)

