"""Wire contracts of drift monitoring: reports, reference windows, alerts and probe runs, as the API serves them."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from schemas.common import Name

Bucket = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.:\-*]+$")]


class DriftReportOut(BaseModel):
    """One drift evaluation of a slice; `summary` (per-signal test, score, threshold, verdict) on the single read."""

    id: int
    model_version: str
    bucket: str
    reference_id: int | None
    n_reference: int
    n_current: int
    drift_detected: bool
    drifted: list[str] = []
    html_url: str | None = None
    created_at: datetime
    summary: dict[str, Any] | None = None


class DriftReferenceIn(BaseModel):
    """Pin (or refresh) the reference window of a slice: a time range, or the slice's last N rows.

    Not a strict `WireModel`: FastAPI validates bodies in Python mode, where strict datetimes refuse ISO strings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_version: Name
    bucket: Bucket = Field("*", description="A domain bucket, or `*` for all buckets of the model version.")
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    last_n: StrictInt | None = Field(None, ge=1, le=1_000_000, description="Pin the slice's most recent N rows instead.")

    @model_validator(mode="after")
    def _range_or_last_n(self) -> "DriftReferenceIn":
        has_range = self.window_start is not None or self.window_end is not None
        if (self.last_n is None) == (not has_range):
            raise ValueError("give either window_start and window_end, or last_n")
        if has_range and (self.window_start is None or self.window_end is None):
            raise ValueError("give both window_start and window_end")
        if has_range and self.window_start > self.window_end:
            raise ValueError("window_start must not be after window_end")
        return self


class DriftReferenceOut(BaseModel):
    """A pinned reference window."""

    id: int
    model_version: str
    bucket: str
    window_start: datetime
    window_end: datetime
    n_rows: int
    active: bool
    created_at: datetime


class AlertOut(BaseModel):
    """An alert on one rule × slice, with its evidence and delivery state per channel."""

    id: int
    rule_id: int
    rule: str | None = None
    model_version: str
    bucket: str
    signal: str
    severity: str
    status: str
    value: float | None
    threshold: float | None
    message: str
    evidence: dict[str, Any]
    report_id: int | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    deliveries: list[dict[str, Any]] = []


class ProbeRunOut(BaseModel):
    """A sycophancy probe run: the judged rate (over all scored probes) and the rate per family."""

    id: int
    model_version: str
    endpoint: str
    overall_rate: float
    rates: dict[str, Any]
    n: int
    created_at: datetime
