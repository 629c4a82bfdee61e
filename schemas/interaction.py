"""Wire contract (v1) of one LLM interaction as apps log it: over HTTP and as a Kafka message value."""

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, model_validator

from schemas.common import SCHEMA_VERSION, Id, Metadata, Name, Text, Timestamped, WireModel


class Message(WireModel):
    """One chat message of the conversation that led to the response."""

    role: Literal["system", "user", "assistant", "tool"]
    content: Text


class ModelRef(WireModel):
    """Which model produced the response."""

    name: Name
    version: Name


class DecoderSettings(WireModel):
    """Sampling settings the response was decoded with."""

    temperature: NonNegativeFloat | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: NonNegativeInt | None = None
    max_tokens: NonNegativeInt | None = None
    seed: int | None = None
    stop: list[Name] | None = Field(default=None, max_length=16)


class TokenCounts(WireModel):
    """Token usage as the serving stack reported it."""

    prompt: NonNegativeInt | None = None
    completion: NonNegativeInt | None = None


class Consent(WireModel):
    """What the end user agreed to; without `training` an interaction never enters an export."""

    training: bool = False
    analytics: bool = True


class Verifier(WireModel):
    """Result of an automatic verifier (unit tests, a fact checker) on the response, when there is one."""

    name: Name
    passed: bool
    detail: Text | None = None


# A reward model's score: finite and bounded (JSON would otherwise admit Infinity, and 1e154 overflows the spread
# of the scores that the pipeline computes from them).
RewardScore = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


class Interaction(Timestamped):
    """One model response in production with everything needed to judge and train on it."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: Id = Field(description="Idempotency key: the same id is stored once.")
    app: Name
    conversation_id: Id
    turn: NonNegativeInt = 0
    messages: list[Message] | None = Field(default=None, max_length=500)
    prompt: Text | None = None
    response: Text
    model: ModelRef
    policy_version: Name | None = None
    prompt_template_id: Name | None = None
    decoding: DecoderSettings | None = None
    latency_ms: NonNegativeFloat | None = None
    tokens: TokenCounts | None = None
    consent: Consent = Consent()
    reward_scores: dict[str, RewardScore] | None = Field(default=None, max_length=20)
    verifier: Verifier | None = None
    metadata: Metadata = {}

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> "Interaction":
        if self.prompt is None and not self.messages:
            raise ValueError("one of `prompt` or `messages` is required")
        return self

    def prompt_text(self) -> str:
        """The prompt as plain text: `prompt`, else the last user message."""
        if self.prompt is not None:
            return self.prompt
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return self.messages[-1].content
