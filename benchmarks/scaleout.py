"""Scale-out on a real multi-node Ray cluster (three nodes on this machine): where the cameras land, and the
detector's replicas over time as Ray Serve autoscales it under load and back when idle.

    python -m benchmarks.scaleout [--busy 4] [--duration 60]

The scenario of ``tests/integration/test_cluster.py``, measured: ``--busy`` cameras play an image sequence
at 25 fps for 20 s, one camera plays at 1 fps for the whole run; one camera per ingest actor, spread.
Writes ``benchmarks/results/scaleout.{json,md,png}``: the replica timeline, analysed frames per second,
the node of every ingest actor, and every camera's frame accounting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from benchmarks.common import RESULTS, assets, machine, pets_video, save


def scenario(busy: int, duration: float, run_dir: Path) -> dict:
    heavy = {"source": str(assets() / "mot/TUD-Campus"), "source_fps": 25, "loop": True}
    return {
        "cameras": [{"id": f"busy{i}", **heavy} for i in range(busy)]
        + [{"id": "quiet", "source": str(pets_video()), "fps": 1}],
        "detector": {"imgsz": 320, "num_cpus": 1, "autoscaling": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1.0, "upscale_delay_s": 2,
            "downscale_delay_s": 6, "look_back_period_s": 4, "metrics_interval_s": 1}},
        "ingest": {"cameras_per_actor": 1, "placement": "spread"},
        "run": {"duration_s": duration, "max_frames": 500, "run_dir": str(run_dir), "live": False},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / "run"
            cfg = Path(tmp) / "cluster-run.yaml"
            cfg.write_text(yaml.safe_dump(scenario(args.busy, args.duration, run_dir)))
            env = {**os.environ, "RAY_ADDRESS": cluster.address}
            proc = subprocess.run([sys.executable, "-m", "surveillance_ray.cli", "run", "--config", str(cfg)],
                                  capture_output=True, text=True, env=env, timeout=args.duration + 600)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            summary = json.loads((run_dir / "summary.json").read_text())
            rows = [json.loads(line) for line in (run_dir / "tracks.jsonl").open()]
    finally:
        cluster.shutdown()
    run = summary["run"]
    per_second = Counter(int(r["captured_at"] - run["started_at"]) for r in rows)  # the timeline's clock
    nodes = sorted({a["node_id"] for a in run["ingest_actors"].values()})
    placement = {a["name"]: {"cameras": a["cameras"], "node": nodes.index(a["node_id"])}
                 for a in run["ingest_actors"].values()}
    data = {"args": vars(args), "detector_timeline": run["detector_timeline"], "placement": placement,
            "nodes": len(nodes), "analysed_per_second": [per_second.get(s, 0) for s in range(max(per_second) + 1)],
            "streams": {cid: {k: s[k] for k in ("state", "frames_read", "frames_analysed", "frames_dropped", "dropped",
                                                 "in_pipeline")} for cid, s in summary["streams"].items()},
            "machine": machine()}
    lines = [f"# Scale-out: {args.busy} busy cameras + 1 quiet one on a 3-node Ray cluster (this machine)", "",
             f"Ingest actors on {len(nodes)} nodes: " + ", ".join(
                 f"{'+'.join(p['cameras'])} → node {p['node']}" for p in placement.values()), "",
             "| t (s) | detector status | replicas |", "|---|---|---|"]
    for e in run["detector_timeline"]:
        lines.append(f"| {e['t_s']:g} | {e['status']} | {', '.join(f'{n} {k.lower()}' for k, n in e['replicas'].items())} |")
    lines += ["", "| camera | state | read | analysed | dropped | in pipeline |", "|---|---|---|---|---|---|"]
    for cid, s in data["streams"].items():
        lines.append(f"| {cid} | {s['state']} | {s['frames_read']} | {s['frames_analysed']} | {s['frames_dropped']} "
                     f"{s['dropped'] or ''} | {s['in_pipeline']} |")
    lines.append("")
    save("scaleout", data, "\n".join(lines))
    plot(data, RESULTS / "scaleout.png")


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(9, 3.8))
    fps = data["analysed_per_second"]
    ax1.bar(range(len(fps)), fps, color="#9ecae1", label="frames analysed per second")
    ax1.set(xlabel="seconds since the run started", ylabel="frames analysed / s")
    ax2 = ax1.twinx()
    timeline = data["detector_timeline"]
    xs = [e["t_s"] for e in timeline] + [len(fps)]
    ys = [e["replicas"].get("RUNNING", 0) for e in timeline]
    ax2.step(xs, ys + ys[-1:], where="post", color="#d62728", linewidth=2.2, label="detector replicas running")
    ax2.set(ylabel="replicas", ylim=(0, max(ys) + 1))
    ax2.set_yticks(range(max(ys) + 2))
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax2.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=8)
    ax1.set_title("Ray Serve autoscaling of the detector (3-node cluster)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
