"""Per-stream multi-object tracking (BoT-SORT, ByteTrack or C-BIoU) from the ``trackers`` package."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from trackers import BoTSORTTracker, ByteTrackTracker, CBIoUTracker

from surveillance_ray.config import TrackingConfig
from surveillance_ray.messages import Detections, Frame, TrackedFrame, Tracks


class StreamTracker:
    """One camera's tracker; passes on confirmed tracks only (``tracker_id != -1``)."""

    def __init__(self, config: TrackingConfig, frame_rate: float) -> None:
        self._config = config
        self._frame_rate = frame_rate
        self._tracker = self._new()
        self._ids: set[int] = set()  # confirmed ids of the current session (ids restart after a reset)
        self._earlier_sessions = 0

    def _new(self) -> BoTSORTTracker | ByteTrackTracker | CBIoUTracker:
        c = self._config
        common = {"lost_track_buffer": c.lost_track_buffer, "frame_rate": self._frame_rate,
                  "track_activation_threshold": c.track_activation_threshold,
                  "minimum_consecutive_frames": c.minimum_consecutive_frames,
                  "high_conf_det_threshold": c.high_conf_det_threshold}
        if c.tracker == "botsort":  # association thresholds on IoU x score: its own defaults
            # a track on a session's first frame waits its minimum_consecutive_frames like any other
            return BoTSORTTracker(enable_cmc=False, instant_first_frame_activation=False, **common)
        if c.tracker == "cbiou":  # its IoU thresholds apply to the grown boxes: its own defaults
            return CBIoUTracker(**common)
        return ByteTrackTracker(minimum_iou_threshold=c.minimum_iou_threshold, **common)

    def update(self, detections: Detections, timestamp: float, image: np.ndarray | None = None,
               scale: float = 1.0) -> Tracks:
        """Associate one frame's detections; ``timestamp`` (seconds) lets skipped frames count as time.
        With ``image`` (the analysed image, ``scale`` x the frame), each track gets its ``appearance``."""
        sv_dets = sv.Detections(xyxy=detections.xyxy.astype(np.float32).reshape(-1, 4),
                                confidence=detections.confidence, class_id=detections.class_id)
        out = self._tracker.update(sv_dets, timestamp=timestamp)
        if len(out) == 0 or out.tracker_id is None:
            return Tracks.empty()
        keep = out.tracker_id != -1
        xyxy = out.xyxy[keep].astype(np.float32)
        tracks = Tracks(xyxy, out.confidence[keep].astype(np.float32), out.class_id[keep].astype(np.int32),
                        out.tracker_id[keep].astype(np.int64),
                        appearance(image, xyxy * scale) if image is not None else None)
        self._ids.update(int(i) for i in tracks.track_id)
        return tracks

    @property
    def tracks_seen(self) -> int:
        """Distinct confirmed tracks over all sessions."""
        return self._earlier_sessions + len(self._ids)

    def reset(self) -> None:
        """Forget all tracks (after a reconnect or a loop: the scene jumped)."""
        self._earlier_sessions += len(self._ids)
        self._ids = set()
        self._tracker = self._new()


def track_frame(tracker: StreamTracker, frame: Frame, detections: Detections) -> TrackedFrame:
    """One analysed frame through the camera's tracker (``detections`` in the analysed image's pixels):
    what the validator gets, in the frame's own pixels."""
    if frame.scale != 1.0:
        detections = detections.scaled(1.0 / frame.scale)
    tracks = tracker.update(detections, timestamp=frame.media_time, image=frame.image, scale=frame.scale)
    return TrackedFrame(frame.stream_id, frame.frame_id, frame.source_index, frame.captured_at, frame.epoch,
                        frame.original_shape, detections, tracks, frame.media_time, frame.luma, frame.sharpness)


APPEARANCE_BINS = (8, 3)  # hue x saturation
APPEARANCE_DIM = APPEARANCE_BINS[0] * APPEARANCE_BINS[1]


def appearance(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """A colour descriptor per box of ``image`` (BGR, boxes in its pixels): the square root of the
    normalised hue x saturation histogram of the box's central part, (N, 24) float32 with unit norm, so
    that the dot product of two is their Bhattacharyya coefficient (1: the same colours)."""
    out = np.zeros((len(xyxy), APPEARANCE_DIM), np.float32)
    h, w = image.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        # the central 60 % x 80 %: less background at the box's sides and top/bottom
        dx, dy = (x2 - x1) * 0.2, (y2 - y1) * 0.1
        a, b = int(max(0, x1 + dx)), int(min(w, x2 - dx))
        c, d = int(max(0, y1 + dy)), int(min(h, y2 - dy))
        if b - a < 2 or d - c < 2:
            continue
        hsv = cv2.cvtColor(image[c:d, a:b], cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, list(APPEARANCE_BINS), [0, 180, 0, 256]).ravel()
        total = hist.sum()
        if total > 0:
            out[i] = np.sqrt(hist / total)
    return out
