"""The alert endpoints during a real run: listed and filtered by a viewer, acknowledged by an operator only."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from ray import serve

from surveillance_ray.alerts import read_alerts
from surveillance_ray.auth import new_key
from surveillance_ray.pipeline import run_pipeline
from surveillance_ray.testing.rtsp import free_port

from .conftest import settings_for


def test_alerts_of_a_running_pipeline_are_listed_and_an_operator_acknowledges_one(
        ray_session: None, tmp_path: Path, pets_video: Path) -> None:
    serve.shutdown()  # the session's earlier runs started Serve without an HTTP proxy
    port = free_port()
    (viewer, viewer_entry), (operator, operator_entry) = new_key("wall", "viewer"), new_key("ops", "operator")
    admin, admin_entry = new_key("root", "admin")
    settings = settings_for(tmp_path, [{"id": "pets", "source": str(pets_video)}],  # real time, 10 fps
                            detector={"imgsz": 320, "num_cpus": 1}, run={"duration_s": 30},
                            api={"enabled": True, "port": port,
                                 "keys": [viewer_entry.model_dump(), operator_entry.model_dump(), admin_entry.model_dump()]})
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(run=run_pipeline(settings)))
    run.start()
    url, as_viewer, as_operator = (f"http://127.0.0.1:{port}", {"X-API-Key": viewer},
                                   {"Authorization": f"Bearer {operator}"})
    try:
        alerts, deadline = [], time.time() + 90
        while not alerts and time.time() < deadline:
            try:
                response = httpx.get(f"{url}/alerts", headers=as_viewer, timeout=10)
                alerts = response.json() if response.status_code == 200 else []
            except httpx.TransportError:  # the API is not up yet
                pass
            time.sleep(0.5)
        assert alerts, "no alert listed while the run went on"
        first = alerts[-1]  # newest first
        assert httpx.get(f"{url}/alerts/{first['id']}", headers=as_viewer).json()["id"] == first["id"]
        assert httpx.get(f"{url}/alerts/no-such-alert", headers=as_viewer).status_code == 404
        assert httpx.get(f"{url}/alerts", params={"camera": "elsewhere"}, headers=as_viewer).json() == []
        for bad in ({"limit": 0}, {"status": "bogus"}, {"since": "yesterday"}):
            assert httpx.get(f"{url}/alerts", params=bad, headers=as_viewer).status_code == 422, bad
        assert httpx.get(f"{url}/alerts").status_code == 401

        denied = httpx.post(f"{url}/alerts/{first['id']}/ack", headers=as_viewer)
        assert denied.status_code == 403 and "needs operator" in denied.json()["detail"]
        acked = httpx.post(f"{url}/alerts/{first['id']}/ack", headers=as_operator, timeout=30)
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "ops"
        assert httpx.post(f"{url}/alerts/no-such-alert/ack", headers=as_operator, timeout=30).status_code == 404
        listed = httpx.get(f"{url}/alerts", params={"acknowledged": True}, headers=as_viewer).json()
        assert [a["id"] for a in listed] == [first["id"]]
        # the run's camera, read through its ingest actor; a batch run's cameras are fixed
        [camera] = httpx.get(f"{url}/cameras", headers=as_viewer, timeout=30).json()
        assert camera["id"] == "pets" and camera["state"] == "running" and camera["frames_analysed"] > 0
        frame = httpx.get(f"{url}/cameras/pets/frame.jpg", headers=as_viewer, timeout=30)
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
        as_admin = {"Authorization": f"Bearer {admin}"}
        fixed = httpx.post(f"{url}/cameras/pets/pause", headers=as_admin, timeout=30)
        assert fixed.status_code == 409 and "surveillance-ray serve" in fixed.json()["detail"]
        assert httpx.get(f"{url}/cameras/elsewhere", headers=as_viewer, timeout=30).status_code == 404
        # per-camera and per-stage metrics of the run, from the nodes' agents (exported every few seconds)
        families, deadline = {}, time.time() + 30
        while time.time() < deadline and not {"ray_surveillance_stage_ms", "ray_surveillance_alerts"} <= set(families):
            text = httpx.get(f"{url}/metrics", headers=as_viewer, timeout=30).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            time.sleep(1)
        stages = {s.labels["stage"] for s in families["ray_surveillance_stage_ms"].samples if "stage" in s.labels}
        assert stages == {"queue", "detect", "track", "validate"}
        raised = [s for s in families["ray_surveillance_alerts"].samples
                  if s.labels.get("stream") == "pets" and s.labels.get("status") == "raised"]
        assert raised and sum(s.value for s in raised) >= 1
    finally:
        run.join(timeout=180)
    run_dir = result["run"].run_dir
    [stored] = [a for a in read_alerts(run_dir) if a.id == first["id"]]
    assert stored.acknowledged_by == "ops" and stored.acknowledged_at is not None
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["alert_id"] for e in events if e["kind"] == "alert_acknowledged"] == [first["id"]]
