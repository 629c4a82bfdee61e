"""Preference dataset versions built from plain row dicts: TRL's prompt/chosen/rejected plus provenance.

Pure code (no torch, no database): the caller in `services` queries resolved, consented review items and passes
them in as dicts; this module turns them into rows, splits them by prompt, mixes in external pairs, writes
JSONL + Parquet files and a `manifest.json` whose content hash identifies the version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from schemas.errors import FFError

REQUIRED = ("prompt", "chosen", "rejected")
# Provenance columns carried by every row, in export order; lists hold several reviews/reviewers per item.
PROVENANCE = (
    "interaction_id",
    "badcase_id",
    "review_ids",
    "reviewers",
    "rubric_version",
    "batch",
    "bucket",
    "model_version",
    "is_human_anchor",
    "source",
)
COLUMNS = REQUIRED + PROVENANCE
LIST_COLUMNS = ("review_ids", "reviewers")
SPLIT_SALT = "ff-split-v1"
MANIFEST_SCHEMA = 1


class DatasetError(FFError):
    """A dataset cannot be built from the given items."""

    code, status = "dataset_invalid", 422


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [str(value)]
    return [str(v) for v in value]


def _row(item: dict[str, Any], index: int) -> dict[str, Any]:
    # An empty reply is a real answer (hh-rlhf prefers saying nothing to a harmful reply in a few pairs), so only
    # the prompt must be non-empty.
    missing = [k for k in REQUIRED if not isinstance(item.get(k), str) or (k == "prompt" and not item[k].strip())]
    if missing:
        raise DatasetError(
            f"item {index} lacks text for {', '.join(missing)}",
            details=[{"loc": [index, k], "msg": "required string (a non-empty prompt)"} for k in missing],
        )
    row: dict[str, Any] = {k: item[k] for k in REQUIRED}
    for key in ("interaction_id", "badcase_id", "rubric_version", "batch", "bucket", "model_version"):
        row[key] = _opt_str(item.get(key))
    row["review_ids"] = _str_list(item.get("review_ids"))
    row["reviewers"] = sorted(set(_str_list(item.get("reviewers"))))
    row["is_human_anchor"] = bool(item.get("is_human_anchor", False))
    row["source"] = _opt_str(item.get("source")) or "review"
    return row


def build_rows(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn resolved review items into preference rows with provenance; identical chosen/rejected pairs are dropped."""
    rows = [_row(item, i) for i, item in enumerate(items)]
    # A pair whose two sides are the same text carries no preference signal; it only adds noise to the loss.
    return [r for r in rows if r["chosen"] != r["rejected"]]


def _unit_hash(text: str, salt: str = SPLIT_SALT) -> float:
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_prompt(
    rows: list[dict[str, Any]], holdout_share: float = 0.12, salt: str = SPLIT_SALT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split rows into (train, holdout) by a hash of the prompt, so a prompt never sits on both sides."""
    if not 0.0 <= holdout_share < 1.0:
        raise DatasetError(f"holdout_share must be in [0, 1), got {holdout_share}")
    train, holdout = [], []
    for row in rows:
        (holdout if _unit_hash(row["prompt"], salt) < holdout_share else train).append(row)
    return train, holdout


def mix_external(
    rows: list[dict[str, Any]], external_rows: list[dict[str, Any]], weight: float, salt: str = SPLIT_SALT
) -> list[dict[str, Any]]:
    """Append round(weight * len(rows)) external pairs (a stable hash sample, capped at what exists) to rows."""
    if weight < 0:
        raise DatasetError(f"weight must be >= 0, got {weight}")
    wanted = min(len(external_rows), round(weight * len(rows)))
    ranked = sorted(external_rows, key=lambda r: _unit_hash(r["prompt"] + "\x00" + r["chosen"], salt))
    picked = []
    for item in ranked[:wanted]:
        item = {**item, "source": item.get("source") or "external", "is_human_anchor": False}
        picked.append(_row(item, len(picked)))
    return list(rows) + picked


def canonical_line(row: dict[str, Any]) -> str:
    """One row as canonical JSON (sorted keys, fixed separators): the unit of the content hash and of JSONL."""
    return json.dumps({k: row.get(k) for k in COLUMNS}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(rows: list[dict[str, Any]]) -> str:
    """sha256 over the sorted canonical rows: independent of row order, changes with any content change."""
    digest = hashlib.sha256()
    for line in sorted(canonical_line(r) for r in rows):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _arrow_schema():
    import pyarrow as pa

    fields = [pa.field(k, pa.string(), nullable=k not in REQUIRED) for k in COLUMNS]
    types = {k: pa.list_(pa.string()) for k in LIST_COLUMNS} | {"is_human_anchor": pa.bool_()}
    return pa.schema([pa.field(f.name, types.get(f.name, f.type), nullable=f.nullable) for f in fields])


def _write_split(rows: list[dict[str, Any]], out: Path, name: str) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl, parquet = out / f"{name}.jsonl", out / f"{name}.parquet"
    jsonl.write_text("".join(canonical_line(r) + "\n" for r in rows), encoding="utf-8")
    columns = {k: [r.get(k) for r in rows] for k in COLUMNS}
    pq.write_table(pa.table(columns, schema=_arrow_schema()), parquet)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (jsonl, parquet)}


def _distinct(rows: list[dict[str, Any]], key: str) -> list[str]:
    values: set[str] = set()
    for r in rows:
        v = r.get(key)
        values.update(v if isinstance(v, list) else [v] if v is not None else [])
    return sorted(values)


def write_version(
    rows: list[dict[str, Any]],
    out_dir: str | os.PathLike,
    parent: str | None = None,
    meta: dict[str, Any] | None = None,
    *,
    holdout_share: float = 0.12,
    salt: str = SPLIT_SALT,
) -> dict[str, Any]:
    """Split rows by prompt and write train/holdout as JSONL and Parquet plus manifest.json; returns the manifest."""
    meta = dict(meta or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [_row(r, i) for i, r in enumerate(rows)]
    # Files are written in a stable pseudo-random order (hash of each row), so the same content gives the same
    # bytes whatever order the caller's query returned, and a consumer that does not shuffle is not fed sorted data.
    rows.sort(key=lambda r: hashlib.sha256(canonical_line(r).encode()).digest())
    train, holdout = split_by_prompt(rows, holdout_share, salt)
    files = _write_split(train, out, "train") | _write_split(holdout, out, "holdout")
    digest = content_hash(rows)
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        "version": meta.pop("version", None) or f"ds-{digest[:12]}",
        "content_hash": digest,
        "parent": parent,
        "created_at": meta.pop("created_at", None) or datetime.now(timezone.utc).isoformat(),
        "counts": {"total": len(rows), "train": len(train), "holdout": len(holdout)},
        "rubric_versions": _distinct(rows, "rubric_version"),
        "review_batches": _distinct(rows, "batch"),
        "reviewers": _distinct(rows, "reviewers"),
        "sources": dict(sorted(Counter(r["source"] for r in rows).items())),
        "buckets": dict(sorted(Counter(r["bucket"] or "" for r in rows).items())),
        "human_anchor_rows": sum(r["is_human_anchor"] for r in rows),
        "agreement": meta.pop("agreement", None),
        "consent_filter": meta.pop("consent_filter", None),
        "split": {"method": "sha256(salt, prompt) < holdout_share", "holdout_share": holdout_share, "salt": salt},
        "columns": list(COLUMNS),
        "files": files,
        "meta": meta,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a .jsonl or .jsonl.gz file into a list of dicts."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def split_dialogue(chosen: str, rejected: str, marker: str = "\n\nAssistant:") -> tuple[str, str, str]:
    """Split two whole dialogues into (prompt, chosen reply, rejected reply) at the last shared assistant marker."""
    n = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        n += 1
    cut = chosen.rfind(marker, 0, n)
    if cut < 0:
        cut = chosen.rfind(marker.strip(), 0, n)
        if cut < 0:
            return "", chosen, rejected
        marker = marker.strip()
    end = cut + len(marker)
    return chosen[:end], chosen[end:], rejected[end:]


def read_preference_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read preference pairs (.jsonl/.jsonl.gz); without a prompt field the prompt is the shared dialogue prefix."""
    rows = []
    for rec in read_jsonl(path):
        if "prompt" in rec and rec["prompt"] is not None:
            rows.append(dict(rec))
            continue
        prompt, chosen, rejected = split_dialogue(rec["chosen"], rec["rejected"])
        rows.append({**rec, "prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows
