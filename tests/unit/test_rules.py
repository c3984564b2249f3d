"""The alert rules, levels, findings, de-duplication and cooldowns, through the plain-Python validator."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from surveillance_ray.config import CameraConfig, ScheduleWindow, ValidatorConfig
from surveillance_ray.messages import Detections, TrackedFrame, Tracks
from surveillance_ray.scene import armed
from surveillance_ray.validate import Validator

NAMES = {0: "person", 2: "car"}
SHAPE = (400, 600)  # height, width
FPS = 10.0


def frame(i: int, tracks: list[tuple[int, float, tuple[float, float, float, float]]], cls: int = 0,
          stream: str = "cam", epoch: int = 0, t0: float = 1_800_000_000.0,
          looks: np.ndarray | None = None, fps: float | None = None, nominal: float = -1.0) -> TrackedFrame:
    """``fps``: the rate the frames come at; ``nominal``: the camera's own rate (-1: not known)."""
    fps = fps or FPS
    n = len(tracks)
    xyxy = np.array([box for _, _, box in tracks], np.float32).reshape(-1, 4)
    conf = np.array([c for _, c, _ in tracks], np.float32)
    if looks is not None and looks.ndim == 1:  # one descriptor for every track
        looks = np.repeat(looks[None, :], n, axis=0)
    t = Tracks(xyxy, conf, np.full(n, cls, np.int32), np.array([tid for tid, _, _ in tracks], np.int64), looks)
    return TrackedFrame(stream, i, i, t0 + i / fps, epoch, SHAPE, Detections(xyxy, conf, t.class_id), t,
                        media_time=i / fps, luma=120.0, sharpness=300.0, nominal_fps=nominal)


def walker(x0: float, y0: float, vx: float = 2.0, vy: float = 0.0, h: float = 80.0, w: float = 30.0):
    """A person box moving ``vx, vy`` pixels per frame."""
    return lambda i: (x0 + vx * i, y0 + vy * i, x0 + vx * i + w, y0 + vy * i + h)


def run(v: Validator, n: int, tracks: dict[int, tuple[float, object]], start: int = 0, cls: int = 0) -> None:
    for i in range(start, start + n):
        v.process(frame(i, [(tid, conf, path(i - start)) for tid, (conf, path) in tracks.items()], cls=cls))


def cam(**kw) -> CameraConfig:
    return CameraConfig(id="cam", source="rtsp://127.0.0.1/cam", **kw)


def validator(camera: CameraConfig | None = None, **cfg) -> Validator:
    cfg.setdefault("second_opinion", False)  # no ingest actor here to answer (see the agreement tests)
    return Validator(ValidatorConfig(**cfg), NAMES, [camera or cam()], keep_alerts=True)


def test_a_steady_person_raises_one_object_alert_with_every_rule_recorded() -> None:
    v = validator()
    run(v, 30, {1: (0.8, walker(100, 100))})
    [alert] = v.alerts
    assert (alert.type.value, alert.level, alert.status.value, alert.class_name) == ("object", "BASIC", "raised", "person")
    assert [r.rule for r in alert.rules] == ["ConfidenceThresholdRule", "TemporalConsistencyRule",
                                             "SpatialCoherenceRule", "ContextualValidationRule", "BehaviorAnalysisRule",
                                             "FalsePositivePredictionRule"]  # the shipped ensemble, by default
    assert [r.level for r in alert.rules] == ["BASIC", "INTERMEDIATE", "INTERMEDIATE", "ADVANCED", "ADVANCED",
                                              "CRITICAL"]
    assert all(r.passed and r.reason for r in alert.rules)
    assert alert.fp_probability == alert.rules[-1].score < 0.7
    assert alert.time_to_alert_s == pytest.approx(0.2)  # third observation: persistence 3 of 5
    assert alert.id == "cam-e0-t1-object"


def test_a_low_frame_rate_camera_confirms_on_two_sightings_a_second_apart() -> None:
    path = walker(100, 100, vx=20)
    for confirm_seconds, alert_at in ((1.0, 1), (0.0, 2)):
        v = validator(confirm_seconds=confirm_seconds)
        for i in range(3):  # 1 fps: persistence counted in frames would take 3 s
            v.process(frame(i, [(1, 0.8, path(i))], fps=1.0))
        [alert] = v.alerts
        assert alert.frame_id == alert_at and alert.time_to_alert_s == pytest.approx(alert_at)
    v = validator()
    run(v, 2, {1: (0.8, walker(100, 100))})  # two sightings 0.1 s apart at 10 fps: not yet
    assert v.alerts == [] and "needs 3, or 2 over 1 s" in reason(v, 1)


def reason(v: Validator, track: int) -> str:
    """Why the (live) track has not alerted: the first failing rule's reason."""
    return v._tracks[("cam", 0, track)].reason


def test_first_failing_level_stops_the_alert() -> None:
    v = validator()
    run(v, 30, {1: (0.2, walker(100, 100))})  # below the person threshold: BASIC fails
    assert reason(v, 1) == "person 0.20 < 0.35"
    jumpy = lambda i: (100 + (i % 2) * 300, 100, 130 + (i % 2) * 300, 180)  # noqa: E731  teleports every frame
    run(v, 30, {2: (0.8, jumpy)}, start=30)
    assert reason(v, 2).startswith("TemporalConsistencyRule:") and "steps smooth" in reason(v, 2)
    wide = lambda i: (100 + i, 100, 260 + i, 140)  # noqa: E731  a 'person' four times wider than tall
    run(v, 30, {3: (0.8, wide)}, start=60)
    assert reason(v, 3).startswith("SpatialCoherenceRule: h/w 0.25 outside [1.2, 6]")
    assert v.alerts == []


def test_perspective_model_rejects_a_box_too_small_for_its_place() -> None:
    v = validator(perspective_min_samples=30, stitch_window_s=0)  # four people, not one: no stitching
    # people near the bottom are tall, near the top short: h = 20 + 0.25 y (pixels)
    for tid, y in enumerate((120, 200, 280, 330), start=1):
        h = 20 + 0.25 * (y + 40)
        run(v, 40, {tid: (0.8, walker(50 + 100 * tid, y - 40, vx=0.5, h=h, w=h / 2.5))}, start=tid * 50)
    assert len(v.alerts) == 4 and v.scene("cam").perspective.fits
    run(v, 20, {9: (0.8, walker(300, 312, vx=0.5, h=18, w=7))}, start=300)  # a toy-sized 'person' up front
    assert len(v.alerts) == 4
    assert "the height expected at its place" in reason(v, 9)


ZONE = {"name": "yard", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}


def test_intrusion_zone_only_with_object_alerts_off() -> None:
    v = validator(cam(zones=[ZONE | {"kind": "intrusion", "classes": ["person"]}], rules={"object_classes": []}))
    run(v, 60, {1: (0.8, walker(200, 100, vx=3))})  # walks from x=200 into the yard (x >= 300) at frame ~34
    run(v, 20, {2: (0.8, walker(20, 200, vx=0.5))}, start=60)  # stays outside
    [alert] = v.alerts
    assert (alert.type.value, alert.zone, alert.level, alert.track_id) == ("intrusion", "yard", "ADVANCED", 1)
    assert alert.time_to_alert_s > 2.5  # when it entered, not when it was first seen


def test_mask_zone_and_watch_zone_threshold() -> None:
    v = validator(cam(zones=[ZONE | {"kind": "mask"},
                             {"name": "gate", "polygon": [[0, 0], [0.4, 0], [0.4, 1], [0, 1]], "min_confidence": 0.7}]))
    run(v, 20, {1: (0.9, walker(400, 100, vx=0.5))})  # in the mask
    assert reason(v, 1) == "ContextualValidationRule: inside mask 'yard'"
    run(v, 20, {2: (0.5, walker(50, 100, vx=0.5))}, start=20)  # in the gate, below its threshold
    assert "< zone 'gate''s 0.70" in reason(v, 2)
    run(v, 20, {3: (0.8, walker(60, 100, vx=0.5))}, start=40)  # in the gate, above
    assert [(a.track_id, a.zone) for a in v.alerts] == [(3, "gate")]


def test_loitering_line_crossing_and_running() -> None:
    line = {"name": "kerb", "start": [0.5, 0.0], "end": [0.5, 1.0], "direction": "in"}
    v = validator(cam(zones=[ZONE | {"kind": "loitering", "loiter_s": 3.0}], lines=[line],
                      rules={"object_classes": [], "running_speed": 2.0}))
    run(v, 60, {1: (0.8, walker(400, 100, vx=0.2))})  # stands in the yard for 6 s
    run(v, 40, {2: (0.8, walker(250, 250, vx=2.0))}, start=60)  # walks across the line left to right
    run(v, 40, {3: (0.8, walker(350, 150, vx=-2.0))}, start=100)  # right to left
    run(v, 40, {4: (0.8, walker(40, 300, vx=25.0, w=25))}, start=140)  # 25 px/frame = 3 heights/s
    got = [(a.track_id, a.type.value, a.zone or a.line, a.direction) for a in v.alerts]
    assert (1, "loitering", "yard", None) in got
    assert abs(v.alerts[0].time_to_alert_s - 3.0) < 0.25
    crossings = [g for g in got if g[1] == "line_crossing"]
    assert crossings == [(2, "line_crossing", "kerb", "in"), (4, "line_crossing", "kerb", "in")]  # not 3's "out"
    v2 = validator()
    run(v2, 20, {4: (0.8, walker(40, 300, vx=25.0, w=25))})
    [fast] = v2.alerts
    assert fast.behaviors == ["running"] and fast.level == "ADVANCED"


def test_one_alert_per_track_and_zone_cooldown() -> None:
    v = validator(cam(zones=[ZONE | {"kind": "intrusion", "cooldown_s": 5.0}], rules={"object_classes": []}))
    run(v, 30, {1: (0.8, walker(400, 100, vx=0.2)), 2: (0.8, walker(450, 250, vx=0.2))})  # two at once
    run(v, 30, {3: (0.8, walker(400, 100, vx=0.2))}, start=100)  # 7 s later
    got = [(a.track_id, a.status.value) for a in v.alerts]
    assert got == [(1, "raised"), (2, "suppressed"), (3, "raised")]
    assert "cooldown" in v.alerts[1].reason
    assert v.counts()["cam"]["alerts"] == {"raised:intrusion": 2, "suppressed:intrusion": 1}


def test_camera_schedule_arms_object_alerts() -> None:
    tz = ZoneInfo("UTC")
    night = {"schedule": [{"start": "22:00", "end": "06:00"}]}
    v = validator(cam(rules=night), timezone="UTC")
    t0 = dt.datetime(2027, 1, 4, 12, 0, tzinfo=tz).timestamp()  # Monday noon: disarmed
    for i in range(20):
        v.process(frame(i, [(1, 0.8, walker(100, 100)(i))], t0=t0))
    assert v.alerts == []
    t1 = dt.datetime(2027, 1, 4, 23, 0, tzinfo=tz).timestamp()
    for i in range(20, 40):
        v.process(frame(i, [(2, 0.8, walker(100, 100)(i))], t0=t1))
    assert [a.track_id for a in v.alerts] == [2]


@pytest.mark.parametrize(("day", "hhmm", "expected"), [
    (0, "21:59", False), (0, "22:00", True), (0, "23:59", True), (1, "05:59", True), (1, "06:00", False),
    (6, "23:00", False), (0, "03:00", False),  # Sunday night is not in the window; Monday 03:00 belongs to Sunday
])
def test_schedule_windows_wrap_midnight(day: int, hhmm: str, expected: bool) -> None:
    window = ScheduleWindow(days=["mon", "tue", "wed", "thu", "fri"], start="22:00", end="06:00")
    h, m = map(int, hhmm.split(":"))
    at = dt.datetime(2027, 1, 4 + day, h, m, tzinfo=ZoneInfo("UTC")).timestamp()  # 2027-01-04 is a Monday
    assert armed([window], at, ZoneInfo("UTC")) is expected
    assert armed([], at, ZoneInfo("UTC"))


def test_class_flicker_and_weak_score_history_do_not_alert() -> None:
    v = validator(cam(rules={"object_classes": ["person"]}))
    car = lambda i: (100 + i, 100, 180 + i, 150)  # noqa: E731
    for i in range(30):  # a car track that is called a person in every fourth frame
        cls = 0 if i % 4 == 3 else 2
        v.process(frame(i, [(1, 0.8, car(i))], cls=cls))
    assert v.alerts == []
    state = v._tracks[("cam", 0, 1)]
    assert state.class_name == "car" and state.class_share == pytest.approx(23 / 30)
    for i in range(30, 60):  # scores just over the threshold, with an occasional strong one
        v.process(frame(i, [(2, 0.9 if i % 4 == 0 else 0.36, walker(300, 100)(i - 30))]))
    assert v.alerts == [] and reason(v, 2).startswith("TemporalConsistencyRule: median score 0.36 < 0.50")


RED, BLUE = np.eye(24, dtype=np.float32)[0], np.eye(24, dtype=np.float32)[5]


def fragments(v: Validator, second_id: int, jump: float = 0.0, looks2: np.ndarray = RED, epoch2: int = 0) -> None:
    """A person walking right at 20 px/s; the tracker loses it for 1 s and picks it up under a new id."""
    path = walker(100, 100, vx=2.0)
    for i in range(30):
        v.process(frame(i, [(1, 0.8, path(i))], looks=RED))
    for i in range(40, 70):  # where it should be after the gap, moved by ``jump`` pixels
        x1, y1, x2, y2 = path(i)
        v.process(frame(i, [(second_id, 0.8, (x1 + jump, y1, x2 + jump, y2))], looks=looks2, epoch=epoch2))


def test_a_person_split_by_the_tracker_raises_one_alert() -> None:
    v = validator()
    fragments(v, second_id=2)
    assert [a.track_id for a in v.alerts] == [1]
    assert v.counts()["cam"]["alerts"] == {"raised:object": 1, "stitched:object": 1}
    assert v._tracks[("cam", 0, 2)].stitched_from == 1


@pytest.mark.parametrize("case", ["far away", "other colours", "after a reconnect"])
def test_not_stitched_when_motion_colours_or_session_disagree(case: str) -> None:
    v = validator()
    kwargs = {"far away": {"jump": 250.0}, "other colours": {"looks2": BLUE},
              "after a reconnect": {"epoch2": 1}}[case]
    fragments(v, second_id=2, **kwargs)
    assert [a.track_id for a in v.alerts] == [1, 2]


def test_a_person_who_left_through_the_edge_is_not_continued_by_one_entering_there() -> None:
    v = validator()
    path = walker(512, 100, vx=2.0)  # its box reaches the right edge (x 600) at frame 29
    for i in range(30):
        v.process(frame(i, [(1, 0.8, path(i))], looks=RED))
    for i in range(40, 70):  # 1 s later, same colours, where it was heading: someone coming in
        v.process(frame(i, [(2, 0.8, (565 - 2 * (i - 40), 100, 595 - 2 * (i - 40), 180))], looks=RED))
    assert [a.track_id for a in v.alerts] == [1, 2]
    inside = validator()  # the same, inside the view: the same person again
    fragments(inside, second_id=2)
    assert [a.track_id for a in inside.alerts] == [1]


def test_the_lost_track_closest_in_place_and_colours_wins_even_when_it_never_alerted() -> None:
    mixed = (0.75 * RED + np.sqrt(1 - 0.75 ** 2) * BLUE).astype(np.float32)  # 0.75 alike with RED
    alerted, quiet = walker(100, 100), walker(100, 110)  # two people side by side, 10 px apart

    def alerts(with_quiet: bool) -> list[int]:
        v = validator()
        for i in range(30):  # person 3's scores stay too weak to alert, but its track is confirmed
            people = [(1, 0.8, alerted(i))] + ([(3, 0.36, quiet(i))] if with_quiet else [])
            v.process(frame(i, people, looks=np.stack([RED, mixed][:len(people)])))
        assert not with_quiet or v._tracks[("cam", 0, 3)].confirmed
        for i in range(40, 70):  # both lost; a new track where person 3 was heading, in person 3's colours
            v.process(frame(i, [(2, 0.8, quiet(i))], looks=mixed))
        return [a.track_id for a in v.alerts]

    assert alerts(with_quiet=True) == [1, 2]  # it continues person 3, who never alerted: a new alert
    assert alerts(with_quiet=False) == [1]  # no one closer: taken for person 1 again (0.75 alike, 10 px off)



def test_a_sparse_camera_stitches_only_where_the_last_two_sightings_point() -> None:
    """1 fps: a person unseen for one frame comes back where their last two sightings said they would be, in
    the same colours: one alert. The reach is fixed (1 box height from that place), not grown with the gap as
    at a dense camera: at one frame a second a reach of 2 + 1 per second takes in people a few steps away."""
    def alerts(jump: float = 0.0, looks: np.ndarray = RED, gap: int = 1, **cfg) -> list[int]:
        v = validator(**cfg)
        path = walker(100, 100, vx=20.0)  # 80 px tall, 20 px a second
        for i in range(6):
            v.process(frame(i, [(1, 0.8, path(i))], looks=RED, fps=1.0))
        for i in range(6 + gap, 11 + gap):
            x1, y1, x2, y2 = path(i)
            v.process(frame(i, [(2, 0.8, (x1 + jump, y1, x2 + jump, y2))], looks=looks, fps=1.0))
        return [a.track_id for a in v.alerts]

    assert alerts() == [1]  # back at the predicted place, same colours
    assert alerts(jump=60.0) == [1]  # 0.75 box heights off: within reach
    assert alerts(jump=100.0) == [1, 2]  # 1.25 box heights off: someone else
    assert alerts(looks=BLUE) == [1, 2]  # other colours
    assert alerts(gap=3) == [1, 2]  # unseen for 3 frames: longer than sparse_stitch_window_s (3 s)
    assert alerts(gap=3, sparse_stitch_window_s=4.0) == [1]
    assert alerts(sparse_stitch_window_s=0.0) == [1, 2]  # never stitched
    # the same frames taken for a dense camera: its own reach (2 heights + 1 a second) takes in 100 px
    assert alerts(jump=100.0, sparse_frame_gap_s=1.5) == [1]


def test_second_opinion_is_asked_once_and_gates_the_alert() -> None:
    v = validator(second_opinion=True, second_opinion_min=0.3, second_opinion_wait_s=2.0)
    requests = list(v.process(frame(0, [])).requests)  # the camera's first frame: its rate is known after it
    for i in range(1, 6):
        requests += v.process(frame(i, [(1, 0.8, walker(100, 100)(i)), (2, 0.8, walker(400, 100)(i))])).requests
    assert sorted(r.track_id for r in requests) == [1, 2] and v.alerts == []  # asked once each, waiting
    v.second_opinion("cam", 0, 1, 0.9)  # agrees
    v.second_opinion("cam", 0, 2, 0.1)  # does not
    for i in range(6, 11):
        assert v.process(frame(i, [(1, 0.8, walker(100, 100)(i)), (2, 0.8, walker(400, 100)(i))])).requests == ()
    [alert] = v.alerts
    assert alert.track_id == 1 and alert.rules[-2].rule == "MultiModelAgreementRule"
    assert alert.rules[-2].reason == "second opinion 0.90 >= 0.30"
    assert reason(v, 2) == "MultiModelAgreementRule: second opinion 0.10 < 0.30"


def test_an_agreeing_second_opinion_raises_the_alert_without_waiting_for_another_sighting() -> None:
    v = validator(second_opinion=True, ensemble_model=None)
    requests = []
    for i in range(2):  # a camera giving one frame a second: two sightings 1 s apart make the track persistent
        requests += v.process(frame(i, [(1, 0.8, walker(100, 100)(i))], fps=1.0)).requests
    assert [r.track_id for r in requests] == [1] and v.alerts == []
    v.second_opinion("cam", 0, 1, 0.9)
    v.process(frame(2, [], fps=1.0))  # the camera's next frame: the person is not seen again
    [alert] = v.alerts
    assert (alert.track_id, alert.frame_id) == (1, 1)
    assert alert.rules[-1].reason == "second opinion 0.90 >= 0.25"


def test_a_sparse_camera_asks_its_second_opinion_on_the_first_sighting() -> None:
    """1 fps: asked when the track is first seen, the answer is in by the second sighting, which makes the track
    persistent: the alert goes out with that frame. An early "no" is asked again once the track is persistent."""
    def sightings(first: float, second: float | None = None) -> tuple[list[list[int]], list[tuple[int, int]]]:
        v = validator(second_opinion=True, ensemble_model=None)
        asked = []
        for i in range(6):  # the camera's first three frames are empty: its rate is known
            people = [(1, 0.8, walker(100, 100, vx=20)(i))] if i >= 3 else []
            asked.append([r.track_id for r in v.process(frame(i, people, fps=1.0)).requests])
            if asked[-1]:
                v.second_opinion("cam", 0, 1, first if len([a for a in asked if a]) == 1 else second)
        return asked, [(a.track_id, a.frame_id) for a in v.alerts]

    assert sightings(0.9) == ([[], [], [], [1], [], []], [(1, 4)])
    assert sightings(0.1, 0.9) == ([[], [], [], [1], [1], []], [(1, 4)])  # raised on frame 5, about frame 4
    dense = validator(second_opinion=True, ensemble_model=None)  # 10 fps: asked once the track is persistent
    asked = [[r.track_id for r in dense.process(frame(i, [(1, 0.8, walker(100, 100)(i))] if i else [])).requests]
             for i in range(5)]
    assert asked == [[], [], [], [1], []]
    # a person in the camera's very first frame: its rate is not known yet, so they are asked at once too
    first = validator(second_opinion=True, ensemble_model=None)
    assert [r.track_id for r in first.process(frame(0, [(1, 0.8, walker(100, 100)(0))], fps=1.0)).requests] == [1]
    first.second_opinion("cam", 0, 1, 0.9)
    first.process(frame(1, [(1, 0.8, walker(100, 100, vx=20)(1))], fps=1.0))
    assert [(a.track_id, a.frame_id) for a in first.alerts] == [(1, 1)]  # with the second sighting


def test_no_second_opinion_never_holds_an_alert_for_good() -> None:
    v = validator(second_opinion=True, second_opinion_wait_s=1.0)
    for i in range(31):
        v.process(frame(i, [(1, 0.8, walker(100, 100)(i))] if i else []))
    [alert] = v.alerts
    assert alert.rules[-2].reason.startswith("no second opinion within 1.0 s")
    assert 1.0 < alert.time_to_alert_s < 1.5


def test_a_camera_only_behind_asks_once_the_track_is_persistent_and_again_at_its_next_frame() -> None:
    """Analysed once a second (the pipeline is behind) but a 10-fps camera: no early ask at the first sighting
    (it would add detector work when there is none to spare); asked once persistence passes, and a "no" is asked
    again after the time 10 observations take at its own rate (1 s: its next frame). A camera slow by its own rate
    still asks at the first sighting."""
    def asks(nominal: float, answers: list[float]) -> tuple[list[list[int]], list[int]]:
        v = validator(second_opinion=True, ensemble_model=None)
        asked = []
        for i in range(6):
            people = [(1, 0.8, walker(100, 100, vx=20)(i))] if i >= 1 else []
            asked.append([r.track_id for r in v.process(frame(i, people, fps=1.0, nominal=nominal)).requests])
            if asked[-1]:
                v.second_opinion("cam", 0, 1, answers.pop(0))
        return asked, [a.frame_id for a in v.alerts]

    assert asks(10.0, [0.1, 0.9]) == ([[], [], [1], [1], [], []], [3])
    assert asks(1.0, [0.9]) == ([[], [1], [], [], [], []], [2])  # slow by its own rate: asked at first sighting


def test_a_skipped_second_opinion_is_asked_again_until_the_wait_is_over() -> None:
    v = validator(second_opinion=True, ensemble_model=None, second_opinion_wait_s=1.0)
    asked = []
    for i in range(16):
        out = v.process(frame(i, [(1, 0.8, walker(100, 100)(i))] if i else [], nominal=10.0))
        asked.append(bool(out.requests))
        for r in out.requests:
            v.second_opinion("cam", 0, r.track_id, None, "budget")  # the detector had no time for it
    assert asked[:4] == [False, False, False, True] and sum(asked) >= 8  # asked again at every frame while waiting
    [alert] = v.alerts
    agreement = next(r for r in alert.rules if r.rule == "MultiModelAgreementRule")
    assert agreement.passed and agreement.reason.startswith("no second opinion within 1.0 s (")
    assert "ask(s) skipped: budget" in agreement.reason and 1.0 <= alert.time_to_alert_s < 1.3


def test_skipped_and_answered_second_opinions_replay_as_they_ran(tmp_path) -> None:
    from surveillance_ray.validate import replay

    v = Validator(ValidatorConfig(second_opinion=True, ensemble_model=None), NAMES, [cam()], record_tracks=True,
                  keep_alerts=True)
    rows, asks = [], {1: 0, 2: 0}
    for i in range(30):
        out = v.process(frame(i, [(1, 0.8, walker(100, 100)(i)), (2, 0.8, walker(400, 100)(i))] if i else [],
                              nominal=10.0))
        for r in out.requests:  # track 1: skipped once, then agreed; track 2: always skipped
            asks[r.track_id] += 1
            skip = r.track_id == 2 or asks[1] == 1
            v.second_opinion("cam", 0, r.track_id, None if skip else 0.9, "budget" if skip else None)
        rows += v.drain()[1]
    logged = [o for row in rows for o in row.get("opinions", ())]
    assert [0, 2, None, "budget"] in logged and [0, 1, 0.9] in logged
    again = replay(rows, ValidatorConfig(second_opinion=True, ensemble_model=None), NAMES, [cam()])
    assert [(a.track_id, a.rules[-1].reason) for a in again.alerts] == [(a.track_id, a.rules[-1].reason)
                                                                         for a in v.alerts]
    assert len(v.alerts) == 2
