"""PETS09-S2L1 frames 1-269 through the distributed path vs the model called directly (imgsz 640)."""

import json
from pathlib import Path

import cv2
import numpy as np

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.evaluate import evaluate, hypotheses_from_track_log, load_mot_gt
from surveillance_ray.pipeline import run_pipeline

from .conftest import settings_for

FRAMES = range(269)


def test_pipeline_loses_nothing_against_ground_truth(ray_session: None, tmp_path: Path, assets: Path,
                                                     pets_video: Path) -> None:
    gt = load_mot_gt(assets / "mot/PETS09-S2L1/gt/gt.txt", scale=0.625)
    cams = [{"id": "pets", "source": str(pets_video), "realtime": False}]
    result = run_pipeline(settings_for(tmp_path, cams, detector={"imgsz": 640}, run={"max_frames": len(FRAMES)}))
    assert result.summary["streams"]["pets"]["frames_analysed"] == len(FRAMES)
    rows = [json.loads(line) for line in (result.run_dir / "tracks.jsonl").open()]
    dets = evaluate(gt, hypotheses_from_track_log(rows, "pets", "detections"), FRAMES)
    tracks = evaluate(gt, hypotheses_from_track_log(rows, "pets", "tracks"), FRAMES)
    assert dets["precision"] >= 0.70 and dets["recall"] >= 0.85
    assert tracks["precision"] >= 0.70 and tracks["recall"] >= 0.85

    detector = Detector(DetectorConfig(imgsz=640))  # the model called directly, same frames
    cap, direct = cv2.VideoCapture(str(pets_video)), {}
    for i in FRAMES:
        d = detector.detect([cap.read()[1]])[0]
        direct[i] = np.column_stack([np.arange((d.class_id == 0).sum()), d.xyxy[d.class_id == 0]])
    reference = evaluate(gt, direct, FRAMES)
    assert (dets["true_positives"], dets["num_false_positives"]) == (
        reference["true_positives"], reference["num_false_positives"])
