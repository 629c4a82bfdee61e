"""Wire contract (v1) of feedback on an interaction, of every kind the literature names."""

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeInt, model_validator

from schemas.common import SCHEMA_VERSION, Id, Metadata, Name, Text, Timestamped

Source = Literal["end_user", "sme", "ai_judge"]


class FeedbackBase(Timestamped):
    """Fields every feedback event carries."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: Id = Field(description="Idempotency key of this feedback event.")
    interaction_id: Id = Field(description="`event_id` of the interaction it is about (may arrive before it).")
    source: Source = "end_user"
    author_id: Id | None = None
    metadata: Metadata = {}


class Thumbs(FeedbackBase):
    """Thumbs up / down: the simplest rating."""

    kind: Literal["thumbs"]
    value: Literal["up", "down"]


class Rating(FeedbackBase):
    """A score on a scale, optionally for one quality dimension (helpfulness, harmlessness, ...)."""

    kind: Literal["rating"]
    score: float
    scale_min: float = 1
    scale_max: float = 5
    dimension: Name | None = None

    @model_validator(mode="after")
    def _on_scale(self) -> "Rating":
        if not self.scale_min < self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        if not self.scale_min <= self.score <= self.scale_max:
            raise ValueError("score must lie within [scale_min, scale_max]")
        return self


class Ranking(FeedbackBase):
    """A ranking of candidate responses, best first."""

    kind: Literal["ranking"]
    candidates: list[Text] = Field(min_length=2, max_length=20)
    order: list[NonNegativeInt] = Field(description="Indexes into `candidates`, best first.")

    @model_validator(mode="after")
    def _is_permutation(self) -> "Ranking":
        if sorted(self.order) != list(range(len(self.candidates))):
            raise ValueError("order must be a permutation of the candidate indexes")
        return self


class Edit(FeedbackBase):
    """The user's edit of the response: the edited text is the better response."""

    kind: Literal["edit"]
    edited_response: Text


class Demonstration(FeedbackBase):
    """The ideal response written by a person."""

    kind: Literal["demonstration"]
    ideal_response: Text


class Critique(FeedbackBase):
    """A natural-language critique of the response."""

    kind: Literal["critique"]
    text: Annotated[str, Field(min_length=1, max_length=20_000)]


class Regenerate(FeedbackBase):
    """The user asked for another response: an implicit negative signal."""

    kind: Literal["regenerate"]


Feedback = Annotated[
    Union[Thumbs, Rating, Ranking, Edit, Demonstration, Critique, Regenerate],
    Field(discriminator="kind"),
]
FEEDBACK_KINDS = ("thumbs", "rating", "ranking", "edit", "demonstration", "critique", "regenerate")


def is_negative(fb: FeedbackBase) -> bool:
    """Whether the feedback says the response was bad (thumbs down, low rating, edit, regenerate)."""
    if isinstance(fb, Thumbs):
        return fb.value == "down"
    if isinstance(fb, Rating):
        return (fb.score - fb.scale_min) / (fb.scale_max - fb.scale_min) < 0.5
    return isinstance(fb, (Edit, Regenerate))
