import numpy as np

from surveillance_ray.messages import Detections
from surveillance_ray.opinion import agreement, crop_around, pad_crop


def test_crop_keeps_a_margin_and_maps_the_box() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    crop, box = crop_around(image, (50.0, 20.0, 90.0, 60.0))  # 40 x 40 box, 10 px margin each side
    assert crop.shape == (61, 61, 3) and np.array_equal(box, [10, 10, 50, 50])
    assert np.array_equal(crop[10, 10], image[20, 50])
    edge, box = crop_around(image, (0.0, 0.0, 20.0, 100.0))  # clipped at the frame's border
    assert edge.shape[:2] == (100, 26) and np.array_equal(box, [0, 0, 20, 100])


def test_agreement_is_the_best_overlapping_detection_of_the_class() -> None:
    box = np.array([10, 10, 50, 90], np.float32)
    dets = Detections(np.array([[12, 8, 52, 88], [11, 10, 49, 90], [200, 200, 240, 280]], np.float32),
                      np.array([0.6, 0.8, 0.95], np.float32), np.array([0, 2, 0], np.int32))
    assert agreement(dets, box, class_id=0) == np.float32(0.6)  # the car and the far-away person do not count
    assert agreement(dets, box, class_id=2) == np.float32(0.8)
    assert agreement(dets, box, class_id=5) == 0.0
    assert agreement(Detections.empty(), box, 0) == 0.0


def test_a_padded_crop_keeps_its_pixels_centred_on_grey() -> None:
    crop = np.full((60, 20, 3), 7, np.uint8)
    canvas, (x0, y0) = pad_crop(crop, 160)  # at imgsz 640: enlarged 4x instead of 10.7x
    assert canvas.shape == (160, 160, 3) and (x0, y0) == (70, 50)
    assert np.array_equal(canvas[y0:y0 + 60, x0:x0 + 20], crop) and canvas[0, 0, 0] == 114 and canvas.sum() == (
        160 * 160 - 60 * 20) * 3 * 114 + 60 * 20 * 3 * 7
    big = np.zeros((200, 300, 3), np.uint8)
    assert pad_crop(big, 160)[0] is big and pad_crop(big, 160)[1] == (0, 0)  # large enough: as it is
    wide, offset = pad_crop(np.zeros((100, 300, 3), np.uint8), 160)
    assert wide.shape == (160, 300, 3) and offset == (0, 30)
