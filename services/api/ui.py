"""Reviewer and lead web pages: server-rendered Jinja2, signed in with an API key kept in a same-site cookie."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from badcase import consensus
from schemas import tables as t
from schemas.errors import FFError
from services import auth, db, review
from services.api.deps import ObjectId

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
COOKIE = "ff_key"
TEXT_FIELDS = ("rewrite", "critique", "justification")


def _key(request: Request) -> t.ApiKey | None:
    """The live API key of the signed-in user, from the cookie."""
    plain = request.cookies.get(COOKIE)
    if not plain:
        return None
    with request.app.state.sessions() as session:
        return auth.authenticate(session, plain)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


@router.get("", response_class=HTMLResponse)
def home() -> Response:
    """The review page."""
    return RedirectResponse("/ui/review", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """Sign-in form."""
    return _page(request, "login.html", {"error": None, "key": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the key; set the cookie and go to the page for the key's role."""
    form = await request.form()
    plain = str(form.get("key", "")).strip()

    def check():
        with db.unit_of_work(request.app.state.sessions) as session:
            key = auth.authenticate(session, plain) if plain else None
            if key is None:
                return None, "unknown or revoked API key"
            if key.role in ("admin", "ops"):
                return key, None
            try:
                review.reviewer_for_key(session, key)
            except FFError as exc:
                return None, exc.message
            return key, None

    key, error = await run_in_threadpool(check)
    if key is None:
        return _page(request, "login.html", {"error": error, "key": None}, status=401)
    target = {"lead": "/ui/lead", "admin": "/ui/lead", "ops": "/ui/ops"}.get(key.role, "/ui/review")
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(COOKIE, plain, httponly=True, samesite="strict", path="/ui",
                    secure=request.url.scheme == "https", max_age=12 * 3600)
    return resp


@router.post("/logout")
def logout() -> Response:
    """Forget the key."""
    resp = _to_login()
    resp.delete_cookie(COOKIE, path="/ui")
    return resp


def _review_context(request: Request, key: t.ApiKey, **extra) -> dict[str, Any]:
    with request.app.state.sessions() as session:
        reviewer = review.reviewer_for_key(session, key)
        task = review.current(session, key)
        stats = consensus.reviewer_stats(session, reviewer.id, review.now())
    return {"reviewer": reviewer, "key": key, "task": task, "stats": stats, "message": None, "failed": False,
            "errors": [], "values": {}, **extra}


def _review_error(request: Request, key: t.ApiKey, exc: FFError, **extra) -> HTMLResponse:
    """The review page again, with the error (and what the reviewer typed, when given)."""
    return _page(request, "review.html", _review_context(request, key, message=exc.message, failed=True, **extra),
                 exc.status)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, done: str | None = None) -> Response:
    """The task you hold (side by side) with the review form, or a button to get the next one; your stats."""
    key = _key(request)
    if key is None or key.role not in ("reviewer", "lead"):
        return _to_login()
    message = {"submitted": "Review submitted. Thank you.", "released": "Item released.",
               "empty": "Nothing to review in your domains right now."}.get(done or "")
    return _page(request, "review.html", _review_context(request, key, message=message))


@router.post("/review/next", response_class=HTMLResponse)
def review_next(request: Request) -> Response:
    """Claim the next item."""
    key = _key(request)
    if key is None or key.role not in ("reviewer", "lead"):
        return _to_login()
    try:
        task = review.claim(request.app.state.sessions, request.app.state.settings, key)
    except FFError as exc:
        return _review_error(request, key, exc)
    return RedirectResponse("/ui/review" if task else "/ui/review?done=empty", status_code=303)


def _answer(form, rubric: dict[str, Any]) -> dict[str, Any]:
    """A submission body from the review form's fields."""
    verdict = {"yes": True, "no": False}.get(str(form.get("verdict", "")))
    ratings = {}
    for dim in rubric["dimensions"]:
        raw = str(form.get(f"rating_{dim['name']}", ""))
        if raw.strip().lstrip("-").isdigit():
            ratings[dim["name"]] = int(raw)
    answer = {"rubric_version_id": rubric["id"], "verdict": verdict, "ratings": ratings,
              "category": str(form.get("category", "")) or None, "preference": str(form.get("preference", "")) or None}
    for name in TEXT_FIELDS:
        answer[name] = str(form.get(name, "")).strip() or None
    if answer["verdict"] is False:
        answer["category"] = None  # "not a badcase" carries no failure category
    return answer


@router.post("/review/tasks/{task_id}/submit", response_class=HTMLResponse)
async def review_submit(request: Request, task_id: ObjectId) -> Response:
    """Submit the review form; on a validation error show the form again with the messages."""
    key = _key(request)
    if key is None or key.role not in ("reviewer", "lead"):
        return _to_login()
    form = await request.form()

    def run():
        with request.app.state.sessions() as session:
            task = review.view(session, key, task_id)
        answer = _answer(form, task["rubric"])
        try:
            review.submit(request.app.state.sessions, request.app.state.settings, key, task_id, answer)
        except FFError as exc:
            errors = exc.details or [{"loc": [], "msg": exc.message}]
            return _review_error(request, key, exc, errors=errors, values=answer)
        return RedirectResponse("/ui/review?done=submitted", status_code=303)

    try:
        return await run_in_threadpool(run)
    except FFError as exc:
        return _review_error(request, key, exc)


@router.post("/review/tasks/{task_id}/release", response_class=HTMLResponse)
def review_release(request: Request, task_id: ObjectId) -> Response:
    """Release the item."""
    key = _key(request)
    if key is None or key.role not in ("reviewer", "lead"):
        return _to_login()
    try:
        review.release(request.app.state.sessions, key, task_id)
    except FFError as exc:
        return _review_error(request, key, exc)
    return RedirectResponse("/ui/review?done=released", status_code=303)


def chart(reports: list[t.AgreementReport], labels: dict[int | None, str], width: int = 880,
          height: int = 240) -> dict[str, Any]:
    """Geometry of the agreement-over-time chart: alpha per report, one series per rubric version and batch."""
    lo, hi, pad = -0.2, 1.0, 32

    def y(v: float) -> float:
        return round(height - pad - (min(max(v, lo), hi) - lo) / (hi - lo) * (height - 2 * pad), 1)

    points = [r for r in reports if r.krippendorff_alpha is not None]
    n = max(len(points) - 1, 1)
    series: dict[str, list[dict[str, Any]]] = {}
    for i, r in enumerate(points):
        name = labels.get(r.rubric_version_id, "no rubric") + (f" · {r.review_batch}" if r.review_batch else "")
        x = round(pad + i / n * (width - 2 * pad), 1)
        series.setdefault(name, []).append({"x": x, "y": y(r.krippendorff_alpha), "alpha": r.krippendorff_alpha,
                                            "at": r.created_at, "status": r.status})
    return {"width": width, "height": height, "pad": pad, "series": series,
            "lines": [{"label": "revise below 0.4", "y": y(consensus.REVISE_BELOW), "cls": "revise"},
                      {"label": "target 0.6", "y": y(consensus.TARGET), "cls": "target"},
                      {"label": "0", "y": y(0.0), "cls": "zero"}, {"label": "1", "y": y(1.0), "cls": "zero"}]}


def _lead_context(request: Request, key: t.ApiKey, **extra) -> dict[str, Any]:
    with request.app.state.sessions() as session:
        reports = consensus.reports(session, limit=300)
        rubrics = {r.id: r for r in session.scalars(select(t.RubricVersion))}
        labels = {i: f"{r.name} v{r.version}" for i, r in rubrics.items()}
        ctx = {"key": key, "queue": review.adjudication_queue(session), "recent": review.recent_decided(session),
               "latest": list(consensus.latest_by_rubric(session).values()), "chart": chart(reports, labels),
               "reviewers": review.reviewers_overview(session), "message": None, "failed": False, "rubrics": rubrics}
    return ctx | extra


@router.get("/lead", response_class=HTMLResponse)
def lead_page(request: Request, done: str | None = None) -> Response:
    """Adjudication queue, recently decided items, the agreement dashboard and the reviewers."""
    key = _key(request)
    if key is None:
        return _to_login()
    if key.role not in ("lead", "admin", "ops"):
        return RedirectResponse("/ui/review", status_code=303)
    message = "Decision recorded." if done == "adjudicated" else None
    return _page(request, "lead.html", _lead_context(request, key, message=message))


@router.post("/lead/adjudicate/{badcase_id}", response_class=HTMLResponse)
async def lead_adjudicate(request: Request, badcase_id: ObjectId) -> Response:
    """Record a lead's decision from the adjudication form."""
    key = _key(request)
    if key is None or key.role != "lead":
        return _to_login()
    form = await request.form()
    decision = {f: (str(form.get(f, "")).strip() or None) for f in ("outcome", "category", "chosen_response", "note")}

    def run():
        try:
            with db.unit_of_work(request.app.state.sessions) as session:
                review.adjudicate(session, key, badcase_id, decision)
        except FFError as exc:
            context = _lead_context(request, key, message=exc.message, failed=True)
            return _page(request, "lead.html", context, exc.status)
        return RedirectResponse("/ui/lead?done=adjudicated", status_code=303)

    return await run_in_threadpool(run)
