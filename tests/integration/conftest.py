"""Integration tests: one real local Ray (2 CPUs) and one detector deployment for the session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import ray
from ray import serve

from surveillance_ray.config import Settings, load_settings


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    serve.shutdown()
    ray.shutdown()


def settings_for(tmp_path: Path, cameras: list[dict], **sections: dict) -> Settings:
    run = {"run_dir": str(tmp_path / "run"), "live": False, **sections.pop("run", {})}
    return load_settings(cameras=cameras, run=run, **sections)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspCamera:
    """Debian's GStreamer RTSP server playing a file on 127.0.0.1; can be killed and restarted."""

    def __init__(self, video: Path, port: int) -> None:
        self.video, self.port = video, port
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        script = Path(__file__).resolve().parent.parent / "support" / "rtsp_server.py"
        self.proc = subprocess.Popen(["/usr/bin/python3", str(script), str(self.port), str(self.video)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "READY" not in line:
            raise RuntimeError(f"RTSP server did not start: {line} {self.proc.stderr.read() if self.proc.stderr else ''}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def rtsp_camera(pets_video: Path) -> Iterator[RtspCamera]:
    if not Path("/usr/bin/python3").exists() or shutil.which("gst-inspect-1.0") is None:
        pytest.fail("GStreamer RTSP server missing: run `make system-deps` (make test does)")
    camera = RtspCamera(pets_video, free_port())
    camera.start()
    yield camera
    camera.stop()


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
