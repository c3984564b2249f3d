"""``run --save-video``: each camera's analysed frames, annotated, as an H.264 MP4 (PyAV's libx264).

Frames are drawn and encoded by one writer thread per ingest actor, off its event loop; when the writer
is behind, frames are left out of the video (counted), never held back from analysis. Timestamps come
from the frames' own clock, so a video with left-out frames still plays in real time.
"""

from __future__ import annotations

import logging
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

logger = logging.getLogger(__name__)

ALERT_MARK_S = 3.0  # an alert's box stays red this long in the video


class VideoFile:
    """One MP4 (H.264, yuv420p, millisecond timestamps), opened at its first frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container: Any = None
        self._stream: Any = None
        self._t0: float | None = None
        self._last_pts = -1
        self.frames = 0

    def write(self, image: np.ndarray, t: float) -> bool:
        import av

        if self._container is None:
            h, w = image.shape[:2]
            self._container = av.open(str(self.path), "w")
            self._stream = self._container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "28"})
            self._stream.width, self._stream.height = w - w % 2, h - h % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = Fraction(1, 1000)
            self._t0 = t
        pts = int(round((t - self._t0) * 1000))
        if pts <= self._last_pts:  # the source's clock went back (a loop, a reconnect): go on from here
            self._t0 -= (self._last_pts - pts) / 1000 + 0.1
            pts = int(round((t - self._t0) * 1000))
        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts
        self.frames += 1
        return True

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None


class Recorder:
    """The writer thread of an ingest actor: ``offer`` a camera's frame (never blocks), ``close`` at the end."""

    def __init__(self, folder: Path, draw: Callable[..., np.ndarray], max_queue: int = 64) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._draw = draw
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._files: dict[str, VideoFile] = {}
        self.skipped: dict[str, int] = {}
        self._marks: dict[str, list[tuple[float, int, str]]] = {}  # camera -> (until, track id, label)
        self.errors: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    def offer(self, camera_id: str, item: tuple) -> None:
        """``item``: (camera's frame, tracks, [(track id, label)] of alerts raised at it, t)."""
        try:
            self._queue.put_nowait((camera_id, item))
        except queue.Full:
            self.skipped[camera_id] = self.skipped.get(camera_id, 0) + 1

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            camera_id, (frame, tracks, alerts, t) = entry
            if camera_id in self.errors:
                continue
            try:
                self._write(camera_id, frame, tracks, alerts, t)
            except Exception as exc:  # noqa: BLE001 - this camera's video stops; analysis goes on
                self.errors[camera_id] = f"{type(exc).__name__}: {exc}"[:200]
                logger.error("camera %r: video stopped: %s", camera_id, self.errors[camera_id])

    def _write(self, camera_id: str, frame: Any, tracks: Any, alerts: list[tuple[int, str]], t: float) -> None:
        marks = [m for m in self._marks.get(camera_id, []) if m[0] >= t]
        marks += [(t + ALERT_MARK_S, track_id, label) for track_id, label in alerts]
        self._marks[camera_id] = marks
        boxes = {int(i): tuple(map(float, b)) for i, b in zip(tracks.track_id, tracks.xyxy)}
        shown = [(boxes[tid], label) for _, tid, label in marks if tid in boxes]
        video = self._files.get(camera_id)
        if video is None:
            video = self._files[camera_id] = VideoFile(self.folder / f"{camera_id}.mp4")
        video.write(self._draw(camera_id, frame, tracks, shown), t)

    def close(self) -> dict[str, dict[str, Any]]:
        """Finish every file; per camera: path, frames written, frames left out, error."""
        self._queue.put(None)
        self._thread.join()
        out = {}
        for camera_id, video in self._files.items():
            try:
                video.close()
            except Exception as exc:  # noqa: BLE001
                self.errors.setdefault(camera_id, f"{type(exc).__name__}: {exc}"[:200])
            out[camera_id] = {"path": str(video.path), "frames": video.frames,
                              "skipped": self.skipped.get(camera_id, 0), "error": self.errors.get(camera_id)}
        return out
