"""Alert sinks: webhooks and MQTT, fed from the alert store.

Each sink follows the store on its own (``alerts_after`` from its cursor, saved in ``sinks.json`` beside the
store), so an alert is sent only once it is committed, a failing sink only falls behind by itself (never
holding up another sink, the validator or a camera), and a restart resumes where each sink stopped (at
least once). An alert a sink could not deliver after its retries goes to ``undelivered.jsonl`` with the
reason; it stays in the store either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import ray
from ray.util import metrics

from surveillance_ray.alerts import Alert, AlertStatus, alerts_after, last_alert_row
from surveillance_ray.config import MqttSink, SinksConfig, WebhookSink
from surveillance_ray.messages import AlertLevel

logger = logging.getLogger(__name__)

CURSORS = "sinks.json"
UNDELIVERED = "undelivered.jsonl"


class Retry(Exception):
    """This attempt failed in a way another attempt may not (no answer, 5xx, 429, broker away)."""


class Refused(Exception):
    """The receiver refused the alert for good (e.g. 4xx): no retry."""


@dataclass
class SinkStats:
    delivered: int = 0
    retried: int = 0  # attempts after a first failed one
    failed: int = 0  # given up (retries spent, or refused)
    skipped: int = 0  # not for this sink (level, camera, suppressed)
    last_error: str | None = None
    behind: int = 0  # alerts in the store not yet handled by this sink


class Webhook:
    def __init__(self, config: WebhookSink) -> None:
        self.config = config
        self._client = httpx.AsyncClient(timeout=config.timeout_s)

    async def send(self, alert: Alert) -> None:
        c = self.config
        try:
            r = await self._client.post(c.url, content=alert.model_dump_json(), headers={
                "Content-Type": "application/json", "X-Surveillance-Alert-Id": alert.id, **c.headers})
        except httpx.HTTPError as exc:
            raise Retry(f"{type(exc).__name__}: {exc}"[:200]) from None
        if r.status_code == 429 or r.status_code >= 500:
            raise Retry(f"HTTP {r.status_code}")
        if r.status_code >= 300:
            raise Refused(f"HTTP {r.status_code}: {r.text[:120]}")

    async def close(self) -> None:
        await self._client.aclose()


class Mqtt:
    """paho-mqtt's client (its network loop in its own thread; it reconnects by itself)."""

    def __init__(self, config: MqttSink) -> None:
        import paho.mqtt.client as mqtt

        self.config = config
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"surveillance-ray-{config.name}-{os.getpid()}")
        if config.username:
            self._client.username_pw_set(config.username, config.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=int(config.max_backoff_s))
        self._connected = False

    def _publish(self, topic: str, payload: str) -> None:
        c = self.config
        if not self._connected:
            try:
                self._client.connect(c.host, c.port, keepalive=30)
            except OSError as exc:
                raise Retry(f"broker {c.host}:{c.port}: {exc}") from None
            self._client.loop_start()
            self._connected = True
        info = self._client.publish(topic, payload, qos=c.qos, retain=c.retain)
        try:
            info.wait_for_publish(timeout=c.timeout_s)
        except (RuntimeError, ValueError) as exc:  # not queued: the client is disconnected (it reconnects)
            raise Retry(f"broker {c.host}:{c.port}: {exc}") from None
        if not info.is_published():
            raise Retry(f"broker {c.host}:{c.port}: no acknowledgment in {c.timeout_s:g} s")

    async def send(self, alert: Alert) -> None:
        topic = self.config.topic.format(camera=alert.camera, type=alert.type.value, level=alert.level)
        await asyncio.to_thread(self._publish, topic, alert.model_dump_json())

    async def close(self) -> None:
        if self._connected:
            self._client.loop_stop()
            self._client.disconnect()


class Sinks:
    """Every configured sink following the store of ``store_dir``; one asyncio task per sink."""

    def __init__(self, config: SinksConfig, store_dir: str) -> None:
        self.config = config
        self.dir = Path(store_dir)
        cursors = self.dir / CURSORS
        self.cursors: dict[str, int] = json.loads(cursors.read_text()) if cursors.is_file() else {}
        self.stats = {s.name: SinkStats() for s in config.all}
        self.senders = {s.name: Webhook(s) if isinstance(s, WebhookSink) else Mqtt(s) for s in config.all}
        self._tasks: list[asyncio.Task] = []
        self._undelivered = (self.dir / UNDELIVERED).open("a")
        self._count = metrics.Counter("surveillance_sink_deliveries", "Alert deliveries by sink and outcome.",
                                      ("sink", "outcome"))

    async def start(self) -> None:
        """Start following the store (every call does this, so an actor Ray restarted picks up again)."""
        if self._tasks:
            return
        start = self._last_row()
        for sink in self.config.all:
            # a sink new to this store starts at its end (a service's new sink does not replay months of alerts)
            self.cursors.setdefault(sink.name, start)
            self._tasks.append(asyncio.get_running_loop().create_task(self._follow(sink)))
        self._save()

    def _last_row(self) -> int:
        try:
            return last_alert_row(self.dir)
        except FileNotFoundError:
            return 0

    async def _follow(self, sink: Any) -> None:
        while True:
            try:
                rows = await asyncio.to_thread(alerts_after, self.dir, self.cursors[sink.name])
            except FileNotFoundError:
                rows = []
            for row, alert in rows:
                await self._handle(sink, alert)
                self.cursors[sink.name] = row
                self._save()
            if not rows:
                await asyncio.sleep(self.config.poll_s)

    async def _handle(self, sink: Any, alert: Alert) -> None:
        stats = self.stats[sink.name]
        if (AlertLevel[alert.level] < AlertLevel[sink.min_level]
                or (sink.cameras is not None and alert.camera not in sink.cameras)
                or (alert.status is AlertStatus.SUPPRESSED and not sink.suppressed)):
            stats.skipped += 1
            return
        for attempt in range(sink.retries + 1):
            if attempt:
                stats.retried += 1
                self._count.inc(tags={"sink": sink.name, "outcome": "retried"})
                delay = min(sink.max_backoff_s, sink.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                await self.senders[sink.name].send(alert)
            except Retry as exc:
                stats.last_error = str(exc)
                continue
            except Refused as exc:
                stats.last_error = str(exc)
                break
            except Exception as exc:  # noqa: BLE001 - a sink's bug fails this delivery, not the sink
                stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                logger.exception("sink %s: alert %s", sink.name, alert.id)
                break
            stats.delivered += 1
            self._count.inc(tags={"sink": sink.name, "outcome": "delivered"})
            return
        stats.failed += 1
        self._count.inc(tags={"sink": sink.name, "outcome": "failed"})
        logger.warning("sink %s: alert %s not delivered: %s", sink.name, alert.id, stats.last_error)
        self._undelivered.write(json.dumps({"sink": sink.name, "alert_id": alert.id, "at": time.time(),
                                            "error": stats.last_error}) + "\n")
        self._undelivered.flush()

    def _save(self) -> None:
        tmp = self.dir / (CURSORS + ".part")
        tmp.write_text(json.dumps(self.cursors))
        os.replace(tmp, self.dir / CURSORS)

    async def report(self) -> dict[str, dict[str, Any]]:
        """Per sink: delivered, retried, failed, skipped, last error, alerts still behind."""
        await self.start()
        return self._report()

    def _report(self) -> dict[str, dict[str, Any]]:
        last = self._last_row()
        for name, stats in self.stats.items():
            stats.behind = max(0, last - self.cursors.get(name, last))
        return {name: asdict(s) for name, s in self.stats.items()}

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every sink has handled every alert stored so far (or ``timeout_s``); True if they did."""
        await self.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self._last_row()
            if all(self.cursors.get(s.name, 0) >= last for s in self.config.all):
                return True
            await asyncio.sleep(0.1)
        return False

    async def stop(self) -> dict[str, dict[str, Any]]:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sender in self.senders.values():
            await sender.close()
        self._undelivered.close()
        return self._report()


#: On the node of the alert store it reads (the caller places it); restarted by Ray, it resumes from the
#: cursors it saved at the next call (the driver asks for its report at every refresh).
SinksActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(Sinks)


def start_sinks(config: SinksConfig, store_dir: str, name: str, scheduling_strategy: Any) -> Any | None:
    """The sinks actor following the store of ``store_dir`` (None when no sink is configured)."""
    if not config.all:
        return None
    actor = SinksActor.options(name=name, scheduling_strategy=scheduling_strategy).remote(config, store_dir)
    ray.get(actor.start.remote(), timeout=60)
    return actor


def finish_sinks(actor: Any, drain_s: float) -> dict[str, Any]:
    """Give the sinks ``drain_s`` to deliver what is left, stop them; their report (``drained``: all handled)."""
    try:
        drained = ray.get(actor.flush.remote(drain_s), timeout=drain_s + 30)
        return {"drained": drained, "sinks": ray.get(actor.stop.remote(), timeout=60)}
    except (ray.exceptions.RayError, TimeoutError) as exc:
        error = f"sinks unreachable: {str(exc).splitlines()[0][:200]}"
        logger.error("%s", error)
        return {"error": error}
