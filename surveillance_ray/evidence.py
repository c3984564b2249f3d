"""What an escalated alert carries to the VLM: a crop of its object, keyframes of the camera (faces
blurred when privacy is on), the zone, the dwell time and a short history. Built by the ingest
actor, which holds the camera's recent full-resolution frames."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from surveillance_ray.annotate import jpeg
from surveillance_ray.config import PERSON
from surveillance_ray.opinion import crop_around


@dataclass(frozen=True, slots=True)
class EscalationRequest:
    """The validator asks for an alert's review (from the validator, answered by the ingest actor)."""

    alert: dict[str, Any]  # the alert's fields the prompt uses (Alert.model_dump(mode="json"))
    stream_id: str
    xyxy: tuple[float, float, float, float]
    dwell_s: float | None
    history: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One escalation, ready for the VLM (images JPEG-encoded)."""

    request: EscalationRequest
    mode: str
    crop: bytes
    frames: tuple[bytes, ...]  # oldest first
    queued_at: float = field(default_factory=time.time)

    @property
    def alert_id(self) -> str:
        return str(self.request.alert["id"])


@dataclass(slots=True)
class Keyframe:
    t: float
    image: np.ndarray  # full resolution, BGR
    people: np.ndarray  # (N, 4) person boxes of the frame (privacy)


class Keyframes:
    """A camera's recent full-resolution frames, one per ``every_s`` over the last ``keep`` samples."""

    def __init__(self, keep: int = 5, every_s: float = 1.0) -> None:
        self._frames: deque[Keyframe] = deque(maxlen=keep)
        self._every_s = every_s
        self.latest: Keyframe | None = None

    def add(self, t: float, image: np.ndarray, people: np.ndarray) -> None:
        self.latest = Keyframe(t, image, people)
        if not self._frames or t - self._frames[-1].t >= self._every_s or t < self._frames[-1].t:
            self._frames.append(self.latest)

    def pick(self, n: int) -> list[Keyframe]:
        """``n`` frames spread over what is kept, the latest last."""
        frames = list(self._frames)
        if self.latest is not None and (not frames or frames[-1] is not self.latest):
            frames.append(self.latest)
        if len(frames) <= n:
            return frames
        idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
        return [frames[i] for i in idx]


def build_evidence(request: EscalationRequest, keyframes: Keyframes, mode: str, image_size: int, count: int,
                   blur: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> Evidence | None:
    """The crop (from the latest frame) and ``count`` keyframes at ``image_size``, each through ``blur``
    (image, person boxes) → image when given (privacy: ``faces.FaceBlur.apply``); None without frames."""
    frames = keyframes.pick(count)
    if not frames:
        return None

    def shown(k: Keyframe) -> np.ndarray:
        return blur(k.image, k.people) if blur is not None else k.image

    latest = shown(frames[-1])
    crop, _ = crop_around(latest, request.xyxy)
    return Evidence(request, mode, jpeg(crop, 85, image_size),
                    tuple(jpeg(latest if k is frames[-1] else shown(k), 85, image_size) for k in frames))


def people_boxes(xyxy: np.ndarray, class_id: np.ndarray) -> np.ndarray:
    return np.asarray(xyxy, np.float32).reshape(-1, 4)[np.asarray(class_id) == PERSON]
