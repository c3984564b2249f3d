"""Model runtimes behind the detector: one batch of BGR frames in, boxes per frame out.

- ``OpenVINORuntime`` runs an OpenVINO model exported by ultralytics (``*_openvino_model/``) with the
  OpenVINO runtime alone: no torch in the process (a CUDA build of torch alone costs ~470 MB of
  memory per process). Letterbox, NMS and box scaling reproduce ultralytics' arithmetic
  (``LetterBox``, ``non_max_suppression`` with best-class scores, ``scale_boxes``); colour order,
  scaling and layout run inside the model (OpenVINO's pre-processing), so frames go in as uint8.
- ``UltralyticsRuntime`` runs anything ultralytics loads (``.pt`` on CPU/GPU, ONNX, TensorRT …).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import yaml

logger = logging.getLogger(__name__)

Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (N, 4) float32, confidence (N,), class_id (N,)
MAX_WH = 7680  # ultralytics' per-class box offset for class-aware NMS
PAD_VALUE = 114


class Runtime(Protocol):
    names: dict[int, str]
    kind: str

    def infer(self, images: list[np.ndarray], conf: float, iou: float, max_det: int,
              classes: list[int] | None) -> list[Boxes]: ...


def letterbox_params(shape: tuple[int, int], new_shape: tuple[int, int], auto: bool, stride: int,
                     pad_to: tuple[int, int] | None = None) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """ultralytics' LetterBox: the resized (w, h) and the (top, bottom, left, right) padding; ``pad_to``
    (h, w): resized as for ``new_shape``, padded (centred) to that size instead."""
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    new_unpad = max(round(shape[1] * r), 1), max(round(shape[0] * r), 1)
    target = pad_to or new_shape
    dw, dh = target[1] - new_unpad[0], target[0] - new_unpad[1]
    if auto and pad_to is None:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    return new_unpad, (round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1))


def batch_shape(shapes: list[tuple[int, int]], imgsz: int, stride: int) -> tuple[int, int]:
    """The smallest input that holds each image letterboxed as ultralytics would alone (its ``auto`` rectangle):
    the same scale for every image, centred, padded. One image, or images of one shape: exactly its rectangle;
    images of several shapes (second-opinion crops batched together) share it instead of a full square."""
    sizes = [letterbox_params(shape, (imgsz, imgsz), True, stride) for shape in shapes]
    return (max(unpad[1] + top + bottom for unpad, (top, bottom, _, _) in sizes),
            max(unpad[0] + left + right for unpad, (_, _, left, right) in sizes))


def letterbox(image: np.ndarray, new_shape: tuple[int, int], auto: bool, stride: int,
              pad_to: tuple[int, int] | None = None) -> np.ndarray:
    new_unpad, (top, bottom, left, right) = letterbox_params(image.shape[:2], new_shape, auto, stride, pad_to)
    if image.shape[1::-1] != new_unpad:
        image = cv2.resize(image, new_unpad, interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)


def scale_boxes(boxes: np.ndarray, from_shape: tuple[int, int], to_shape: tuple[int, int]) -> np.ndarray:
    """ultralytics' scale_boxes (xyxy, in place): letterboxed pixels back to the frame's, clipped."""
    gain = min(from_shape[0] / to_shape[0], from_shape[1] / to_shape[1])
    new_h, new_w = (max(round(x * gain), 1) for x in to_shape)
    gain_y, gain_x = new_h / to_shape[0], new_w / to_shape[1]
    pad_x, pad_y = round((from_shape[1] - new_w) / 2 - 0.1), round((from_shape[0] - new_h) / 2 - 0.1)
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - pad_x) / gain_x).clip(0, to_shape[1])
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pad_y) / gain_y).clip(0, to_shape[0])
    return boxes


def nms(prediction: np.ndarray, conf: float, iou: float, max_det: int, classes: list[int] | None) -> Boxes:
    """One image's raw output (4 + nc, anchors): best class per box, conf filter, class-aware NMS."""
    scores_all = prediction[4:]
    cls = scores_all.argmax(0)
    scores = scores_all[cls, np.arange(scores_all.shape[1])]
    keep = scores > conf
    if classes is not None:
        keep &= np.isin(cls, classes)
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
    cx, cy, w, h = prediction[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores, cls = scores[keep], cls[keep]
    offset = (cls * MAX_WH)[:, None].astype(np.float32)
    shifted = xyxy + offset
    # torchvision.ops.nms semantics: highest score first, drop boxes with IoU > iou against a kept one
    kept = cv2.dnn.NMSBoxes(np.column_stack([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]]).tolist(),
                            scores.tolist(), 0.0, iou)
    kept = np.asarray(kept, np.int64).reshape(-1)[:max_det]
    return xyxy[kept].astype(np.float32), scores[kept].astype(np.float32), cls[kept].astype(np.int32)


class OpenVINORuntime:
    """An ultralytics OpenVINO export run by the OpenVINO runtime (dynamic or static input shape)."""

    kind = "openvino"

    def __init__(self, folder: str | Path, imgsz: int, threads: int | None, streams: int = 1) -> None:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        folder = Path(folder)
        xml = folder if folder.suffix == ".xml" else next(folder.glob("*.xml"))
        meta_file = xml.parent / "metadata.yaml"
        meta = yaml.safe_load(meta_file.read_text()) if meta_file.is_file() else {}
        self.names = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        self.stride = int(meta.get("stride", 32))
        core = ov.Core()
        model = core.read_model(str(xml))
        shape = model.input().get_partial_shape()
        self.dynamic = shape.is_dynamic
        self.static_hw = None if self.dynamic else (shape[2].get_length(), shape[3].get_length())
        self.static_batch = None if shape[0].is_dynamic else shape[0].get_length()
        self.imgsz = imgsz
        ppp = PrePostProcessor(model)  # uint8 BGR NHWC in; float RGB NCHW / 255 inside the model
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR)
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        self.streams = max(1, int(streams))
        config: dict = {"PERFORMANCE_HINT": "LATENCY"}
        if self.streams > 1:  # several passes at once, the threads shared out among them
            config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self._model = core.compile_model(ppp.build(), "CPU", config)
        self._requests = [self._model.create_infer_request() for _ in range(self.streams)]
        if not self.names:
            raise ValueError(f"{meta_file}: no class names (not an ultralytics export?)")

    def infer(self, images: list[np.ndarray], conf: float, iou: float, max_det: int,
              classes: list[int] | None) -> list[Boxes]:
        if self.static_hw:
            batch = np.stack([letterbox(im, self.static_hw, False, self.stride) for im in images])
        else:
            square, common = (self.imgsz, self.imgsz), batch_shape([im.shape[:2] for im in images], self.imgsz,
                                                                  self.stride)
            batch = np.stack([letterbox(im, square, False, self.stride, common) for im in images])
        raw = self._run(batch)
        results = []
        for image, prediction in zip(images, raw):
            xyxy, scores, cls = nms(prediction, conf, iou, max_det, classes)
            results.append((scale_boxes(xyxy, batch.shape[1:3], image.shape[:2]), scores, cls))
        return results

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """The batch's pieces: the static batch's size each, else ``streams`` near-equal pieces."""
        if self.static_batch:
            return [(i, min(n, i + self.static_batch)) for i in range(0, n, self.static_batch)]
        pieces = min(self.streams, n)
        bounds = [round(i * n / pieces) for i in range(pieces + 1)]
        return list(zip(bounds[:-1], bounds[1:]))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw output for ``batch``, its pieces run on the streams side by side."""
        chunks = self._chunks(len(batch))
        outputs: list[np.ndarray] = []
        for wave in range(0, len(chunks), len(self._requests)):
            running = list(zip(self._requests, chunks[wave:wave + len(self._requests)]))
            for request, (start, stop) in running:
                request.start_async(batch[start:stop])
            for request, _ in running:
                request.wait()
                outputs.append(request.get_output_tensor(0).data.copy())
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]


class UltralyticsRuntime:
    """Whatever ``ultralytics.YOLO`` loads; imports torch (only detector processes use this)."""

    kind = "ultralytics"

    def __init__(self, weights: str, imgsz: int, device: str, half: bool, threads: int) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "False")
        import torch
        from ultralytics import YOLO

        self._torch = torch
        self.model = YOLO(weights, task="detect")
        self.names = {int(k): str(v) for k, v in self.model.names.items()}
        self.imgsz, self.device, self.half, self.threads = imgsz, device, half, threads

    def _set_threads(self) -> None:
        # ultralytics sets torch's threads to cpu_count - 1 when it builds the predictor: keep ours
        if self.device == "cpu" and self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)

    def infer(self, images: list[np.ndarray], conf: float, iou: float, max_det: int,
              classes: list[int] | None) -> list[Boxes]:
        self._set_threads()
        results = self.model.predict(images, imgsz=self.imgsz, conf=conf, iou=iou, max_det=max_det, classes=classes,
                                     device=self.device, quantize=16 if self.half else None, verbose=False)
        self._set_threads()
        out = []
        for r in results:
            b = r.boxes
            out.append((b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy().astype(np.float32),
                        b.cls.cpu().numpy().astype(np.int32)))
        return out


def is_openvino_folder(weights: str) -> bool:
    path = Path(weights)
    return (path.is_dir() and any(path.glob("*.xml"))) or path.suffix == ".xml"
