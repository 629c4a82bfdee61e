"""`drift check`: the drift evaluation of the worker on two JSONL files of interactions, without a database.

Each line is one interaction in the HTTP ingest shape, validated like an ingested one; descriptors come from the
ingest pipeline's own functions. Negative feedback is unknown in a file: 0 unless the line carries a top-level
or `metadata.negative_feedback` value.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from drift.evaluate import DriftInputError, evaluate
from drift.windows import BINARY, COLUMNS
from ingestion.decode import DecodeError, decode_message
from schemas.errors import FFError
from services import flagging

CALIBRATED_ROWS = 2000


class CheckError(FFError):
    """A file cannot be checked: unreadable, an invalid line, or a window drift cannot evaluate."""

    code, status = "drift_check_invalid", 422


def _negative(raw: dict[str, Any]) -> float:
    value = raw.pop("negative_feedback", None)
    if value is None and isinstance(raw.get("metadata"), dict):
        value = raw["metadata"].get("negative_feedback")
    return float(bool(value)) if value is not None else 0.0


def read_interactions(path: Path) -> tuple[list, list[float]]:
    """Validated interactions of a JSONL file and the negative-feedback flag of each."""
    items, negative = [], []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CheckError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise CheckError(f"{path}:{number}: not JSON", [{"loc": [str(path), number], "msg": str(exc)}]) from None
        flag = _negative(raw) if isinstance(raw, dict) else 0.0
        item = decode_message("interaction", json.dumps(raw).encode())
        if isinstance(item, DecodeError):
            raise CheckError(f"{path}:{number}: {item.error}",
                             [{"loc": [str(path), number], "msg": item.error, "type": item.reason}])
        items.append(item)
        negative.append(flag)
    if not items:
        raise CheckError(f"{path} holds no interactions")
    return items, negative


def descriptor_frame(items: list, negative: list[float]) -> pd.DataFrame:
    """The drift signal columns of a batch of interactions, computed as the ingest pipeline does."""
    columns = flagging.descriptor_columns(items)
    rows = []
    for item, flag in zip(items, negative):
        row = columns[item.event_id]
        values = {c: (flag if c == "negative_feedback" else row.get(c)) for c in COLUMNS}
        rows.append({c: math.nan if v is None else float(v) for c, v in values.items()})
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype="float64")
    for column in BINARY:
        if not frame[column].isna().any():
            frame[column] = frame[column].astype("int64")
    return frame


def check_files(reference: Path, current: Path) -> dict[str, Any]:
    """Evaluate `current` against `reference`; the JSON object `drift check` prints."""
    ref_items, ref_negative = read_interactions(reference)
    cur_items, cur_negative = read_interactions(current)
    ref_frame = descriptor_frame(ref_items, ref_negative)
    cur_frame = descriptor_frame(cur_items, cur_negative)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate(ref_frame, cur_frame)
    except DriftInputError as exc:
        raise CheckError(str(exc)) from None
    notes = []
    if min(len(ref_frame), len(cur_frame)) < CALIBRATED_ROWS:
        notes.append(f"windows under {CALIBRATED_ROWS} rows: the numeric (Wasserstein) threshold is calibrated for "
                     f"{CALIBRATED_ROWS}+ rows and may flag noise")
    keep = ("test", "score", "score_kind", "threshold", "drift_detected", "reference_mean", "current_mean",
            "n_reference", "n_current")
    return {
        "reference": {"file": str(reference), "rows": len(ref_frame)},
        "current": {"file": str(current), "rows": len(cur_frame)},
        "drift_detected": result.drift_detected,
        "drifted": result.drifted,
        "skipped": result.skipped,
        "signals": {name: {k: v for k, v in s.to_dict().items() if k in keep} for name, s in result.signals.items()},
        "notes": notes,
    }
