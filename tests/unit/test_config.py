import subprocess
import sys
from pathlib import Path

import pytest

from surveillance_ray.cli import main
from surveillance_ray.config import ConfigError, load_settings


def test_defaults_use_shared_assets(weights: Path, pets_video: Path) -> None:
    s = load_settings()
    assert Path(s.detector.weights) == weights
    assert [c.id for c in s.cameras] == ["pets0", "pets1", "pets2", "pets3"]
    assert all(Path(c.source) == pets_video for c in s.cameras)


def test_precedence_yaml_env_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pets_video: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"detector: {{imgsz: 256, conf: 0.4}}\ncameras: [{{id: lobby, source: '{pets_video}'}}]\n")
    s = load_settings(cfg)
    assert (s.detector.imgsz, s.detector.conf, s.cameras[0].id) == (256, 0.4, "lobby")
    monkeypatch.setenv("SURVEILLANCE__DETECTOR__IMGSZ", "320")
    s = load_settings(cfg)
    assert (s.detector.imgsz, s.detector.conf) == (320, 0.4)  # env beats YAML, YAML keeps the rest
    s = load_settings(cfg, detector={"imgsz": 416})
    assert (s.detector.imgsz, s.detector.conf) == (416, 0.4)  # CLI beats env


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"detector": {"imgsz": 100}}, "detector.imgsz: Input should be a multiple of 32"),
    ({"detector": {"colour": "red"}}, "detector.colour: Extra inputs are not permitted"),
    ({"detector": {"weights": "/nowhere/model.pt"}}, "detector.weights: model file not found: /nowhere/model.pt"),
    ({"validator": {"confirm_frames": 9, "confirm_window": 3}}, "confirm_frames must be <= validator.confirm_window"),
    ({"cameras": [{"id": "lobby", "source": "/nowhere.mp4"}]}, "camera 'lobby': source file not found: /nowhere.mp4"),
    ({"cameras": [{"id": "gate", "source": "rtsp://127.0.0.1/x", "fps": 0}]},
     "cameras.0: camera 'gate': fps: Input should be greater than 0"),
    ({"cameras": [{"id": "gate", "source": "rtsp://127.0.0.1/x", "lens": 3}]}, "camera 'gate': lens: Extra inputs"),
    ({"cameras": [{"id": "a", "source": "0"}, {"id": "a", "source": "1"}]}, "duplicate camera id 'a'"),
    # zones, lines and rules: errors name the camera and the zone
    ({"cameras": [{"id": "gate", "source": "0", "zones": [{"name": "door", "polygon": [[0, 0], [1.2, 0], [1, 1]]}]}]},
     "camera 'gate': zones.0: zone 'door': point (1.2, 0) is outside the frame"),
    ({"cameras": [{"id": "gate", "source": "0", "zones": [{"name": "door", "polygon": [[0, 0], [1, 1]]}]}]},
     "camera 'gate': zones.0: zone 'door': polygon: List should have at least 3 items"),
    ({"cameras": [{"id": "gate", "source": "0", "zones": [{"name": "door", "polygon": [[0, 0], [.5, .5], [1, 1]]}]}]},
     "zone 'door': the polygon has no area"),
    ({"cameras": [{"id": "gate", "source": "0",
                   "zones": [{"name": "door", "polygon": [[0, 0], [1, 0], [1, 1]], "kind": "fence"}]}]},
     "zone 'door': kind: Input should be 'watch', 'intrusion', 'loitering' or 'mask'"),
    ({"cameras": [{"id": "gate", "source": "0",
                   "zones": [{"name": "door", "polygon": [[0, 0], [1, 0], [1, 1]], "classes": ["persn"]}]}]},
     "camera 'gate': zone 'door': unknown class 'persn' (did you mean 'person'?)"),
    ({"cameras": [{"id": "gate", "source": "0", "lines": [{"name": "kerb", "start": [0, 0], "end": [0, 0]}]}]},
     "line 'kerb': start and end are the same point"),
    ({"cameras": [{"id": "gate", "source": "0", "lines": [{"name": "kerb", "start": [0, 0], "end": [1, 0]}],
                   "zones": [{"name": "kerb", "polygon": [[0, 0], [1, 0], [1, 1]]}]}]},
     "camera 'gate': zone/line name 'kerb' is used twice"),
    ({"cameras": [{"id": "gate", "source": "0",
                   "zones": [{"name": "door", "polygon": [[0, 0], [1, 0], [1, 1]],
                              "schedule": [{"start": "25:00"}]}]}]}, "zone 'door': schedule.0.start: String should"),
    ({"cameras": [{"id": "gate", "source": "0", "rules": {"object_classes": ["car", "pedestrian"]}}]},
     "camera 'gate': rules.object_classes: unknown class 'pedestrian'"),
    ({"validator": {"class_thresholds": {"persons": 0.3}}}, "validator.class_thresholds: unknown class 'persons'"),
    ({"validator": {"timezone": "Mars/Olympus"}}, "validator.timezone: unknown time zone 'Mars/Olympus'"),
    ({"validator": {"aspect_ranges": {"person": [3, 1]}}}, "aspect_ranges['person']: need 0 < low < high"),
])
def test_errors_name_the_field_and_camera(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert expected in str(info.value)


def test_model_class_names_replace_coco() -> None:
    cams = [{"id": "yard", "source": "0", "zones": [{"name": "pen", "polygon": [[0, 0], [1, 0], [1, 1]],
                                                     "classes": ["goat"]}]}]
    with pytest.raises(ConfigError, match="unknown class 'goat'"):
        load_settings(cameras=cams)
    s = load_settings(cameras=cams, detector={"class_names": ["goat", "sheep"]})  # defaults name 'person': fine
    assert s.cameras[0].zones[0].classes == ["goat"]


def test_hub_weight_names_are_accepted_for_online_users() -> None:
    assert load_settings(detector={"weights": "yolov8n.pt"}).detector.weights == "yolov8n.pt"


@pytest.mark.parametrize(("text", "expected"), [
    ("detector: [unclosed", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_yaml(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_settings(cfg)


def test_config_show_prints_effective_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURVEILLANCE__RUN__DURATION_S", "12")
    assert main(["config", "show", "--imgsz", "320", "--source", "rtsp://127.0.0.1:9/cam"]) == 0
    out = capsys.readouterr().out
    assert "imgsz: 320" in out and "duration_s: 12.0" in out and "source: rtsp://127.0.0.1:9/cam" in out


def test_cli_config_error_exits_before_ray(tmp_path: Path) -> None:
    """A bad camera fails in well under Ray's start-up time, with one line naming the camera."""
    proc = subprocess.run([sys.executable, "-m", "surveillance_ray.cli", "run", "--source", str(tmp_path / "gone.mp4")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"config error: cameras.0: camera 'cam0': source file not found: {tmp_path / 'gone.mp4'}"]


@pytest.mark.parametrize("sources", [[], ["rtsp://127.0.0.1:9/cam"]])
def test_fast_and_loop_flags_apply_to_every_camera(sources: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["config", "show", "--fast", "--loop"] + [a for s in sources for a in ("--source", s)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    n = len(sources) or 4  # --source cameras, or the four default ones
    assert out.count("realtime: false") == n and out.count("loop: true") == n and "realtime: true" not in out
