"""YOLO detection: the resolved model on its runtime, compact numpy output, per-class thresholds.

``surveillance_ray.export.resolve`` decides what runs (on a CPU a ``.pt`` becomes an OpenVINO INT8
export by default); OpenVINO folders run on ``OpenVINORuntime`` (no torch), everything else on
ultralytics. Detections are those of calling that runtime directly.
"""

from __future__ import annotations

import math
import threading
from collections import Counter

import numpy as np

from surveillance_ray.config import DetectorConfig
from surveillance_ray.export import ExportError, ResolvedModel, resolve
from surveillance_ray.messages import Detections
from surveillance_ray.opinion import pad_crop
from surveillance_ray.runtimes import OpenVINORuntime, Runtime, UltralyticsRuntime, is_openvino_folder


class DetectorError(RuntimeError):
    """The model cannot be loaded or configured; the message names the field."""


def load_runtime(resolved: ResolvedModel, config: DetectorConfig) -> Runtime:
    if is_openvino_folder(resolved.weights) and config.device == "cpu":
        return OpenVINORuntime(resolved.weights, config.imgsz, config.inference_threads, config.inference_streams)
    return UltralyticsRuntime(resolved.weights, config.imgsz, config.device, config.half, config.inference_threads)


class Detector:
    """Loads a model once and detects on batches of frames."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.threads = config.inference_threads
        try:
            self.resolved = resolve(config)
            self.runtime = load_runtime(self.resolved, config)
        except ExportError as exc:
            raise DetectorError(str(exc)) from None
        except Exception as exc:  # the runtimes raise many types for a bad file
            raise DetectorError(f"detector.weights: cannot load model {config.weights!r}: {exc}") from None
        self.names = self.runtime.names
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
        self.aux: Counter = Counter()  # auxiliary images by kind
        self._probe_shape = (config.imgsz * 3 // 4, config.imgsz, 3)  # health probes reuse a frame's shape
        self._lock = threading.Lock()  # runtimes are not thread-safe
        self._forward([np.zeros(self._probe_shape, np.uint8)])  # load and warm up now, not on the first frame

    def detect(self, images: list[np.ndarray], crops: bool = False) -> list[Detections]:
        """Forward passes of at most ``max_batch_size`` frames over ``images`` (HxWx3 uint8 BGR, any sizes);
        boxes in each image's pixels. ``crops``: second-opinion crops (``detect_aux``)."""
        if crops:
            return self.detect_aux(images, ["crop"] * len(images))
        out: list[Detections] = []
        for dets in self._passes(images):
            out += dets
            self.batches += 1
            self.frames += len(dets)
        if images:
            self._probe_shape = images[0].shape
        return out

    def detect_aux(self, images: list[np.ndarray], kinds: list[str]) -> list[Detections]:
        """Auxiliary images (``kinds``: "crop" for second opinions, "upload", "probe"), batched together: each
        is letterboxed at its own scale into the batch's smallest common shape. Crops are padded first when
        ``crop_max_enlarge`` caps their enlargement."""
        most = self.config.crop_max_enlarge
        prepared, offsets = [], []
        for image, kind in zip(images, kinds):
            self.aux[kind] += 1
            offset = (0, 0)
            if kind == "crop" and most is not None:
                image, offset = pad_crop(image, math.ceil(self.config.imgsz / most))
            prepared.append(image)
            offsets.append(offset)
        out = [d for dets in self._passes(prepared) for d in dets]
        return [d if (x0, y0) == (0, 0) else
                Detections(d.xyxy - np.array([x0, y0, x0, y0], np.float32), d.confidence, d.class_id)
                for d, (x0, y0) in zip(out, offsets)]

    def _passes(self, images: list[np.ndarray]) -> list[list[Detections]]:
        """``images`` in forward passes of at most ``max_batch_size``: each pass's detections."""
        step = self.config.max_batch_size
        return [self._forward(images[start:start + step]) for start in range(0, len(images), step)]

    @property
    def crops(self) -> int:
        return self.aux["crop"]

    def _forward(self, images: list[np.ndarray]) -> list[Detections]:
        c = self.config
        with self._lock:
            boxes = self.runtime.infer(images, float(self.thresholds.min()), c.iou, c.max_det, self.class_ids)
        return [self._compact(*b) for b in boxes]

    def _compact(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> Detections:
        keep = conf >= self.thresholds[cls]
        return Detections(xyxy[keep], conf[keep], cls[keep])

    def describe(self) -> dict[str, object]:
        """What runs: backend, runtime, the file loaded, threads, the export's accuracy check, and why this
        backend (the frames/s each candidate made on this CPU)."""
        card = self.resolved.card or {}
        choice = card.get("backend_choice")
        if choice and "chosen" not in choice:  # a card's record of every CPU's choice: not this run's
            choice = None
        return {"backend": self.resolved.backend, "runtime": self.runtime.kind, "weights": self.resolved.weights,
                "source": self.resolved.source, "threads": self.threads,
                "streams": getattr(self.runtime, "streams", 1),
                "agreement_with_pt": card.get("agreement_with_pt"),
                "backend_choice": {k: choice.get(k) for k in ("chosen", "fps", "batch", "cpu")} if choice else None}

    def probe_image(self) -> np.ndarray:
        """A blank image of the latest frames' shape: a health probe's pass."""
        return np.zeros(self._probe_shape, np.uint8)
