import numpy as np

from surveillance_ray.config import TrackingConfig
from surveillance_ray.messages import Detections
from surveillance_ray.track import StreamTracker


def dets(*boxes: tuple[float, float, float, float], conf: float = 0.9) -> Detections:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(xyxy, np.full(len(xyxy), conf, np.float32), np.zeros(len(xyxy), np.int32))


def test_confirmed_tracks_keep_their_ids_while_moving() -> None:
    tracker = StreamTracker(TrackingConfig(minimum_consecutive_frames=2), frame_rate=10)
    seen = []
    for i in range(10):
        tracks = tracker.update(dets((10 + 4 * i, 10, 50 + 4 * i, 90), (300 - 4 * i, 200, 340 - 4 * i, 280)), i / 10)
        seen.append(sorted(tracks.track_id.tolist()))
    assert seen[0] == []  # not yet confirmed: not passed on
    assert all(ids == seen[1] and len(ids) == 2 for ids in seen[1:])
    assert tracker.tracks_seen == 2


def test_low_confidence_detections_do_not_start_tracks() -> None:
    tracker = StreamTracker(TrackingConfig(track_activation_threshold=0.5), frame_rate=10)
    for i in range(5):
        assert len(tracker.update(dets((10, 10, 50, 90), conf=0.3), i / 10)) == 0


def test_reset_forgets_tracks() -> None:
    tracker = StreamTracker(TrackingConfig(), frame_rate=10)
    for i in range(3):
        tracker.update(dets((10, 10, 50, 90)), i / 10)
    tracker.reset()
    assert len(tracker.update(dets((10, 10, 50, 90)), 0.3)) == 0  # must be confirmed again
    assert tracker.update(dets((10, 10, 50, 90)), 0.4).track_id.tolist() == [0]  # ids restart after a reset...
    assert tracker.tracks_seen == 2  # ...but the count of distinct tracks does not


def test_empty_frames() -> None:
    tracker = StreamTracker(TrackingConfig(), frame_rate=10)
    assert len(tracker.update(Detections.empty(), 0.0)) == 0


def test_cbiou_follows_a_person_who_moves_almost_a_width_per_frame_where_bytetrack_loses_them() -> None:
    """A 1 fps camera: the box moves 45 px a frame at 50 px wide (IoU 0.05 between frames)."""
    def ids(kind: str) -> list[list[int]]:
        tracker = StreamTracker(TrackingConfig(tracker=kind), frame_rate=1.0)
        return [tracker.update(dets((100 + 45 * i, 100, 150 + 45 * i, 220)), float(i)).track_id.tolist()
                for i in range(8)]

    assert ids("bytetrack") == [[]] * 8  # a new unconfirmed track every frame
    cbiou = ids("cbiou")
    assert all(frame == cbiou[0] and len(frame) == 1 for frame in cbiou)
