"""Real receivers for the alert sinks' tests and benchmarks: Debian's Mosquitto broker and an HTTP
webhook server that records what it accepts (and can refuse, or fail first attempts)."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from surveillance_ray.testing.rtsp import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


class BrokerUnavailable(RuntimeError):
    pass


class Mosquitto:
    """A Mosquitto broker on 127.0.0.1 (a free port), anonymous, no persistence; stop / start again."""

    def __init__(self, port: int | None = None) -> None:
        if not Path(MOSQUITTO).is_file() and shutil.which("mosquitto") is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian package mosquitto: make system-deps)")
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        (self._dir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
        self._proc: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        binary = MOSQUITTO if Path(MOSQUITTO).is_file() else shutil.which("mosquitto")
        self._proc = subprocess.Popen([binary, "-c", str(self._dir / "mosquitto.conf")],
                                      stdout=subprocess.DEVNULL, stderr=(self._dir / "log").open("a"))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self._proc.poll() is not None:
                    raise BrokerUnavailable((self._dir / "log").read_text()[-500:])
                time.sleep(0.05)
        raise BrokerUnavailable(f"mosquitto did not listen on {self.port} in 10 s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def subscribe(self, topic: str = "#") -> "Subscriber":
        return Subscriber("127.0.0.1", self.port, topic)


class Subscriber:
    """Collects the messages of a topic filter: ``messages`` is a list of (topic, decoded JSON payload)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, Any]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-subscriber-{port}")
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise BrokerUnavailable("subscription not acknowledged in 10 s")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class Webhook:
    """An HTTP server recording the JSON bodies it accepts (``received``); ``status`` answers every POST with
    that status instead, ``fail_first`` answers each alert's first attempt with 503, ``fail_share`` a random
    share of all attempts (seeded)."""

    def __init__(self, status: int = 200, fail_first: bool = False, fail_share: float = 0.0, seed: int = 0) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        seen: set[str] = set()
        rng = random.Random(seed)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.attempts += 1
                code = status
                if fail_first and body["id"] not in seen:
                    seen.add(body["id"])
                    code = 503
                elif fail_share and rng.random() < fail_share:
                    code = 503
                if code == 200:
                    hook.received.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
