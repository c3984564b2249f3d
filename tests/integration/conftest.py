"""Integration tests: one real local Ray (2 CPUs) and one detector deployment for the session."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
import ray
from ray import serve

from surveillance_ray.config import Settings, load_settings
from surveillance_ray.testing.rtsp import RtspCameras, RtspUnavailable, h264_video


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    serve.shutdown()
    ray.shutdown()


def settings_for(tmp_path: Path, cameras: list[dict], **sections: dict) -> Settings:
    run = {"run_dir": str(tmp_path / "run"), "live": False, **sections.pop("run", {})}
    return load_settings(cameras=cameras, run=run, **sections)


@pytest.fixture(scope="session")
def h264_pets(pets_video: Path) -> Path:
    """The PETS video as an IP camera sends it (H.264, a keyframe a second), encoded once and cached."""
    return h264_video(pets_video)


@pytest.fixture
def rtsp_camera(h264_pets: Path) -> Iterator[RtspCameras]:
    """One real RTSP camera (Debian's GStreamer RTSP server) at ``.urls[0]``; can be stopped and restarted."""
    try:
        camera = RtspCameras(h264_pets, count=1).start()
    except RtspUnavailable as exc:
        pytest.fail(f"{exc}: run `make system-deps` (make test does)")
    yield camera
    camera.stop()


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
