"""YOLO detection with ultralytics: any format it loads, compact numpy output, per-class thresholds."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from surveillance_ray.config import DetectorConfig
from surveillance_ray.messages import Detections

logger = logging.getLogger(__name__)


class DetectorError(RuntimeError):
    """The model cannot be loaded or configured; the message names the field."""


class Detector:
    """Loads a model once and detects on batches of frames."""

    def __init__(self, config: DetectorConfig) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "False")
        import torch  # heavy: only detector processes import it
        from ultralytics import YOLO

        self.config = config
        self._torch = torch
        self.threads = config.inference_threads
        try:
            self.model = YOLO(config.weights, task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise DetectorError(f"detector.weights: cannot load model {config.weights!r}: {exc}") from None
        self.names: dict[int, str] = {int(k): str(v) for k, v in self.model.names.items()}
        ids = {name: i for i, name in self.names.items()}
        unknown = [n for n in [*config.class_conf, *(config.classes or [])] if n not in ids]
        if unknown:
            raise DetectorError(f"detector.class_conf/classes: unknown class name(s) {unknown}; "
                                f"the model knows e.g. {list(ids)[:5]}")
        self.class_ids = sorted(ids[n] for n in config.classes) if config.classes else None
        self.thresholds = np.full(max(self.names) + 1, config.conf, np.float32)
        for name, conf in config.class_conf.items():
            self.thresholds[ids[name]] = conf
        self.batches = 0
        self.frames = 0
        self._lock = threading.Lock()  # the ultralytics predictor is not thread-safe
        # The first call builds the predictor, which resets torch's threads; _forward sets ours.
        self._forward([np.zeros((config.imgsz, config.imgsz, 3), np.uint8)])

    def _set_threads(self) -> None:
        if self.config.device == "cpu" and self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """One forward pass over ``images`` (HxWx3 uint8 BGR, any sizes); boxes in each image's pixels."""
        if not images:
            return []
        detections = self._forward(images)
        self.batches += 1
        self.frames += len(images)
        return detections

    def _forward(self, images: list[np.ndarray]) -> list[Detections]:
        c = self.config
        with self._lock:
            self._set_threads()
            results = self.model.predict(
                images, imgsz=c.imgsz, conf=float(self.thresholds.min()), iou=c.iou, max_det=c.max_det,
                classes=self.class_ids, device=c.device, quantize=16 if c.half else None, verbose=False,
            )
            self._set_threads()
        return [self._compact(r.boxes) for r in results]

    def _compact(self, boxes: object) -> Detections:
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        conf = boxes.conf.cpu().numpy().astype(np.float32)
        cls = boxes.cls.cpu().numpy().astype(np.int32)
        keep = conf >= self.thresholds[cls]
        return Detections(xyxy[keep], conf[keep], cls[keep])

    def health(self) -> dict[str, object]:
        t0 = time.perf_counter()
        self._forward([np.zeros((64, 64, 3), np.uint8)])
        return {"ok": True, "probe_ms": round((time.perf_counter() - t0) * 1000, 1),
                "torch_threads": self._torch.get_num_threads(), "device": self.config.device}
