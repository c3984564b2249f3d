"""The HTTP API on real Ray Serve (FastAPI ingress beside the detector), called over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import cv2
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from ray import serve

from surveillance_ray.auth import new_key
from surveillance_ray.config import API_APP, APP_NAME
from surveillance_ray.pipeline import deploy_api, deploy_detector
from surveillance_ray.testing.rtsp import free_port

from .conftest import settings_for

VIEWER, VIEWER_ENTRY = new_key("cam-wall", "viewer")
MAX_MB = 0.5


@pytest.fixture(scope="module")
def api(ray_session: None, tmp_path_factory: pytest.TempPathFactory, pets_video: Path) -> Iterator[str]:
    serve.shutdown()  # the session's earlier runs started Serve without an HTTP proxy
    port = free_port()
    settings = settings_for(tmp_path_factory.mktemp("api"), [{"id": "pets", "source": str(pets_video)}],
                            detector={"imgsz": 320, "num_cpus": 1},
                            api={"enabled": True, "port": port, "keys": [VIEWER_ENTRY.model_dump()],
                                 "max_upload_mb": MAX_MB})
    deploy_detector(settings)
    deploy_api(settings, Console(stderr=True))
    yield f"http://127.0.0.1:{port}"
    for app in (API_APP, APP_NAME):
        serve.delete(app)
    serve.shutdown()


@pytest.fixture(scope="module")
def frame_jpeg(pets_video: Path) -> bytes:
    cap = cv2.VideoCapture(str(pets_video))
    for _ in range(30):  # a frame with people walking
        ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.imencode(".jpg", frame)[1].tobytes()


def auth(key: str = VIEWER) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_needs_no_key_and_everything_else_does(api: str) -> None:
    assert httpx.get(f"{api}/health").json() == {"status": "ok"}
    for method, path in (("GET", "/ready"), ("POST", "/detect")):
        missing = httpx.request(method, f"{api}{path}")
        forged = httpx.request(method, f"{api}{path}", headers=auth("sr_forged"))
        assert missing.status_code == forged.status_code == 401, (path, missing.text)
        assert "missing API key" in missing.json()["detail"] and "invalid API key" in forged.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"
    ready = httpx.get(f"{api}/ready", headers={"X-API-Key": VIEWER})
    assert ready.status_code == 200 and ready.json()["detector_classes"] == 80


def test_detect_finds_the_people_of_a_pets_frame(api: str, frame_jpeg: bytes) -> None:
    response = httpx.post(f"{api}/detect", content=frame_jpeg, headers={**auth(), "Content-Type": "image/jpeg"},
                          timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    frame = cv2.imdecode(__import__("numpy").frombuffer(frame_jpeg, "uint8"), cv2.IMREAD_COLOR)
    assert (body["height"], body["width"]) == frame.shape[:2]
    people = [d for d in body["detections"] if d["class_name"] == "person"]
    assert len(people) >= 3 and all(d["confidence"] > 0.25 for d in people)
    for d in people:
        x1, y1, x2, y2 = d["xyxy"]
        assert 0 <= x1 < x2 <= body["width"] and 0 <= y1 < y2 <= body["height"]


@pytest.mark.parametrize("case, content, status, says", [
    ("empty body", b"", 400, "empty body"),
    ("not an image", b"%PDF-1.4 not an image" * 10, 415, "not an image"),
    ("oversize", b"\xff" * int(MAX_MB * 2**20 + 1), 413, "limit"),
])
def test_bad_uploads_get_a_4xx_that_says_why(api: str, case: str, content: bytes, status: int, says: str) -> None:
    response = httpx.post(f"{api}/detect", content=content, headers=auth(), timeout=60)
    assert response.status_code == status and says in response.json()["detail"], (case, response.text)


def test_wrong_methods_and_paths_are_4xx_and_openapi_lists_the_endpoints(api: str) -> None:
    assert httpx.get(f"{api}/detect", headers=auth()).status_code == 405
    assert httpx.get(f"{api}/no/such/../path", headers=auth()).status_code == 404
    spec = httpx.get(f"{api}/openapi.json", headers=auth()).json()
    assert {"/health", "/ready", "/detect", "/metrics"} <= set(spec["paths"])
    assert "image/*" in spec["paths"]["/detect"]["post"]["requestBody"]["content"]
    assert httpx.get(f"{api}/docs", headers=auth()).status_code == 200
    assert httpx.get(f"{api}/docs").status_code == httpx.get(f"{api}/openapi.json").status_code == 401


def test_metrics_gathers_the_pipeline_families_of_the_cluster_including_the_api_requests(api: str) -> None:
    httpx.post(f"{api}/detect", content=b"not an image", headers=auth())
    deadline, text = time.time() + 60, ""
    while time.time() < deadline:  # Ray's agents export every few seconds
        response = httpx.get(f"{api}/metrics", headers=auth(), timeout=30)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        text = response.text
        if 'route="/detect",status="415"' in text:
            break
        time.sleep(2)
    families = list(text_string_to_metric_families(text))
    assert families and all(f.name.startswith("ray_surveillance_") for f in families)
    [requests] = [f for f in families if f.name == "ray_surveillance_api_requests"]
    assert any(s.labels["route"] == "/detect" and s.labels["status"] == "415" and s.value >= 1 for s in requests.samples)
    assert httpx.get(f"{api}/metrics").status_code == 401
