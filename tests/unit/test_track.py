import numpy as np

from surveillance_ray.config import TrackingConfig
from surveillance_ray.messages import Detections
from surveillance_ray.track import CentreReach, StreamTracker


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


def test_a_one_fps_camera_follows_people_who_move_further_than_their_width_between_frames() -> None:
    """1 fps: two people 300 px (2.5 heights) apart walk 70 px a frame at 50 px wide (no overlap between frames)."""
    def ids(kind: str, **cfg) -> list[list[int]]:
        tracker = StreamTracker(TrackingConfig(tracker=kind, **cfg), frame_rate=1.0)
        return [tracker.update(dets((100 + 70 * i, 100, 150 + 70 * i, 220), (100 + 70 * i, 400, 150 + 70 * i, 520)),
                               float(i)).track_id.tolist() for i in range(8)]

    for kind in ("botsort", "bytetrack", "cbiou"):
        seen = ids(kind)  # confirmed at their first sighting: the camera's rate (1 fps) says its frames are sparse
        assert all(frame == seen[0] and len(set(frame)) == 2 for frame in seen), kind
    for kind in ("botsort", "bytetrack"):  # by overlap alone: a new unconfirmed track every frame
        assert ids(kind, sparse_after_s=0.0) == [[]] * 8, kind


def test_a_one_fps_camera_keeps_its_tracks_when_frames_come_a_hair_over_a_second_apart(monkeypatch) -> None:
    """The tracker drops a track lost for longer than lost_track_buffer (1 s) before matching: a 1-fps
    camera's frames 1.001 s apart (a clock's jitter) must not lose every track at every frame."""
    import surveillance_ray.track as track

    def ids(kind: str) -> list[list[int]]:
        tracker = StreamTracker(TrackingConfig(tracker=kind), frame_rate=1.0)
        return [tracker.update(dets((100 + 30 * i, 100, 150 + 30 * i, 220), (500 - 30 * i, 400, 550 - 30 * i, 520)),
                               0.2 + 1.001 * i).track_id.tolist() for i in range(6)]

    for kind in ("botsort", "bytetrack", "cbiou"):
        seen = ids(kind)
        assert all(frame == seen[0] and len(set(frame)) == 2 for frame in seen), (kind, seen)
    monkeypatch.setattr(track, "SLOW_LOST_GAPS", 0.0)  # the tracker's own budget alone
    assert len({i for frame in ids("botsort") for i in frame}) == 12


def test_a_camera_analysed_below_its_rate_keeps_its_tracks_but_a_stalled_one_does_not() -> None:
    """A 10-fps camera the pipeline analyses once every 1.2 s (it fell behind) keeps its tracks like a
    camera configured that slow; one long stall among frames 0.1 s apart still ends them (the budget
    follows the median of the last gaps, not the last one)."""
    def walk(kind: str, times: list[float], frame_rate: float) -> list[list[int]]:
        tracker = StreamTracker(TrackingConfig(tracker=kind), frame_rate=frame_rate)
        speed = 30 / max(b - a for a, b in zip(times, times[1:]))  # px per second: 30 px per (longest) gap
        return [tracker.update(dets((100 + speed * t, 100, 150 + speed * t, 220),
                                    (500 - speed * t, 400, 550 - speed * t, 520)), t).track_id.tolist()
                for t in times]

    behind = [1.2 * i for i in range(8)]
    for kind in ("botsort", "bytetrack", "cbiou"):
        seen = walk(kind, behind, frame_rate=10.0)
        assert seen[0] == [] and all(f == seen[1] and len(set(f)) == 2 for f in seen[1:]), (kind, seen)
        assert walk(kind, behind, frame_rate=10.0)[1:] == walk(kind, behind, frame_rate=1 / 1.2)[1:], kind
        stalled = [0.1 * i for i in range(6)] + [0.5 + 5.0 + 0.1 * i for i in range(6)]  # 5 s frozen
        seen = walk(kind, stalled, frame_rate=10.0)
        before, after = {i for f in seen[:6] for i in f}, {i for f in seen[6:] for i in f}
        assert len(before) == 2 and len(after) == 2 and not before & after, (kind, seen)


def test_a_slow_cameras_new_track_is_passed_on_at_its_first_sighting() -> None:
    """1 fps: waiting for a second match would cost a second; the validator's persistence does the confirming."""
    for kind in ("botsort", "bytetrack", "cbiou"):
        tracker = StreamTracker(TrackingConfig(tracker=kind), frame_rate=1.0)
        first = tracker.update(dets((100, 100, 150, 220)), 0.0).track_id.tolist()
        both = tracker.update(dets((130, 100, 180, 220), (400, 100, 450, 220)), 1.0)
        assert len(first) == 1 and both.track_id.tolist()[:1] == first, kind
        assert len(set(both.track_id.tolist())) == 2, kind  # the newcomer has its id at once
        assert tracker.update(dets((600, 400, 650, 520), conf=0.3), 2.0).track_id.tolist() == [], kind  # too weak
        assert tracker.tracks_seen == 2, kind


def test_at_one_fps_people_who_swap_places_keep_their_tracks_by_colour() -> None:
    """A red and a blue person 100 px (0.8 heights) apart swap places between two frames a second apart:
    by distance alone each track takes whoever now stands where it was; weighed by colours, each its own."""
    def frame(red_x: int, blue_x: int) -> tuple[Detections, np.ndarray]:
        image = np.full((400, 600, 3), 128, np.uint8)
        image[100:220, red_x:red_x + 50] = (0, 0, 255)
        image[100:220, blue_x:blue_x + 50] = (255, 0, 0)
        return dets((red_x, 100, red_x + 50, 220), (blue_x, 100, blue_x + 50, 220)), image

    def red_ids(power: float) -> list[int]:
        tracker = StreamTracker(TrackingConfig(sparse_colour_power=power), frame_rate=1.0)
        ids = []
        for i, (red, blue) in enumerate([(100, 200), (200, 100), (200, 100)]):
            detections, image = frame(red, blue)
            tracks = tracker.update(detections, float(i), image=image)
            ids.append(int(tracks.track_id[np.flatnonzero(tracks.xyxy[:, 0] == red)[0]]))
        return ids

    assert red_ids(4.0) == [red_ids(4.0)[0]] * 3
    assert len(set(red_ids(0.0))) == 2  # by distance only: the red person takes the blue one's track


def test_frames_close_together_are_associated_by_overlap() -> None:
    """10 fps: the same 70 px jumps are not one person walking (7 box widths a second)."""
    tracker = StreamTracker(TrackingConfig(), frame_rate=10.0)
    assert [tracker.update(dets((100 + 70 * i, 100, 150 + 70 * i, 220)), i / 10).track_id.tolist()
            for i in range(8)] == [[]] * 8


def test_centre_reach_similarity() -> None:
    box = np.array([[100, 100, 150, 220]], np.float32)
    reach = CentreReach(2.0)  # 240 px for 120-px-tall boxes
    assert reach.compute(box, box)[0, 0] == 1.0
    assert reach.compute(box, box + [120, 0, 120, 0])[0, 0] == np.float32(0.5)
    assert reach.compute(box, box + [300, 0, 300, 0])[0, 0] == 0.0
    assert reach.compute(box, np.array([[90, 40, 160, 240]], np.float32))[0, 0] == 0.0  # 1.67 x taller
    assert reach.compute(box, np.array([[100, 100, 125, 220]], np.float32))[0, 0] == 0.0  # half as wide
