"""Face blurring with the face detector shipped in the package (BlazeFace full-range on OpenVINO)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from surveillance_ray.config import assets_dir
from surveillance_ray.faces import FaceBlur


@pytest.fixture(scope="module")
def blur() -> FaceBlur:
    return FaceBlur()


def zidane() -> np.ndarray:
    image = cv2.imread(str(assets_dir() / "images" / "zidane.jpg"))
    assert image is not None
    return image


def test_both_faces_of_zidane_are_found_and_blurred(blur: FaceBlur) -> None:
    image = zidane()
    faces, _ = blur.detect(image)
    assert len(faces) == 2
    centres = sorted(((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in faces)
    # the man on the left (looking down) and Zidane on the right, both in the upper part
    assert centres[0][0] < 640 < centres[1][0] and all(y < 450 for _, y in centres)
    out, regions = blur.blur(image)
    assert len(regions) == 2
    for x1, y1, x2, y2 in faces.astype(int):
        face = (slice(y1, y2), slice(x1, x2))
        assert cv2.Laplacian(out[face], cv2.CV_64F).var() < 0.1 * cv2.Laplacian(image[face], cv2.CV_64F).var()
    mask = np.zeros(image.shape[:2], bool)
    for x1, y1, x2, y2 in np.asarray(regions).astype(int):
        mask[max(0, y1):y2, max(0, x1):x2] = True
    assert np.array_equal(out[~mask], image[~mask])  # nothing else touched
    assert len(blur.detect(out)[0]) == 0  # and the detector no longer finds a face there


def test_people_without_a_face_found_have_their_head_region_blurred(blur: FaceBlur) -> None:
    image = np.full((400, 300, 3), 128, np.uint8)
    image[40:360, 100:180] = np.random.default_rng(0).integers(0, 255, (320, 80, 3), np.uint8)  # a "person"
    out, regions = blur.blur(image, np.array([[100, 40, 180, 360]], np.float32))
    assert len(regions) == 1 and blur.stats.heads >= 1
    head, body = (slice(40, 110), slice(100, 180)), (slice(120, 360), slice(100, 180))
    assert out[head].std() < image[head].std() * 0.5 and np.array_equal(out[body], image[body])
    assert len(FaceBlur(head_fallback=False).blur(image, np.array([[100, 40, 180, 360]], np.float32))[1]) == 0


def test_the_model_ships_in_the_package() -> None:
    import surveillance_ray

    model = Path(surveillance_ray.__file__).parent / "models" / "face_detection_full_range.tflite"
    assert model.is_file() and model.stat().st_size > 1_000_000
