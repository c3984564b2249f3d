"""IngestActor: a Ray actor hosting one or more cameras (``ingest.cameras_per_actor``).

Each camera keeps its own capture thread, drop-oldest buffer, tracker, counters and failure,
so one camera failing never stops the others. The actor's event loop takes the newest frame of every
camera that has none in flight and sends them to the Serve detector as one request (a few requests in
flight), so the deployment sees few, large requests that it batches further across actors. Results
are tracked per camera and handed to the validator in one call per request, off the critical path
(a bounded number outstanding). Every frame read ends analysed or counted as dropped with its reason.
This module never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import ray

from surveillance_ray.capture import CameraCapture
from surveillance_ray.config import CameraConfig, IngestConfig, PrivacyConfig, TrackingConfig, VLMConfig
from surveillance_ray.evidence import EscalationRequest, Keyframes, build_evidence, people_boxes
from surveillance_ray.messages import Detections, Frame, SnapshotRequest, StreamState, TrackedFrame, Validated
from surveillance_ray.opinion import SecondOpinions
from surveillance_ray.metrics import StreamMetrics
from surveillance_ray.stats import LatencyHistogram, StreamStats

logger = logging.getLogger(__name__)

USS_EVERY_S = 10.0  # reading USS (smaps) costs a few ms: not at every stats poll


@dataclass
class _Camera:
    """Processing-side state of one camera (the capture side lives in ``capture``)."""

    config: CameraConfig
    capture: CameraCapture
    tracker: Any = None  # StreamTracker, made at the camera's first frame
    epoch: int = 0
    inflight: int = 0
    analysed: int = 0
    dropped: Counter = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    error: str | None = None  # a processing failure (capture failures are in capture.stats)
    keyframes: Any = None  # evidence.Keyframes: recent full-resolution frames (escalations to the VLM)
    latest: tuple[Frame, Any] | None = None  # its latest validated frame and tracks (the live view)
    annotator: Any = None  # annotate.Annotator, made when a picture is first asked for


class IngestActor:
    """Cameras of one ingest process. ``run`` returns each camera's final report when all are done."""

    def __init__(self, cameras: list[CameraConfig], detector: Any, validator: Any, tracking: TrackingConfig,
                 ingest: IngestConfig, imgsz: int, max_frames: int | None = None,
                 second_opinions: bool = False, escalator: Any = None, vlm: VLMConfig | None = None,
                 class_names: dict[int, str] | None = None, persistent: bool = False, save_video: bool = False,
                 privacy: PrivacyConfig | None = None) -> None:
        """``persistent``: run until ``stop`` even with no camera left (service mode: cameras come and go);
        ``save_video``: each camera's annotated frames as an MP4 on this node (``video_part`` reads it)."""
        self._detector = detector
        self._validator = validator
        self._escalator = escalator
        self._vlm = vlm
        self._tracking = tracking
        self._ingest = ingest
        self._imgsz = imgsz
        self._max_frames = max_frames
        self._keep_original = second_opinions or escalator is not None or save_video
        self._recorder: Any = None
        self.videos: dict[str, dict[str, Any]] = {}
        if save_video:
            import tempfile

            from surveillance_ray.recording import Recorder

            self._recorder = Recorder(Path(tempfile.mkdtemp(prefix="surveillance-video-")), self._draw_image)
        self._class_names = {int(k): v for k, v in (class_names or {}).items()}
        self._persistent = persistent
        self._privacy = privacy or PrivacyConfig()
        self._faces: Any = None  # faces.FaceBlur, loaded at the first picture that needs it
        self._stopping = False
        self._cams: dict[str, _Camera] = {}
        for camera in cameras:
            self._new_camera(camera)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._validations: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._metrics = StreamMetrics()
        self._opinions = SecondOpinions(detector, validator, ingest.opinion_backlog, timeout_s=ingest.detector_timeout_s,
                                        on_count=self._count_opinion)
        self._started_at = 0.0
        self._uss: tuple[float, float] = (0.0, 0.0)  # (measured at, MB)
        self._flushed: dict[str, tuple[int, int]] = {}  # frames read / overflow drops already counted in metrics
        self._detector_errors_logged = 0.0
        self.name = ray.get_runtime_context().get_actor_name() or "ingest"
        self.node_id = ray.get_runtime_context().get_node_id()
        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the handle's router logs at INFO

    def _new_camera(self, camera: CameraConfig) -> _Camera:
        cam = self._cams[camera.id] = _Camera(camera, CameraCapture(camera, self._imgsz, self._max_frames,
                                                                    on_frame=self._on_frame,
                                                                    keep_original=self._keep_original))
        if self._escalator is not None:
            cam.keyframes = Keyframes(keep=max(m.keyframes for m in self._vlm.modes.values()))
        return cam

    def _on_frame(self) -> None:
        """Called by capture threads: wake the event loop (it never polls the buffers)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    # -- the event loop -------------------------------------------------------------------
    async def run(self) -> dict[str, dict[str, Any]]:
        """Process frames until every camera is done and everything read is analysed or dropped."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._slots = asyncio.Semaphore(self._ingest.max_pending_validations)
        self._started_at = time.time()
        for cam in self._cams.values():
            cam.capture.start()
        try:
            await self._process()
        except Exception as exc:  # a bug here must not lose the cameras' counters
            logger.exception("ingest actor %s: processing failed", self.name)
            for cam in self._cams.values():
                self._fail(cam, f"camera {cam.config.id!r}: ingest failed: {exc!r}")
        if self._validations:
            await asyncio.wait(list(self._validations))
        await self._opinions.close()
        await asyncio.gather(*(self._validator.finish_stream.remote(cid) for cid in self._cams),
                             return_exceptions=True)
        if self._recorder is not None:
            self.videos = await asyncio.to_thread(self._recorder.close)
        return self.stats(final=True)["cameras"]

    async def _process(self) -> None:
        limit = self._ingest.max_inflight_requests
        inflight: deque[tuple[list[Frame], asyncio.Future]] = deque()
        while True:
            while len(inflight) < limit and (frames := self._take()):
                inflight.append((frames, asyncio.ensure_future(self._detect(frames))))
            if inflight and inflight[0][1].done():
                frames, result = inflight.popleft()
                self._release(frames)  # their cameras' next frames go to the detector now, while these are tracked
                while len(inflight) < limit and (more := self._take()):
                    inflight.append((more, asyncio.ensure_future(self._detect(more))))
                await self._complete(frames, result)
                continue
            if not inflight and self._finished():
                return
            self._wake.clear()
            if len(inflight) < limit and self._ready():
                continue
            wake = asyncio.ensure_future(self._wake.wait()) if len(inflight) < limit else None
            waiting = [f for f in (inflight[0][1] if inflight else None, wake) if f is not None]
            await asyncio.wait(waiting, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            if wake is not None:
                wake.cancel()

    def _take(self) -> list[Frame]:
        """A frame of each camera that may have one more in flight: a live camera's newest (the older ones it
        buffered meanwhile are dropped, 'superseded': each camera's rate falls together and latency stays bounded
        when the pipeline is behind), a file read as fast as possible its oldest."""
        frames = []
        now = time.time()
        for cam in self._cams.values():
            if cam.error is None and cam.inflight < cam.config.max_inflight:
                frame, superseded = cam.capture.take()
                for _ in range(superseded):
                    self._drop(cam, "superseded")
                if frame is not None:
                    cam.inflight += 1
                    frames.append(frame)
                    self._metrics.stage.observe((now - frame.captured_at) * 1000, tags={"stage": "queue"})
        return frames

    def _ready(self) -> bool:
        return any(cam.error is None and cam.inflight < cam.config.max_inflight and len(cam.capture.buffer)
                   for cam in self._cams.values())

    def _finished(self) -> bool:
        if self._persistent and not self._stopping:
            return False
        return all((cam.capture.done.is_set() or cam.error is not None) and not len(cam.capture.buffer)
                   for cam in self._cams.values())

    async def _detect(self, frames: list[Frame]) -> list[Detections]:
        t0 = time.perf_counter()
        # live unless every camera in it waits for the detector: those lose nothing by waiting for
        # second opinions, so they do not put them on the detector's budget
        cams = [self._cams.get(f.stream_id) for f in frames]
        live = not all(cam is not None and cam.capture.buffer.lossless for cam in cams)
        now = time.time()
        ages = [None if cam is None or cam.capture.buffer.lossless else now - f.captured_at
                for f, cam in zip(frames, cams)]
        response = self._detector.detect_frames.remote([f.image for f in frames], live, ages)
        detections = await asyncio.wait_for(response, self._ingest.detector_timeout_s)
        self._metrics.stage.observe((time.perf_counter() - t0) * 1000, tags={"stage": "detect"})
        return detections

    def _release(self, frames: list[Frame]) -> None:
        """A request came back: its cameras may have their next frame at the detector."""
        for cam in filter(None, (self._cams.get(f.stream_id) for f in frames)):  # (removed meanwhile: gone)
            cam.inflight -= 1

    async def _complete(self, frames: list[Frame], result: asyncio.Future) -> None:
        """Track one request's frames per camera and hand them to the validator."""
        try:
            detections: list[Detections] = result.result()
        except Exception as exc:  # the detector failed these frames (replica died, timeout): count them
            for cam in filter(None, (self._cams.get(f.stream_id) for f in frames)):  # (removed meanwhile: gone)
                self._drop(cam, "detector_error")
            self._log_detector_error(exc, len(frames))
            return
        tracked: list[TrackedFrame] = []
        kept: list[Frame] = []
        for frame, dets in zip(frames, detections):
            cam = self._cams.get(frame.stream_id)
            if cam is None:  # removed while at the detector (its report was final)
                continue
            if cam.error is not None:
                self._drop(cam, "camera_error")
                continue
            if isinstance(dets, str):  # not run: too old when its pass began ("stale")
                self._drop(cam, dets)
                continue
            try:
                t0 = time.perf_counter()
                tracked.append(self._track(cam, frame, dets))
                self._metrics.stage.observe((time.perf_counter() - t0) * 1000, tags={"stage": "track"})
                kept.append(frame)
            except Exception as exc:
                logger.exception("camera %r: tracking failed", cam.config.id)
                self._fail(cam, f"camera {cam.config.id!r}: tracking failed: {exc!r}")
                self._drop(cam, "camera_error")
        if tracked:
            await self._slots.acquire()  # back-pressure when the validator is behind
            task = asyncio.ensure_future(self._validated(kept, tracked,
                                                         self._validator.process_many.remote(tracked)))
            self._validations.add(task)
            task.add_done_callback(self._validations.discard)

    def _track(self, cam: _Camera, frame: Frame, detections: Detections) -> TrackedFrame:
        if cam.tracker is None:  # made at the first frame, when the source's rate is known
            # imported here: the driver imports this module only to start actors, and the tracker's
            # dependencies (supervision, SciPy) cost it ~50 MB
            from surveillance_ray.track import StreamTracker

            cam.tracker = StreamTracker(self._tracking, frame_rate=cam.config.fps or cam.capture.source.fps)
        elif frame.epoch != cam.epoch:
            cam.tracker.reset()
        cam.epoch = frame.epoch
        from surveillance_ray.track import track_frame  # imported with the tracker (see above)

        tracked = track_frame(cam.tracker, frame, detections)
        if cam.keyframes is not None and frame.original is not None:
            t = tracked.tracks
            cam.keyframes.add(frame.media_time if frame.media_time >= 0 else frame.captured_at, frame.original,
                              people_boxes(t.xyxy, t.class_id))
        return tracked

    async def _validated(self, frames: list[Frame], tracked: list[TrackedFrame], response: Any) -> None:
        t0 = time.perf_counter()
        try:
            verdicts: list[Validated] = await response
            self._metrics.stage.observe((time.perf_counter() - t0) * 1000, tags={"stage": "validate"})
        except Exception as exc:  # the validator is gone: these frames were not validated
            logger.error("ingest %s: validator failed %d frames: %s", self.name, len(tracked), exc)
            for t in tracked:
                if t.stream_id in self._cams:
                    self._drop(self._cams[t.stream_id], "validator_error")
            return
        finally:
            self._slots.release()
        per_cam: Counter = Counter()
        for frame, verdict in zip(frames, verdicts):  # crops cut from the frame the track was seen in
            if frame.original is not None:
                for request in verdict.requests:
                    self._opinions.ask(request, frame.original)
        for escalation in (e for verdict in verdicts for e in verdict.escalations):
            self._escalate(escalation)
        for frame, t, verdict in zip(frames, tracked, verdicts):
            cam = self._cams.get(t.stream_id)
            if cam is None:  # removed meanwhile (its report was final)
                continue
            cam.latest = (frame, t.tracks)
            if self._recorder is not None:
                self._recorder.offer(t.stream_id, (frame, t.tracks, [(r.track_id, r.label) for r in verdict.snapshots],
                                                   t.media_time if t.media_time >= 0 else t.captured_at))
            for request in verdict.snapshots:
                task = asyncio.ensure_future(self._snapshot(cam, frame, t.tracks, request))
                self._validations.add(task)
                task.add_done_callback(self._validations.discard)
            latency = verdict.validated_at - t.captured_at
            cam.analysed += 1
            cam.latency.add(latency)
            per_cam[t.stream_id] += 1
            self._metrics.latency.observe(latency * 1000, tags={"stream": t.stream_id})
        for cid, n in per_cam.items():
            self._metrics.analysed.inc(n, tags={"stream": cid})

    def _count_opinion(self, stream_id: str, what: str) -> None:
        self._metrics.opinions.inc(tags={"stream": stream_id, "outcome": what})

    # -- pictures -------------------------------------------------------------------------
    def _draw(self, cam: _Camera, frame: Frame, tracks: Any, alerts: list = ()) -> bytes:
        """The frame (full resolution when kept) with its tracks, zones, lines and ``alerts``, as JPEG."""
        from surveillance_ray.annotate import jpeg

        return jpeg(self._draw_image(cam.config.id, frame, tracks, alerts, cam))

    def _draw_image(self, camera_id: str, frame: Frame, tracks: Any, alerts: list = (), cam: _Camera | None = None) -> Any:
        cam = cam or self._cams.get(camera_id)
        if cam.annotator is None:
            from surveillance_ray.annotate import Annotator  # supervision: not in the driver (see _track)

            cam.annotator = Annotator(cam.config, self._class_names,
                                      self._face_blur() if self._privacy.face_blur else None)
        image, scale = (frame.original, 1.0) if frame.original is not None else (frame.image, frame.scale)
        return cam.annotator.draw(image, tracks, scale, alerts)

    def _face_blur(self) -> Any:
        if self._faces is None:
            from surveillance_ray.faces import FaceBlur

            self._faces = FaceBlur(self._privacy.min_score, self._privacy.head_fallback)
        return self._faces

    async def _snapshot(self, cam: _Camera, frame: Frame, tracks: Any, request: SnapshotRequest) -> None:
        """An alert's picture, drawn off the event loop and kept by the validator beside the alert store."""
        try:
            image = await asyncio.to_thread(self._draw, cam, frame, tracks, [(request.xyxy, request.label)])
            await self._validator.snapshot.remote(request.alert_id, image)
        except Exception as exc:  # noqa: BLE001 - the alert stands without its picture
            logger.warning("camera %r: no snapshot for alert %s: %s", request.stream_id, request.alert_id, exc)

    async def picture(self, camera_id: str) -> bytes | None:
        """The camera's latest analysed frame, annotated, as JPEG (None: no frame yet, or no such camera)."""
        cam = self._cams.get(camera_id)
        if cam is None or cam.latest is None:
            return None
        frame, tracks = cam.latest
        return await asyncio.to_thread(self._draw, cam, frame, tracks)

    def _escalate(self, request: EscalationRequest) -> None:
        """Evidence for the VLM from the camera's keyframes, queued at the escalator (not awaited: the
        escalator answers at once and reviews later; an alert it never gets stays unreviewed)."""
        cam = self._cams.get(request.stream_id)
        if self._escalator is None or cam is None or cam.keyframes is None:
            return
        mode = self._vlm.modes[self._vlm.mode]
        try:
            blur = self._face_blur().apply if self._vlm.privacy or self._privacy.face_blur else None
            evidence = build_evidence(request, cam.keyframes, self._vlm.mode, mode.image_size, mode.keyframes, blur)
        except Exception as exc:  # noqa: BLE001 - one alert's evidence must not stop the camera
            logger.warning("camera %r: no evidence for alert %s: %s", request.stream_id, request.alert.get("id"), exc)
            return
        if evidence is not None:
            self._escalator.submit.remote(evidence)

    def _drop(self, cam: _Camera, reason: str) -> None:
        cam.dropped[reason] += 1
        self._metrics.dropped.inc(tags={"stream": cam.config.id, "reason": reason})

    def _fail(self, cam: _Camera, error: str) -> None:
        """A processing failure of one camera: stop it and count what it had buffered as dropped."""
        if cam.error is not None:
            return
        logger.error("%s", error)
        cam.error = error
        cam.capture.stop()
        while cam.capture.buffer.get() is not None:
            self._drop(cam, "camera_error")

    def _log_detector_error(self, exc: BaseException, n: int) -> None:
        now = time.time()
        if now - self._detector_errors_logged >= 5.0:  # one line per burst, not one per frame
            self._detector_errors_logged = now
            logger.warning("ingest %s: %d frame(s) not analysed, detector error: %s", self.name, n,
                           str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    # -- control and reports --------------------------------------------------------------
    def stop(self) -> None:
        """Stop reading; frames already read are still analysed (``run`` then returns)."""
        self._stopping = True
        for cam in self._cams.values():
            cam.capture.stop()
        if self._loop is not None and self._wake is not None:
            self._wake.set()

    def video_info(self) -> dict[str, dict[str, Any]]:
        """Per camera: its MP4 on this node, frames written and left out, error (``save_video``)."""
        return self.videos

    def video_part(self, camera_id: str, offset: int, size: int = 8 << 20) -> bytes:
        """A piece of the camera's MP4 (after ``run`` returned; b"" past its end), for the driver to copy."""
        info = self.videos.get(camera_id)
        if info is None or info["frames"] == 0:
            return b""
        with open(info["path"], "rb") as f:
            f.seek(offset)
            return f.read(size)

    def drop_videos(self) -> None:
        """Delete this node's copies (the driver has them)."""
        for info in self.videos.values():
            shutil.rmtree(Path(info["path"]).parent, ignore_errors=True)

    def add_camera(self, camera: CameraConfig) -> None:
        """Start one more camera (service mode); the others go on undisturbed."""
        if camera.id in self._cams:
            raise ValueError(f"camera {camera.id!r} is already on ingest actor {self.name}")
        cam = self._new_camera(camera)
        if self._loop is not None:  # else run() starts it with the others
            cam.capture.start()

    async def remove_camera(self, camera_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Stop one camera: its frames already read are analysed (up to ``timeout_s``; the rest are counted
        dropped, reason ``removed``), its tracks end; its final report."""
        cam = self._cams[camera_id]
        cam.capture.stop()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (not cam.capture.done.is_set() or self._in_pipeline(cam) > 0):
            await asyncio.sleep(0.05)
        while cam.capture.buffer.get() is not None:
            self._drop(cam, "removed")
        report = self._report(cam, time.time())
        self._flush_capture_metrics()
        self._opinions.forget(camera_id)
        del self._cams[camera_id]
        self._flushed.pop(camera_id, None)
        await self._validator.finish_stream.remote(camera_id)
        return report

    def _in_pipeline(self, cam: _Camera) -> int:
        return cam.capture.stats.frames_read - cam.analysed - sum(cam.dropped.values()) - cam.capture.buffer.dropped

    def stats(self, final: bool = False) -> dict[str, Any]:
        """``{"cameras": {id: report}, "actor": {...}}``; USS is re-measured at most every 10 s."""
        now = time.time()
        if final or now - self._uss[0] >= USS_EVERY_S:
            self._uss = (now, round(psutil.Process().memory_full_info().uss / 2**20, 1))
        cameras = {cid: self._report(cam, now) for cid, cam in self._cams.items()}
        self._flush_capture_metrics()
        actor = {"name": self.name, "node_id": self.node_id, "cameras": list(self._cams), "uss_mb": self._uss[1],
                 "torch_imported": "torch" in sys.modules, "pid": psutil.Process().pid}
        return {"cameras": cameras, "actor": actor}

    def _flush_capture_metrics(self) -> None:
        """Capture threads only count; their counters reach Prometheus here, as deltas."""
        for cid, cam in self._cams.items():
            read, overflow = cam.capture.stats.frames_read, cam.capture.buffer.dropped
            last_read, last_overflow = self._flushed.get(cid, (0, 0))
            if read > last_read:
                self._metrics.read.inc(read - last_read, tags={"stream": cid})
            if overflow > last_overflow:
                self._metrics.dropped.inc(overflow - last_overflow, tags={"stream": cid, "reason": "overflow"})
            self._flushed[cid] = (read, overflow)

    def _report(self, cam: _Camera, now: float) -> dict[str, Any]:
        cap = cam.capture.stats
        dropped = Counter(cam.dropped)
        if cam.capture.buffer.dropped:
            dropped["overflow"] = cam.capture.buffer.dropped
        s = StreamStats(stream_id=cam.config.id, state=StreamState.FAILED.value if cam.error else cap.state,
                        error=cam.error or cap.error, frames_decoded=cap.frames_decoded, frames_read=cap.frames_read,
                        frames_analysed=cam.analysed, frames_dropped=sum(dropped.values()), dropped=dict(dropped),
                        decode_errors=cap.decode_errors, reconnects=cap.reconnects, source_fps=cap.source_fps,
                        tracks=cam.tracker.tracks_seen if cam.tracker else 0, started_at=self._started_at,
                        ingest_actor=self.name, node_id=self.node_id)
        s.in_pipeline = s.frames_read - s.frames_analysed - s.frames_dropped
        s.elapsed_s = round(now - (cap.first_frame_at or now), 3)  # since the camera's first frame
        s.fps_analysed = round(s.frames_analysed / s.elapsed_s, 2) if s.elapsed_s > 0 else 0.0
        s.latency_ms = cam.latency.percentiles()
        s.latency_hist = cam.latency.to_sparse()
        return s.as_dict() | {"at_detector": cam.inflight,
                              "second_opinions": dict(self._opinions.counts.get(cam.config.id, {}))}


IngestActorRemote = ray.remote(num_cpus=0, max_restarts=0)(IngestActor)
