"""A camera's scene as the validator sees it: zones and lines (supervision), schedules, perspective.

Zones and lines are configured in fractions of the frame and become supervision ``PolygonZone`` /
``LineZone`` objects in pixels once the camera's frame size is known. Line crossings are stateful per
track, so a camera's lines are rebuilt when its epoch changes (track ids restart).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import supervision as sv

from surveillance_ray.config import CameraConfig, LineConfig, ScheduleWindow, ValidatorConfig, ZoneConfig
from surveillance_ray.messages import TrackedFrame

ANCHOR = sv.Position.BOTTOM_CENTER  # where a person stands: zones and lines test this point
CROSSING_FRAMES = 2  # frames on the other side before a crossing counts (box jitter on the line)


def armed(schedule: list[ScheduleWindow], at: float, tz: ZoneInfo | None) -> bool:
    """Whether a weekly schedule (empty: always) is armed at wall-clock time ``at``."""
    if not schedule:
        return True
    now = dt.datetime.fromtimestamp(at, tz)
    minute, day = now.hour * 60 + now.minute, now.weekday()
    for window in schedule:
        start, end = window.minutes()
        days = {("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(d) for d in window.days}
        if start <= end:
            if day in days and start <= minute < end:
                return True
        elif (day in days and minute >= start) or ((day - 1) % 7 in days and minute < end):
            return True
    return False


@dataclass
class FrameScene:
    """Per track (by index in ``frame.tracks``): zones containing its anchor, line crossings."""

    zones: list[list[ZoneConfig]]
    crossings: list[list[tuple[LineConfig, str]]]  # (line, "in" | "out")


@dataclass
class PerspectiveModel:
    """Box height against the y of its bottom edge (both as fractions of the frame height), per class:
    h = a + b * y, refitted robustly as confirmed tracks add samples."""

    min_samples: int
    samples: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)  # class -> (y, h, track)
    fits: dict[int, tuple[float, float]] = field(default_factory=dict)
    _since_fit: dict[int, int] = field(default_factory=dict)

    def add(self, class_id: int, y: float, h: float, track: int) -> None:
        rows = self.samples.setdefault(class_id, [])
        if len(rows) >= 4000:
            del rows[::2]  # keep memory bounded, spread over time
        rows.append((y, h, track))
        self._since_fit[class_id] = self._since_fit.get(class_id, 0) + 1
        if len(rows) >= self.min_samples and len({r[2] for r in rows}) >= 3 and (
                class_id not in self.fits or self._since_fit[class_id] >= 20):
            self._fit(class_id)

    def _fit(self, class_id: int) -> None:
        data = np.asarray(self.samples[class_id], np.float64)
        y, h = data[:, 0], data[:, 1]
        keep = np.ones(len(y), bool)
        for _ in range(2):  # least squares, then again without the outliers it leaves
            b, a = np.polyfit(y[keep], h[keep], 1)
            resid = np.abs(h - (a + b * y))
            mad = np.median(resid[keep]) + 1e-6
            keep = resid <= 3.0 * 1.4826 * mad
            if keep.sum() < 3:
                break
        self.fits[class_id] = (float(a), float(b))
        self._since_fit[class_id] = 0

    def expected(self, class_id: int, y: float) -> float | None:
        if class_id not in self.fits:
            return None
        a, b = self.fits[class_id]
        return a + b * y


class CameraScene:
    """One camera: its configuration, zones and lines in pixels, and its perspective model."""

    def __init__(self, camera: CameraConfig, config: ValidatorConfig) -> None:
        self.camera = camera
        self.tz = ZoneInfo(config.timezone) if config.timezone else None
        self.perspective = PerspectiveModel(config.perspective_min_samples)
        self._shape: tuple[int, int] | None = None
        self._epoch: int | None = None
        self._zones: list[tuple[ZoneConfig, sv.PolygonZone]] = []
        self._lines: list[tuple[LineConfig, sv.LineZone]] = []

    def armed(self, schedule: list[ScheduleWindow], at: float) -> bool:
        return armed(schedule, at, self.tz)

    def observe(self, frame: TrackedFrame) -> FrameScene:
        """Zones and line crossings of this frame's tracks."""
        t = frame.tracks
        n = len(t)
        if not self.camera.zones and not self.camera.lines:
            return FrameScene([[] for _ in range(n)], [[] for _ in range(n)])
        h, w = frame.frame_shape
        if self._shape != (h, w):
            self._shape = (h, w)
            self._zones = [(z, sv.PolygonZone(np.round(np.asarray(z.polygon) * (w - 1, h - 1)).astype(np.int64),
                                              triggering_anchors=(ANCHOR,))) for z in self.camera.zones]
            self._epoch = None
        if self._epoch != frame.epoch:
            self._epoch = frame.epoch
            self._lines = [(ln, sv.LineZone(sv.Point(ln.start[0] * w, ln.start[1] * h),
                                            sv.Point(ln.end[0] * w, ln.end[1] * h), triggering_anchors=(ANCHOR,),
                                            minimum_crossing_threshold=CROSSING_FRAMES))
                           for ln in self.camera.lines]
        dets = sv.Detections(xyxy=t.xyxy.astype(np.float32).reshape(-1, 4), confidence=t.confidence,
                             class_id=t.class_id, tracker_id=t.track_id)
        zones: list[list[ZoneConfig]] = [[] for _ in range(n)]
        for zone, polygon in self._zones:
            if n:
                for i in np.flatnonzero(polygon.trigger(dets)):
                    zones[i].append(zone)
        crossings: list[list[tuple[LineConfig, str]]] = [[] for _ in range(n)]
        for line, counter in self._lines:
            if n:
                crossed_in, crossed_out = counter.trigger(dets)
                for i in np.flatnonzero(crossed_in):
                    crossings[i].append((line, "in"))
                for i in np.flatnonzero(crossed_out):
                    crossings[i].append((line, "out"))
        return FrameScene(zones, crossings)
