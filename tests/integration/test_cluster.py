"""The same ``surveillance-ray run`` on a real multi-node Ray cluster: cameras spread over the nodes and
Ray Serve autoscales the detector from 1 to 2 replicas under load and back to 1 when it is idle."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from ray.cluster_utils import Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three Ray nodes on this machine (a head with 1 CPU, two workers with 2 CPUs each)."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=2)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def test_cameras_spread_and_detector_autoscales(cluster: Cluster, tmp_path: Path, assets: Path,
                                                pets_video: Path) -> None:
    heavy = {"source": str(assets / "mot/TUD-Campus"), "source_fps": 25, "loop": True}  # ~20 s each, then done
    config = {
        "cameras": [{"id": f"busy{i}", **heavy} for i in range(4)]
        + [{"id": "quiet", "source": str(pets_video), "fps": 1}],  # keeps the run going, nearly idle
        "detector": {"imgsz": 320, "num_cpus": 1, "autoscaling": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1.0, "upscale_delay_s": 2,
            "downscale_delay_s": 6, "look_back_period_s": 4, "metrics_interval_s": 1}},
        "ingest": {"cameras_per_actor": 1, "placement": "spread"},
        "run": {"duration_s": 55, "max_frames": 500, "run_dir": str(tmp_path / "run"), "live": False},
    }
    cfg = tmp_path / "cluster-run.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    proc = subprocess.run([sys.executable, "-m", "surveillance_ray.cli", "run", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())

    nodes = {a["node_id"] for a in summary["run"]["ingest_actors"].values()}
    assert len(summary["run"]["ingest_actors"]) == 5 and len(nodes) >= 2  # the cameras landed on several nodes
    timeline = summary["run"]["detector_timeline"]
    running = [e["replicas"].get("RUNNING", 0) for e in timeline]
    assert running[0] == 1, timeline
    peak = running.index(2)  # scaled up under load …
    assert 1 in running[peak:] and running[-1] == 1, timeline  # … and back down when idle
    for cid, s in summary["streams"].items():  # no frame unaccounted for while replicas came and went
        assert s["state"] == "finished", (cid, s)
        assert s["frames_read"] == s["frames_analysed"] + s["frames_dropped"] and s["in_pipeline"] == 0
    assert all(summary["streams"][f"busy{i}"]["frames_read"] == 500 for i in range(4))
