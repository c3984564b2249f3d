"""Capture: one thread per camera reads, paces and samples frames into a drop-oldest buffer.

The thread never waits for the pipeline: when the buffer is full the oldest frame is dropped and
counted (files read with ``realtime: false`` wait instead). A frame is downscaled to the model (and its
luma and sharpness measured) only when the processing loop takes it: under overload most decoded frames are
superseded or overflow, and cost no more than their decoding. Live sources reconnect with capped
exponential backoff; each reconnect or loop starts a new epoch. Nothing here imports torch or Ray.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from surveillance_ray.config import CameraConfig
from surveillance_ray.messages import Frame, StreamState
from surveillance_ray.sources import Source, SourceError, open_source

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Decoded:
    """A decoded frame as its camera read it (full resolution), waiting in the buffer."""

    frame_id: int
    source_index: int
    image: np.ndarray
    media_time: float
    captured_at: float
    epoch: int


class FrameBuffer:
    """Bounded, thread-safe FIFO of decoded frames; ``put`` drops the oldest when full (or waits, if ``block``)."""

    def __init__(self, size: int, block: bool) -> None:
        self._frames: deque[Frame] = deque()
        self._size = size
        self._block = block
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Decoded, stop: threading.Event) -> bool:
        """Queue ``frame``; True when the oldest frame had to be dropped for it."""
        with self._cond:
            while self._block and len(self._frames) >= self._size and not stop.is_set():
                self._cond.wait(0.1)
            dropped = len(self._frames) >= self._size
            if dropped:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float = 0.0) -> Decoded | None:
        with self._cond:
            if not self._frames and timeout > 0:
                self._cond.wait(timeout)
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

    @property
    def lossless(self) -> bool:
        """Its reader waits instead of dropping (a file read as fast as possible)."""
        return self._block

    def take(self) -> tuple[Decoded | None, int]:
        """The frame to analyse next, and how many older frames it superseded: for a lossy buffer (a live or
        real-time camera) the newest, the older ones dropped (analysed after it they would only add latency);
        otherwise the oldest (files read as fast as possible: none is lost)."""
        with self._cond:
            if not self._frames:
                return None, 0
            if self._block:
                frame, superseded = self._frames.popleft(), 0
            else:
                frame, superseded = self._frames.pop(), len(self._frames)
                self._frames.clear()
            self._cond.notify_all()
            return frame, superseded

    def __len__(self) -> int:
        return len(self._frames)


def fit_to_model(image: np.ndarray, imgsz: int) -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most ``imgsz`` (same arithmetic and interpolation as
    ultralytics' letterbox, so detections match a direct model call); never upscales."""
    h, w = image.shape[:2]
    r = imgsz / max(h, w)
    if r >= 1.0:
        return image, 1.0
    size = (int(round(w * r)), int(round(h * r)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), r


def image_quality(image: np.ndarray) -> tuple[float, float]:
    """(mean luma 0-255, variance of the Laplacian) of a BGR image, on every other pixel: what the
    validator's context modifiers read (low light, poor image quality)."""
    grey = cv2.cvtColor(image[::2, ::2], cv2.COLOR_BGR2GRAY)
    return float(grey.mean()), float(cv2.Laplacian(grey, cv2.CV_32F).var())


def make_frame(stream_id: str, frame_id: int, source_index: int, image: np.ndarray, media_time: float,
               captured_at: float, epoch: int, imgsz: int, keep_original: bool = False) -> Frame:
    """A decoded image as the pipeline carries it: downscaled to the model, with its luma and sharpness."""
    small, scale = fit_to_model(image, imgsz)
    luma, sharpness = image_quality(small)
    return Frame(stream_id=stream_id, frame_id=frame_id, source_index=source_index, captured_at=captured_at,
                 epoch=epoch, media_time=media_time, image=small, scale=scale,
                 original_shape=(image.shape[0], image.shape[1]), luma=luma, sharpness=sharpness,
                 original=image if keep_original else None)


@dataclass
class CaptureStats:
    """What the capture thread counted (the processing loop counts the rest)."""

    state: str = StreamState.STARTING.value
    error: str | None = None
    frames_decoded: int = 0  # every frame decoded, including those skipped by fps sampling
    frames_read: int = 0  # frames taken into the pipeline
    decode_errors: int = 0
    reconnects: int = 0
    source_fps: float | None = None
    first_frame_at: float | None = None  # when the first frame was read: fps counts from here


class CameraCapture:
    """One camera's capture thread feeding a bounded buffer; ``done`` is set when it has finished."""

    def __init__(self, camera: CameraConfig, imgsz: int, max_frames: int | None = None,
                 on_frame: Callable[[], None] | None = None, keep_original: bool = False) -> None:
        self.camera = camera
        self._keep_original = keep_original
        self.source: Source = open_source(camera)
        self.buffer = FrameBuffer(camera.buffer_size, block=not camera.realtime and camera.kind in ("file", "folder"))
        self.stats = CaptureStats()
        self.done = threading.Event()
        self._imgsz = imgsz
        self._max_frames = max_frames
        self._stop = threading.Event()
        self._on_frame = on_frame  # called on every new frame (and at the end), so the consumer need not poll
        self._epoch = 0
        self._thread = threading.Thread(target=self._run, name=f"capture-{camera.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def take(self) -> tuple[Frame | None, int]:
        """The buffer's next frame for the pipeline (``FrameBuffer.take``), made into a ``Frame``."""
        decoded, superseded = self.buffer.take()
        return (None if decoded is None else self.frame(decoded)), superseded

    def frame(self, d: Decoded) -> Frame:
        """A decoded frame as the pipeline carries it (``make_frame``)."""
        return make_frame(self.camera.id, d.frame_id, d.source_index, d.image, d.media_time, d.captured_at, d.epoch,
                          self._imgsz, self._keep_original)

    def stop(self) -> None:
        """Stop reading; frames already buffered stay for the processing loop."""
        self._stop.set()

    def _run(self) -> None:
        cam, src, failures, sessions = self.camera, self.source, 0, 0
        try:
            while not self._stop.is_set():
                try:
                    src.open()
                except SourceError as exc:
                    if not src.live:
                        return self._fail(str(exc))
                    failures += 1
                    if cam.max_reconnects is not None and failures > cam.max_reconnects:
                        return self._fail(f"{exc} (gave up after {failures - 1} reconnect attempts)")
                    self._set_state(StreamState.RECONNECTING, str(exc))
                    self._stop.wait(min(cam.reconnect_max_s, cam.reconnect_initial_s * 2 ** (failures - 1)))
                    continue
                if sessions:
                    self._epoch += 1  # a new session (reconnect or loop): the tracker starts afresh
                    self.stats.reconnects += int(src.live)
                sessions += 1
                failures = 0
                self.stats.source_fps = src.fps
                self._set_state(StreamState.RUNNING, None)
                try:
                    outcome = self._read_session(src)
                except SourceError as exc:
                    return self._fail(str(exc))
                finally:
                    src.close()
                if outcome != "ended" or not (src.live or cam.loop):
                    break
                if src.live:
                    self._set_state(StreamState.RECONNECTING, f"camera {cam.id!r}: stream interrupted")
                    failures = 1
                    self._stop.wait(cam.reconnect_initial_s)
            self._set_state(StreamState.FINISHED, None)
        except Exception as exc:  # never let the thread die silently
            logger.exception("camera %r: capture failed", cam.id)
            self._fail(f"camera {cam.id!r}: capture failed: {exc!r}")
        finally:
            self.stats.decode_errors = src.decode_errors
            self.done.set()
            if self._on_frame is not None:
                self._on_frame()

    def _read_session(self, src: Source) -> str:
        """Read until the source ends ('ended'), stop is asked ('stopped') or max_frames ('limit')."""
        cam, stats = self.camera, self.stats
        period = 1.0 / cam.fps if cam.fps else 0.0
        next_sample: float | None = None
        pace_origin: tuple[float, float] | None = None
        index = -1
        while not self._stop.is_set():
            item = src.read()
            if item is None:
                return "ended"
            image, media_time = item
            index += 1
            stats.frames_decoded += 1
            now = time.time()
            t = now if media_time is None else media_time
            if media_time is not None and cam.realtime:
                if pace_origin is None:
                    pace_origin = (now, media_time)
                delay = pace_origin[0] + (media_time - pace_origin[1]) - now
                if delay > 0 and self._stop.wait(delay):
                    return "stopped"
            if period:
                if next_sample is not None and t < next_sample - 1e-6:
                    continue
                next_sample = t + period if next_sample is None or next_sample + period <= t else next_sample + period
            frame = Decoded(stats.frames_read, index, image, t, time.time(), self._epoch)
            stats.frames_read += 1
            if stats.first_frame_at is None:
                stats.first_frame_at = frame.captured_at
            self.buffer.put(frame, self._stop)
            if self._on_frame is not None:
                self._on_frame()
            if self._max_frames is not None and stats.frames_read >= self._max_frames:
                return "limit"
        return "stopped"

    def _set_state(self, state: StreamState, error: str | None) -> None:
        if state != StreamState(self.stats.state):
            logger.info("camera %r: %s%s", self.camera.id, state.value, f" ({error})" if error else "")
        self.stats.state = state.value
        self.stats.error = error

    def _fail(self, error: str) -> None:
        logger.error("%s", error)
        self._set_state(StreamState.FAILED, error)
