"""The operator's surface under bad input and load: `surveillance-ray serve` with N live RTSP cameras, alert
sinks (a webhook that fails a share of its requests, a Mosquitto broker, a webhook nobody listens on), then a
bounded fuzz + load phase against the HTTP API, side by side with a quiet phase of the same length.

Fuzz: malformed and wrongly typed JSON, huge bodies, random bytes as images, path tricks (traversal,
encodings, NULs, long ids), wrong methods, missing / forged / expired / malformed credentials, out-of-range
queries, mixed with valid reads (cameras, alerts, frames, metrics, /detect on a real frame, the SSE stream).
Reported: answers by status class and by kind of request, every 5xx and connection error, latency of the
valid reads, the cameras' analysed fps in the quiet and the loaded phase (ratio), the service still up and
stopping cleanly, the sinks' delivered / retried / failed (from /metrics); and the dashboard's screenshot
(docs/dashboard.png) taken in headless Chromium while the cameras run. JSON + Markdown + PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import yaml

from benchmarks.common import RESULTS, machine, pets_h264, pets_video, save
from surveillance_ray.auth import new_key
from surveillance_ray.config import PACKAGE_ROOT
from surveillance_ray.testing.fuzz import chunked, fuzz_request
from surveillance_ray.testing.receivers import Mosquitto, Webhook
from surveillance_ray.testing.rtsp import RtspCameras, free_port

KEYS = {role: new_key(f"{role}-key", role) for role in ("viewer", "operator", "admin")}
DOOR = {"name": "door", "kind": "intrusion", "polygon": [[0, 0], [0.6, 0], [0.6, 0.8], [0, 0.8]], "cooldown_s": 5}


def start_service(root: Path, urls: list[str], port: int, hook: str, broker: int) -> subprocess.Popen:
    config = {
        "cameras": [{"id": f"cam{i}", "source": url, "zones": [DOOR], "rules": {"object_classes": []}}
                    for i, url in enumerate(urls)],
        "detector": {"imgsz": 320},
        "api": {"port": port, "keys": [entry.model_dump() for _, entry in KEYS.values()]},
        "run": {"live": False},
        "sinks": {"webhooks": [{"name": "flaky-hook", "url": hook, "backoff_s": 0.2, "max_backoff_s": 2},
                               {"name": "dead-hook", "url": f"http://127.0.0.1:{free_port()}/x", "retries": 2,
                                "backoff_s": 0.5}],
                  "mqtt": [{"name": "mosquitto", "host": "127.0.0.1", "port": broker}]},
    }
    (root / "service.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen([sys.executable, "-m", "surveillance_ray.cli", "serve", "--config", str(root / "service.yaml"),
                             "--state-dir", str(root / "state")], stdout=subprocess.DEVNULL,
                            stderr=(root / "serve.log").open("w"), env=env, cwd=PACKAGE_ROOT)


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role][0]}"}


def cameras(url: str) -> dict[str, dict]:
    return {c["id"]: c for c in httpx.get(f"{url}/cameras", headers=auth("viewer"), timeout=30).json()}


async def fuzz(url: str, seconds: float, concurrency: int, seed: int, jpeg: bytes, cams: list[str]) -> dict[str, Any]:
    rng = random.Random(seed)
    statuses: Counter = Counter()
    by_kind: dict[str, Counter] = {}
    server_errors: list[dict] = []
    conn_errors: list[dict] = []
    valid_ms: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def worker() -> None:
            while time.monotonic() < deadline:
                kind, method, path, kw = fuzz_request(rng, jpeg, cams, auth)
                kw = chunked(kw, asynchronous=True)
                t0 = time.perf_counter()
                try:
                    if path.startswith("/alerts/stream") or "/mjpeg" in path:
                        async with client.stream(method, path, **kw) as r:
                            status = r.status_code
                    else:
                        r = await client.request(method, path, **kw)
                        status = r.status_code
                except httpx.HTTPError as exc:
                    conn_errors.append({"kind": kind, "method": method, "path": path[:120], "error": repr(exc)[:200]})
                    continue
                ms = (time.perf_counter() - t0) * 1000
                statuses[status] += 1
                by_kind.setdefault(kind, Counter())[f"{status // 100}xx"] += 1
                if status >= 500:
                    server_errors.append({"kind": kind, "method": method, "path": path[:120], "status": status})
                if kind == "valid":
                    valid_ms.append(ms)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"requests": sum(statuses.values()), "by_status": {str(k): v for k, v in sorted(statuses.items())},
            "by_kind": {k: dict(v) for k, v in by_kind.items()}, "server_errors": server_errors,
            "connection_errors": conn_errors,
            "valid_latency_ms": {"p50": round(float(np.percentile(valid_ms, 50)), 1),
                                 "p95": round(float(np.percentile(valid_ms, 95)), 1), "n": len(valid_ms)} if valid_ms else {}}


def fps_over(url: str, seconds: float) -> dict[str, float]:
    """Each camera's analysed frames/s over the next ``seconds`` (from its counters)."""
    before, t0 = cameras(url), time.time()
    time.sleep(seconds)
    after, t1 = cameras(url), time.time()
    return {cid: round((after[cid]["frames_analysed"] - before[cid]["frames_analysed"]) / (t1 - t0), 2) for cid in after}


def screenshot(url: str, out: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.integration.test_service import chromium  # the tests' headless Chromium

    with tempfile.TemporaryDirectory() as tmp:
        driver = chromium(Path(tmp))
        try:
            driver.set_window_size(1500, 950)
            wait = WebDriverWait(driver, 60)
            driver.get(url + "/")
            wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
            driver.find_element(By.ID, "key").send_keys(KEYS["operator"][0])
            driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
            wait.until(lambda d: all(int(t.get_attribute("data-frames") or 0) >= 2
                                     for t in d.find_elements(By.CSS_SELECTOR, ".tile")) and d.find_elements(By.CSS_SELECTOR, ".tile"))
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed .alert")) >= 4)
            button = driver.find_elements(By.CSS_SELECTOR, "#feed .alert .ack")[1]
            button.click()
            time.sleep(2)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    cams = sorted(data["fps_quiet"])
    x = np.arange(len(cams))
    ax1.bar(x - 0.2, [data["fps_quiet"][c] for c in cams], 0.4, label="quiet")
    ax1.bar(x + 0.2, [data["fps_loaded"][c] for c in cams], 0.4, label="API under fuzz + load")
    ax1.set_xticks(x, cams)
    ax1.set_ylabel("analysed frames/s")
    ax1.legend()
    kinds = sorted(data["fuzz"]["by_kind"])
    classes = ["2xx", "4xx", "5xx"]
    bottom = np.zeros(len(kinds))
    for cls in classes:
        vals = np.array([data["fuzz"]["by_kind"][k].get(cls, 0) for k in kinds])
        ax2.bar(kinds, vals, bottom=bottom, label=cls)
        bottom += vals
    ax2.set_ylabel("requests")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the quiet and of the loaded phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-screenshot", action="store_true")
    parser.add_argument("--screenshot-only", action="store_true", help="only docs/dashboard.png, no fuzz / load")
    args = parser.parse_args()
    cap = cv2.VideoCapture(str(pets_video()))
    for _ in range(30):
        ok, frame = cap.read()
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    rtsp = RtspCameras(pets_h264(), count=args.cameras).start()
    broker = Mosquitto().start()
    hook = Webhook(fail_share=0.2, seed=args.seed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc = start_service(root, rtsp.urls, port, hook.url, broker.port)
        try:
            deadline = time.time() + 300
            while True:
                assert proc.poll() is None, (root / "serve.log").read_text()[-3000:]
                try:
                    cams = cameras(url)
                    if all(c["state"] == "running" and c["frames_analysed"] > 20 for c in cams.values()):
                        break
                except (httpx.HTTPError, json.JSONDecodeError):
                    pass
                assert time.time() < deadline, "service not up in 300 s"
                time.sleep(1)
            time.sleep(5)
            if not args.no_screenshot:
                screenshot(url, PACKAGE_ROOT / "docs" / "dashboard.png")
            if not args.screenshot_only:
                fps_quiet = fps_over(url, args.seconds)
                loaded: dict[str, Any] = {}
                fuzz_result: dict[str, Any] = {}

                def measure() -> None:
                    time.sleep(2)
                    loaded.update(fps_over(url, args.seconds - 4))

                import threading

                meter = threading.Thread(target=measure)
                meter.start()
                fuzz_result = asyncio.run(fuzz(url, args.seconds, args.concurrency, args.seed, jpeg, sorted(cams)))
                meter.join()
                health = httpx.get(f"{url}/health", timeout=10).status_code
                after = cameras(url)
                metrics = httpx.get(f"{url}/metrics", headers=auth("viewer"), timeout=30).text
                sinks: dict[str, dict[str, float]] = {}
                for line in metrics.splitlines():
                    if line.startswith("ray_surveillance_sink_deliveries_total{"):
                        labels = dict(kv.split("=") for kv in line[line.index("{") + 1:line.index("}")].replace('"', "").split(","))
                        sinks.setdefault(labels["sink"], {})[labels["outcome"]] = float(line.rsplit(" ", 1)[1])
                alerts = len(httpx.get(f"{url}/alerts?limit=1000", headers=auth("viewer"), timeout=30).json())
        finally:
            proc.send_signal(signal.SIGINT)
            exit_code = proc.wait(timeout=180)
            log_tail = (root / "serve.log").read_text()[-2000:]
    rtsp.stop()
    broker.stop()
    hook.close()
    if args.screenshot_only:
        return
    ratio = {c: round(loaded[c] / fps_quiet[c], 3) if fps_quiet[c] else None for c in fps_quiet}
    data = {"machine": machine(), "cameras": args.cameras, "seconds": args.seconds, "concurrency": args.concurrency,
            "seed": args.seed, "fuzz": fuzz_result, "fps_quiet": fps_quiet, "fps_loaded": loaded, "fps_ratio": ratio,
            "health_after": health, "states_after": {c: v["state"] for c, v in after.items()},
            "service_exit_code": exit_code, "sinks": sinks, "alerts_stored": alerts,
            "webhook_received": len(hook.received), "webhook_attempts": hook.attempts}
    f = fuzz_result
    lines = [f"# The API under fuzz and load ({args.cameras} live RTSP cameras, `surveillance-ray serve`)", "",
             f"{machine()['when']}, {args.seconds:g} s quiet then {args.seconds:g} s with {args.concurrency} concurrent "
             f"clients, seed {args.seed}", "",
             f"- requests: {f['requests']} ({f['requests'] / args.seconds:.0f}/s); by status: "
             + ", ".join(f"{k}: {v}" for k, v in f["by_status"].items()),
             f"- 5xx: {len(f['server_errors'])}; connection errors: {len(f['connection_errors'])}",
             f"- valid reads under load: p50 {f['valid_latency_ms'].get('p50')} ms, p95 {f['valid_latency_ms'].get('p95')} ms "
             f"({f['valid_latency_ms'].get('n')} requests)",
             f"- after: /health {health}, cameras {sorted(set(data['states_after'].values()))}, service exit code {exit_code}",
             "", "| kind | " + " | ".join(["2xx", "4xx", "5xx"]) + " |", "|---|---|---|---|"]
    for kind, counts in sorted(f["by_kind"].items()):
        lines.append(f"| {kind} | {counts.get('2xx', 0)} | {counts.get('4xx', 0)} | {counts.get('5xx', 0)} |")
    lines += ["", "| camera | fps quiet | fps under API load | ratio |", "|---|---|---|---|"]
    for c in sorted(fps_quiet):
        lines.append(f"| {c} | {fps_quiet[c]} | {loaded.get(c)} | {ratio[c]} |")
    lines += ["", "| sink | delivered | retried | failed |", "|---|---|---|---|"]
    for name, s in sorted(sinks.items()):
        lines.append(f"| {name} | {s.get('delivered', 0):g} | {s.get('retried', 0):g} | {s.get('failed', 0):g} |")
    lines += ["", f"alerts stored: {alerts}; the flaky webhook accepted {len(hook.received)} of {hook.attempts} attempts"]
    if f["server_errors"] or f["connection_errors"]:
        lines += ["", "## Errors", *[f"- {e}" for e in (f["server_errors"] + f["connection_errors"])[:30]]]
    lines += ["", "![fps and answers](api_load.png)"]
    plot(data, RESULTS / "api_load.png")
    save("api_load", data, "\n".join(lines) + "\n")
    if exit_code != 0:
        print(log_tail, file=sys.stderr)


if __name__ == "__main__":
    main()
