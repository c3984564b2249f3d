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
