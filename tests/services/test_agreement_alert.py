"""Low reviewer agreement reaches ops as an alert through the alert outbox."""

from sqlalchemy import select

from schemas import tables as t
from services import db, review


def test_low_agreement_opens_one_alert(app):
    event = {"event": "review.agreement.below_threshold", "rubric_version_id": 7, "review_batch": None,
             "krippendorff_alpha": 0.21, "threshold": 0.4}
    review._alert_ops(app.state.sessions, event)
    review._alert_ops(app.state.sessions, event)  # deduped while open
    with db.unit_of_work(app.state.sessions) as s:
        rows = s.scalars(select(t.Alert).where(t.Alert.signal == "review_agreement_alpha")).all()
        assert [(a.model_version, a.status, a.value) for a in rows] == [("rubric-7", "open", 0.21)]
