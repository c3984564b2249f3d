"""CameraActor: one Ray actor per camera. Capture thread → bounded buffer → detector → tracker → validator.

The capture thread reads, paces and samples frames and never waits for the pipeline: when the
buffer is full the oldest frame is dropped and counted (files read as fast as possible wait instead).
The actor's event loop sends frames to the batched detector (a few in flight, results in order),
tracks them and hands them to the validator. This module never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
import psutil
import ray

from surveillance_ray.config import CameraConfig, TrackingConfig
from surveillance_ray.messages import Detections, Frame, StreamState, TrackedFrame
from surveillance_ray.metrics import StreamMetrics
from surveillance_ray.sources import Source, SourceError, open_source
from surveillance_ray.track import StreamTracker

logger = logging.getLogger(__name__)


class FrameBuffer:
    """Bounded, thread-safe FIFO; ``put`` drops the oldest frame when full (or waits, if ``block``)."""

    def __init__(self, size: int, block: bool) -> None:
        self._frames: deque[Frame] = deque()
        self._size = size
        self._block = block
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> bool:
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

    def get(self, timeout: float = 0.0) -> Frame | None:
        with self._cond:
            if not self._frames and timeout > 0:
                self._cond.wait(timeout)
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

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


@dataclass
class StreamStats:
    """Counters of one camera; ``frames_read == frames_analysed + frames_dropped + in_pipeline``."""

    stream_id: str
    state: str = StreamState.STARTING.value
    error: str | None = None
    frames_decoded: int = 0  # every frame decoded, including those skipped by fps sampling
    frames_read: int = 0  # frames taken into the pipeline
    frames_analysed: int = 0
    frames_dropped: int = 0
    dropped_overflow: int = 0
    dropped_detector_error: int = 0
    in_pipeline: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    tracks: int = 0
    source_fps: float | None = None
    started_at: float = 0.0
    elapsed_s: float = 0.0
    fps_analysed: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    uss_mb: float = 0.0
    torch_imported: bool = False


class CameraActor:
    """One camera. ``run`` returns its final stats (with latency samples) when the camera is done."""

    def __init__(self, camera: CameraConfig, detector: Any, validator: Any, tracking: TrackingConfig,
                 imgsz: int, max_frames: int | None = None) -> None:
        self.camera = camera
        self._detector = detector
        self._validator = validator
        self._tracking = tracking
        self._imgsz = imgsz
        self._max_frames = max_frames
        self._source: Source = open_source(camera)
        self._stop = threading.Event()
        self._buffer = FrameBuffer(camera.buffer_size, block=not camera.realtime and camera.kind in ("file", "folder"))
        self._stats = StreamStats(camera.id)
        self._latencies: list[float] = []
        self._epoch = 0
        self._capture_done = threading.Event()
        self._metrics = StreamMetrics(camera.id)
        self._thread = threading.Thread(target=self._capture, name=f"capture-{camera.id}", daemon=True)
        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the handle's router logs at INFO

    # -- capture thread -------------------------------------------------------------------
    def _capture(self) -> None:
        cam, src, failures, sessions = self.camera, self._source, 0, 0
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
                    self._stats.reconnects += int(src.live)
                sessions += 1
                failures = 0
                self._stats.source_fps = src.fps
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
            self._stats.decode_errors = src.decode_errors
            self._capture_done.set()

    def _read_session(self, src: Source) -> str:
        """Read until the source ends ('ended'), stop is asked ('stopped') or max_frames ('limit')."""
        cam = self.camera
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
            self._stats.frames_decoded += 1
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
            small, scale = fit_to_model(image, self._imgsz)
            frame = Frame(stream_id=cam.id, frame_id=self._stats.frames_read, source_index=index,
                          captured_at=time.time(), epoch=self._epoch, media_time=t, image=small, scale=scale,
                          original_shape=(image.shape[0], image.shape[1]))
            self._stats.frames_read += 1
            self._metrics.read.inc()
            if self._buffer.put(frame, self._stop):
                self._metrics.dropped.inc(tags={"reason": "overflow"})
            if self._max_frames is not None and self._stats.frames_read >= self._max_frames:
                return "limit"
        return "stopped"

    def _set_state(self, state: StreamState, error: str | None) -> None:
        if state != StreamState(self._stats.state):
            logger.info("camera %r: %s%s", self.camera.id, state.value, f" ({error})" if error else "")
        self._stats.state = state.value
        self._stats.error = error

    def _fail(self, error: str) -> None:
        logger.error("%s", error)
        self._set_state(StreamState.FAILED, error)

    # -- the actor's event loop -----------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Process frames until the source is done and everything read is analysed or dropped."""
        self._stats.started_at = time.time()
        self._thread.start()
        tracker: StreamTracker | None = None  # made at the first frame, when the source's rate is known
        epoch = 0
        pending: deque[tuple[Frame, Any]] = deque()
        while True:
            while len(pending) < self.camera.max_inflight:
                frame = self._buffer.get()
                if frame is None:
                    break
                pending.append((frame, self._detector.detect.remote(frame.image)))
            if not pending:
                if self._capture_done.is_set() and len(self._buffer) == 0:
                    break
                frame = await asyncio.to_thread(self._buffer.get, 0.05)
                if frame is not None:
                    pending.append((frame, self._detector.detect.remote(frame.image)))
                continue
            frame, response = pending.popleft()
            try:
                detections: Detections = await response
            except Exception as exc:  # the detector failed this frame: count it, keep going
                self._stats.dropped_detector_error += 1
                self._metrics.dropped.inc(tags={"reason": "detector_error"})
                logger.warning("camera %r: frame %d not analysed: %s", self.camera.id, frame.frame_id, exc)
                continue
            if tracker is None:
                tracker = StreamTracker(self._tracking, frame_rate=self.camera.fps or self._source.fps)
            elif frame.epoch != epoch:
                tracker.reset()
            epoch = frame.epoch
            if frame.scale != 1.0:
                detections = detections.scaled(1.0 / frame.scale)
            tracks = tracker.update(detections, timestamp=frame.media_time)
            tracked = TrackedFrame(frame.stream_id, frame.frame_id, frame.source_index, frame.captured_at,
                                   frame.epoch, frame.original_shape, detections, tracks)
            verdict = await self._validator.process.remote(tracked)
            latency = verdict.validated_at - frame.captured_at
            self._latencies.append(latency)
            self._metrics.analysed.inc()
            self._metrics.latency.observe(latency * 1000)
            self._stats.frames_analysed += 1
            self._stats.tracks = tracker.tracks_seen
        await self._validator.finish_stream.remote(self.camera.id)
        report = self.stats()
        report["latency_samples_s"] = list(self._latencies)
        return report

    def stop(self) -> None:
        """Stop reading; frames already read are still analysed."""
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        s = self._stats
        s.dropped_overflow = self._buffer.dropped
        s.frames_dropped = s.dropped_overflow + s.dropped_detector_error
        s.in_pipeline = s.frames_read - s.frames_analysed - s.frames_dropped
        s.elapsed_s = round(time.time() - s.started_at, 3) if s.started_at else 0.0
        s.fps_analysed = round(s.frames_analysed / s.elapsed_s, 2) if s.elapsed_s > 0 else 0.0
        s.latency_ms = latency_percentiles(self._latencies)
        s.uss_mb = round(psutil.Process().memory_full_info().uss / 2**20, 1)
        s.torch_imported = "torch" in sys.modules
        return asdict(s)


def latency_percentiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {"p50": 0.0, "p95": 0.0}
    p50, p95 = np.percentile(np.asarray(samples_s) * 1000.0, [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1)}


CameraActorRemote = ray.remote(num_cpus=0, max_restarts=0)(CameraActor)
