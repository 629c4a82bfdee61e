"""Errors of the review queue, each with a stable code and the HTTP status the one error handler renders."""

from schemas.errors import FFError


class SessionCapReached(FFError):
    """The reviewer has reviewed for the session cap without a break (fatigue guard)."""

    code, status = "session_cap_reached", 429


class LeaseLost(FFError):
    """The task is not leased to this reviewer (released, or expired and taken by someone else)."""

    code, status = "lease_lost", 409


class AlreadySubmitted(FFError):
    """This task was submitted already."""

    code, status = "already_submitted", 409


class RubricMismatch(FFError):
    """The submission names another rubric version than the item is reviewed under."""

    code, status = "rubric_mismatch", 409


class NotInAdjudication(FFError):
    """The badcase is not waiting for a lead's decision."""

    code, status = "not_in_adjudication", 409


class NotALead(FFError):
    """Only a lead reviewer may do this."""

    code, status = "not_a_lead", 403
