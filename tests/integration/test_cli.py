"""`surveillance-ray run` as a user runs it: its own local Ray, a run directory, exit status."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_cli_run_writes_the_run_directory(tmp_path: Path, pets_video: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "surveillance_ray.cli", "run", "--source", str(pets_video), "--source", str(pets_video),
           "--fast", "--max-frames", "20", "--imgsz", "320", "--run-dir", str(run_dir), "--no-live"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "class_names.json", "events.jsonl", "tracks.jsonl",
                                                   "summary.json"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["streams"]) == {"cam0", "cam1"}
    assert summary["total"]["frames_read"] == summary["total"]["frames_analysed"] == 40
    assert summary["run"]["uss_mb_total"] > 300  # driver + the local Ray it started, measured
    assert "run summary" in proc.stderr and "TOTAL" in proc.stderr  # the end-of-run table


def test_cli_all_cameras_failing_exits_nonzero(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 10_000)
    cmd = [sys.executable, "-m", "surveillance_ray.cli", "run", "--source", str(junk), "--imgsz", "320",
           "--run-dir", str(tmp_path / "run"), "--no-live"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["streams"]["cam0"]["state"] == "failed"
    assert "camera 'cam0'" in summary["streams"]["cam0"]["error"]
