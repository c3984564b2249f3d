import json

import numpy as np
import pytest

from surveillance_ray.config import ValidatorConfig
from surveillance_ray.messages import Detections, TrackedFrame, Tracks
from surveillance_ray.history import Observation
from surveillance_ray.rules import ConfidenceThresholdRule
from surveillance_ray.validate import Validator, replay

NAMES = {0: "person", 2: "car"}
SHAPE = (360, 480)


def obs(conf: float, xyxy=(100, 100, 140, 200), cls: int = 0, luma: float = 120.0, sharpness: float = 500.0,
        detections: int = 1) -> Observation:
    return Observation("a", 1, cls, NAMES[cls], conf, xyxy, SHAPE, 0.0, luma=luma, sharpness=sharpness,
                       detections=detections)


def test_threshold_context_modifiers() -> None:
    cfg = ValidatorConfig(default_threshold=0.3, class_thresholds={"person": 0.4}, small_box_frac=0.002,
                          small_box_penalty=0.1, edge_margin_frac=0.01, edge_penalty=0.05, low_light_luma=50,
                          low_light_penalty=0.05, blur_sharpness=20, blur_penalty=0.05, crowd_count=10,
                          crowd_relief=0.1)
    rule = ConfidenceThresholdRule(cfg)
    thr = lambda o, s=1.0: rule.threshold(o, s)[0]  # noqa: E731
    assert thr(obs(0.5)) == pytest.approx(0.4)
    assert thr(obs(0.5, cls=2)) == pytest.approx(0.3)  # class not listed: default
    assert thr(obs(0.5, xyxy=(100, 100, 110, 110))) == pytest.approx(0.5)  # small box
    assert thr(obs(0.5, xyxy=(0, 100, 40, 200))) == pytest.approx(0.45)  # at the edge
    assert thr(obs(0.5, luma=30)) == pytest.approx(0.45)  # low light
    assert thr(obs(0.5, sharpness=5)) == pytest.approx(0.45)  # blurred
    assert thr(obs(0.5, detections=12)) == pytest.approx(0.3)  # crowded
    assert thr(obs(0.5, luma=-1, sharpness=-1)) == pytest.approx(0.4)  # not measured: no modifier
    assert thr(obs(0.5), 2.0) == pytest.approx(0.2)  # sensitive camera
    assert rule.check(obs(0.41)).passed and not rule.check(obs(0.39)).passed
    assert rule.check(obs(0.39)).reason == "person 0.39 < 0.40"
    assert rule.check(obs(0.39, luma=30)).reason == "person 0.39 < 0.45 (low light)"


def tracked(i: int, tracks: list[tuple[int, float]], stream: str = "a", epoch: int = 0, dt: float = 0.1) -> TrackedFrame:
    n = len(tracks)
    xyxy = np.array([[100 + 50 * tid, 100, 140 + 50 * tid, 200] for tid, _ in tracks], np.float32).reshape(-1, 4)
    conf = np.array([c for _, c in tracks], np.float32)
    t = Tracks(xyxy, conf, np.zeros(n, np.int32), np.array([tid for tid, _ in tracks], np.int64))
    return TrackedFrame(stream, i, i, 1000.0 + i * dt, epoch, SHAPE, Detections(xyxy, conf, t.class_id), t,
                        media_time=i * dt)


def kinds(events) -> list[tuple[str, int]]:
    return [(e.kind.value, e.track_id) for e in events]


def test_temporal_confirmation_needs_n_of_window() -> None:
    v = Validator(ValidatorConfig(confirm_frames=3, confirm_window=5), NAMES)
    confs = [0.9, 0.1, 0.9, 0.1, 0.9]  # third pass arrives at the fifth observation
    out = [kinds(v.process(tracked(i, [(7, c)])).events) for i, c in enumerate(confs)]
    assert out == [[], [], [], [], [("track_started", 7)]]
    v2 = Validator(ValidatorConfig(confirm_frames=3, confirm_window=3), NAMES)
    assert all(not v2.process(tracked(i, [(7, c)])).events for i, c in enumerate(confs))  # never 3 in 3


def test_started_persisted_ended() -> None:
    v = Validator(ValidatorConfig(confirm_frames=2, confirm_window=2, persist_every_s=1.0, end_after_s=0.5), NAMES)
    events = []
    for i in range(25):  # track 1 lives 2.5 s
        events += v.process(tracked(i, [(1, 0.9)])).events
    for i in range(25, 35):  # then gone
        events += v.process(tracked(i, [])).events
    assert kinds(events) == [("track_started", 1), ("track_persisted", 1), ("track_persisted", 1), ("track_ended", 1)]
    ended = events[-1]
    assert ended.frame_id == 24 and ended.duration_s == pytest.approx(2.4) and ended.observations == 25
    assert v.counts()["a"]["events"] == 4 and v.counts()["a"]["started_by_class"] == {"person": 1}


def test_unconfirmed_tracks_end_silently_and_streams_are_separate() -> None:
    v = Validator(ValidatorConfig(confirm_frames=2, confirm_window=2), NAMES)
    v.process(tracked(0, [(1, 0.9)], stream="a"))
    v.process(tracked(0, [(1, 0.1)], stream="b"))
    assert kinds(v.process(tracked(1, [(1, 0.9)], stream="a")).events) == [("track_started", 1)]
    assert v.process(tracked(1, [(1, 0.1)], stream="b")).events == ()
    assert kinds(v.finish_stream("b")) == []
    assert kinds(v.finish_stream("a")) == [("track_ended", 1)]


def test_new_epoch_ends_previous_tracks() -> None:
    v = Validator(ValidatorConfig(confirm_frames=1, confirm_window=1), NAMES)
    v.process(tracked(0, [(1, 0.9)], epoch=0))
    events = v.process(tracked(1, [(1, 0.9)], epoch=1)).events  # same tracker id, new session
    assert [(e.kind.value, e.epoch) for e in events] == [("track_ended", 0), ("track_started", 1)]
    assert events[0].reason == "source reconnected or looped"


def test_track_log_round_trip_and_replay() -> None:
    cfg = ValidatorConfig(confirm_frames=2, confirm_window=3, end_after_s=0.3)
    v = Validator(cfg, NAMES, record_tracks=True)
    pattern = [[(1, 0.9), (2, 0.2)], [(1, 0.8), (2, 0.9)], [(2, 0.95)], [(2, 0.9)], [], [], [], [(3, 0.7)], [(3, 0.7)]]
    for i, tracks in enumerate(pattern):
        v.process(tracked(i, tracks, stream="a"))
        v.process(tracked(i, tracks[:1], stream="b"))
    v.finish_stream("a")
    v.finish_stream("b")
    events, rows = v.drain()
    assert len(rows) == 2 * len(pattern) and len(events) >= 6
    rows = [json.loads(json.dumps(r)) for r in rows]  # what tracks.jsonl holds
    assert TrackedFrame.from_log(rows[0]).tracks.track_id.tolist() == [1, 2]
    key = lambda e: (e["stream_id"], e["frame_id"], e["track_id"], e["kind"])  # noqa: E731
    assert sorted(replay(rows, cfg, NAMES).events, key=key) == sorted(events, key=key)
    assert v.drain() == ([], [])


def test_replay_gives_the_frame_each_alert_was_raised_at() -> None:
    """A second opinion asked when the track became persistent comes after that frame; the alert it held goes
    out with the camera's next frame, and the replay says so (time to alert counts from there). At one frame
    a second it was asked at the first sighting and is in by the second: the alert goes out with that one."""
    cfg = ValidatorConfig(ensemble_model=None)
    rows = [tracked(i, [(1, 0.9)] if 1 <= i <= 3 else []).to_log() for i in range(5)]  # persistent at frame 3
    result = replay(rows, cfg, NAMES, answer=lambda row, request: 0.9)
    [alert] = result.alerts
    assert (alert.frame_id, result.raised_at[alert.id]) == (3, 4)
    no_answer = replay(rows, cfg.model_copy(update={"second_opinion": False}), NAMES)
    [alert] = no_answer.alerts
    assert (alert.frame_id, no_answer.raised_at[alert.id]) == (3, 3)
    slow = [tracked(i, [(1, 0.9)] if i < 2 else [], dt=1.0).to_log() for i in range(4)]
    result = replay(slow, cfg, NAMES, answer=lambda row, request: 0.9)
    [alert] = result.alerts
    assert (alert.frame_id, result.raised_at[alert.id]) == (1, 1)


def test_process_many_is_process_in_order() -> None:
    cfg = ValidatorConfig(confirm_frames=2, confirm_window=2)
    one, many = Validator(cfg, NAMES, record_tracks=True), Validator(cfg, NAMES, record_tracks=True)
    frames = [tracked(i, [(1, 0.9)], stream=s) for i in range(4) for s in ("a", "b")]
    for f in frames:
        one.process(f)
    verdicts = many.process_many(frames)
    assert len(verdicts) == len(frames) and all(v.validated_at > 0 for v in verdicts)
    strip = lambda evs: [{k: v for k, v in e.items() if k != "validated_at"} for e in evs]  # noqa: E731
    assert strip(many.drain()[0]) == strip(one.drain()[0]) != []


def test_a_batch_scores_the_ensemble_once_per_round_and_raises_what_one_by_one_raises() -> None:
    """Three cameras, three people each: every track needs the ensemble in the same frames. One frame at a time
    that is a call per frame (its tracks together); in one request of an ingest actor one call per round, with
    the same alerts."""
    cfg = ValidatorConfig(second_opinion=False)  # the shipped ensemble
    one, many = Validator(cfg, NAMES, keep_alerts=True), Validator(cfg, NAMES, keep_alerts=True)
    calls: dict[str, list[int]] = {"one": [], "many": []}
    for name, v in (("one", one), ("many", many)):
        model = v._fp_rule.model
        model.fp_probabilities = (lambda f, rows=calls[name], m=model.fp_probabilities: rows.append(len(f)) or m(f))
    frames = [[tracked(i, [(1, 0.9), (2, 0.85), (3, 0.8)], stream=s) for s in ("a", "b", "c")] for i in range(12)]
    for batch in frames:
        for f in batch:
            one.process(f)
        many.process_many(batch)
    # a request may carry two frames of a camera (a file read as fast as possible): two rounds
    extra = [tracked(i, [(1, 0.9), (4, 0.9)], stream=s) for i in (12, 13) for s in ("a", "b")]
    for f in extra:
        one.process(f)
    many.process_many(extra)
    fields = lambda v: sorted((a.id, a.frame_id, a.fp_probability, a.status) for a in v.alerts)  # noqa: E731
    assert fields(many) == fields(one) and len(fields(one)) >= 9
    assert sum(calls["many"]) == sum(calls["one"]) >= 9  # the same tracks scored
    assert max(calls["one"]) == 3 and max(calls["many"]) == 9  # batched across the cameras of a request
    assert len(calls["many"]) <= len(calls["one"]) / 3
