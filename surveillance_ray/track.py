"""Per-stream multi-object tracking (BoT-SORT, ByteTrack or C-BIoU) from the ``trackers`` package."""

from __future__ import annotations

import statistics
from collections import deque
from typing import Callable

import cv2
import numpy as np
import supervision as sv
from trackers import BoTSORTTracker, ByteTrackTracker, CBIoUTracker
from trackers.utils.iou import BaseIoU

from surveillance_ray.config import TrackingConfig
from surveillance_ray.messages import Detections, Frame, TrackedFrame, Tracks


TRACKER_REVISION = 4  # in track-log cache keys: bumped when tracking changes for the same settings
# A lost track is kept at least this many of the camera's typical frame gaps (the median of its last
# GAPS_KEPT: the rate it is analysed at, which falls below its own when the pipeline is behind). With 1 s
# (30 frames at 30 fps) a 1-fps camera lost every track at each frame a hair over 1 s after the last.
# Measured at 1 fps: keeping tracks through 1-3 missed frames more lets them take other people's
# detections (SIwR people alerted 21 -> 19-20, PETS09-S2L1 at 1 fps 9 -> 7-8 of 10).
SLOW_LOST_GAPS = 1.5
GAPS_KEPT = 9


class StreamTracker:
    """One camera's tracker; passes on confirmed tracks only (``tracker_id != -1``).

    Frames at least ``sparse_after_s`` apart (a slow camera) are matched by distance weighed by colours, and
    a track is confirmed at its first sighting: waiting for a second match would cost a whole frame gap,
    and the validator's persistence rule does that confirming for alerts."""

    def __init__(self, config: TrackingConfig, frame_rate: float) -> None:
        self._config = config
        self._frame_rate = frame_rate
        self._start()
        self._ids: set[int] = set()  # confirmed ids of the current session (ids restart after a reset)
        self._earlier_sessions = 0

    def _start(self) -> None:
        """A fresh tracker, with the similarity each of its association stages uses by default (overlap)."""
        self._tracker = self._new()
        self._stages = ("iou_first", "iou_second") if isinstance(self._tracker, CBIoUTracker) else ("iou",)
        self._overlap = tuple(getattr(self._tracker, stage) for stage in self._stages)
        self._last_timestamp: float | None = None
        self._gaps: deque[float] = deque(maxlen=GAPS_KEPT)
        self._looks: dict[int, np.ndarray] = {}  # track id -> its latest colours (appearance)
        self._detection_looks: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 4)), np.zeros((0, APPEARANCE_DIM)))

    def _new(self) -> BoTSORTTracker | ByteTrackTracker | CBIoUTracker:
        c = self._config
        common = {"lost_track_buffer": c.lost_track_buffer, "frame_rate": self._frame_rate,
                  "track_activation_threshold": c.track_activation_threshold,
                  "minimum_consecutive_frames": c.minimum_consecutive_frames,
                  "high_conf_det_threshold": c.high_conf_det_threshold}
        # a track on a session's first frame waits its minimum_consecutive_frames like any other
        if c.tracker == "botsort":  # association thresholds on IoU x score: its own defaults
            return BoTSORTTracker(enable_cmc=False, instant_first_frame_activation=False, **common)
        if c.tracker == "cbiou":  # its IoU thresholds apply to the grown boxes: its own defaults
            return CBIoUTracker(instant_first_frame_activation=False, **common)
        return ByteTrackTracker(minimum_iou_threshold=c.minimum_iou_threshold, **common)

    def update(self, detections: Detections, timestamp: float, image: np.ndarray | None = None,
               scale: float = 1.0) -> Tracks:
        """Associate one frame's detections; ``timestamp`` (seconds) lets skipped frames count as time.
        With ``image`` (the analysed image, ``scale`` x the frame), each track gets its ``appearance``."""
        sv_dets = sv.Detections(xyxy=detections.xyxy.astype(np.float32).reshape(-1, 4),
                                confidence=detections.confidence, class_id=detections.class_id)
        nominal = 1.0 / max(self._frame_rate, 1e-6)  # the gap the camera's own rate promises
        # a session's first frame: the camera's own rate says how far apart its frames will be
        gap = nominal if self._last_timestamp is None else timestamp - self._last_timestamp
        if self._last_timestamp is not None and gap > 0:
            self._gaps.append(gap)
        self._last_timestamp = timestamp
        c = self._config
        # the tracker keeps a lost track lost_track_buffer / 30 s from its last match, and prunes before
        # matching: that must outlast a typical frame gap and its jitter, at whatever rate the camera is
        # analysed (one long stall does not move the median: tracks do not outlive a frozen camera)
        typical = statistics.median(self._gaps) if self._gaps else nominal
        self._tracker.maximum_time_without_update = max(c.lost_track_buffer / 30.0, SLOW_LOST_GAPS * typical)
        # its motion model steps in analysed frames too (trackers has no setter for its reference rate): a
        # camera behind its own rate then tracks like one configured at the rate it gets
        self._tracker._frame_rate = 1.0 / typical
        sparse = c.sparse_after_s > 0 and gap >= c.sparse_after_s
        colour = None
        if sparse and image is not None and c.sparse_colour_power > 0 and len(sv_dets):
            self._detection_looks = (sv_dets.xyxy.copy(), appearance(image, sv_dets.xyxy * scale))
            colour = self._colour
        self._set_metrics(CentreReach(c.sparse_reach + c.sparse_speed * gap, colour, c.sparse_colour_power)
                          if sparse else None)
        out = self._tracker.update(sv_dets, timestamp=timestamp)
        if len(out) == 0 or out.tracker_id is None:
            return Tracks.empty()
        if sparse:
            self._confirm_new(out)
        keep = out.tracker_id != -1
        xyxy = out.xyxy[keep].astype(np.float32)
        tracks = Tracks(xyxy, out.confidence[keep].astype(np.float32), out.class_id[keep].astype(np.int32),
                        out.tracker_id[keep].astype(np.int64),
                        appearance(image, xyxy * scale) if image is not None else None)
        self._ids.update(int(i) for i in tracks.track_id)
        if tracks.appearance is not None:  # each live track's latest colours, for the next sparse frame
            alive = {t.tracker_id for t in self._tracker.tracks}
            self._looks = {i: look for i, look in self._looks.items() if i in alive}
            self._looks.update(zip(tracks.track_id.tolist(), tracks.appearance))
        return tracks

    def _colour(self, track_boxes: np.ndarray, detection_boxes: np.ndarray) -> np.ndarray:
        """Colour similarity (Bhattacharyya) of each track's latest colours and each detection's; 1 where a
        track's are unknown. The tracker hands boxes only: a track is its tracklet's predicted box, a
        detection its own box, both looked up exactly."""
        out = np.ones((len(track_boxes), len(detection_boxes)), np.float32)
        boxes, looks = self._detection_looks
        columns = [int(np.argmin(np.abs(boxes - b).max(axis=1))) for b in detection_boxes]
        predicted = [(t.tracker_id, t.get_state_bbox()) for t in self._tracker.tracks]
        for row, box in enumerate(track_boxes):
            track_id = next((i for i, p in predicted if np.abs(p - box).max() < 1e-3), -1)
            look = self._looks.get(int(track_id))
            if look is not None:
                out[row] = np.clip(looks[columns] @ look, 0, 1)
        return out

    def _confirm_new(self, out: sv.Detections) -> None:
        """The tracks spawned on this frame get their ids now (``out``'s rows too)."""
        waiting = np.flatnonzero(out.tracker_id == -1)
        for track in self._tracker.tracks:
            if track.tracker_id != -1 or not len(waiting):
                continue
            same = np.abs(out.xyxy[waiting] - track.get_state_bbox()).max(axis=1) < 0.01
            if same.any():  # a new track's state is its detection's box
                row = waiting[np.argmax(same)]
                track.tracker_id = self._tracker._allocate_tracker_id()  # what the tracker does on a match
                out.tracker_id[row] = track.tracker_id
                waiting = waiting[waiting != row]

    def _set_metrics(self, metric: BaseIoU | None) -> None:
        """``metric`` for every association stage this frame; None: the tracker's own overlap."""
        for stage, default in zip(self._stages, self._overlap):
            setattr(self._tracker, stage, default if metric is None else metric)

    @property
    def frame_rate(self) -> float:
        """The camera's own rate (configured, else its source's): what it was made with."""
        return self._frame_rate

    @property
    def tracks_seen(self) -> int:
        """Distinct confirmed tracks over all sessions."""
        return self._earlier_sessions + len(self._ids)

    def reset(self) -> None:
        """Forget all tracks (after a reconnect or a loop: the scene jumped)."""
        self._earlier_sessions += len(self._ids)
        self._ids = set()
        self._start()


class CentreReach(BaseIoU):
    """Similarity of boxes by where they are, for frames far apart: 1 at the same centre, falling to 0 at
    ``reach`` box heights (their mean height); 0 for widths or heights further apart than ``MAX_SIZE_RATIO``
    (overlap asks the same of shapes; a person half out of the frame is not matched to their whole box).
    With ``colour`` (track boxes, detection boxes) → colour similarities, it is weighed by their
    ``colour_power``-th power: of two people crossing within reach, each keeps their own track."""

    MAX_SIZE_RATIO = 1.6  # as the validator's max_size_change: a person does not grow more between frames

    def __init__(self, reach: float, colour: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 colour_power: float = 0.0) -> None:
        self.reach = reach
        self.colour = colour
        self.colour_power = colour_power

    def _compute(self, boxes_1: np.ndarray, boxes_2: np.ndarray) -> np.ndarray:
        c1 = (boxes_1[:, None, :2] + boxes_1[:, None, 2:]) / 2
        c2 = (boxes_2[None, :, :2] + boxes_2[None, :, 2:]) / 2
        size_1 = np.maximum(boxes_1[:, 2:] - boxes_1[:, :2], 1e-6)[:, None, :]  # (N, 1, [w, h])
        size_2 = np.maximum(boxes_2[:, 2:] - boxes_2[:, :2], 1e-6)[None, :, :]
        height = (size_1[..., 1] + size_2[..., 1]) / 2
        similarity = np.clip(1 - np.linalg.norm(c1 - c2, axis=2) / (self.reach * height), 0, 1)
        similarity[np.maximum(size_1 / size_2, size_2 / size_1).max(axis=2) > self.MAX_SIZE_RATIO] = 0
        if self.colour is not None and len(boxes_1) and len(boxes_2):
            similarity = similarity * self.colour(boxes_1, boxes_2) ** self.colour_power
        return similarity.astype(np.float32)


def track_frame(tracker: StreamTracker, frame: Frame, detections: Detections) -> TrackedFrame:
    """One analysed frame through the camera's tracker (``detections`` in the analysed image's pixels):
    what the validator gets, in the frame's own pixels."""
    if frame.scale != 1.0:
        detections = detections.scaled(1.0 / frame.scale)
    tracks = tracker.update(detections, timestamp=frame.media_time, image=frame.image, scale=frame.scale)
    return TrackedFrame(frame.stream_id, frame.frame_id, frame.source_index, frame.captured_at, frame.epoch,
                        frame.original_shape, detections, tracks, frame.media_time, frame.luma, frame.sharpness,
                        tracker.frame_rate)


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
