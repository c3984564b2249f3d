"""Faults of the hot path: a detector replica killed mid-run, a camera whose source stalls."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import ray

from surveillance_ray.pipeline import APP_NAME, run_pipeline
from surveillance_ray.testing.rtsp import RtspCameras

from .conftest import settings_for, wait_for


def replica_names() -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and APP_NAME in a["name"] and "YOLODetector" in a["name"]]


class Background:
    """``run_pipeline`` on a thread, so that the test can break things while it runs."""

    def __init__(self, settings) -> None:
        self.result: dict = {}
        self.thread = threading.Thread(target=lambda: self.result.update(summary=run_pipeline(settings).summary))
        self.thread.start()

    def summary(self, timeout: float) -> dict:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the run did not finish"
        return self.result["summary"]


def analysed_rows(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_detector_replica_killed_mid_run(ray_session: None, tmp_path: Path, assets: Path) -> None:
    seq = assets / "mot/TUD-Campus"  # 640x480 frames at 40 fps per camera: a request is always in flight
    cams = [{"id": f"c{i}", "source": str(seq), "source_fps": 40, "loop": True} for i in range(3)]
    settings = settings_for(tmp_path, cams, detector={"imgsz": 640}, run={"duration_s": 30})
    run = Background(settings)
    log = settings.run.run_dir / "tracks.jsonl"
    assert wait_for(lambda: len(analysed_rows(log)) >= 60, timeout=90), "no frames analysed"
    [name] = replica_names()
    [ingest] = [ray.get_actor(a["name"], namespace=a["namespace"])
                for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("ingest-")]
    at_detector = lambda: sum(c["at_detector"] for c in ray.get(ingest.stats.remote())["cameras"].values())  # noqa: E731
    assert wait_for(lambda: at_detector() > 0, timeout=30, interval=0.01)  # kill it with frames in flight
    killed_at = time.time()
    ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    summary = run.summary(timeout=180)

    total = summary["total"]
    # the frames at the detector when it died: counted as detector_error, or (Ray Serve's router routes a
    # request whose replica died again) analysed by the new replica, after waiting for it to start
    back_at = next(e["t_s"] for e in summary["run"]["detector_timeline"][1:] if e["replicas"].get("RUNNING"))
    outage_s = back_at - (killed_at - summary["run"]["started_at"])
    waited = total["latency_ms"]["max"] >= 1000 * outage_s / 2
    assert total["dropped"].get("detector_error", 0) >= 1 or waited, (total, summary["run"]["detector_timeline"])
    for s in summary["streams"].values():
        assert s["state"] == "finished" and s["in_pipeline"] == 0
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"]  # none unaccounted for
    after = [r for r in analysed_rows(log) if r["captured_at"] > killed_at + 1]
    assert len(after) >= 30  # Serve brought a replica back and the run went on
    timeline = summary["run"]["detector_timeline"]
    running = [e["replicas"].get("RUNNING", 0) for e in timeline]
    assert running[0] == 1 and running[-1] == 1 and len(timeline) >= 3, timeline  # what happened is in the summary
    assert any(e["status"] != "HEALTHY" or e["replicas"].get("RUNNING", 0) == 0 for e in timeline[1:-1]), timeline


def test_stalled_camera_does_not_slow_the_others(ray_session: None, tmp_path: Path, h264_pets: Path) -> None:
    steady, stalling = RtspCameras(h264_pets, 1).start(), RtspCameras(h264_pets, 1).start()
    try:
        cams = [{"id": "steady", "source": steady.urls[0]},
                {"id": "stalls", "source": stalling.urls[0], "read_timeout_s": 2, "reconnect_initial_s": 0.5,
                 "reconnect_max_s": 1}]  # both in one ingest actor (cameras_per_actor defaults to 16)
        settings = settings_for(tmp_path, cams, detector={"imgsz": 320}, run={"duration_s": 30})
        run = Background(settings)
        log = settings.run.run_dir / "tracks.jsonl"
        assert wait_for(lambda: sum(r["stream_id"] == "stalls" for r in analysed_rows(log)) >= 30, timeout=60)
        os.kill(stalling.proc.pid, signal.SIGSTOP)  # the camera stops sending, its connection stays open
        stalled = (time.time() + 1, time.time() + 9)
        time.sleep(10)
        os.kill(stalling.proc.pid, signal.SIGCONT)
        streams = run.summary(timeout=120)["streams"]
    finally:
        steady.stop()
        stalling.stop()
    rows = analysed_rows(log)
    during = [r for r in rows if stalled[0] <= r["captured_at"] < stalled[1]]
    steady_fps = sum(r["stream_id"] == "steady" for r in during) / (stalled[1] - stalled[0])
    assert steady_fps >= 8.0  # the steady camera kept its ~10 fps while the other one hung
    assert sum(r["stream_id"] == "stalls" for r in during) <= 2
    assert streams["stalls"]["frames_analysed"] > 30 and streams["steady"]["state"] == "finished"
    for s in streams.values():
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"]


def test_validator_killed_mid_run_loses_no_alert(ray_session: None, tmp_path: Path, assets: Path) -> None:
    """Its process dies: Ray restarts it, it reopens the alert store without raising the same alerts
    again, the cameras go on, and every alert written before the crash is in alerts.db."""
    from surveillance_ray.alerts import read_alerts

    seq = assets / "mot/PETS09-S3-MF1"  # people walking, looped
    cams = [{"id": f"c{i}", "source": str(seq), "source_fps": 7, "loop": True} for i in range(2)]
    settings = settings_for(tmp_path, cams, detector={"imgsz": 320}, run={"duration_s": 25})
    run = Background(settings)
    jsonl = settings.run.run_dir / "alerts.jsonl"
    assert wait_for(lambda: jsonl.exists() and len(jsonl.read_text().splitlines()) >= 3, timeout=90)
    [validator] = [ray.get_actor(a["name"], namespace=a["namespace"])
                   for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("validator-")]
    killed_at = time.time()
    ray.kill(validator, no_restart=False)  # as if its process crashed
    summary = run.summary(timeout=180)

    written = [json.loads(line) for line in jsonl.read_text().splitlines()]
    stored = {a.id: a for a in read_alerts(settings.run.run_dir)}
    assert {a["id"] for a in written} <= set(stored) and len(written) == len(stored)  # none lost, none twice
    assert any(a.raised_at > killed_at + 1 for a in stored.values())  # the restarted validator raised more
    assert summary["run"]["validator_failures"], summary["run"]
    assert summary["total"]["alerts_raised"] == sum(a.status.value == "raised" for a in stored.values())
    for s in summary["streams"].values():
        assert s["state"] == "finished" and s["in_pipeline"] == 0
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"]  # validator_error counts the rest
