"""Validation rules. Level BASIC: per-class thresholds with context modifiers, temporal confirmation.

Each rule is a small object with a ``level``; the validator runs them in level order, so the higher
levels (zones, behaviour, ML ensemble) slot in beside these without changing the validator.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from surveillance_ray.config import ValidatorConfig
from surveillance_ray.messages import AlertLevel


@dataclass(frozen=True, slots=True)
class Observation:
    """One confirmed track in one frame, as the rules see it."""

    stream_id: str
    track_id: int
    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    frame_shape: tuple[int, int]  # (height, width)
    captured_at: float


@dataclass(frozen=True, slots=True)
class RuleResult:
    passed: bool
    reason: str


class Rule(Protocol):
    level: AlertLevel

    def check(self, obs: Observation) -> RuleResult: ...


class ClassThresholdRule:
    """Per-class confidence threshold, raised for small or border boxes, scaled by camera sensitivity."""

    level = AlertLevel.BASIC

    def __init__(self, config: ValidatorConfig, sensitivity: dict[str, float]) -> None:
        self._config = config
        self._sensitivity = sensitivity

    def threshold(self, obs: Observation) -> float:
        c = self._config
        base = c.class_thresholds.get(obs.class_name, c.default_threshold)
        h, w = obs.frame_shape
        x1, y1, x2, y2 = obs.xyxy
        area_frac = max(0.0, x2 - x1) * max(0.0, y2 - y1) / float(max(1, h * w))
        if area_frac < c.small_box_frac:
            base += c.small_box_penalty
        margin = c.edge_margin_frac * max(h, w)
        if x1 <= margin or y1 <= margin or x2 >= w - margin or y2 >= h - margin:
            base += c.edge_penalty
        return float(np.clip(base / self._sensitivity.get(obs.stream_id, 1.0), 0.0, 1.0))

    def check(self, obs: Observation) -> RuleResult:
        threshold = self.threshold(obs)
        if obs.confidence >= threshold:
            return RuleResult(True, f"{obs.class_name} {obs.confidence:.2f} >= {threshold:.2f}")
        return RuleResult(False, f"{obs.class_name} {obs.confidence:.2f} < {threshold:.2f}")


class TemporalConfirmation:
    """A track is confirmed once ``confirm_frames`` of its last ``confirm_window`` observations passed."""

    def __init__(self, config: ValidatorConfig) -> None:
        self.frames = config.confirm_frames
        self.window = config.confirm_window

    def new_history(self) -> deque[bool]:
        return deque(maxlen=self.window)

    def update(self, history: deque[bool], passed: bool) -> bool:
        history.append(passed)
        return sum(history) >= self.frames
