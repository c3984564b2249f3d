"""Requests to fuzz the HTTP API with (the API's test and ``benchmarks.api_load``): malformed and wrongly typed
JSON, huge bodies (declared and chunked), random bytes as images, path tricks, wrong methods, bad credentials,
out-of-range queries, and valid reads; each drawn from a seeded ``random.Random``."""

from __future__ import annotations

import functools
import os
import random
from typing import Any, Callable


@functools.cache
def _blobs() -> tuple[bytes, ...]:
    """Random bodies of 2, 11 and 40 MB, made once (the load generator shares the machine)."""
    return tuple(os.urandom(n * 2**20) for n in (2, 11, 40))


def chunked(kw: dict[str, Any], asynchronous: bool) -> dict[str, Any]:
    """httpx kwargs with a ``chunked`` body turned into a generator (no Content-Length: the server must count)."""
    if not kw.pop("chunked", False):
        return kw
    blob, size = kw.pop("content"), 2**16

    async def agen() -> Any:
        for i in range(0, len(blob), size):
            yield blob[i:i + size]

    def gen() -> Any:
        for i in range(0, len(blob), size):
            yield blob[i:i + size]

    return {**kw, "content": agen() if asynchronous else gen()}


def fuzz_request(rng: random.Random, jpeg: bytes, cams: list[str],
                 auth: Callable[[str], dict[str, str]]) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, method, path, httpx kwargs) of one request, bad or good; ``auth(role)`` gives a valid key's headers."""
    cam = rng.choice(cams)
    ids = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "a" * 5000, "ünïcødé", "cam0;DROP TABLE alerts",
           "cam0/../cam1", "%2e%2e", " ", "cam0%0d%0aX-Injected: 1", cam]
    bad_tokens = ["sr_forged", "x" * 20000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIn0.",
                  "a.b.c", "Basic dXNlcjpwYXNz"]
    kind = rng.choice(["auth", "path", "method", "json", "huge", "image", "query", "valid", "valid", "valid"])
    if kind == "auth":
        header = rng.choice([{}, {"Authorization": f"Bearer {rng.choice(bad_tokens)}"},
                             {"Authorization": rng.choice(bad_tokens)}, {"X-API-Key": rng.choice(bad_tokens)},
                             {"Cookie": f"sr_token={rng.choice(bad_tokens)}"}])
        path = rng.choice(["/cameras", "/alerts", "/metrics", "/me", f"/cameras/{cam}/frame.jpg", "/alerts/stream"])
        return kind, rng.choice(["GET", "POST"]) if path == "/cameras" else "GET", path, {"headers": header}
    if kind == "path":
        template = rng.choice(["/cameras/{}", "/cameras/{}/frame.jpg", "/alerts/{}", "/alerts/{}/snapshot.jpg",
                               "/cameras/{}/mjpeg?fps=5", "/{}", "/docs/{}", "/static/{}"])
        return kind, "GET", template.format(rng.choice(ids)), {"headers": auth("viewer")}
    if kind == "method":
        path = rng.choice(["/cameras", f"/cameras/{cam}", "/alerts", "/metrics", "/detect", "/token", "/health",
                           f"/alerts/x/ack"])
        return kind, rng.choice(["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"]), path, {"headers": auth("operator")}
    if kind == "json":
        body = rng.choice(['{"id": "x", "source": ', '[]', '{"id": 5, "source": []}', 'null', '{"id": "cam0"}',
                           '{"id": "new", "source": "/nowhere.mp4"}', '{"id": "new", "source": "x", "fps": -3}',
                           '{"id": "new", "source": "rtsp://h/s", "zones": [{"name": "z", "polygon": [[0, 0]]}]}',
                           '{"id": "' + "b" * 300 + '", "source": "rtsp://h/s"}', "\x00\x01\x02", "{" * 5000])
        return kind, "POST", "/cameras", {"headers": {**auth("admin"), "Content-Type": "application/json"},
                                          "content": body.encode()}
    if kind == "huge":
        blob = rng.choice(_blobs())
        target = rng.choice(["/detect", "/cameras", "/token"])
        headers = {**auth("admin"), "Content-Type": rng.choice(["application/octet-stream", "application/json"])}
        if rng.random() < 0.3:  # chunked: no length declared, the server must count
            return kind, "POST", target, {"headers": headers, "content": blob, "chunked": True}
        return kind, "POST", target, {"headers": headers, "content": blob}
    if kind == "image":
        body = rng.choice([os.urandom(rng.randint(1, 200_000)), b"", jpeg[: len(jpeg) // 2], b"GIF89a" + os.urandom(100)])
        return kind, "POST", "/detect", {"headers": {**auth("viewer"), "Content-Type": "image/jpeg"}, "content": body}
    if kind == "query":
        path = rng.choice(["/alerts?limit=-5", "/alerts?limit=abc", "/alerts?limit=100000", "/alerts?since=nan",
                           "/alerts?level=SEVERE", "/alerts?status=maybe", "/alerts?acknowledged=perhaps",
                           f"/cameras/{cam}/mjpeg?fps=0", f"/cameras/{cam}/mjpeg?fps=1e9", "/metrics?all=maybe",
                           "/alerts?camera=" + "c" * 3000])
        return kind, "GET", path, {"headers": auth("viewer")}
    valid = rng.choice(["cameras", "alerts", "frame", "metrics", "detect", "me"])
    if valid == "detect":
        return "valid", "POST", "/detect", {"headers": {**auth("viewer"), "Content-Type": "image/jpeg"}, "content": jpeg}
    path = {"cameras": "/cameras", "alerts": "/alerts?limit=50", "frame": f"/cameras/{cam}/frame.jpg",
            "metrics": "/metrics", "me": "/me"}[valid]
    return "valid", "GET", path, {"headers": auth("viewer")}
