"""What a reviewer sees of a task: the blind view (prompt, responses as A/B in the recorded order, the rubric).

No model identity, no detection reasons and no other reviewer's answer until the item is finally decided;
then the view adds the outcome, the model and every review. Reads only; takes the caller's session.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badcase import rubric_store
from badcase.review_rows import alternative_response, aware
from schemas import tables as t

FINAL = ("resolved", "dismissed", "ambiguous")


def _label(preference: str | None, ab_order: str | None) -> str | None:
    """A stored (de-randomised) preference as the A/B label this reviewer clicked."""
    if preference in (None, "tie") or ab_order is None:
        return preference
    first = "original" if ab_order == "AB" else "rewrite"
    return "A" if preference == first else "B"


def responses(original: str, alternative: str | None, ab_order: str | None) -> list[dict[str, str]]:
    """The responses in the order this reviewer sees them, labelled A and B."""
    if alternative is None or ab_order is None:
        return [{"label": "A", "text": original}]
    pair = (original, alternative) if ab_order == "AB" else (alternative, original)
    return [{"label": "A", "text": pair[0]}, {"label": "B", "text": pair[1]}]


def _reviews(session: Session, badcase_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(t.ReviewSubmission, t.Reviewer.name)
                           .join(t.Reviewer, t.Reviewer.id == t.ReviewSubmission.reviewer_id)
                           .where(t.ReviewSubmission.badcase_id == badcase_id).order_by(t.ReviewSubmission.id))
    return [{"reviewer": name, "verdict": s.verdict, "category": s.category, "preference": s.preference,
             "ratings": s.ratings, "rewrite": s.rewrite, "critique": s.critique, "justification": s.justification}
            for s, name in rows]


def blind_view(*, task_id: int, status: str, lease_expires_at, badcase_id: int, bucket: str | None, prompt: str,
               messages: list | None, original: str, alternative: str | None, ab_order: str | None,
               rubric) -> dict[str, Any]:
    """The blind part of a task's view, from plain values (`rubric`: a rubric version row or the like)."""
    return {
        "task_id": task_id, "badcase_id": badcase_id, "status": status, "lease_expires_at": aware(lease_expires_at),
        "bucket": bucket, "prompt": prompt, "messages": messages or [],
        "responses": responses(original, alternative, ab_order), "pairwise": ab_order is not None,
        "rubric": {"id": rubric.id, "version": rubric.version, "status": rubric.status, **rubric_store.as_dict(rubric)},
        "submission": None, "resolution": None,
    }


def task_view(session: Session, task: t.ReviewTask) -> dict[str, Any]:
    """The blind view of one task, for the reviewer holding it (or a lead)."""
    badcase = session.get(t.Badcase, task.badcase_id)
    interaction = session.get(t.Interaction, badcase.interaction_id)
    rubric = session.get(t.RubricVersion, badcase.rubric_version_id) if badcase.rubric_version_id else None
    view = blind_view(task_id=task.id, status=task.status, lease_expires_at=task.lease_expires_at,
                      badcase_id=badcase.id, bucket=badcase.bucket, prompt=interaction.prompt,
                      messages=interaction.messages, original=interaction.response,
                      alternative=alternative_response(session, interaction.event_id), ab_order=task.ab_order,
                      rubric=rubric or rubric_store.ensure_default(session))
    own = None if task.status != "submitted" else session.scalars(
        select(t.ReviewSubmission).where(t.ReviewSubmission.task_id == task.id)).first()
    if own is not None:
        view["submission"] = {"verdict": own.verdict, "category": own.category, "ratings": own.ratings,
                              "preference": _label(own.preference, own.ab_order), "rewrite": own.rewrite,
                              "critique": own.critique, "justification": own.justification}
    if badcase.status in FINAL:
        view["resolution"] = {"status": badcase.status, "category": (badcase.resolution or {}).get("category"),
                              "chosen_response": badcase.chosen_response,
                              "model": {"name": interaction.model_name, "version": interaction.model_version},
                              "reviews": _reviews(session, badcase.id)}
    return view


def adjudication_item(session: Session, badcase: t.Badcase) -> dict[str, Any]:
    """Everything a lead needs to decide an item: prompt, both responses unblinded, every review, the candidates."""
    interaction = session.get(t.Interaction, badcase.interaction_id)
    resolution = badcase.resolution or {}
    return {"badcase_id": badcase.id, "reason": resolution.get("reason", "disagreement"),
            "share": resolution.get("share"), "candidates": resolution.get("candidates", []),
            "rubric_version_id": badcase.rubric_version_id, "bucket": badcase.bucket, "severity": badcase.severity,
            "prompt": interaction.prompt, "original": interaction.response,
            "alternative": alternative_response(session, interaction.event_id),
            "model": {"name": interaction.model_name, "version": interaction.model_version},
            "reviews": _reviews(session, badcase.id)}
