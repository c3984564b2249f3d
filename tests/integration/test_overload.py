"""Overload on purpose: 16 PETS cameras in real time at imgsz 640, several times what the detector does on a
2-core CPU. The pipeline sheds load instead of collapsing: it keeps the detector busy, every camera's rate falls
together, latency stays bounded, second opinions stay within the auxiliary budget (the rest counted as skipped),
and every frame read is analysed or dropped with its reason."""

import time
from pathlib import Path

import cv2

from surveillance_ray.capture import fit_to_model
from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.pipeline import run_pipeline
from tests.integration.conftest import settings_for

CAMERAS, IMGSZ = 16, 640


def detector_alone(pets_video: Path, seconds: float = 4.0) -> float:
    """Frames/s of the detector on its own, in this process, at the deployment's batch (the pipeline's wall)."""
    detector = Detector(DetectorConfig(imgsz=IMGSZ))
    cap = cv2.VideoCapture(str(pets_video))
    frames = [fit_to_model(cap.read()[1], IMGSZ)[0] for _ in range(8)]
    detector.detect(frames)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        detector.detect(frames)
        n += len(frames)
    return n / (time.perf_counter() - t0)


def test_an_overloaded_pipeline_sheds_load_evenly_with_bounded_latency(ray_session, tmp_path: Path,
                                                                      pets_video: Path) -> None:
    alone = detector_alone(pets_video)
    settings = settings_for(tmp_path, [{"id": f"cam{i}", "source": str(pets_video)} for i in range(CAMERAS)],
                            detector={"imgsz": IMGSZ}, run={"duration_s": 30, "track_log": False})
    summary = run_pipeline(settings).summary
    streams, total = summary["streams"], summary["total"]
    offered = sum(s["frames_read"] for s in streams.values())
    assert total["frames_dropped"] > 0.3 * offered, "not overloaded: the test proves nothing"

    # every frame read is analysed or dropped, with a reason the pipeline knows
    for cid, s in streams.items():
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"] and s["in_pipeline"] == 0, cid
        assert set(s["dropped"]) <= {"overflow", "superseded", "stale"}, (cid, s["dropped"])

    # no collapse: the detector is kept working for the cameras. Alone it has both cores; here it shares them
    # with decoding 160 frames/s, tracking, validation and Ray (0.41-0.48x measured on an AVX-512 VNNI EPYC;
    # the previous release collapsed to 0.03-0.05x, second-opinion crops queued in front of the frames)
    fps = [s["fps_analysed"] for s in streams.values()]
    scheduler = summary["run"]["detector"]["scheduler"]
    assert total["fps_analysed"] >= 0.3 * alone, (total["fps_analysed"], alone)
    assert scheduler["busy_share"] >= 0.6, scheduler

    # fair: every camera's rate falls together; latency bounded (drop, don't queue)
    assert min(fps) >= 0.7 * (sum(fps) / len(fps)), fps
    assert total["latency_ms"]["p95"] <= 2000, total["latency_ms"]

    # second opinions within their share of the detector, each answered or skipped with its reason
    budget = summary["run"]["detector"]["aux_share_budget"]
    assert scheduler["aux_share"] <= budget + 0.03, scheduler
    opinions = total["second_opinions"]
    skipped = {k: n for k, n in opinions.items() if k.startswith("skipped:")}
    assert opinions["asked"] > 0 and opinions["asked"] == opinions.get("answered", 0) + sum(skipped.values())
    assert set(skipped) <= {"skipped:budget", "skipped:queue_full", "skipped:backlog"}, skipped


def test_frames_too_old_for_the_detector_are_dropped_stale_and_latency_stays_bounded(ray_session, tmp_path: Path,
                                                                                    pets_video: Path) -> None:
    """Four ingest actors' requests queue at one replica; with max_frame_age_s at 0.15 s many frames are older than
    that when their pass would begin: they are not run, their cameras count them ('stale'), every frame is still
    analysed or dropped, and what is analysed reaches the validator within a bound set by the age limit."""
    settings = settings_for(tmp_path, [{"id": f"cam{i}", "source": str(pets_video)} for i in range(8)],
                            detector={"imgsz": IMGSZ, "max_frame_age_s": 0.15}, ingest={"cameras_per_actor": 2},
                            run={"duration_s": 15, "track_log": False})
    summary = run_pipeline(settings).summary
    streams, total = summary["streams"], summary["total"]
    assert total["dropped"].get("stale", 0) > 0, total["dropped"]
    assert summary["run"]["detector"]["scheduler"]["skipped"].get("frame:stale") == total["dropped"]["stale"]
    for cid, s in streams.items():
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"] and s["in_pipeline"] == 0, cid
        assert s["frames_analysed"] > 0, cid
    # a frame that ran was at most 0.15 s old when its pass began: the pass, tracking and validation follow
    assert total["latency_ms"]["p95"] <= 1500, total["latency_ms"]
