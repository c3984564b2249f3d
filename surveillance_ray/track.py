"""Per-stream multi-object tracking with ByteTrack from the ``trackers`` package."""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from surveillance_ray.config import TrackingConfig
from surveillance_ray.messages import Detections, Tracks


class StreamTracker:
    """One camera's ByteTrack; passes on confirmed tracks only (``tracker_id != -1``)."""

    def __init__(self, config: TrackingConfig, frame_rate: float) -> None:
        self._config = config
        self._frame_rate = frame_rate
        self._tracker = self._new()
        self._ids: set[int] = set()  # confirmed ids of the current session (ids restart after a reset)
        self._earlier_sessions = 0

    def _new(self) -> ByteTrackTracker:
        c = self._config
        return ByteTrackTracker(
            lost_track_buffer=c.lost_track_buffer, frame_rate=self._frame_rate,
            track_activation_threshold=c.track_activation_threshold,
            minimum_consecutive_frames=c.minimum_consecutive_frames,
            minimum_iou_threshold=c.minimum_iou_threshold, high_conf_det_threshold=c.high_conf_det_threshold,
        )

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Associate one frame's detections; ``timestamp`` (seconds) lets skipped frames count as time."""
        sv_dets = sv.Detections(xyxy=detections.xyxy.astype(np.float32).reshape(-1, 4),
                                confidence=detections.confidence, class_id=detections.class_id)
        out = self._tracker.update(sv_dets, timestamp=timestamp)
        if len(out) == 0 or out.tracker_id is None:
            return Tracks.empty()
        keep = out.tracker_id != -1
        tracks = Tracks(out.xyxy[keep].astype(np.float32), out.confidence[keep].astype(np.float32),
                        out.class_id[keep].astype(np.int32), out.tracker_id[keep].astype(np.int64))
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
