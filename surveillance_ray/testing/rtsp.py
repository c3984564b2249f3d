"""Real RTSP cameras on 127.0.0.1 (Debian's GStreamer RTSP server), one mount per camera.

``h264_video`` encodes a video once into an H.264 MP4 (a keyframe a second, no B-frames, like an IP
camera) and caches it; ``RtspCameras`` serves that file, passed through and paced in real time, at
``rtsp://127.0.0.1:PORT/cam0`` … . The server runs under the system Python, which has PyGObject.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


class RtspUnavailable(RuntimeError):
    """GStreamer's RTSP server (Debian packages, ``make system-deps``) is missing or did not start."""


def cache_dir() -> Path:
    path = Path(os.environ.get("SURVEILLANCE_CACHE", Path.home() / ".cache" / "surveillance-ray"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def h264_video(source: Path, repeat: int = 1, bitrate_kbps: int = 1000) -> Path:
    """``source`` played ``repeat`` times back to back, as an H.264 MP4 (cached by content and settings)."""
    if shutil.which("gst-launch-1.0") is None:
        raise RtspUnavailable("gst-launch-1.0 not found: run `make system-deps`")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    out = cache_dir() / f"{source.stem}-{digest}-x{repeat}-{bitrate_kbps}k.mp4"
    if out.is_file():
        return out
    tmp = out.with_suffix(f".{os.getpid()}.tmp.mp4")
    branches = " ".join(f"filesrc location={source} ! decodebin ! c." for _ in range(repeat))
    cmd = (f"gst-launch-1.0 -q concat name=c ! videoconvert ! x264enc speed-preset=medium bframes=0 "
           f"key-int-max=10 bitrate={bitrate_kbps} ! h264parse ! mp4mux ! filesink location={tmp} {branches}")
    done = subprocess.run(cmd.split(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not tmp.is_file():
        raise RtspUnavailable(f"encoding {source} failed: {done.stderr.strip()[-500:]}")
    tmp.replace(out)
    return out


class RtspCameras:
    """``count`` RTSP cameras playing ``video`` (an H.264 MP4); can be stopped and started again."""

    def __init__(self, video: Path, count: int = 1, port: int | None = None) -> None:
        self.video, self.count = video, count
        self.port = port or free_port()
        self.urls = [f"rtsp://127.0.0.1:{self.port}/cam{i}" for i in range(count)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RtspCameras":
        if not Path(SYSTEM_PYTHON).exists():
            raise RtspUnavailable(f"{SYSTEM_PYTHON} not found (the GStreamer RTSP server runs under it)")
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), str(self.port), str(self.count),
                                      str(self.video)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "READY" not in line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.proc.kill()
            raise RtspUnavailable(f"RTSP server did not start (run `make system-deps`): {line} {err[-500:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> "RtspCameras":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
