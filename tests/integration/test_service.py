"""`surveillance-ray serve` as an operator runs it: its own local Ray, the HTTP API over TLS (a self-signed
certificate made here), cameras added, paused and removed at runtime without touching the others, pictures and
the alert stream, every endpoint's roles with keys and tokens, and the state across a restart (SIGTERM, then
the same command again)."""

from __future__ import annotations

import json
import os
import re
import random
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import cv2
import httpx
import numpy as np
import pytest
import yaml

from surveillance_ray.auth import new_key
from surveillance_ray.testing.fuzz import chunked, fuzz_request
from surveillance_ray.testing.rtsp import free_port

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
KEYS = {role: new_key(f"{role}-key", role) for role in ("viewer", "operator", "admin")}
ORDER = ["viewer", "operator", "admin"]
#: Every endpoint and the least role it needs (None: open). The test fails when the API has a route not here.
ENDPOINTS: dict[tuple[str, str], str | None] = {
    ("GET", "/health"): None,
    ("POST", "/token"): "viewer",  # any API key
    ("POST", "/logout"): None,
    ("GET", "/me"): "viewer",
    ("GET", "/ready"): "viewer",
    ("GET", "/metrics"): "viewer",
    ("GET", "/alerts"): "viewer",
    ("GET", "/alerts/stream"): "viewer",
    ("GET", "/alerts/{alert_id}"): "viewer",
    ("GET", "/alerts/{alert_id}/snapshot.jpg"): "viewer",
    ("POST", "/alerts/{alert_id}/ack"): "operator",
    ("GET", "/cameras"): "viewer",
    ("POST", "/cameras"): "admin",
    ("GET", "/cameras/{camera_id}"): "viewer",
    ("DELETE", "/cameras/{camera_id}"): "admin",
    ("POST", "/cameras/{camera_id}/pause"): "admin",
    ("POST", "/cameras/{camera_id}/resume"): "admin",
    ("GET", "/cameras/{camera_id}/frame.jpg"): "viewer",
    ("GET", "/cameras/{camera_id}/mjpeg"): "viewer",
    ("POST", "/detect"): "viewer",
}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role][0]}"}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


class Service:
    """``surveillance-ray serve`` in a subprocess (its own Ray), stopped with SIGTERM; HTTPS."""

    def __init__(self, config: Path, state_dir: Path, port: int, cert: Path) -> None:
        self.config, self.state_dir, self.url = config, state_dir, f"https://127.0.0.1:{port}"
        self.verify = ssl.create_default_context(cafile=str(cert))
        self.proc: subprocess.Popen | None = None
        self.log = state_dir.parent / "serve.log"

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "surveillance_ray.cli", "serve", "--config", str(self.config),
                                      "--state-dir", str(self.state_dir)],
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("a"), env=env)
        deadline = time.time() + 240
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if self.get("/cameras").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError("the service did not answer in 240 s:\n" + self.log.read_text()[-3000:])

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=180)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, verify=self.verify, **kw)

    def stream(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return httpx.stream(method, f"{self.url}{path}", headers=headers, timeout=90, verify=self.verify, **kw)

    def get(self, path: str, role: str = "viewer", **kw: Any) -> httpx.Response:
        return self.request("GET", path, auth(role), **kw)

    def post(self, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
        return self.request("POST", path, auth(role), **kw)

    def camera(self, camera_id: str) -> dict[str, Any]:
        response = self.get(f"/cameras/{camera_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_camera(self, camera_id: str, predicate: Any, timeout: float = 90) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            cam = self.camera(camera_id)
            if predicate(cam):
                return cam
            time.sleep(0.5)
        raise AssertionError(f"camera {camera_id}: {cam}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pets_video: Path) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    port = free_port()
    cert, key = self_signed(root)
    config = {
        "cameras": [{"id": "lobby", "source": str(pets_video), "loop": True,
                     "zones": [{"name": "door", "kind": "intrusion", "polygon": [[0, 0], [0.6, 0], [0.6, 0.8], [0, 0.8]],
                                "cooldown_s": 2}],
                     "rules": {"object_classes": []}}],
        "detector": {"imgsz": 320, "num_cpus": 1},
        "api": {"port": port, "keys": [entry.model_dump() for _, entry in KEYS.values()], "tls_certfile": str(cert),
                "tls_keyfile": str(key)},
        "run": {"live": False},
    }
    (root / "service.yaml").write_text(yaml.safe_dump(config))
    svc = Service(root / "service.yaml", root / "state", port, cert)
    svc.start()
    yield svc
    if svc.proc is not None and svc.proc.poll() is None:
        svc.stop()


def test_every_endpoint_needs_its_role(service: Service) -> None:
    routes = {(m.upper(), path) for path, ops in service.get("/openapi.json").json()["paths"].items() for m in ops}
    assert routes == set(ENDPOINTS), f"endpoints without an expected role: {routes ^ set(ENDPOINTS)}"
    # outside the schema: the API's description needs a key too; the dashboard's page (its sign-in) does not
    for path in ("/openapi.json", "/docs"):
        assert service.request("GET", path).status_code == 401 and service.get(path).status_code == 200
    assert service.request("GET", "/").status_code == 200
    for (method, template), least in ENDPOINTS.items():
        path = template.format(alert_id="no-such-alert", camera_id="no-such-camera")
        kw: dict[str, Any] = {"json": {}} if (method, template) == ("POST", "/cameras") else {}

        def call(headers: dict[str, str]) -> int:
            with service.stream(method, path, headers, **kw) as r:
                return r.status_code  # streams: the status only, then closed

        if least is None:
            assert call({}) == 200
            continue
        assert call({}) == 401, (method, path)
        assert call({"Authorization": "Bearer sr_forged"}) == 401, (method, path)
        for role in ORDER:
            status = call(auth(role))
            if ORDER.index(role) < ORDER.index(least):
                assert status == 403, (method, path, role, status)
            else:  # allowed: the answer is about the (missing) thing, never about the key
                assert status not in (401, 403, 500), (method, path, role, status)


def test_tls_and_tokens_for_browsers(service: Service) -> None:
    with pytest.raises(httpx.HTTPError):  # only HTTPS is served
        httpx.get(service.url.replace("https", "http") + "/health", timeout=5)
    with pytest.raises(httpx.ConnectError):  # and the certificate is checked
        httpx.get(f"{service.url}/health", timeout=5)
    issued = service.post("/token", role="operator")
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["role"] == "operator" and body["name"] == "operator-key" and body["expires_in"] == 3600
    cookie = issued.cookies["sr_token"]
    assert cookie == body["access_token"]
    set_cookie = issued.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "secure" in set_cookie
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert service.request("GET", "/cameras", bearer).status_code == 200
    # what a browser sends from an <img> or an EventSource: the cookie alone
    assert service.request("GET", "/cameras", {"Cookie": f"sr_token={cookie}"}).status_code == 200
    assert service.request("POST", "/cameras/no-such-camera/pause", bearer).status_code == 403  # operator < admin
    assert service.request("POST", "/token", bearer).status_code == 401  # a token buys no new token
    tampered = body["access_token"][:-2] + ("A" if body["access_token"][-2] != "A" else "B") + body["access_token"][-1]
    assert service.request("GET", "/cameras", {"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_live_view_snapshots_and_the_alert_stream(service: Service) -> None:
    lobby = service.wait_camera("lobby", lambda c: c["state"] == "running" and c["frames_analysed"] > 20)
    assert lobby["fps_analysed"] > 3 and lobby["origin"] == "config" and lobby["latency_ms"]["p50"] > 0

    frame = service.get("/cameras/lobby/frame.jpg")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR).shape == (360, 480, 3)

    parts = 0
    with service.stream("GET", "/cameras/lobby/mjpeg?fps=10", auth("viewer")) as r:
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        buffer = b""
        for chunk in r.iter_bytes():
            buffer += chunk
            parts = buffer.count(b"--frame\r\n")
            if parts >= 3:
                break
    assert parts >= 3

    events: list[tuple[str, dict]] = []

    def listen() -> None:  # the SSE stream, as a browser's EventSource reads it
        with service.stream("GET", "/alerts/stream", auth("viewer")) as r:
            event_id = None
            for line in r.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    events.append((event_id, json.loads(line[6:])))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listener.join(90)
    assert events, "no alert came over the stream in 90 s"
    row, alert = events[0]
    assert row.isdigit() and alert["camera"] == "lobby" and alert["type"] == "intrusion"
    assert "-s1-" in alert["id"]  # the service's session is in the id
    # the alert's snapshot: the frame that raised it, drawn, written beside the store
    deadline = time.time() + 30
    while (snap := service.get(f"/alerts/{alert['id']}/snapshot.jpg")).status_code == 404 and time.time() < deadline:
        time.sleep(0.5)
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg", snap.text
    assert cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR).shape == (360, 480, 3)
    # resuming from the id it saw, a client gets the alerts stored after it
    with service.stream("GET", "/alerts/stream", {**auth("viewer"), "Last-Event-ID": str(int(row) - 1)}) as r:
        again = next(json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: "))
    assert again["id"] == alert["id"]


def chromium(tmp: Path) -> Any:
    """Debian's Chromium, headless, through its chromedriver (no browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    if not Path(CHROMEDRIVER).is_file():
        pytest.fail("chromium-driver is not installed: run `make system-deps` (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
                f"--user-data-dir={tmp / 'chromium-profile'}"):
        options.add_argument(arg)
    options.accept_insecure_certs = True  # the test's self-signed certificate (httpx checks it elsewhere)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))


def test_the_dashboard_in_a_real_browser(service: Service, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = service.request("GET", "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    driver = chromium(tmp_path)
    wait = WebDriverWait(driver, 60, poll_frequency=0.2)
    try:
        driver.get(service.url + "/")
        wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())  # no cookie yet: the sign-in form

        def sign_in(role: str) -> None:
            driver.find_element(By.ID, "key").send_keys(KEYS[role][0])
            driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
            wait.until(lambda d: d.find_element(By.ID, "who").text == f"{role}-key ({role})")

        sign_in("viewer")
        # a tile per camera whose picture keeps refreshing, with its fps and latency
        tile = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '.tile[data-camera="lobby"]'))
        wait.until(lambda d: int(tile.get_attribute("data-frames") or 0) >= 3)
        assert driver.execute_script("return arguments[0].querySelector('img').naturalWidth", tile) == 480
        assert " fps · p50 " in tile.find_element(By.CLASS_NAME, "stats").text
        # the alert feed with snapshots; a viewer gets no acknowledge button
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed .alert")) >= 1)
        first = driver.find_element(By.CSS_SELECTOR, "#feed .alert")
        wait.until(lambda d: d.execute_script("return arguments[0].querySelector('img').naturalWidth", first) == 480)
        assert not driver.find_elements(By.CSS_SELECTOR, "#feed .ack")
        # new alerts arrive over the server-sent events
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#feed .alert.new"))

        driver.find_element(By.ID, "logout").click()
        wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
        sign_in("operator")
        button = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#feed .alert .ack"))
        item = button.find_element(By.XPATH, "./ancestor::li")
        alert_id = item.get_attribute("data-alert")
        button.click()
        wait.until(lambda d: "acknowledged by operator-key" in item.text)
        assert service.get(f"/alerts/{alert_id}").json()["acknowledged_by"] == "operator-key"
        time.sleep(1.5)  # a few more frames and alerts for the picture
        shot = os.environ.get("SURVEILLANCE_DASHBOARD_SHOT") or str(tmp_path / "dashboard.png")
        assert driver.save_screenshot(shot)
        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "401" not in e["message"]]  # the first /me, before signing in
        # a new alert comes over the SSE stream before its picture is written: the page retries a 404 (the browser
        # logs each one), and the picture must be there by now
        late = [e for e in errors if re.search(r"/alerts/[^/ ]+/snapshot\.jpg.* 404 ", e)]
        for message in late:
            path = re.search(r"https?://[^/]+(/alerts/[^/ ?]+/snapshot\.jpg)", message).group(1)
            assert service.get(path).status_code == 200, message
        errors = [e for e in errors if e not in late]
        assert not errors, errors
    finally:
        driver.quit()


def test_fuzzing_the_api_gets_no_5xx(service: Service, pets_video: Path) -> None:
    """A seeded few hundred bad (and some good) requests: every answer a 2xx or a 4xx, the cameras go on."""
    cap = cv2.VideoCapture(str(pets_video))
    ok, frame = cap.read()
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    rng, statuses, refused_mid_upload = random.Random(7), Counter(), 0
    before = service.camera("lobby")["frames_analysed"]
    with httpx.Client(base_url=service.url, verify=service.verify, timeout=60) as client:
        for _ in range(300):
            kind, method, path, kw = fuzz_request(rng, jpeg, ["lobby"], auth)
            kw = chunked(kw, asynchronous=False)
            try:
                with client.stream(method, path, **kw) as r:
                    statuses[r.status_code] += 1
                    assert r.status_code < 500, (kind, method, path[:100], r.status_code)
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                assert kind == "huge", (kind, method, path[:100])  # 413 sent, connection closed mid-upload
                refused_mid_upload += 1
    assert sum(statuses.values()) + refused_mid_upload == 300
    assert {200, 401, 404, 405, 413, 422} <= set(statuses), statuses
    assert service.get("/health").status_code == 200
    assert service.camera("lobby")["frames_analysed"] > before and service.camera("lobby")["state"] == "running"


def test_cameras_change_at_runtime_without_touching_the_others(service: Service, pets_video: Path) -> None:
    before = service.wait_camera("lobby", lambda c: c["state"] == "running")
    added = service.post("/cameras", json={"id": "yard", "source": str(pets_video), "loop": True})
    assert added.status_code == 201, added.text
    assert added.json()["origin"] == "api"
    yard = service.wait_camera("yard", lambda c: c["state"] == "running" and c["frames_analysed"] > 10)
    lobby = service.camera("lobby")
    # the lobby went on: same ingest actor, its counters never restarted
    assert lobby["ingest_actor"] == before["ingest_actor"] and lobby["frames_analysed"] > before["frames_analysed"]
    assert yard["ingest_actor"] == lobby["ingest_actor"]  # room on the lobby's actor (16 cameras per actor)

    assert service.post("/cameras", json={"id": "yard", "source": str(pets_video)}).status_code == 409
    bad = service.post("/cameras", json={"id": "gate", "source": "/nowhere/gate.mp4"})
    assert bad.status_code == 422 and "source file not found" in bad.text
    typo = service.post("/cameras", json={"id": "gate", "source": str(pets_video),
                                          "zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [1, 1]], "classes": ["persn"]}]})
    assert typo.status_code == 422 and "did you mean 'person'" in typo.text
    assert service.get("/cameras/gate").status_code == 404

    paused = service.post("/cameras/yard/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert service.get("/cameras/yard/frame.jpg").status_code == 409
    running = service.camera("lobby")["frames_analysed"]
    time.sleep(2)
    assert service.camera("lobby")["frames_analysed"] > running  # pausing the yard left the lobby alone
    assert service.post("/cameras/yard/resume").status_code == 200
    service.wait_camera("yard", lambda c: c["state"] == "running" and c["frames_analysed"] > 5)
    removed = service.request("DELETE", "/cameras/yard", auth("admin"))
    assert removed.status_code == 200 and removed.json()["final"]["frames_analysed"] > 5
    assert service.get("/cameras/yard").status_code == 404
    assert [c["id"] for c in service.get("/cameras").json()] == ["lobby"]


def test_state_survives_a_restart(service: Service, pets_video: Path) -> None:
    assert service.post("/cameras", json={"id": "garage", "source": str(pets_video), "loop": True}).status_code == 201
    assert service.post("/cameras/lobby/pause").status_code == 200
    alerts_before = service.get("/alerts", params={"limit": 1000}).json()
    assert alerts_before
    assert service.stop() == 0  # SIGTERM: a clean stop
    state = json.loads((service.state_dir / "cameras.json").read_text())
    assert state["session"] == 1 and state["cameras"]["lobby"]["paused"] and "yard" in state["removed"]

    service.start()
    cams = {c["id"]: c for c in service.get("/cameras").json()}
    assert set(cams) == {"lobby", "garage"}  # the removed yard stays removed, the added garage is back
    assert cams["lobby"]["state"] == "paused" and cams["garage"]["origin"] == "api"
    service.wait_camera("garage", lambda c: c["state"] == "running" and c["frames_analysed"] > 5)
    after = {a["id"] for a in service.get("/alerts", params={"limit": 1000}).json()}
    assert {a["id"] for a in alerts_before} <= after  # the alerts of the first session are still there
    assert service.post("/cameras/lobby/resume").status_code == 200
    deadline = time.time() + 90
    while time.time() < deadline and not any("-s2-" in a for a in after):
        time.sleep(1)
        after = {a["id"] for a in service.get("/alerts", params={"camera": "lobby", "limit": 1000}).json()}
    assert any("-s2-" in a for a in after), "no alert of the second session"
    assert service.stop() == 0
