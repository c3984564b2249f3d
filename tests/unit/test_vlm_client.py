"""The VLM client against real HTTP servers that answer well, refuse, time out or return malformed JSON;
the escalation queue; the evidence sent (schema, privacy)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from surveillance_ray.config import VLMConfig, VLMEndpoint
from surveillance_ray.escalate import Escalator
from surveillance_ray.evidence import EscalationRequest, Keyframes, build_evidence
from surveillance_ray.faces import FaceBlur
from surveillance_ray.verdict import Mode, ReviewStatus, Verdict, verdict_schema
from surveillance_ray.vlm import VLMClient, request_body

GOOD = {"threat_level": "low", "is_false_positive": False, "description": "a person walks to the door",
        "confidence": 0.8, "recommended_action": "monitor"}


class _Handler(BaseHTTPRequestHandler):
    behaviour = "good"
    bodies: list[dict] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        kind = type(self).behaviour
        if kind == "slow":
            time.sleep(1.5)
        if kind == "error":
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        content = {"good": json.dumps(GOOD), "slow": json.dumps(GOOD), "malformed": '{"threat_level": "lo',
                   "schema": json.dumps(GOOD | {"description": "x" * 300})}[kind]
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    """A real HTTP server whose behaviour the test sets; yields (url, handler class)."""
    handler = type("Handler", (_Handler,), {"behaviour": "good", "bodies": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens after the close: refused


def _evidence(mode: str = "FAST", alert_id: str = "cam-e0-t1-intrusion-door"):
    image = np.full((240, 320, 3), 90, np.uint8)
    frames = Keyframes(keep=5)
    for i in range(6):
        frames.add(float(i), image, np.array([[100, 60, 140, 200]], np.float32))
    request = EscalationRequest({"id": alert_id, "camera": "cam", "type": "intrusion", "level": "ADVANCED",
                                 "class_name": "person", "zone": "door", "line": None, "direction": None,
                                 "behaviors": [], "confidence": 0.8,
                                 "rules": [{"rule": "ConfidenceThresholdRule", "level": "BASIC", "reason": "0.8"}]},
                                "cam", (100.0, 60.0, 140.0, 200.0), 12.0, "seen for 3.0 s")
    config = VLMConfig()
    m = config.modes[mode]
    return build_evidence(request, frames, mode, m.image_size, m.keyframes, FaceBlur().apply)


def _config(**kw) -> VLMConfig:
    kw.setdefault("retries", 1)
    kw.setdefault("backoff_s", 0.05)
    return VLMConfig(**kw)


def _review(config: VLMConfig, urls: list[str], evidence=None):
    client = VLMClient(config, [VLMEndpoint(url=u, model="m") for u in urls])

    async def go():
        try:
            return await client.review(evidence or _evidence())
        finally:
            await client.close()
    return asyncio.run(go()), client


def test_a_valid_answer_becomes_a_confirmed_review_and_the_request_asks_for_the_schema(server) -> None:
    url, handler = server
    review, _ = _review(_config(), [url])
    assert review.status is ReviewStatus.CONFIRMED and review.verdict == Verdict(**GOOD)
    assert review.endpoint == url and review.attempts == 1 and 0 < review.answer_s <= review.latency_s
    [body] = handler.bodies
    assert body["response_format"]["json_schema"]["schema"] == verdict_schema()
    assert body["temperature"] == 0 and body["max_tokens"] == VLMConfig().modes["FAST"].max_tokens
    content = body["messages"][1]["content"]
    assert [c["type"] for c in content] == ["image_url", "image_url", "text"]  # crop + 1 keyframe (FAST)
    assert "zone door" in content[-1]["text"] and "intrusion" in content[-1]["text"]


@pytest.mark.parametrize("mode,images", [("FAST", 2), ("BALANCED", 4), ("THOROUGH", 6)])
def test_modes_send_their_keyframes_and_prompt_depth(mode: str, images: int) -> None:
    evidence = _evidence(mode)
    body = request_body(evidence, "m", VLMConfig().modes[mode].prompt, 100)
    content = body["messages"][1]["content"]
    assert sum(c["type"] == "image_url" for c in content) == images
    text = content[-1]["text"]
    assert ("ConfidenceThresholdRule" in text) == (mode == "THOROUGH")  # only THOROUGH lists the rules
    longest = max(cv2.imdecode(np.frombuffer(base64.b64decode(c["image_url"]["url"].split(",")[1]), np.uint8),
                               cv2.IMREAD_COLOR).shape[1] for c in content if c["type"] == "image_url")
    assert longest <= VLMConfig().modes[mode].image_size


@pytest.mark.parametrize("behaviour,error", [("error", "HTTP 503"), ("malformed", "invalid verdict"),
                                             ("schema", "invalid verdict"), ("slow", "budget of 1.2 s")])
def test_failures_leave_the_alert_unreviewed_with_the_reason(server, behaviour: str, error: str) -> None:
    url, handler = server
    handler.behaviour = behaviour
    t0 = time.monotonic()
    review, _ = _review(_config(), [url])
    assert review.status is ReviewStatus.UNREVIEWED and review.verdict is None
    assert error in review.error and review.attempts == 2  # one retry
    if behaviour == "slow":
        assert time.monotonic() - t0 < 2 * 1.2 + 1.0  # the budget is enforced per attempt


def test_fallback_chain_skips_a_refusing_endpoint_and_the_breaker_opens(server) -> None:
    url, handler = server
    refused = _closed_port()
    config = _config(breaker_failures=2)
    client = VLMClient(config, [VLMEndpoint(url=refused, model="m"), VLMEndpoint(url=url, model="m")])

    async def go():
        out = [await client.review(_evidence()) for _ in range(3)]
        await client.close()
        return out
    reviews = asyncio.run(go())
    assert all(r.status is ReviewStatus.CONFIRMED and r.endpoint == url for r in reviews)
    assert client.breakers[refused].open and not client.breakers[url].open
    assert [r.attempts for r in reviews] == [2, 2, 1]  # the third skips the open circuit


def test_queue_overflow_drops_the_oldest_and_every_review_reaches_the_validator(server) -> None:
    url, handler = server
    handler.behaviour = "slow"

    class Validator:  # what the escalator calls on the validator actor
        def __init__(self):
            self.reviews = []
            self.reviewed = self

        async def _record(self, review):
            self.reviews.append(review)

        def remote(self, review):
            return self._record(review)

    validator = Validator()
    config = _config(queue_size=2, workers=1, retries=0,
                     modes={"FAST": {"image_size": 64, "keyframes": 1, "max_tokens": 64, "budget_s": 5.0,
                                     "prompt": "fast.j2"}})
    escalator = Escalator(config, [VLMEndpoint(url=url, model="m")], validator)

    # built first: the five arrive 0.05 s apart, all while the worker holds a0 for 1.5 s (built in the loop, on
    # a loaded machine, the later ones came after a0's answer and one fewer was dropped)
    evidence = [_evidence(alert_id=f"a{i}") for i in range(5)]

    async def go():
        for e in evidence:
            await escalator.submit(e)
            await asyncio.sleep(0.05)
        return await escalator.flush(30)
    assert asyncio.run(go())
    by_id = {r["alert_id"]: r for r in validator.reviews}
    assert sorted(by_id) == ["a0", "a1", "a2", "a3", "a4"]  # none lost
    dropped = [a for a, r in by_id.items() if "queue full" in r["error"]]
    assert len(dropped) == 2 and all(by_id[a]["status"] == "unreviewed" for a in dropped)
    assert escalator.stats()["counts"] == {"queued": 5, "dropped": 2, "reviewed": 3}


def test_privacy_blurs_the_heads_of_people_without_a_face_found() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 200, 3), np.uint8)  # noise: no face to find, the head region goes
    out = FaceBlur().apply(image, np.array([[50, 20, 110, 180]], np.float32))
    head, body = (slice(20, 55), slice(50, 110)), (slice(60, 180), slice(50, 110))
    assert out[head].std() < image[head].std() * 0.7  # pixelated
    assert np.array_equal(out[body], image[body]) and np.array_equal(out[:, :50], image[:, :50])
