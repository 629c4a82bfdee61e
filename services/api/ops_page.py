"""The ops page: open alerts, recent drift reports (with their Evidently HTML) and probe runs, server-rendered."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from schemas import tables as t
from schemas.errors import Forbidden, NotFound, Unauthorized
from services import auth, probe_runs
from services.api.deps import SessionDep, SettingsDep
from services.api.drift import alerts_out, report_html, report_out

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
KEY_COOKIE = "ff_key"


def page_key(request: Request, session: SessionDep) -> t.ApiKey:
    """An ops (or admin) key from the `Authorization: Bearer` header or the `ff_key` cookie."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    token = token or request.cookies.get(KEY_COOKIE, "").strip()
    if not token:
        raise Unauthorized("sign in: send `Authorization: Bearer <key>` or the `ff_key` cookie")
    key = auth.authenticate(session, token)
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    if not auth.allowed(key.role, ("ops",)):
        raise Forbidden(f"role {key.role!r} may not see the ops page")
    return key


router = APIRouter(prefix="/ui/ops", include_in_schema=False, dependencies=[Depends(page_key)])


@router.get("", response_class=HTMLResponse)
def ops_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Open and acknowledged alerts, the latest drift reports and probe runs."""
    a = t.Alert
    open_rows = list(session.scalars(select(a).where(a.status != "resolved").order_by(a.id.desc()).limit(200)))
    reports = list(session.scalars(select(t.DriftReport).order_by(t.DriftReport.id.desc()).limit(50)))
    _, runs = probe_runs.list_runs(session, limit=20)
    return TEMPLATES.TemplateResponse(request, "ops.html", {
        "alerts": alerts_out(session, open_rows),
        "reports": [report_out(r, full=True) for r in reports],
        "runs": runs,
    })


@router.get("/reports/{report_id}", response_class=FileResponse)
def ops_report_html(report_id: Annotated[int, PathParam(ge=1, le=2**62)], session: SessionDep,
                    settings: SettingsDep) -> FileResponse:
    """Evidently's HTML report of one drift evaluation (cookie-authenticated, for links from the page)."""
    row = session.get(t.DriftReport, report_id)
    if row is None:
        raise NotFound(f"no drift report {report_id}")
    return report_html(row, settings)
