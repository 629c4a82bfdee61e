"""Dataset snapshots from the database: resolved, admitted, consented badcases become a versioned preference dataset.

The queries live here and the pure building lives in `retrain.datasets`: each eligible badcase gives one row
(prompt = the dialogue, chosen = the accepted rewrite, rejected = the original response) with its provenance
(interaction event id, badcase, reviews, reviewers, rubric version, batch, bucket, model version, human anchor).
The files go under `<data_dir>/datasets/<version>/`; a `DatasetVersion` row holds the manifest and `DatasetItem`
rows tie each row back to its badcase. Functions take the caller's session and flush; they never commit.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from retrain import datasets
from schemas import tables as t
from schemas.errors import NotFound

CONSENT_FILTER = {"interaction.consent_training": True, "badcase.status": "resolved", "badcase.admitted": True,
                  "badcase.is_gold": False, "badcase.chosen_response": "not null"}
# Where a chosen response written by an expert comes from; a user's own edit is preference data, not an anchor.
EXPERT_SOURCES = ("reviewer_rewrite", "adjudication")
_CHUNK = 500


@dataclass
class Snapshot:
    """The dataset version a snapshot produced (or found unchanged), and whether it is new."""

    version: t.DatasetVersion
    created: bool


def _eligible():
    """Badcases whose pair may enter training data: resolved, admitted, not gold, a chosen response, consented."""
    bc, it = t.Badcase, t.Interaction
    return (bc.status == "resolved", bc.admitted.is_(True), bc.is_gold.is_(False), bc.chosen_response.is_not(None),
            it.consent_training.is_(True))


def item_ids(session: Session, dataset_version_id: int) -> set[int]:
    """Badcase ids of a dataset version's rows."""
    return set(session.scalars(select(t.DatasetItem.badcase_id)
                               .where(t.DatasetItem.dataset_version_id == dataset_version_id)))


def new_pairs(session: Session, since_dataset_version_id: int | None) -> int:
    """Eligible pairs not in the given dataset version (all eligible pairs when None)."""
    bc, it = t.Badcase, t.Interaction
    q = select(func.count()).select_from(bc).join(it, it.id == bc.interaction_id).where(*_eligible())
    if since_dataset_version_id is not None:
        seen = select(t.DatasetItem.badcase_id).where(t.DatasetItem.dataset_version_id == since_dataset_version_id)
        q = q.where(bc.id.not_in(seen))
    return session.scalar(q) or 0


def render_prompt(prompt: str, messages: list[dict] | None) -> str:
    """The dialogue before the response, as "\\n\\nHuman: …\\n\\nAssistant:" turns (the hh-rlhf layout)."""
    turns = [m for m in messages or [] if isinstance(m, dict) and isinstance(m.get("content"), str)]
    if not turns:
        return f"\n\nHuman: {prompt}\n\nAssistant:"
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    text = "".join(f"\n\n{names.get(m.get('role'), 'Human')}: {m['content']}" for m in turns)
    return text + "\n\nAssistant:"


def _chunks(ids: list[int]):
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _reviews(session: Session, badcase_ids: list[int]) -> dict[int, list[t.ReviewSubmission]]:
    out: dict[int, list[t.ReviewSubmission]] = defaultdict(list)
    for chunk in _chunks(badcase_ids):
        q = select(t.ReviewSubmission).where(t.ReviewSubmission.badcase_id.in_(chunk)).order_by(t.ReviewSubmission.id)
        for s in session.scalars(q):
            out[s.badcase_id].append(s)
    return out


def rubric_labels(session: Session, ids: set[int]) -> dict[int, str]:
    """`name@vN` of each rubric version id."""
    if not ids:
        return {}
    rows = session.execute(select(t.RubricVersion.id, t.RubricVersion.name, t.RubricVersion.version)
                           .where(t.RubricVersion.id.in_(ids)))
    return {rid: f"{name}@v{version}" for rid, name, version in rows}


def is_human_anchor(badcase: t.Badcase) -> bool:
    """Whether the chosen response is an expert demonstration (a reviewer's rewrite or a lead's adjudication)."""
    resolution = badcase.resolution or {}
    return resolution.get("chosen_from") in EXPERT_SOURCES or "adjudication" in resolution


def collect_items(session: Session, *, exclude: set[int] | None = None) -> tuple[list[dict[str, Any]], dict]:
    """Eligible badcases as row dicts with provenance (minus `exclude`), and per-row facts for the manifest."""
    bc, it = t.Badcase, t.Interaction
    pairs = session.execute(select(bc, it).join(it, it.id == bc.interaction_id).where(*_eligible())
                            .order_by(bc.id)).all()
    pairs = [(b, i) for b, i in pairs if not exclude or b.id not in exclude]
    reviews = _reviews(session, [b.id for b, _ in pairs])
    labels = rubric_labels(session, {b.rubric_version_id for b, _ in pairs if b.rubric_version_id}
                           | {s.rubric_version_id for subs in reviews.values() for s in subs})
    items, facts = [], {"scopes": set(), "shares": [], "categories": {}}
    for b, i in pairs:
        subs = reviews.get(b.id, [])
        items.append({
            "prompt": render_prompt(i.prompt, i.messages), "chosen": b.chosen_response, "rejected": i.response,
            "interaction_id": i.event_id, "badcase_id": b.id, "review_ids": [s.id for s in subs],
            "reviewers": [s.reviewer_id for s in subs], "rubric_version": labels.get(b.rubric_version_id),
            "batch": b.review_batch, "bucket": b.bucket or i.domain_bucket, "model_version": i.model_version,
            "is_human_anchor": is_human_anchor(b), "source": "review",
        })  # fmt: skip
        facts["scopes"].add((b.rubric_version_id, b.review_batch))
        share = (b.resolution or {}).get("share")
        if isinstance(share, (int, float)):
            facts["shares"].append(float(share))
        facts["categories"][b.id] = (b.resolution or {}).get("category")
    return items, facts


def excluded_counts(session: Session) -> dict[str, int]:
    """How many reviewed badcases were kept out, and why (the consent filter and the agreement gate at work)."""
    bc, it = t.Badcase, t.Interaction
    no_consent = session.scalar(select(func.count()).select_from(bc).join(it, it.id == bc.interaction_id)
                                .where(bc.status == "resolved", it.consent_training.is_(False))) or 0
    not_admitted = session.scalar(select(func.count()).select_from(bc)
                                  .where(bc.status == "resolved", bc.admitted.is_(False))) or 0
    by_status = dict(session.execute(select(bc.status, func.count()).where(
        bc.status.in_(("ambiguous", "adjudication", "dismissed"))).group_by(bc.status)).all())
    return {"resolved_without_training_consent": no_consent, "resolved_not_admitted": not_admitted,
            **{status: int(n) for status, n in sorted(by_status.items())}}


def agreement_figures(session: Session, facts: dict) -> dict[str, Any]:
    """The latest agreement report of each (rubric version, batch) the rows come from, and item-level shares."""
    reports = []
    labels = rubric_labels(session, {rid for rid, _ in facts["scopes"] if rid is not None})
    for rid, batch in sorted(facts["scopes"], key=repr):
        ar = t.AgreementReport
        q = select(ar).where(ar.rubric_version_id.is_(None) if rid is None else ar.rubric_version_id == rid,
                             ar.review_batch.is_(None) if batch is None else ar.review_batch == batch)
        row = session.scalars(q.order_by(ar.id.desc()).limit(1)).first()
        if row is not None:
            reports.append({"report_id": row.id, "rubric_version": labels.get(rid), "batch": batch,
                            "n_items": row.n_items, "krippendorff_alpha": row.krippendorff_alpha,
                            "fleiss_kappa": row.fleiss_kappa, "status": row.status})
    shares = facts["shares"]
    return {"reports": reports, "items_with_share": len(shares),
            "mean_item_agreement": round(sum(shares) / len(shares), 6) if shares else None,
            "item_agreement_histogram": dict(sorted(Counter(round(s, 2) for s in shares).items()))}


def latest(session: Session) -> t.DatasetVersion | None:
    """The newest dataset version."""
    return session.scalars(select(t.DatasetVersion).order_by(t.DatasetVersion.id.desc()).limit(1)).first()


def get_version(session: Session, version: str) -> t.DatasetVersion:
    """A dataset version by its name (or numeric id)."""
    q = select(t.DatasetVersion).where(t.DatasetVersion.version == version)
    row = session.scalars(q).first()
    if row is None and version.isdigit() and int(version) < 2**62:
        row = session.get(t.DatasetVersion, int(version))
    if row is None:
        raise NotFound(f"no dataset version {version!r}")
    return row


def _version_name(digest: str, holdout_share: float, salt: str) -> str:
    return "ds-" + hashlib.sha256(f"{digest}|{holdout_share!r}|{salt}".encode()).hexdigest()[:12]


def _external(path: str | Path, weight: float, rows: list[dict[str, Any]]) -> tuple[list[dict], dict]:
    ext = datasets.read_preference_file(path)
    mixed = datasets.mix_external(rows, ext, weight)
    file_hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return mixed, {"path": str(Path(path).resolve()), "sha256": file_hash, "weight": weight,
                   "available": len(ext), "added": len(mixed) - len(rows)}


def create_version(
    session: Session, *, data_dir: str | Path, parent: t.DatasetVersion | None | bool = True,
    external_path: str | Path | None = None, external_weight: float = 0.0, holdout_share: float = 0.12,
    only_new: bool = False, created_by: str | None = None, salt: str = datasets.SPLIT_SALT,
) -> Snapshot:  # fmt: skip
    """Snapshot every eligible pair (only those not in the parent with `only_new`) into a new dataset version."""
    parent_row = latest(session) if parent is True else (parent or None)
    parent_items = item_ids(session, parent_row.id) if parent_row else set()
    items, facts = collect_items(session, exclude=parent_items if only_new else None)
    rows = datasets.build_rows(items)
    if not rows:
        raise datasets.DatasetError("no resolved, admitted pairs with training consent to snapshot"
                                    + (" that are not in the parent version" if only_new else ""))
    external = None
    if external_path is not None and external_weight > 0:
        rows, external = _external(external_path, external_weight, rows)
    datasets.split_by_prompt(rows, holdout_share, salt)  # validates the share before anything is written
    digest = datasets.content_hash(datasets.build_rows(rows))
    name = _version_name(digest, holdout_share, salt)
    found = session.scalars(select(t.DatasetVersion).where(t.DatasetVersion.version == name)).first()
    if found is not None:
        return Snapshot(found, created=False)
    ids = {r["badcase_id"] for r in items}
    meta = {
        "version": name, "agreement": agreement_figures(session, facts), "consent_filter": {
            **CONSENT_FILTER, "excluded": excluded_counts(session)},
        "new_since_parent": len(ids - parent_items), "removed_since_parent": len(parent_items - ids),
        "only_new": only_new, "external": external, "created_by": created_by,
        "categories": dict(sorted(Counter(c or "" for c in facts["categories"].values()).items())),
    }  # fmt: skip
    root = Path(data_dir).resolve() / "datasets"
    tmp, final = root / f".tmp-{uuid.uuid4().hex}", root / name
    manifest = datasets.write_version(rows, tmp, parent_row.version if parent_row else None, meta,
                                      holdout_share=holdout_share, salt=salt)
    if final.exists():  # the same content written by a concurrent snapshot: identical files
        shutil.rmtree(tmp)
    else:
        tmp.rename(final)
    row = t.DatasetVersion(version=name, parent_id=parent_row.id if parent_row else None,
                           content_hash=manifest["content_hash"], path=str(final), n_train=manifest["counts"]["train"],
                           n_holdout=manifest["counts"]["holdout"], manifest=manifest, created_by=created_by)
    session.add(row)
    session.flush()
    _, holdout = datasets.split_by_prompt(rows, holdout_share, salt)
    held = {r["badcase_id"] for r in holdout if r.get("badcase_id") is not None}
    badcase_ids = sorted({int(r["badcase_id"]) for r in rows if r.get("badcase_id") is not None})
    session.add_all(_items(session, row.id, badcase_ids, held))
    session.flush()
    return Snapshot(row, created=True)


def _items(session: Session, dataset_id: int, badcase_ids: list[int], held: set[str]) -> list[t.DatasetItem]:
    """One lineage row per badcase of the version, with the split its prompt fell in."""
    interaction_of: dict[int, int] = {}
    for chunk in _chunks(badcase_ids):
        interaction_of.update(session.execute(select(t.Badcase.id, t.Badcase.interaction_id)
                                              .where(t.Badcase.id.in_(chunk))).all())
    return [t.DatasetItem(dataset_version_id=dataset_id, badcase_id=bid, interaction_id=interaction_of[bid],
                          split="holdout" if str(bid) in held else "train") for bid in badcase_ids]
