"""A real RTSP camera (GStreamer RTSP server) that goes away and comes back while the pipeline runs."""

import json
import threading
import time
from pathlib import Path

from surveillance_ray.pipeline import run_pipeline

from surveillance_ray.testing.rtsp import RtspCameras

from .conftest import settings_for, wait_for


def test_camera_survives_rtsp_server_restart(ray_session: None, tmp_path: Path, rtsp_camera: RtspCameras) -> None:
    cams = [{"id": "door", "source": rtsp_camera.urls[0], "read_timeout_s": 3, "reconnect_initial_s": 0.5,
             "reconnect_max_s": 2}]
    settings = settings_for(tmp_path, cams, detector={"imgsz": 320}, run={"duration_s": 40})
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(summary=run_pipeline(settings).summary))
    runner.start()
    log = settings.run.run_dir / "tracks.jsonl"

    def analysed(epoch: int) -> int:
        if not log.exists():
            return 0
        return sum(1 for line in log.read_text().splitlines() if json.loads(line)["epoch"] == epoch)

    assert wait_for(lambda: analysed(0) >= 20, timeout=60), "no frames from the RTSP camera"
    rtsp_camera.stop()
    time.sleep(5)  # the camera notices (read timeout) and starts reconnecting with backoff
    before = analysed(0)
    rtsp_camera.start()
    assert wait_for(lambda: analysed(1) >= 20, timeout=60), "camera did not come back after the server restart"
    runner.join(timeout=120)
    assert not runner.is_alive()
    s = result["summary"]["streams"]["door"]
    assert s["reconnects"] >= 1 and s["state"] == "finished"
    assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"]
    assert analysed(0) == before  # nothing of the old session arrived after the restart
    events = [json.loads(line) for line in (settings.run.run_dir / "events.jsonl").open()]
    assert any(e["kind"] == "track_ended" and e["epoch"] == 0 and e["reason"] == "source reconnected or looped"
               for e in events)
