"""Windows of stored descriptors for drift evaluation: slices, pinned reference windows, current windows (DB queries).

A slice is one model version × domain bucket; bucket `*` is every bucket of the model version together. Rows
are ordered by `(occurred_at, id)`. The reference window of a slice is its active `DriftReference` (pinned by
API, or auto-pinned on the slice's first N rows); the current window is the most recent N rows after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from schemas import tables as t
from schemas.errors import FFError

ALL_BUCKETS = "*"
BINARY = ("is_refusal", "sycophancy_marker", "sycophancy_flip", "negative_feedback")
NUMERIC = ("length_chars", "rm_score")
COLUMNS = ("length_chars", "is_refusal", "sycophancy_marker", "sycophancy_flip", "negative_feedback", "rm_score")


class EmptyWindow(FFError):
    """A reference window was asked for where the slice has no rows."""

    code, status = "drift_window_empty", 422


@dataclass(frozen=True)
class Slice:
    """One model version × bucket (`*` = all buckets)."""

    model_version: str
    bucket: str = ALL_BUCKETS

    def as_dict(self) -> dict[str, str]:
        """The slice as a JSON-able dict."""
        return {"model_version": self.model_version, "bucket": self.bucket}


@dataclass
class Window:
    """A window of descriptor rows: the frame and where it lies in time."""

    frame: pd.DataFrame
    start: datetime | None = None
    end: datetime | None = None
    max_id: int | None = None
    ids: list[int] = field(default_factory=list, repr=False)

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.frame)

    def signature(self) -> dict[str, Any]:
        """What identifies this window's content: row count, newest row id and negative-feedback count."""
        negative = self.frame["negative_feedback"].sum() if self.n else 0
        return {"n": self.n, "max_id": self.max_id, "negative": int(negative),
                "start": _iso(self.start), "end": _iso(self.end)}


def aware(value: datetime | None) -> datetime | None:
    """A datetime read back from the database as UTC-aware (SQLite returns naive UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _utc(value: datetime) -> datetime:
    """UTC, as stored (SQLite keeps a timestamp's wall time and drops its offset)."""
    return aware(value).astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None


def _in_slice(slice_: Slice):
    it = t.Interaction
    if slice_.bucket == ALL_BUCKETS:
        return it.model_version == slice_.model_version
    return and_(it.model_version == slice_.model_version, it.domain_bucket == slice_.bucket)


def _negative_feedback():
    fb, it = t.Feedback, t.Interaction
    return exists().where(fb.interaction_event_id == it.event_id, fb.is_negative.is_(True)).label("negative_feedback")


def _columns() -> list:
    it = t.Interaction
    return [it.id, it.occurred_at, it.length_chars, it.is_refusal, it.sycophancy_marker, it.sycophancy_flip,
            _negative_feedback(), it.rm_score]


def _value(v: Any) -> float:
    return math.nan if v is None else float(v)


def _frame(rows: list) -> Window:
    """Rows of (id, occurred_at, descriptors...) in time order → a Window (binary columns as 0/1, NULL as NaN)."""
    data = {name: [_value(r[i + 2]) for r in rows] for i, name in enumerate(COLUMNS)}
    frame = pd.DataFrame(data, columns=list(COLUMNS), dtype="float64")
    for name in BINARY:
        if not frame[name].isna().any():
            frame[name] = frame[name].astype("int64")
    ids = [r[0] for r in rows]
    return Window(frame, aware(rows[0][1]) if rows else None, aware(rows[-1][1]) if rows else None,
                  max(ids) if ids else None, ids)


def slice_counts(session: Session) -> dict[Slice, int]:
    """Row count of every slice: each model version as a whole (`*`) and each of its domain buckets."""
    it = t.Interaction
    counts: dict[Slice, int] = {}
    q = select(it.model_version, it.domain_bucket, func.count()).group_by(it.model_version, it.domain_bucket)
    for model_version, bucket, n in session.execute(q):
        whole = Slice(model_version)
        counts[whole] = counts.get(whole, 0) + n
        if bucket is not None:
            counts[Slice(model_version, bucket)] = n
    return counts


def slices(session: Session, min_rows: int) -> list[Slice]:
    """Slices with at least `min_rows` rows; a bucket holding all of its model version's rows is left to `*`."""
    counts = slice_counts(session)
    out = []
    for s, n in sorted(counts.items(), key=lambda kv: (kv[0].model_version, kv[0].bucket)):
        if n < min_rows:
            continue
        if s.bucket != ALL_BUCKETS and n == counts[Slice(s.model_version)]:
            continue  # the same rows as the whole model version: one report is enough
        out.append(s)
    return out


def active_reference(session: Session, slice_: Slice) -> t.DriftReference | None:
    """The pinned reference of a slice, if any (the newest active one)."""
    ref = t.DriftReference
    q = (select(ref).where(ref.model_version == slice_.model_version, ref.bucket == slice_.bucket,
                           ref.active.is_(True)).order_by(ref.id.desc()).limit(1))
    return session.scalar(q)


def list_references(session: Session, *, model_version: str | None = None, bucket: str | None = None,
                    active_only: bool = False, limit: int = 100, offset: int = 0) -> list[t.DriftReference]:
    """Reference windows, newest first."""
    ref = t.DriftReference
    q = select(ref)
    if model_version is not None:
        q = q.where(ref.model_version == model_version)
    if bucket is not None:
        q = q.where(ref.bucket == bucket)
    if active_only:
        q = q.where(ref.active.is_(True))
    return list(session.scalars(q.order_by(ref.id.desc()).limit(limit).offset(offset)))


def _pin(session: Session, slice_: Slice, start: datetime, end: datetime, n_rows: int,
         now: datetime | None) -> t.DriftReference:
    ref = t.DriftReference
    session.execute(update(ref).where(ref.model_version == slice_.model_version, ref.bucket == slice_.bucket,
                                      ref.active.is_(True)).values(active=False))
    row = ref(model_version=slice_.model_version, bucket=slice_.bucket, window_start=start, window_end=end,
              n_rows=n_rows, active=True, created_at=now or datetime.now(timezone.utc))
    session.add(row)
    session.flush()
    return row


def pin_reference(session: Session, slice_: Slice, *, start: datetime | None = None, end: datetime | None = None,
                  last_n: int | None = None, now: datetime | None = None) -> t.DriftReference:
    """Pin (or refresh) the reference of a slice: rows between `start` and `end`, or its `last_n` newest rows."""
    it = t.Interaction
    if last_n is not None:
        q = (select(it.occurred_at).where(_in_slice(slice_))
             .order_by(it.occurred_at.desc(), it.id.desc()).limit(last_n))
        times = list(session.scalars(q))
        if not times:
            raise EmptyWindow(f"slice {slice_.model_version}/{slice_.bucket} has no rows")
        start, end = min(times), max(times)
    if start is None or end is None or start > end:
        raise EmptyWindow("a reference window needs start <= end, or last_n")
    start, end = _utc(start), _utc(end)
    n = session.scalar(select(func.count()).where(_in_slice(slice_), it.occurred_at >= start, it.occurred_at <= end))
    if not n:
        raise EmptyWindow(f"slice {slice_.model_version}/{slice_.bucket} has no rows between {start} and {end}")
    return _pin(session, slice_, start, end, n, now)


def pin_first_rows(session: Session, slice_: Slice, n: int, now: datetime | None = None) -> t.DriftReference | None:
    """Auto-pin a slice's first `n` rows as its reference; None while the slice holds fewer."""
    it = t.Interaction
    q = select(it.occurred_at).where(_in_slice(slice_)).order_by(it.occurred_at, it.id).limit(n)
    times = list(session.scalars(q))
    if len(times) < n:
        return None
    return _pin(session, slice_, times[0], times[-1], n, now)


def reference_window(session: Session, reference: t.DriftReference) -> Window:
    """The rows of a pinned reference window."""
    it = t.Interaction
    slice_ = Slice(reference.model_version, reference.bucket)
    q = (select(*_columns()).where(_in_slice(slice_), it.occurred_at >= reference.window_start,
                                   it.occurred_at <= reference.window_end).order_by(it.occurred_at, it.id))
    return _frame(list(session.execute(q)))


def current_window(session: Session, slice_: Slice, *, after: datetime, n: int) -> Window:
    """The most recent `n` rows of a slice that occurred after the reference window."""
    it = t.Interaction
    q = (select(*_columns()).where(_in_slice(slice_), it.occurred_at > after)
         .order_by(it.occurred_at.desc(), it.id.desc()).limit(n))
    return _frame(list(reversed(list(session.execute(q)))))
