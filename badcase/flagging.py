"""Persistence of detection results: badcases with their reasons, near-duplicate clusters, and queue filling.

Functions take the caller's session and flush; the caller commits.
"""

import math
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from badcase import routing, rules
from schemas import tables as t

OPEN = ("flagged", "queued", "in_review", "adjudication")


def record(session: Session, *, interaction: dict, firings: list[rules.Firing], exploration: bool = False) -> t.Badcase:
    """Create or update the badcase of one interaction with the rules that fired (each reason stored once)."""
    bc = session.scalar(select(t.Badcase).where(t.Badcase.interaction_id == interaction["id"]))
    names = [f.rule for f in firings] or (["exploration"] if exploration else [])
    if bc is None:
        key = routing.cluster_key(names, interaction.get("model_version"), interaction.get("response", ""))
        head = session.scalar(select(t.Badcase).where(t.Badcase.cluster_key == key, t.Badcase.status.in_(OPEN))
                              .order_by(t.Badcase.id).limit(1))
        severity = rules.severity_of(firings) if firings else "low"
        bc = t.Badcase(interaction_id=interaction["id"], status="flagged", severity=severity, cluster_key=key,
                       is_exploration=exploration and not firings, bucket=interaction.get("domain_bucket"),
                       model_version=interaction.get("model_version"), reasons=names,
                       rules_version=rules.RULES_VERSION, uncertainty=interaction.get("rm_disagreement"),
                       required_reviews=routing.reviewers_for(severity))
        bc.priority = routing.priority(severity, uncertainty=bc.uncertainty)
        session.add(bc)
        if head is not None:
            head.cluster_size += 1
            head.priority = routing.priority(head.severity, cluster_size=head.cluster_size, uncertainty=head.uncertainty)
        session.flush()
    else:
        new = [n for n in names if n not in (bc.reasons or [])]
        if new:
            bc.reasons = list(bc.reasons or []) + new
            bc.is_exploration = False
        if firings:
            bc.severity = max([bc.severity, rules.severity_of(firings)], key=rules.SEVERITY_RANK.__getitem__)
            bc.required_reviews = max(bc.required_reviews, routing.reviewers_for(bc.severity))
            bc.priority = routing.priority(bc.severity, cluster_size=bc.cluster_size, uncertainty=bc.uncertainty)
    have = set(session.scalars(select(t.BadcaseReason.rule).where(t.BadcaseReason.badcase_id == bc.id)))
    for f in firings:
        if f.rule not in have:
            session.add(t.BadcaseReason(badcase_id=bc.id, rule=f.rule, severity=f.severity, evidence=f.evidence,
                                        rules_version=rules.RULES_VERSION))
    session.flush()
    return bc


def length_baselines(session: Session, *, sample: int = 20_000) -> dict[tuple[str, str], rules.LengthBaseline]:
    """Robust log-length baselines per (bucket, model version) from the most recent interactions."""
    it = t.Interaction
    rows = session.execute(select(it.domain_bucket, it.model_version, it.length_chars)
                           .where(it.length_chars.is_not(None)).order_by(it.id.desc()).limit(sample)).all()
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for bucket, mv, n in rows:
        groups[(bucket, mv)].append(math.log1p(n))
    out = {}
    for key, xs in groups.items():
        xs.sort()
        med = xs[len(xs) // 2]
        devs = sorted(abs(x - med) for x in xs)
        out[key] = rules.LengthBaseline(median=med, mad=devs[len(devs) // 2], n=len(xs))
    return out


def fill_queue(session: Session, *, capacity: int, enqueue: Callable[[Session, t.Badcase], None]) -> int:
    """Move flagged badcases into review within capacity: one per near-duplicate cluster, highest priority first."""
    bc = t.Badcase
    in_queue = session.scalar(select(func.count()).select_from(bc).where(bc.status.in_(("queued", "in_review")))) or 0
    slots = capacity - in_queue
    if slots <= 0:
        return 0
    busy = set(session.scalars(select(bc.cluster_key).where(bc.status.in_(("queued", "in_review")))))
    flagged = list(session.scalars(select(bc).where(bc.status == "flagged").order_by(bc.priority.desc(), bc.id)
                                   .limit(max(slots * 20, 1000))))
    by_id = {b.id: b for b in flagged}
    order = routing.order_for_queue([{"id": b.id, "cluster_key": b.cluster_key, "priority": b.priority} for b in flagged])
    moved = 0
    for c in order:
        if moved >= slots:
            break
        if c["cluster_key"] in busy:
            continue
        enqueue(session, by_id[c["id"]])
        busy.add(c["cluster_key"])
        moved += 1
    session.flush()
    return moved
