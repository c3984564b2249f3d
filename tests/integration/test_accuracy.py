"""PETS09-S2L1 frames 1-269 through the distributed path vs the model called directly (imgsz 640)."""

import json
from pathlib import Path

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.evaluate import (PETS_GT, PETS_GT_FRAMES, PETS_GT_SCALE, evaluate, hypotheses_from_track_log,
                                       load_mot_gt, model_hypotheses)
from surveillance_ray.pipeline import run_pipeline

from .conftest import settings_for

FRAMES = PETS_GT_FRAMES


def test_pipeline_loses_nothing_against_ground_truth(ray_session: None, tmp_path: Path, assets: Path,
                                                     pets_video: Path) -> None:
    gt = load_mot_gt(assets / PETS_GT, scale=PETS_GT_SCALE)
    cams = [{"id": "pets", "source": str(pets_video), "realtime": False}]
    result = run_pipeline(settings_for(tmp_path, cams, detector={"imgsz": 640}, run={"max_frames": len(FRAMES)}))
    assert result.summary["streams"]["pets"]["frames_analysed"] == len(FRAMES)
    rows = [json.loads(line) for line in (result.run_dir / "tracks.jsonl").open()]
    dets = evaluate(gt, hypotheses_from_track_log(rows, "pets", "detections"), FRAMES)
    tracks = evaluate(gt, hypotheses_from_track_log(rows, "pets", "tracks"), FRAMES)
    assert dets["precision"] >= 0.70 and dets["recall"] >= 0.85
    assert tracks["precision"] >= 0.70 and tracks["recall"] >= 0.85

    direct = model_hypotheses(Detector(DetectorConfig(imgsz=640)), pets_video, FRAMES)  # same frames, no Ray
    assert len(direct) == len(FRAMES)
    reference = evaluate(gt, direct, FRAMES)
    assert (dets["true_positives"], dets["num_false_positives"]) == (
        reference["true_positives"], reference["num_false_positives"])
