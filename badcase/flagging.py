"""Persistence of detection results: badcases with their reasons, near-duplicate clusters, and queue filling.

Functions take the caller's session and flush; the caller commits.
"""

import json
import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from badcase import routing, rules
from schemas import tables as t
from schemas.tables.badcase import REVIEW_OPEN

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


# PostgreSQL: one fixed statement over arrays (prepared once) instead of a VALUES list psycopg re-parses per size.
_PG_TYPES = {"interaction_id": "bigint", "status": "text", "severity": "text", "cluster_key": "text",
             "cluster_size": "int", "is_exploration": "bool", "bucket": "text", "model_version": "text",
             "reasons": "json", "rules_version": "text", "uncertainty": "float8", "required_reviews": "int",
             "priority": "float8", "is_gold": "bool", "admitted": "bool", "submissions_count": "int",
             "created_at": "timestamptz", "updated_at": "timestamptz"}
_ARRAY = {c: "text" if ty == "json" else ty for c, ty in _PG_TYPES.items()}  # json travels as text
_PG_INSERT = text(
    f"INSERT INTO badcase ({', '.join(_PG_TYPES)}) SELECT {', '.join(f'u.{c}::{ty}' for c, ty in _PG_TYPES.items())} "
    f"FROM unnest({', '.join(f'CAST(:{c} AS {ty}[])' for c, ty in _ARRAY.items())}) AS u({', '.join(_PG_TYPES)}) "
    "RETURNING id, interaction_id")


def _insert_badcases(session: Session, rows: list[dict]) -> list[tuple[int, int]]:
    """Insert new badcase rows; (id, interaction_id) of each."""
    if session.get_bind().dialect.name != "postgresql":
        return [tuple(r) for r in session.execute(insert(t.Badcase).returning(t.Badcase.id, t.Badcase.interaction_id),
                                                  rows).all()]
    now = datetime.now(timezone.utc)
    params = {c: [r.get(c, now if c.endswith("_at") else None) for r in rows] for c in _PG_TYPES}
    params["reasons"] = [json.dumps(x) for x in params["reasons"]]
    return [tuple(r) for r in session.execute(_PG_INSERT, params).all()]


def record_many(session: Session, flagged: list[tuple[dict, list[rules.Firing], bool]]) -> int:
    """Batch form of `record` for the ingest path: new badcases, their reasons and cluster counts in a few statements.

    Each entry is (interaction row, firings, exploration). Interactions that already have a badcase (re-evaluation
    after late feedback) go through `record` one by one.
    """
    if not flagged:
        return 0
    bc = t.Badcase
    ids = [row["id"] for row, _, _ in flagged]
    existing = set(session.scalars(select(bc.interaction_id).where(bc.interaction_id.in_(ids))))
    new = []
    for row, firings, exploration in flagged:
        if row["id"] in existing:
            record(session, interaction=row, firings=firings, exploration=exploration)
            continue
        names = [f.rule for f in firings] or ["exploration"]
        severity = rules.severity_of(firings) if firings else "low"
        new.append((row, firings, {
            "interaction_id": row["id"], "status": "flagged", "severity": severity,
            "cluster_key": routing.cluster_key(names, row.get("model_version"), row.get("response", "")),
            "cluster_size": 1, "is_exploration": not firings, "bucket": row.get("domain_bucket"),
            "model_version": row.get("model_version"), "reasons": names, "rules_version": rules.RULES_VERSION,
            "uncertainty": row.get("rm_disagreement"), "required_reviews": routing.reviewers_for(severity),
            "priority": routing.priority(severity, uncertainty=row.get("rm_disagreement")), "is_gold": False,
            "admitted": False, "submissions_count": 0}))
    if not new:
        return len(flagged)
    keys = {vals["cluster_key"] for _, _, vals in new}
    heads = dict(session.execute(select(bc.cluster_key, func.min(bc.id)).where(bc.cluster_key.in_(keys), bc.status.in_(OPEN))
                                 .group_by(bc.cluster_key)).all())
    inserted = _insert_badcases(session, [v for _, _, v in new])
    id_of = {iid: bid for bid, iid in inserted}
    grew: dict[str, int] = defaultdict(int)
    for _, _, vals in new:
        grew[vals["cluster_key"]] += 1
    for key, n in grew.items():  # the first badcase of a cluster heads it; later ones add to its size
        head = heads.get(key) or min(id_of[v["interaction_id"]] for _, _, v in new if v["cluster_key"] == key)
        extra = n if key in heads else n - 1
        if extra:
            size, sev, unc = session.execute(update(bc).where(bc.id == head)
                                             .values(cluster_size=bc.cluster_size + extra)
                                             .returning(bc.cluster_size, bc.severity, bc.uncertainty)).one()
            session.execute(update(bc).where(bc.id == head)
                            .values(priority=routing.priority(sev, cluster_size=size, uncertainty=unc)))
    reasons = [{"badcase_id": id_of[row["id"]], "rule": f.rule, "severity": f.severity, "evidence": f.evidence,
                "rules_version": rules.RULES_VERSION} for row, firings, _ in new for f in firings]
    if reasons:
        session.execute(insert(t.BadcaseReason), reasons)
    session.flush()
    return len(flagged)


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
    in_queue = session.scalar(select(func.count()).select_from(bc).where(bc.status.in_(REVIEW_OPEN))) or 0
    slots = capacity - in_queue
    if slots <= 0:
        return 0
    busy = set(session.scalars(select(bc.cluster_key).where(bc.status.in_(REVIEW_OPEN))))
    # Rows of clusters already in review are left out in SQL: the limit would otherwise fill with a busy cluster's
    # copies (the loop skips them) and starve everything below them.
    waiting = bc.cluster_key.is_(None) | bc.cluster_key.not_in(sorted(busy - {None}))
    flagged = session.execute(select(bc.id, bc.cluster_key, bc.priority).where(bc.status == "flagged", waiting)
                              .order_by(bc.priority.desc(), bc.id).limit(min(max(slots * 10, 500), 5000))).all()
    order = routing.order_for_queue([{"id": i, "cluster_key": k, "priority": p} for i, k, p in flagged])
    moved = 0
    for c in order:
        if moved >= slots:
            break
        if c["cluster_key"] in busy:
            continue
        enqueue(session, session.get(bc, c["id"]))
        busy.add(c["cluster_key"])
        moved += 1
    session.flush()
    return moved
