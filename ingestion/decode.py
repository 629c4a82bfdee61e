"""Decode and validate raw bytes (an HTTP body or a Kafka message value) against the wire contracts."""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from schemas.errors import InvalidInput, MalformedJSON, PayloadTooLarge
from schemas.feedback import Feedback
from schemas.interaction import Interaction

INTERACTION = TypeAdapter(Interaction)
FEEDBACK = TypeAdapter(Feedback)
_LISTS = {
    "interaction": TypeAdapter(list[Interaction]),
    "feedback": TypeAdapter(list[Annotated[Feedback, Field()]]),
}
_ONES = {"interaction": INTERACTION, "feedback": FEEDBACK}


@dataclass(frozen=True)
class DecodeError:
    """Why one message could not be decoded: a stable reason code and the message."""

    reason: str  # malformed_json | validation_error
    error: str


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [p for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)[:50]
    ]


def _is_json_error(exc: ValidationError) -> bool:
    return any(e["type"] == "json_invalid" for e in exc.errors(include_url=False))


_NUL = b"\\u0000"  # how JSON spells a NUL character inside a string


def _nul_path(value: Any, path: tuple = ()) -> tuple | None:
    """Where a NUL character sits in decoded JSON (PostgreSQL text and jsonb cannot hold one), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        if isinstance(k, str) and "\x00" in k:
            return (*path, k)
        found = _nul_path(v, (*path, k))
        if found is not None:
            return found
    return None


def _nul_error(body: bytes) -> list[dict[str, Any]] | None:
    """The error details when a body holds a NUL character in any string (a cheap byte search first)."""
    if _NUL not in body:
        return None
    found = _nul_path(json.loads(body))
    if found is None:
        return None
    return [{"loc": list(found), "msg": "text cannot contain the NUL character (\\u0000)", "type": "string_nul"}]


def decode_batch(kind: str, body: bytes, max_items: int) -> list:
    """Validate an HTTP body holding one object or a JSON array of objects; raise the matching domain error."""
    is_list = body.lstrip()[:1] == b"["
    try:
        if is_list:
            items = _LISTS[kind].validate_json(body)
        else:
            items = [_ONES[kind].validate_json(body)]
    except ValidationError as exc:
        if _is_json_error(exc):
            raise MalformedJSON("request body is not valid JSON", _details(exc)) from None
        raise InvalidInput(f"the {kind} payload does not match the contract", _details(exc)) from None
    nul = _nul_error(body)
    if nul:
        raise InvalidInput(f"the {kind} payload does not match the contract", nul)
    if len(items) > max_items:
        raise PayloadTooLarge(f"a batch holds at most {max_items} items, got {len(items)}")
    if not items:
        raise InvalidInput("the batch is empty")
    return items


def decode_message(kind: str, value: bytes | None) -> Any | DecodeError:
    """Validate one Kafka message value; a bad one yields a `DecodeError` instead of raising."""
    if value is None:
        return DecodeError("malformed_json", "message has no value (tombstone)")
    try:
        item = _ONES[kind].validate_json(value)
    except ValidationError as exc:
        if _is_json_error(exc):
            return DecodeError("malformed_json", str(exc.errors(include_url=False)[0]["msg"]))
        return DecodeError("validation_error", "; ".join(
            f"{'.'.join(map(str, d['loc'])) or '<root>'}: {d['msg']}" for d in _details(exc)[:5]))
    nul = _nul_error(value)
    if nul:
        return DecodeError("validation_error", f"{'.'.join(map(str, nul[0]['loc']))}: {nul[0]['msg']}")
    return item
