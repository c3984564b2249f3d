"""Alert sinks against real receivers: Debian's Mosquitto broker and real HTTP webhooks that accept, fail first
attempts, refuse, or are not there; each sink on its own; a real PETS run feeding them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from surveillance_ray.alerts import Alert, AlertStatus, AlertStore, AlertType, read_alerts
from surveillance_ray.config import SinksConfig
from surveillance_ray.pipeline import run_pipeline
from surveillance_ray.sinks import Sinks
from surveillance_ray.testing.receivers import BrokerUnavailable, Mosquitto, Webhook
from surveillance_ray.testing.rtsp import free_port

from .conftest import settings_for

FAST = {"backoff_s": 0.05, "max_backoff_s": 0.2, "timeout_s": 2}


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    try:
        broker = Mosquitto().start()
    except BrokerUnavailable as exc:
        pytest.fail(f"{exc}: run `make system-deps` (make test does)")
    yield broker
    broker.stop()


def alert(i: int, camera: str = "lobby", level: str = "ADVANCED", status: AlertStatus = AlertStatus.RAISED) -> Alert:
    return Alert(id=f"{camera}-e0-t{i}-intrusion-door", camera=camera, type=AlertType.INTRUSION, level=level,
                 status=status, track_id=i, epoch=0, class_id=0, class_name="person", zone="door",
                 first_seen_at=1000.0 + i, last_seen_at=1001.0 + i, raised_at=1001.0 + i, time_to_alert_s=1.0,
                 frame_id=10 * i, confidence=0.8, xyxy=(1, 2, 30, 80), rules=[])


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_each_sink_delivers_retries_or_fails_on_its_own(ray_session: None, tmp_path: Path, broker: Mosquitto) -> None:
    store = AlertStore(tmp_path)
    flaky, refusing = Webhook(fail_first=True), Webhook(status=400)
    subscriber = broker.subscribe("surveillance/#")
    config = SinksConfig(webhooks=[
        {"name": "flaky", "url": flaky.url, "min_level": "ADVANCED", **FAST},
        {"name": "refusing", "url": refusing.url, **FAST},
        # nothing listens there: every attempt fails; slow retries, to show it holds up no other sink
        {"name": "dead", "url": f"http://127.0.0.1:{free_port()}/hook", "retries": 3, "backoff_s": 0.5},
    ], mqtt=[{"name": "broker", "host": "127.0.0.1", "port": broker.port, **FAST}])
    sinks = Sinks(config, str(tmp_path))

    async def scenario() -> tuple[float, int, dict]:
        await sinks.start()
        for i in range(12):
            store.add(alert(i, camera="lobby" if i % 2 else "yard", level="BASIC" if i % 3 == 0 else "ADVANCED",
                            status=AlertStatus.SUPPRESSED if i == 11 else AlertStatus.RAISED))
        t0 = time.monotonic()
        while len(subscriber.messages) < 11 or len(flaky.received) < 7:
            assert time.monotonic() - t0 < 20, (len(subscriber.messages), len(flaky.received))
            await asyncio.sleep(0.05)
        others_done = time.monotonic() - t0
        behind = (await sinks.report())["dead"]["behind"]
        assert await sinks.flush(60)
        return others_done, behind, await sinks.stop()

    others_done, dead_behind, report = run(scenario())
    subscriber.close()
    raised = [f"{'lobby' if i % 2 else 'yard'}-e0-t{i}-intrusion-door" for i in range(11)]  # (the 12th: suppressed)
    # MQTT: every raised alert, on its camera's topic, as the JSON record
    assert sorted(m[1]["id"] for m in subscriber.messages) == sorted(raised)
    assert all(topic == f"surveillance/{body['camera']}/alert" for topic, body in subscriber.messages)
    # the flaky webhook: the ADVANCED ones, each after one retry
    wanted = [i for i in range(11) if i % 3 != 0]
    assert sorted(b["track_id"] for b in flaky.received) == wanted and flaky.attempts == 2 * len(wanted)
    assert report["flaky"] | {"last_error": None} == {"delivered": 7, "retried": 7, "failed": 0, "skipped": 5,
                                                      "last_error": None, "behind": 0}
    # refused (HTTP 400): failed at once, no retry; the dead one: retries spent; both written down
    assert report["refusing"]["failed"] == 11 and report["refusing"]["retried"] == 0
    assert report["dead"]["failed"] == 11 and report["dead"]["retried"] == 33
    assert report["broker"]["delivered"] == 11 and report["broker"]["failed"] == 0
    undelivered = [json.loads(line) for line in (tmp_path / "undelivered.jsonl").read_text().splitlines()]
    assert sorted((u["sink"], u["alert_id"]) for u in undelivered) == sorted(
        (sink, alert_id) for sink in ("refusing", "dead") for alert_id in raised)
    assert "HTTP 400" in report["refusing"]["last_error"] and "ConnectError" in report["dead"]["last_error"]
    # isolation: the others were done while the dead webhook was still working through its retries
    assert others_done < 10 and dead_behind >= 5
    flaky.close()
    refusing.close()


def test_mqtt_broker_away_then_back_and_a_restart_resumes(ray_session: None, tmp_path: Path, broker: Mosquitto) -> None:
    store = AlertStore(tmp_path)
    config = SinksConfig(mqtt=[{"name": "broker", "host": "127.0.0.1", "port": broker.port, "retries": 30,
                                "backoff_s": 0.2, "max_backoff_s": 1, "timeout_s": 2}])
    broker.stop()
    for i in range(3):
        store.add(alert(i))

    async def first() -> dict:
        sinks = Sinks(config, str(tmp_path))
        await sinks.start()  # a new sink starts at the store's end: these three are not its business
        for i in range(3, 8):
            store.add(alert(i))
        await asyncio.sleep(1.5)  # the broker is away: attempts fail and are retried
        broker.start()
        subscriber = broker.subscribe("surveillance/#")
        assert await sinks.flush(30)
        report = await sinks.stop()
        await asyncio.sleep(0.5)
        subscriber.close()
        return report, [m[1]["track_id"] for m in subscriber.messages]

    report, first_ids = run(first())
    assert report["broker"]["retried"] >= 1 and report["broker"]["failed"] == 0 and report["broker"]["delivered"] == 5
    # delivered while the subscriber listened (it subscribed once the broker was back; QoS 1 from then on)
    assert set(first_ids) <= set(range(3, 8))

    for i in range(8, 11):  # stored while no sink runs
        store.add(alert(i))

    async def second() -> tuple[dict, list[int]]:
        subscriber = broker.subscribe("surveillance/#")
        sinks = Sinks(config, str(tmp_path))
        await sinks.start()  # resumes from its saved cursor: exactly what it had not sent
        assert await sinks.flush(30)
        report = await sinks.stop()
        await asyncio.sleep(0.5)
        subscriber.close()
        return report, sorted(m[1]["track_id"] for m in subscriber.messages)

    report, ids = run(second())
    assert ids == [8, 9, 10] and report["broker"]["delivered"] == 3


def test_a_real_run_feeds_the_sinks(ray_session: None, tmp_path: Path, pets_video: Path, broker: Mosquitto) -> None:
    hook = Webhook(fail_first=True)
    subscriber = broker.subscribe("cams/#")
    settings = settings_for(
        tmp_path, [{"id": "lobby", "source": str(pets_video),
                    "zones": [{"name": "door", "kind": "intrusion", "polygon": [[0, 0], [0.6, 0], [0.6, 0.8], [0, 0.8]],
                               "cooldown_s": 2}], "rules": {"object_classes": []}}],
        detector={"imgsz": 320}, run={"duration_s": 25},
        sinks={"webhooks": [{"name": "hook", "url": hook.url, **FAST}],
               "mqtt": [{"name": "broker", "host": "127.0.0.1", "port": broker.port, "topic": "cams/{camera}/{type}"}]})
    result = run_pipeline(settings)
    time.sleep(0.5)
    subscriber.close()
    hook.close()
    stored = [a.id for a in read_alerts(result.run_dir, AlertStatus.RAISED)]
    assert len(stored) >= 3
    assert sorted(b["id"] for b in hook.received) == sorted(stored)
    assert sorted(m[1]["id"] for m in subscriber.messages) == sorted(stored)
    assert {t for t, _ in subscriber.messages} == {"cams/lobby/intrusion"}
    sinks = result.summary["run"]["sinks"]
    assert sinks["drained"] and sinks["sinks"]["hook"]["retried"] == len(stored)
    assert sinks["sinks"]["broker"]["delivered"] == len(stored)
    total = result.summary["total"]
    assert total["frames_read"] == total["frames_analysed"] + total["frames_dropped"] > 200
