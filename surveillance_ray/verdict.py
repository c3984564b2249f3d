"""What the VLM says about an escalated alert (``Verdict``, schema-enforced) and what lands on the alert
(``Review``)."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class ThreatLevel(str, enum.Enum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Action(str, enum.Enum):
    IGNORE = "ignore"
    MONITOR = "monitor"
    INVESTIGATE = "investigate"
    DISPATCH = "dispatch"
    CALL_POLICE = "call_police"


class Mode(str, enum.Enum):
    """How hard the VLM looks: image size, keyframes, prompt depth, tokens, latency budget."""

    FAST = "FAST"
    BALANCED = "BALANCED"
    THOROUGH = "THOROUGH"


class Verdict(BaseModel):
    """The VLM's answer, as JSON matching this model's schema (``response_format: json_schema``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threat_level: ThreatLevel
    is_false_positive: bool
    description: str = Field(max_length=200)
    confidence: float = Field(ge=0.0, le=1.0)
    recommended_action: Action


def verdict_schema() -> dict:
    """The JSON schema sent to the engine (xgrammar: no ``pattern``; every field required)."""
    schema = Verdict.model_json_schema()
    schema["required"] = list(Verdict.model_fields)
    return schema


class ReviewStatus(str, enum.Enum):
    CONFIRMED = "confirmed"  # the VLM says it is real
    DISMISSED = "dismissed"  # the VLM says it is a false positive
    UNREVIEWED = "unreviewed"  # no valid answer: the VLM was down, slow, invalid, or the queue overflowed


class Review(BaseModel):
    """The outcome of one escalation, written onto its alert."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    camera: str
    status: ReviewStatus
    mode: Mode
    verdict: Verdict | None = None
    endpoint: str | None = Field(None, description="the endpoint that answered")
    attempts: int = 0
    latency_s: float | None = Field(None, description="from queueing to the validated answer")
    answer_s: float | None = Field(None, description="the answering attempt alone (what the mode's budget limits)")
    reviewed_at: float
    error: str = ""

    @classmethod
    def of(cls, alert_id: str, camera: str, mode: Mode, verdict: Verdict, **kw) -> "Review":
        status = ReviewStatus.DISMISSED if verdict.is_false_positive else ReviewStatus.CONFIRMED
        return cls(alert_id=alert_id, camera=camera, status=status, mode=mode, verdict=verdict, **kw)
