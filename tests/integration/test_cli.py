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


def test_cli_capacity_probes_the_real_pipeline_and_names_the_limit(tmp_path: Path, pets_video: Path) -> None:
    """Two 320x240 cameras at 5 fps hold on any machine of this kind; none does when the latency asked for is
    1 ms: the search goes below its first probe, ends at 0 and names what limited the last probe."""
    env = {**os.environ, "RAY_ADDRESS": "", "SURVEILLANCE_CACHE": os.environ.get("SURVEILLANCE_CACHE", "")}
    env.pop("RAY_ADDRESS")
    if not env["SURVEILLANCE_CACHE"]:
        env.pop("SURVEILLANCE_CACHE")
    common = [sys.executable, "-m", "surveillance_ray.cli", "capacity", "--source", str(pets_video), "--imgsz", "320",
              "--resolution", "320x240", "--fps", "5", "--start", "2", "--max-cameras", "2", "--warm-s", "4",
              "--window-s", "6"]
    proc = subprocess.run([*common, "--out", str(tmp_path / "ok.json")], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok = json.loads((tmp_path / "ok.json").read_text())
    assert ok["cameras"] == 2 and ok["capped"] and ok["resolution"] == "320x240"
    [probe] = ok["probes"]
    assert probe["holds"] and probe["analysed_fps"] >= 0.95 * 10 and 0 < probe["detector_busy"] < 1
    assert probe["cpu_busy"] is not None and probe["cpu_by_role"]["detector replica"] > 0
    assert "This machine holds at least 2 camera(s) of 320x240 at 5 fps" in proc.stderr.replace("\n", " ")

    proc = subprocess.run([*common, "--max-latency-s", "0.001", "--out", str(tmp_path / "none.json")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    none = json.loads((tmp_path / "none.json").read_text())
    assert none["cameras"] == 0 and not none["capped"] and [p["cameras"] for p in none["probes"]] == [1, 2]
    assert all("p95" in p["why"] for p in none["probes"])
    assert none["limit"].split(":")[0] in ("CPU", "detector", "validator", "the frame path's round trip")
