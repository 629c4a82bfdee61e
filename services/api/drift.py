"""Drift reports, references, alerts and probe runs."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drift import alerts, windows
from schemas import tables as t
from schemas.drift import AlertOut, DriftReferenceIn, DriftReferenceOut, DriftReportOut, ProbeRunOut
from schemas.errors import NotFound
from schemas.read import Page
from services import drift_worker, probe_runs
from services.api.deps import SessionDep, SettingsDep, require
from services.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["drift"], dependencies=[Depends(require("ops"))])

Id = Annotated[int, Path(ge=1, le=2**62)]
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]*$")]
BucketQ = Annotated[str | None, Query(max_length=20, pattern=r"^[^\x00-\x1f]*$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


def report_out(row: t.DriftReport, full: bool = False) -> DriftReportOut:
    """The read shape of a report (the summary only when `full`)."""
    return DriftReportOut(id=row.id, model_version=row.model_version, bucket=row.bucket, reference_id=row.reference_id,
                          n_reference=row.n_reference, n_current=row.n_current, drift_detected=row.drift_detected,
                          drifted=list(row.summary.get("drifted", [])), created_at=row.created_at,
                          html_url=f"/v1/drift/reports/{row.id}/html" if row.html_path else None,
                          summary=row.summary if full else None)


def alerts_out(session: Session, rows: list[t.Alert]) -> list[AlertOut]:
    """Read shapes of alerts with their rule name and delivery state (two queries for the whole page)."""
    ids = [a.id for a in rows]
    names = dict(session.execute(select(t.AlertRule.id, t.AlertRule.name)
                                 .where(t.AlertRule.id.in_({a.rule_id for a in rows}))).all()) if rows else {}
    deliveries: dict[int, list[dict]] = {}
    if ids:
        d = t.AlertDelivery
        for row in session.scalars(select(d).where(d.alert_id.in_(ids)).order_by(d.id)):
            deliveries.setdefault(row.alert_id, []).append(
                {"channel": row.channel, "status": row.status, "attempts": row.attempts,
                 "next_attempt_at": row.next_attempt_at, "delivered_at": row.delivered_at,
                 "last_error": row.last_error})
    fields = set(AlertOut.model_fields) - {"rule", "deliveries"}
    return [AlertOut(**{f: getattr(a, f) for f in fields}, rule=names.get(a.rule_id),
                     deliveries=deliveries.get(a.id, [])) for a in rows]


@router.get("/drift/reports", response_model=Page, responses=ERROR_RESPONSES)
def list_reports(session: SessionDep, model_version: Text = None, bucket: BucketQ = None,
                 drift_detected: bool | None = None, limit: Limit = 50, offset: Offset = 0) -> Page:
    """Drift reports, newest first, filtered by model version, bucket and verdict; paginated."""
    r = t.DriftReport
    q = select(r)
    for column, value in ((r.model_version, model_version), (r.bucket, bucket), (r.drift_detected, drift_detected)):
        if value is not None:
            q = q.where(column == value)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(r.id.desc()).limit(limit).offset(offset))
    return Page(total=total, limit=limit, offset=offset, items=[report_out(x).model_dump(mode="json") for x in rows])


def _report(session: Session, report_id: int) -> t.DriftReport:
    row = session.get(t.DriftReport, report_id)
    if row is None:
        raise NotFound(f"no drift report {report_id}")
    return row


@router.get("/drift/reports/{report_id}", response_model=DriftReportOut, responses=ERROR_RESPONSES)
def get_report(report_id: Id, session: SessionDep) -> DriftReportOut:
    """One drift report with its JSON summary: per signal the test, score, threshold and verdict."""
    return report_out(_report(session, report_id), full=True)


@router.get("/drift/reports/{report_id}/html", response_class=FileResponse, responses=ERROR_RESPONSES)
def get_report_html(report_id: Id, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """Evidently's HTML report of one drift evaluation."""
    return report_html(_report(session, report_id), settings)


def report_html(row: t.DriftReport, settings) -> FileResponse:
    """The stored HTML file of a report, or 404 when it is missing on this machine."""
    path = drift_worker.report_file(settings, row.html_path) if row.html_path else None
    if path is None or not path.is_file():
        raise NotFound(f"the HTML of drift report {row.id} is not on disk")
    return FileResponse(path, media_type="text/html")


@router.post("/drift/references", status_code=201, response_model=DriftReferenceOut, responses=ERROR_RESPONSES)
def pin_reference(body: DriftReferenceIn, session: SessionDep) -> DriftReferenceOut:
    """Pin or refresh the reference window of a slice (the previous one is deactivated)."""
    slice_ = windows.Slice(body.model_version, body.bucket)
    row = windows.pin_reference(session, slice_, start=body.window_start, end=body.window_end, last_n=body.last_n)
    return DriftReferenceOut.model_validate(row, from_attributes=True)


@router.get("/drift/references", response_model=list[DriftReferenceOut], responses=ERROR_RESPONSES)
def list_references(session: SessionDep, model_version: Text = None, bucket: BucketQ = None,
                    active: bool = False, limit: Limit = 50, offset: Offset = 0) -> list[DriftReferenceOut]:
    """Reference windows, newest first (only the active ones with `active=true`)."""
    rows = windows.list_references(session, model_version=model_version, bucket=bucket, active_only=active,
                                   limit=limit, offset=offset)
    return [DriftReferenceOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/alerts", response_model=Page, responses=ERROR_RESPONSES)
def list_alerts(session: SessionDep, status: Literal["open", "acknowledged", "resolved"] | None = None,
                severity: Literal["info", "warning", "critical"] | None = None, model_version: Text = None,
                limit: Limit = 50, offset: Offset = 0) -> Page:
    """Alerts, newest first, filtered by status, severity and model version; paginated."""
    total, rows = alerts.list_alerts(session, status=status, severity=severity, model_version=model_version,
                                     limit=limit, offset=offset)
    return Page(total=total, limit=limit, offset=offset,
                items=[a.model_dump(mode="json") for a in alerts_out(session, rows)])


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, responses=ERROR_RESPONSES)
def ack_alert(alert_id: Id, session: SessionDep) -> AlertOut:
    """Acknowledge an alert: it stays open (no new alert for its rule × slice) until resolved."""
    return alerts_out(session, [alerts.acknowledge(session, alert_id=alert_id)])[0]


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=ERROR_RESPONSES)
def resolve_alert(alert_id: Id, session: SessionDep) -> AlertOut:
    """Resolve an alert; its rule × slice may alert again after the rule's cooldown."""
    return alerts_out(session, [alerts.resolve(session, alert_id=alert_id)])[0]


@router.get("/probes/runs", response_model=Page, responses=ERROR_RESPONSES)
def list_probe_runs(session: SessionDep, model_version: Text = None, limit: Limit = 50,
                    offset: Offset = 0) -> Page:
    """Sycophancy probe runs, newest first: the judged rate and the rate per probe family."""
    total, rows = probe_runs.list_runs(session, model_version=model_version, limit=limit, offset=offset)
    return Page(total=total, limit=limit, offset=offset,
                items=[ProbeRunOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows])
