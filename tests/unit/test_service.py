"""The service's camera registry (what survives a restart) and what it shows of a camera."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surveillance_ray.config import COCO_NAMES, CameraConfig, ConfigError
from surveillance_ray.service import CameraExists, CameraRegistry, UnknownCamera, parse_camera, redact


def cam(camera_id: str, video: Path) -> CameraConfig:
    return CameraConfig(id=camera_id, source=str(video))


def test_the_config_seeds_the_registry_and_the_api_changes_persist(tmp_path: Path, pets_video: Path) -> None:
    registry = CameraRegistry(tmp_path, [cam("lobby", pets_video), cam("gate", pets_video)])
    assert registry.session == 1 and set(registry.cameras) == {"lobby", "gate"}
    registry.add(cam("yard", pets_video))
    with pytest.raises(CameraExists):
        registry.add(cam("yard", pets_video))
    registry.set_paused("lobby", True)
    registry.remove("gate")
    with pytest.raises(UnknownCamera):
        registry.remove("gate")
    # a restart with the same config: the removed config camera stays removed, the pause and the addition stay
    again = CameraRegistry(tmp_path, [cam("lobby", pets_video), cam("gate", pets_video), cam("new", pets_video)])
    assert again.session == 2
    assert {cid: (e["paused"], e["origin"]) for cid, e in again.cameras.items()} == {
        "lobby": (True, "config"), "yard": (False, "api"), "new": (False, "config")}
    assert json.loads((tmp_path / "cameras.json").read_text())["removed"] == ["gate"]
    again.add(cam("gate", pets_video))  # added back through the API
    assert "gate" not in CameraRegistry(tmp_path, []).removed


def test_camera_data_is_checked_with_the_models_classes(pets_video: Path) -> None:
    names = dict(enumerate(COCO_NAMES))
    good = parse_camera({"id": "a", "source": str(pets_video)}, names)
    assert good.id == "a"
    with pytest.raises(ConfigError, match="source file not found"):
        parse_camera({"id": "a", "source": "/nowhere.mp4"}, names)
    with pytest.raises(ConfigError, match="did you mean 'person'"):
        parse_camera({"id": "a", "source": str(pets_video), "rules": {"object_classes": ["persn"]}}, names)


def test_passwords_in_source_urls_are_masked() -> None:
    assert redact("rtsp://admin:hunter2@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert redact("rtsp://10.0.0.5/stream1") == "rtsp://10.0.0.5/stream1"
    assert redact("/videos/a.mp4") == "/videos/a.mp4"


def test_events_are_kept_by_day_and_old_days_deleted(tmp_path: Path) -> None:
    import time

    from surveillance_ray.service import DailyLog

    log = DailyLog(tmp_path / "events")
    log.write([{"kind": "track_started"}, {"kind": "track_ended"}])
    today = tmp_path / "events" / f"{time.strftime('%Y-%m-%d', time.gmtime())}.jsonl"
    assert [json.loads(line)["kind"] for line in today.read_text().splitlines()] == ["track_started", "track_ended"]
    (tmp_path / "events" / "2001-01-01.jsonl").write_text("{}\n")
    assert log.purge(90) == 1 and today.is_file() and not (tmp_path / "events" / "2001-01-01.jsonl").exists()
    log.close()
