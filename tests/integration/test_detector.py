"""The Serve detector deployment: real model, batching across callers, thresholds, threads, health."""

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
from ray import serve

from deployments.detector import detector_app
from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector, DetectorError


@pytest.fixture(scope="module")
def handle(ray_session: None) -> Iterator[object]:
    cfg = DetectorConfig(imgsz=320, max_batch_size=4, batch_wait_timeout_s=0.05)
    yield serve.run(detector_app(cfg), name="test-detector", route_prefix=None)
    serve.delete("test-detector")


def test_detects_bus_and_people(handle, assets: Path) -> None:
    names = handle.names.remote().result()
    assert names[0] == "person" and names[5] == "bus"
    d = handle.detect.remote(cv2.imread(str(assets / "images/bus.jpg"))).result()
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (len(d), 4)  # compact arrays, not ultralytics objects
    classes = d.class_id.tolist()
    assert classes.count(5) == 1 and classes.count(0) >= 3  # 4 people at imgsz 640, 3 clear ones at 320
    assert d.confidence.min() >= 0.25


def test_frames_from_many_callers_are_batched(handle, pets_video: Path) -> None:
    cap = cv2.VideoCapture(str(pets_video))
    frames = [cap.read()[1] for _ in range(8)]
    before = handle.stats.remote().result()
    responses = [handle.detect.remote(f) for f in frames]  # concurrent requests, as from 8 cameras
    results = [r.result() for r in responses]
    after = handle.stats.remote().result()
    assert all(len(r) > 0 for r in results)
    assert after["frames"] - before["frames"] == 8
    assert after["batches"] - before["batches"] < 8  # at least one batch held several frames
    assert max(after["batch_sizes"]) > 1 and max(after["batch_sizes"]) <= 4
    assert after["threads"] == 2  # the replica's CPUs, not ultralytics' cpu_count-1


def test_one_request_carries_several_frames(handle, pets_video: Path) -> None:
    cap = cv2.VideoCapture(str(pets_video))
    frames = [cap.read()[1] for _ in range(5)]
    before = handle.stats.remote().result()
    together = handle.detect_frames.remote(frames).result()
    alone = [handle.detect.remote(f).result() for f in frames]
    after = handle.stats.remote().result()
    assert after["requests"] - before["requests"] == 6 and after["frames"] - before["frames"] == 10
    assert [len(d) for d in together] == [len(d) for d in alone] and all(len(d) for d in together)
    for a, b in zip(together, alone):
        assert np.array_equal(a.class_id, b.class_id) and np.allclose(a.xyxy, b.xyxy, atol=0.05)


def test_a_live_frame_too_old_when_its_pass_begins_is_answered_stale_not_run(handle, pets_video: Path) -> None:
    """max_frame_age_s (1 s by default): a frame captured 5 s ago is not run; a fresh one and one without an age
    (a file's frame that waits for the detector) are, in the request's order."""
    cap = cv2.VideoCapture(str(pets_video))
    frames = [cap.read()[1] for _ in range(3)]
    before = handle.stats.remote().result()
    out = handle.detect_frames.remote(frames, True, [0.01, 5.0, None]).result()
    after = handle.stats.remote().result()
    assert out[1] == "stale" and len(out[0]) > 0 and len(out[2]) > 0
    assert after["frames"] - before["frames"] == 2  # the stale one cost no detector time
    stale = after["scheduler"]["skipped"].get("frame:stale", 0) - before["scheduler"]["skipped"].get("frame:stale", 0)
    assert stale == 1
    assert handle.detect_frames.remote(frames[:1], True, [9.0]).result() == ["stale"]  # nothing left to run


def test_streams_run_a_pass_in_pieces_side_by_side_with_the_same_detections(pets_video: Path) -> None:
    """Two OpenVINO streams (a pass's frames split in two, run at once, a thread each) find what one stream of two
    threads finds, for any batch size, odd ones included."""
    from surveillance_ray.export import resolve
    from surveillance_ray.runtimes import OpenVINORuntime

    cfg = DetectorConfig(imgsz=320)
    cap = cv2.VideoCapture(str(pets_video))
    frames = [cv2.resize(cap.read()[1], (320, 240)) for _ in range(7)]
    folder = resolve(cfg).weights
    one, two = OpenVINORuntime(folder, 320, 2, 1), OpenVINORuntime(folder, 320, 2, 2)
    assert (one.streams, two.streams) == (1, 2) and two._chunks(7) == [(0, 4), (4, 7)] and two._chunks(1) == [(0, 1)]
    for n in (1, 2, 7):
        a, b = one.infer(frames[:n], 0.25, 0.7, 300, None), two.infer(frames[:n], 0.25, 0.7, 300, None)
        assert sum(len(x[0]) for x in a) >= 3 * n
        for (xa, sa, ca), (xb, sb, cb) in zip(a, b, strict=True):
            assert np.array_equal(ca, cb) and np.allclose(xa, xb, atol=0.05) and np.allclose(sa, sb, atol=1e-3)
    assert DetectorConfig(threads=2).inference_streams == 2 and DetectorConfig(threads=2, streams=1).inference_streams == 1
    assert DetectorConfig(threads=1, streams=4).inference_streams == 1  # never more streams than threads


def test_per_class_thresholds_and_class_filter(weights: Path, assets: Path) -> None:
    image = cv2.imread(str(assets / "images/bus.jpg"))
    base = Detector(DetectorConfig(weights=str(weights), imgsz=640)).detect([image])[0]
    strict = Detector(DetectorConfig(weights=str(weights), imgsz=640, class_conf={"person": 0.88})).detect([image])[0]
    people = base.confidence[base.class_id == 0]
    assert (strict.class_id == 0).sum() == (people >= 0.88).sum() < len(people)
    assert (strict.class_id == 5).sum() == 1  # other classes keep the default threshold
    only_bus = Detector(DetectorConfig(weights=str(weights), imgsz=640, classes=["bus"])).detect([image])[0]
    assert only_bus.class_id.tolist() == [5]


def test_unknown_class_name_is_a_clear_error(weights: Path) -> None:
    with pytest.raises(DetectorError, match="unknown class name"):
        Detector(DetectorConfig(weights=str(weights), class_conf={"persn": 0.5}))


def test_unloadable_model_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DetectorError, match="detector.weights: cannot load model"):
        Detector(DetectorConfig(weights=str(bad)))


@pytest.mark.parametrize("model", ["yolov8n_int8_dynamic.onnx", "yolov8n_int8_openvino_model"])
def test_other_formats_load(assets: Path, model: str) -> None:
    d = Detector(DetectorConfig(weights=str(assets / "weights" / model), imgsz=640))
    out = d.detect([cv2.imread(str(assets / "images/bus.jpg"))])[0]
    assert d.names[0] == "person" and 5 in out.class_id.tolist() and (out.class_id == 0).sum() >= 3


def test_auxiliary_images_go_through_the_scheduler_and_are_accounted(handle, pets_video: Path) -> None:
    """Crops and uploads (``detect_aux``): answered with their detections, counted apart from frames, within the
    replica's auxiliary share; the health check needs no pass while frames go through."""
    cap = cv2.VideoCapture(str(pets_video))
    frame = cap.read()[1]
    crops = [frame[40:200, 50:130], frame[100:330, 280:400], np.ascontiguousarray(frame[:, :200])]
    before = handle.stats.remote().result()
    answers = handle.detect_aux.remote(crops, "crop").result()
    assert len(answers) == 3 and all(a.skipped is None and a.detections is not None for a in answers)
    [upload] = handle.detect_aux.remote([frame], "upload").result()
    assert upload.detections is not None and (upload.detections.class_id == 0).sum() >= 3
    after = handle.stats.remote().result()
    assert after["aux"]["crop"] - before["aux"].get("crop", 0) == 3 and after["aux"]["upload"] >= 1
    assert after["frames"] == before["frames"]  # auxiliary work is not counted as frames
    scheduler = after["scheduler"]
    assert scheduler["images"]["crop"] >= 3 and scheduler["busy_s"]["aux"] > 0
    assert 0 < scheduler["aux_share"] < 1 and after["aux_share_budget"] == 0.15


def test_auto_backend_is_the_faster_export_on_this_cpu_and_the_card_says_so(tmp_path: Path, monkeypatch) -> None:
    import shutil
    from dataclasses import replace

    from surveillance_ray.export import _resolve_one, _timed_choice, resolve
    from surveillance_ray.hardware import cpu_label

    cfg = DetectorConfig(imgsz=320)
    resolved = resolve(cfg)
    choice = resolved.card["backend_choice"]
    assert set(choice["fps"]) == {"openvino-int8", "openvino"} and all(v > 0 for v in choice["fps"].values())
    assert choice["chosen"] == max(choice["fps"], key=choice["fps"].get) == resolved.backend
    assert choice["cpu"] == cpu_label() and choice["batch"] == cfg.max_batch_size
    assert "avx2" in choice["cpu_info"]["isa"] or choice["cpu_info"]["isa"] == []
    # where OpenVINO runs FP32 models below FP32 (bf16 on AMX), the FP32 export passed the accuracy gate too
    assert choice["fp32_precision"] in ("f32", "bf16", "f16")
    checked = choice["fp32_agreement_with_pt"]
    assert (checked is None) == (choice["fp32_precision"] == "f32")
    assert checked is None or choice["chosen"] != "openvino" or checked["f1"] >= 0.9
    stored = __import__("json").loads(Path(resolved.weights + ".card.json").read_text())
    assert any(c["chosen"] == resolved.backend for c in stored["backend_choice"].values())  # on the card too
    # an INT8 export that failed its accuracy check is no candidate: FP32 runs, the card says why (in a cache of
    # its own: this made-up choice must not stay in the real one)
    fp32 = _resolve_one(Path(cfg.weights), "openvino", cfg)
    copy = tmp_path / "models" / Path(fp32.weights).name
    shutil.copytree(fp32.weights, copy)
    shutil.copy(fp32.weights + ".card.json", str(copy) + ".card.json")
    monkeypatch.setenv("SURVEILLANCE_CACHE", str(tmp_path))
    only = _timed_choice(Path(cfg.weights), cfg, [replace(fp32, weights=str(copy))], "F1 0.5 < 0.9")
    assert only["chosen"] == "openvino" and only["int8_rejected"] == "F1 0.5 < 0.9" and only["fps"] == {}
    recorded = __import__("json").loads(Path(str(copy) + ".card.json").read_text())["backend_choice"].values()
    assert any(c.get("int8_rejected") == "F1 0.5 < 0.9" and c["chosen"] == "openvino" for c in recorded)
