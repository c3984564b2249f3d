"""Second opinions: a track's box cut from the full-resolution frame, and how well the detector's answer
on that crop agrees with the track (``MultiModelAgreementRule``)."""

from __future__ import annotations

import numpy as np

from surveillance_ray.messages import Detections

MARGIN = 0.25  # context around the box, as a share of its size
MIN_IOU = 0.3


def crop_around(image: np.ndarray, xyxy: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The box with a margin, cut from ``image``, and the box in the crop's pixels."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = xyxy
    mx, my = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
    a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
    c, d = int(min(w, x2 + mx + 1)), int(min(h, y2 + my + 1))
    crop = np.ascontiguousarray(image[b:max(d, b + 2), a:max(c, a + 2)])
    return crop, np.array([x1 - a, y1 - b, x2 - a, y2 - b], np.float32)


def pad_crop(crop: np.ndarray, side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``crop`` centred on a grey canvas at least ``side`` pixels each way (the detector's letterbox grey), so
    that it is enlarged less; (canvas, (x, y) of the crop in it)."""
    h, w = crop.shape[:2]
    height, width = max(h, side), max(w, side)
    if (height, width) == (h, w):
        return crop, (0, 0)
    x0, y0 = (width - w) // 2, (height - h) // 2
    canvas = np.full((height, width, 3), 114, np.uint8)
    canvas[y0:y0 + h, x0:x0 + w] = crop
    return canvas, (x0, y0)


def agreement(dets: Detections, box: np.ndarray, class_id: int) -> float:
    """The best score of a detection of ``class_id`` overlapping ``box`` at IoU >= 0.3 (0: none)."""
    keep = dets.class_id == class_id
    if not keep.any():
        return 0.0
    boxes, scores = dets.xyxy[keep], dets.confidence[keep]
    ix1, iy1 = np.maximum(boxes[:, 0], box[0]), np.maximum(boxes[:, 1], box[1])
    ix2, iy2 = np.minimum(boxes[:, 2], box[2]), np.minimum(boxes[:, 3], box[3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    iou = inter / np.maximum(union, 1e-6)
    good = iou >= MIN_IOU
    return float(scores[good].max()) if good.any() else 0.0
