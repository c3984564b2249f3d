"""What the validator remembers of one track: recent observations, running statistics, zone dwell."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Observation:
    """One confirmed track in one frame, with the frame's context."""

    stream_id: str
    track_id: int
    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    frame_shape: tuple[int, int]  # (height, width)
    captured_at: float  # wall clock (schedules, display)
    t: float = 0.0  # the camera's own clock, monotonic over reconnects (durations, speeds, dwell)
    frame_id: int = 0
    luma: float = -1.0
    sharpness: float = -1.0
    detections: int = 0  # detections in the frame (crowding)
    appearance: np.ndarray | None = None  # colour descriptor (track.appearance)

    @property
    def height(self) -> float:
        return max(1e-6, self.xyxy[3] - self.xyxy[1])

    @property
    def width(self) -> float:
        return max(1e-6, self.xyxy[2] - self.xyxy[0])

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.xyxy
        return (x1 + x2) / 2, (y1 + y2) / 2

    def at_edge(self, margin_frac: float) -> bool:
        h, w = self.frame_shape
        margin = margin_frac * max(h, w)
        x1, y1, x2, y2 = self.xyxy
        return x1 <= margin or y1 <= margin or x2 >= w - margin or y2 >= h - margin


@dataclass
class TrackHistory:
    """One track of one camera epoch, as the rules see it."""

    stream_id: str
    epoch: int
    track_id: int
    class_id: int
    first_seen_at: float  # wall clock
    first_t: float  # camera clock
    recent: deque[Observation]
    basic: deque[bool]  # BASIC passed, per observation, over the persistence window
    last_seen_at: float = 0.0
    last_t: float = 0.0
    last_frame_id: int = 0
    observations: int = 0
    basic_passes: int = 0
    conf_sum: float = 0.0
    conf_sq: float = 0.0
    conf_min: float = 1.0
    conf_max: float = 0.0
    class_votes: Counter[tuple[int, str]] = field(default_factory=Counter)  # (class id, name) -> observations
    class_name: str = ""  # the class most of its observations have (a tracker's track may flicker)
    zone_since: dict[str, float] = field(default_factory=dict)  # zone -> when the track entered it
    alerted: set[str] = field(default_factory=set)  # alert keys raised (or suppressed) for this track
    first_looks: list[np.ndarray] = field(default_factory=list)  # its first colour descriptors
    alert_ids: list[str] = field(default_factory=list)  # its alerts (or those of the fragment it continues)
    stitched_from: int | None = None  # the track it continues
    stitched_to: int | None = None  # the track that continues it
    last_places: tuple[list, list] = field(default_factory=lambda: ([], []))  # last observation: zones, crossings
    opinion: float | None = None  # the second opinion's score, once it came
    opinion_asked_t: float | None = None  # camera clock when it was asked for
    opinion_asked_at: int = 0  # observations then
    opinion_early: bool = False  # asked before ADVANCED passed (a sparse camera): a "no" is asked again then
    opinion_pending: bool = False  # asked, neither answered nor skipped yet
    opinion_skipped: int = 0  # asks skipped (no detector time for them): each is asked again while the wait lasts
    opinion_skip_reason: str = ""
    fp_at: int = -1  # observations when the ensemble last judged it
    fp_probability: float = -1.0
    confirmed: bool = False  # track events: track_started was emitted
    last_event_at: float = 0.0
    reason: str = ""

    @classmethod
    def start(cls, obs: Observation, epoch: int, keep: int, window: int) -> "TrackHistory":
        return cls(obs.stream_id, epoch, obs.track_id, obs.class_id, obs.captured_at, obs.t,
                   deque(maxlen=keep), deque(maxlen=window))

    def add(self, obs: Observation, basic_passed: bool) -> None:
        self.recent.append(obs)
        self.basic.append(basic_passed)
        self.class_votes[(obs.class_id, obs.class_name)] += 1
        (self.class_id, self.class_name), _ = self.class_votes.most_common(1)[0]
        self.last_seen_at, self.last_t, self.last_frame_id = obs.captured_at, obs.t, obs.frame_id
        self.observations += 1
        self.basic_passes += basic_passed
        if obs.appearance is not None and len(self.first_looks) < 5:
            self.first_looks.append(obs.appearance)
        c = obs.confidence
        self.conf_sum += c
        self.conf_sq += c * c
        self.conf_min, self.conf_max = min(self.conf_min, c), max(self.conf_max, c)

    @property
    def last(self) -> Observation:
        return self.recent[-1]

    @property
    def class_share(self) -> float:
        """Share of the observations that have the track's class."""
        return self.class_votes[(self.class_id, self.class_name)] / max(1, self.observations)

    def median_score(self, last: int) -> float:
        scores = sorted(o.confidence for o in list(self.recent)[-last:])
        n = len(scores)
        return (scores[(n - 1) // 2] + scores[n // 2]) / 2 if n else 0.0

    @property
    def duration_s(self) -> float:
        return self.last_t - self.first_t

    @property
    def mean_confidence(self) -> float:
        return self.conf_sum / max(1, self.observations)

    def update_zones(self, inside: list[str], at: float) -> None:
        """Dwell bookkeeping: when the track entered each zone it is in now."""
        for name in list(self.zone_since):
            if name not in inside:
                del self.zone_since[name]
        for name in inside:
            self.zone_since.setdefault(name, at)

    def looks(self, first: bool) -> np.ndarray | None:
        """Mean colour descriptor of its first (or last) few observations, unit norm; None if unknown."""
        vectors = self.first_looks if first else [o.appearance for o in list(self.recent)[-5:]
                                                 if o.appearance is not None]
        if not vectors:
            return None
        mean = np.mean(vectors, axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else None

    def _span(self, span_s: float) -> tuple[Observation, Observation]:
        """The oldest observation within ``span_s`` seconds of the newest, and the newest."""
        last = self.recent[-1]
        first = last
        for obs in reversed(self.recent):
            if last.t - obs.t > span_s:
                break
            first = obs
        return first, last

    def velocity(self, span_s: float = 1.0) -> tuple[float, float]:
        """Centre velocity over about the last ``span_s`` seconds, pixels per second."""
        return self._motion(span_s)[:2]

    def speed(self, span_s: float = 1.0) -> float:
        """Centre speed over about the last ``span_s`` seconds, in the track's box heights per second."""
        vx, vy, height = self._motion(span_s)
        return (vx * vx + vy * vy) ** 0.5 / height

    def _motion(self, span_s: float) -> tuple[float, float, float]:
        """(vx, vy) in pixels per second over the span, and the mean box height at its ends."""
        first, last = self._span(span_s)
        dt = last.t - first.t
        height = (first.height + last.height) / 2
        if dt <= 0:
            return 0.0, 0.0, height
        (x0, y0), (x1, y1) = first.centre, last.centre
        return (x1 - x0) / dt, (y1 - y0) / dt, height
