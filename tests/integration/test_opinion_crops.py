"""Second-opinion crops of PETS09-S2L1's small people (40-60 px tall) with the real model (OpenVINO INT8,
imgsz 640), in-process: enlarged to 640 as they are, and padded so that they are enlarged at most 4x."""

from pathlib import Path

import cv2
import numpy as np

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.evaluate import PETS_GT, PETS_GT_SCALE, load_mot_gt
from surveillance_ray.opinion import agreement, crop_around


def test_padding_small_peoples_crops_lets_the_detector_find_them(assets: Path, pets_video: Path) -> None:
    gt = load_mot_gt(assets / PETS_GT, scale=PETS_GT_SCALE)
    plain, capped = Detector(DetectorConfig(imgsz=640)), Detector(DetectorConfig(imgsz=640, crop_max_enlarge=4))
    video = cv2.VideoCapture(str(pets_video))
    scores = []
    for index in range(141):
        ok, image = video.read()
        assert ok
        if index % 10 or index not in gt:
            continue
        for person in gt[index]:  # every labelled person of every 10th frame
            crop, box = crop_around(image, tuple(float(v) for v in person[1:]))
            [a], [b] = plain.detect([crop], crops=True), capped.detect([crop], crops=True)
            scores.append((agreement(a, box, 0), agreement(b, box, 0)))
    found_plain = sum(a >= 0.25 for a, _ in scores) / len(scores)
    found_capped = sum(b >= 0.25 for _, b in scores) / len(scores)
    # measured on 85 crops: 48 % found as they are (crops 58-110 px tall enlarged 6-11x), 82 % padded; the boxes
    # are mapped back into the crop's pixels (the agreement needs IoU >= 0.3 with the person's box there)
    assert len(scores) > 60 and found_plain < 0.6 and found_capped > 0.72, (found_plain, found_capped)
    assert capped.crops == plain.crops == len(scores) and capped.frames == 0


def test_crops_batched_together_answer_as_each_alone(pets_video: Path) -> None:
    """Second-opinion crops of several shapes in one pass (each at its own scale, in the batch's smallest common
    shape) find what each finds alone: the same people, boxes within a few pixels."""
    detector = Detector(DetectorConfig(imgsz=320))
    video = cv2.VideoCapture(str(pets_video))
    image = video.read()[1]
    boxes = [(60.0, 80.0, 110.0, 220.0), (200.0, 40.0, 240.0, 150.0), (300.0, 100.0, 380.0, 330.0),
             (10.0, 10.0, 90.0, 60.0)]
    crops = [crop_around(image, b)[0] for b in boxes]
    together = detector.detect_aux(crops, ["crop"] * len(crops))
    alone = [detector.detect_aux([c], ["crop"])[0] for c in crops]
    assert detector.aux["crop"] == 2 * len(crops) and detector.frames == 0
    for a, b in zip(together, alone):
        strong_a, strong_b = a.confidence >= 0.4, b.confidence >= 0.4
        assert sorted(a.class_id[strong_a]) == sorted(b.class_id[strong_b])
        for box in b.xyxy[strong_b]:
            assert np.abs(a.xyxy[strong_a] - box).max(axis=1).min() < 4.0
