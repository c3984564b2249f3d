"""Typed records passed between processes on the hot path (frozen dataclasses of numpy arrays)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


class AlertLevel(enum.IntEnum):
    """Validation levels, in escalating order."""

    BASIC = 1
    INTERMEDIATE = 2
    ADVANCED = 3
    CRITICAL = 4


class EventKind(str, enum.Enum):
    TRACK_STARTED = "track_started"
    TRACK_PERSISTED = "track_persisted"
    TRACK_ENDED = "track_ended"
    ALERT_REVIEWED = "alert_reviewed"  # the VLM's review of an escalated alert (escalate.py)
    ALERT_ACKNOWLEDGED = "alert_acknowledged"  # an operator acknowledged an alert (the HTTP API)


class StreamState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"  # source ended (file) or stop requested
    FAILED = "failed"  # gave up: unreadable source, reconnect budget spent, actor died


@dataclass(frozen=True, slots=True)
class Frame:
    """A captured frame, already downscaled so its long side is at most the model size."""

    stream_id: str
    frame_id: int  # per stream, increasing, unique across reconnects and loops
    source_index: int  # index of the frame in its source since the last (re)open
    captured_at: float  # wall clock (time.time()) when the frame was read
    epoch: int  # bumped on every reconnect/loop: the tracker resets when it changes
    media_time: float  # seconds on the source's clock (decoded timestamps; wall clock for live sources)
    image: np.ndarray  # HxWx3 uint8 BGR
    scale: float  # image = original * scale (<= 1)
    original_shape: tuple[int, int]  # (height, width) before scaling
    luma: float = -1.0  # see image_quality (capture.py)
    sharpness: float = -1.0
    original: np.ndarray | None = None  # the full-resolution frame, kept for second opinions (may be ``image``)


@dataclass(frozen=True, slots=True)
class Detections:
    """Detector output for one frame, in the coordinates of the image it was given."""

    xyxy: np.ndarray  # (N, 4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.confidence)

    def scaled(self, factor: float) -> "Detections":
        return Detections((self.xyxy * factor).astype(np.float32), self.confidence, self.class_id)


@dataclass(frozen=True, slots=True)
class AuxAnswer:
    """The detector's answer to one auxiliary image (a second-opinion crop, an upload): its detections, or
    why it was skipped (``scheduler.SKIP_*``: no detector time within its wait, the queue full)."""

    detections: Detections | None
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class Tracks:
    """Confirmed tracks of one frame, in original frame coordinates."""

    xyxy: np.ndarray  # (N, 4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    track_id: np.ndarray  # (N,) int64
    appearance: np.ndarray | None = None  # (N, D) float32 colour descriptors (track.appearance), or None

    @classmethod
    def empty(cls) -> "Tracks":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.track_id)


@dataclass(frozen=True, slots=True)
class TrackedFrame:
    """What a camera sends to the validator for each analysed frame."""

    stream_id: str
    frame_id: int
    source_index: int
    captured_at: float
    epoch: int
    frame_shape: tuple[int, int]  # (height, width), original
    detections: Detections  # after per-class thresholds, original coordinates
    tracks: Tracks
    media_time: float = -1.0  # seconds on the source's clock (-1: unknown, captured_at stands in)
    luma: float = -1.0  # mean grey level of the analysed image, 0-255 (-1: not measured)
    sharpness: float = -1.0  # variance of its Laplacian (image quality; -1: not measured)
    nominal_fps: float = -1.0  # the camera's own rate (configured, else its source's; -1: not known)

    def to_log(self) -> dict[str, Any]:
        """A JSON line of the track log; ``from_log`` reads it back for replay."""
        d, t = self.detections, self.tracks
        return {
            "stream_id": self.stream_id, "frame_id": self.frame_id, "source_index": self.source_index,
            "captured_at": self.captured_at, "epoch": self.epoch, "frame_shape": list(self.frame_shape),
            "detections": [[*map(_r, box), _r(c), int(k)] for box, c, k in zip(d.xyxy, d.confidence, d.class_id)],
            "tracks": [[*map(_r, box), _r(c), int(k), int(i)]
                       for box, c, k, i in zip(t.xyxy, t.confidence, t.class_id, t.track_id)],
            "appearance": None if t.appearance is None else np.round(t.appearance, 2).tolist(),
            "media_time": round(self.media_time, 4), "luma": round(self.luma, 2),
            "sharpness": round(self.sharpness, 2), "nominal_fps": round(self.nominal_fps, 3),
        }

    @classmethod
    def from_log(cls, row: dict[str, Any]) -> "TrackedFrame":
        dets = np.asarray(row["detections"], np.float64).reshape(-1, 6)
        trks = np.asarray(row["tracks"], np.float64).reshape(-1, 7)
        looks = row.get("appearance")
        return cls(
            stream_id=row["stream_id"], frame_id=row["frame_id"], source_index=row["source_index"],
            captured_at=row["captured_at"], epoch=row["epoch"], frame_shape=tuple(row["frame_shape"]),
            detections=Detections(dets[:, :4].astype(np.float32), dets[:, 4].astype(np.float32),
                                  dets[:, 5].astype(np.int32)),
            tracks=Tracks(trks[:, :4].astype(np.float32), trks[:, 4].astype(np.float32),
                          trks[:, 5].astype(np.int32), trks[:, 6].astype(np.int64),
                          None if looks is None else np.asarray(looks, np.float32).reshape(len(trks), -1)
                          if len(trks) else np.zeros((0, 0), np.float32)),
            media_time=row.get("media_time", -1.0), luma=row.get("luma", -1.0),
            sharpness=row.get("sharpness", -1.0), nominal_fps=row.get("nominal_fps", -1.0),
        )


def _r(x: float) -> float:
    return round(float(x), 4)


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event about one track."""

    kind: EventKind
    level: AlertLevel
    stream_id: str
    track_id: int
    epoch: int
    class_id: int
    class_name: str
    frame_id: int
    captured_at: float
    confidence: float
    xyxy: tuple[float, float, float, float]
    first_seen_at: float
    duration_s: float
    observations: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["level"] = self.level.name
        return d


@dataclass(frozen=True, slots=True)
class OpinionRequest:
    """The validator asks for a second opinion on a track's box (original frame coordinates)."""

    stream_id: str
    epoch: int
    track_id: int
    class_id: int
    xyxy: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class OpinionAnswer:
    """The answer to an ``OpinionRequest``: the crop's agreement score, or None and why it was skipped."""

    stream_id: str
    epoch: int
    track_id: int
    score: float | None
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """An alert was stored: the ingest actor draws its frame and sends the JPEG back (``Validator.snapshot``)."""

    alert_id: str
    stream_id: str
    track_id: int
    xyxy: tuple[float, float, float, float]
    label: str


@dataclass(frozen=True, slots=True)
class Validated:
    """The validator's reply for one frame."""

    validated_at: float
    events: tuple[Event, ...] = field(default_factory=tuple)
    requests: tuple[OpinionRequest, ...] = ()
    escalations: tuple[Any, ...] = ()  # evidence.EscalationRequest: alerts for the VLM
    snapshots: tuple[SnapshotRequest, ...] = ()
