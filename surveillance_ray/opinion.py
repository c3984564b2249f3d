"""Second opinions: a track's box cut from the full-resolution frame, how well the detector's answer on
that crop agrees with the track (``MultiModelAgreementRule``), and ``SecondOpinions``, an ingest actor's
bounded, batched way of asking the detector for them."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Any, Callable

import numpy as np

from surveillance_ray.messages import AuxAnswer, Detections, OpinionAnswer, OpinionRequest

logger = logging.getLogger(__name__)

SKIP_BACKLOG = "backlog"  # the ingest actor's backlog was full: the oldest ask gave way
SKIP_ERROR = "detector_error"  # the request failed (replica lost, timeout)

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


class SecondOpinions:
    """An ingest actor's second opinions. Each ask's crop is cut at once (from the frame the track was seen
    in) and held in a backlog of at most ``backlog`` crops (beyond, the oldest is skipped); the backlog goes
    to the detector as auxiliary work, ``batch`` crops per request and one request at a time (the replica's
    request slots stay free for frames); the answers, and the skips with their reasons, go to the validator
    in one call per batch. Counted per camera: asked, answered, skipped by reason."""

    def __init__(self, detector: Any, validator: Any, backlog: int, batch: int = 8, timeout_s: float = 30.0,
                 on_count: Callable[[str, str], None] | None = None) -> None:
        self._detector, self._validator, self._on_count = detector, validator, on_count
        self._backlog, self._batch, self._timeout_s = backlog, batch, timeout_s
        self._pending: deque[tuple[OpinionRequest, np.ndarray, np.ndarray]] = deque()
        self._skips: list[OpinionAnswer] = []  # backlog skips, sent with the next batch's answers
        self._task: asyncio.Task | None = None
        self.counts: dict[str, Counter] = {}

    def ask(self, request: OpinionRequest, image: np.ndarray) -> None:
        crop, box = crop_around(image, request.xyxy)
        self._count(request.stream_id, "asked")
        if len(self._pending) >= self._backlog:
            old, _, _ = self._pending.popleft()
            self._skips.append(self._skipped(old, SKIP_BACKLOG))
        self._pending.append((request, crop, box))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())

    def forget(self, stream_id: str) -> None:
        """A camera removed: its counters go with its report."""
        self.counts.pop(stream_id, None)

    async def close(self) -> None:
        """Wait until every ask is answered or skipped (and the validator told)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def _drain(self) -> None:
        while self._pending or self._skips:
            batch = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            answers, self._skips = self._skips, []
            if batch:
                answers += await self._answers(batch)
            try:
                await self._validator.second_opinions.remote(answers)
            except Exception as exc:  # noqa: BLE001 - the validator restarts; the rule stops waiting by itself
                logger.warning("second opinions: %d answer(s) not delivered: %s", len(answers), exc)

    async def _answers(self, batch: list[tuple[OpinionRequest, np.ndarray, np.ndarray]]) -> list[OpinionAnswer]:
        try:
            response = self._detector.detect_aux.remote([crop for _, crop, _ in batch], "crop")
            out: list[AuxAnswer] = await asyncio.wait_for(response, self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - counted; the rule asks again while its wait lasts
            logger.warning("second opinions: %d crop(s) not answered: %s", len(batch),
                           str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            return [self._skipped(r, SKIP_ERROR) for r, _, _ in batch]
        answers = []
        for (request, _, box), answer in zip(batch, out):
            if answer.detections is None:
                answers.append(self._skipped(request, answer.skipped or "skipped"))
            else:
                self._count(request.stream_id, "answered")
                answers.append(OpinionAnswer(request.stream_id, request.epoch, request.track_id,
                                             agreement(answer.detections, box, request.class_id)))
        return answers

    def _skipped(self, request: OpinionRequest, reason: str) -> OpinionAnswer:
        self._count(request.stream_id, f"skipped:{reason}")
        return OpinionAnswer(request.stream_id, request.epoch, request.track_id, None, reason)

    def _count(self, stream_id: str, what: str) -> None:
        self.counts.setdefault(stream_id, Counter())[what] += 1
        if self._on_count is not None:
            self._on_count(stream_id, what)
