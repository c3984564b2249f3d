"""Frame sources: video files, RTSP/HTTP streams, webcams and image-sequence folders.

A source yields ``(image, media_time_s)``; media time comes from decoding (presentation timestamps
for files, the frame rate for image folders) rather than container metadata, and is ``None`` for
live sources, which are paced by the wall clock instead.
"""

from __future__ import annotations

import configparser
import logging
import math
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from surveillance_ray.config import CameraConfig

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_FPS = 25.0
_FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_open_lock = threading.Lock()  # OpenCV reads its FFmpeg options from the environment at open


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message names the camera."""


def _sane_fps(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and 0 < value <= 240 else None


class Source:
    """Base class: ``open`` → ``read`` until it returns None → ``close``."""

    live: bool = False

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self.fps: float = DEFAULT_FPS
        self.decode_errors = 0

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> tuple[np.ndarray, float | None] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _error(self, what: str) -> SourceError:
        return SourceError(f"camera {self.camera.id!r}: {what}: {self.camera.source}")


class CaptureSource(Source):
    """Anything OpenCV's FFmpeg backend (or V4L2, for webcams) opens."""

    def __init__(self, camera: CameraConfig) -> None:
        super().__init__(camera)
        self.live = camera.kind in ("url", "webcam")
        self._cap: cv2.VideoCapture | None = None
        self._frames = 0
        self._last_time: float | None = None

    def open(self) -> None:
        cam = self.camera
        if cam.kind == "webcam":
            cap = cv2.VideoCapture(int(cam.source))
        else:
            timeout_ms = int(cam.read_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            if cam.decode_threads is not None:
                params += [cv2.CAP_PROP_N_THREADS, cam.decode_threads]
            cap = _open_ffmpeg(cam.source, params, cam.ffmpeg_options if cam.kind == "url" else None)
        if not cap.isOpened():
            cap.release()
            raise self._error("cannot open source (unreachable, or not a video)")
        self._cap = cap
        self._frames = 0
        self._last_time = None
        self.fps = _sane_fps(cam.source_fps) or _sane_fps(cap.get(cv2.CAP_PROP_FPS)) or DEFAULT_FPS

    def read(self) -> tuple[np.ndarray, float | None] | None:
        if self._cap is None:
            raise self._error("read before open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self._frames == 0 and not self.live:
                raise self._error("no decodable frame (corrupt or empty video)")
            return None
        self._frames += 1
        if self.live:
            return image, None
        return image, self._media_time()

    def _media_time(self) -> float:
        """Decoded presentation time; falls back to frame count / fps where timestamps are missing or go back."""
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self._cap is not None else float("nan")
        step = 1.0 / self.fps
        if self._last_time is None:
            t = pos if math.isfinite(pos) and pos >= 0 else 0.0
        elif math.isfinite(pos) and pos > self._last_time:
            t = pos
        else:
            t = self._last_time + step
        self._last_time = t
        return t

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _open_ffmpeg(source: str, params: list[int], options: str | None) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` with FFmpeg ``options`` ("key;value|key;value") for this capture only.

    OpenCV serialises FFmpeg opens in a process behind one lock and reads the options from the
    environment there, so setting the variable under our own lock around the open is race-free.
    """
    with _open_lock:
        previous = os.environ.get(_FFMPEG_OPTIONS_ENV)
        if options:
            os.environ[_FFMPEG_OPTIONS_ENV] = options
        try:
            return cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
        finally:
            if options:
                if previous is None:
                    os.environ.pop(_FFMPEG_OPTIONS_ENV, None)
                else:
                    os.environ[_FFMPEG_OPTIONS_ENV] = previous


class ImageSequenceSource(Source):
    """A folder of images (MOTChallenge layout: ``SEQ/img1/000001.jpg`` and ``SEQ/seqinfo.ini``)."""

    def __init__(self, camera: CameraConfig) -> None:
        super().__init__(camera)
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        folder = Path(self.camera.source)
        if (folder / "img1").is_dir():
            folder = folder / "img1"
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise self._error("no images in folder")
        self._next = 0
        self.fps = _sane_fps(self.camera.source_fps) or _seqinfo_fps(folder) or DEFAULT_FPS

    def read(self) -> tuple[np.ndarray, float | None] | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            index = self._next
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.decode_errors += 1
                logger.warning("camera %r: unreadable image skipped: %s", self.camera.id, path)
                continue
            return image, index / self.fps
        return None


def _seqinfo_fps(img_folder: Path) -> float | None:
    ini = img_folder.parent / "seqinfo.ini"
    if not ini.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
        return _sane_fps(parser.getfloat("Sequence", "frameRate", fallback=None))
    except (configparser.Error, ValueError):
        return None


def open_source(camera: CameraConfig) -> Source:
    """The right (unopened) source for a camera."""
    if camera.kind == "folder":
        return ImageSequenceSource(camera)
    return CaptureSource(camera)
