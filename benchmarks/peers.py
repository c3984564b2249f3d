"""Peer load test: N live RTSP cameras, ultralytics' own multi-stream mode vs ``surveillance-ray run``.

    python -m benchmarks.peers --cameras 4 8 12 16 --duration 60 --imgsz 320     # make bench-peers

For each camera count, every contender gets the same streams for the same time, one after the other
in one invocation: a fresh GStreamer RTSP server (one mount per camera, the PETS video as H.264
passed through, paced in real time) is started for each, so all see the same frames. Contenders:

- ``surveillance-ray run`` with its defaults (on a CPU: the ``.pt`` exported to OpenVINO INT8);
- ultralytics ``.streams`` given the model file the project runs (``same file``);
- ultralytics ``.streams`` with the ``.pt`` and torch threads = cores, and with ultralytics' own
  default threads (cpu_count - 1).

Per contender: analysed fps, per-camera fps (slowest / mean), p50/p95 capture→result latency,
frames read / dropped, peak USS of its whole process tree, CPU used; and the project's ratio to each
peer. Writes ``benchmarks/results/peers_<tag>.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import RESULTS, machine, pets_h264, save
from benchmarks.proctree import TreeSampler
from surveillance_ray.config import DetectorConfig
from surveillance_ray.testing.rtsp import RtspCameras

PROJECT = "surveillance-ray"


def peers(pt: str, same: str, cores: int) -> dict[str, dict]:
    return {
        "ultralytics (same file)": {"weights": same, "threads": "default"},
        f"ultralytics (.pt, {cores} threads)": {"weights": pt, "threads": str(cores)},
        "ultralytics (.pt, default threads)": {"weights": pt, "threads": "default"},
    }


def run_project(urls: list[str], args: argparse.Namespace, tmp: Path, config: dict | None = None) -> dict:
    """``surveillance-ray run`` on ``urls``; ``config`` (a --config YAML as a dict) may set camera fields too."""
    run_dir = tmp / "run"
    cmd = [sys.executable, "-m", "surveillance_ray.cli", "run", "--imgsz", str(args.imgsz), "--duration",
           str(args.duration), "--no-live", "--run-dir", str(run_dir)]
    if config is None:
        for url in urls:
            cmd += ["--source", url]
    else:
        camera = config.pop("camera", {})
        config["cameras"] = [{"id": f"cam{i}", "source": url, **camera} for i, url in enumerate(urls)]
        (tmp / "config.yaml").write_text(yaml.safe_dump(config))
        cmd += ["--config", str(tmp / "config.yaml")]
    proc = subprocess.Popen(cmd + getattr(args, "project_args", []), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    sampler = TreeSampler(proc.pid, 2.0).start()
    while proc.poll() is None and not (run_dir / "events.jsonl").exists():  # written once the cameras start
        time.sleep(0.25)
    time.sleep(2.0)  # the streams open
    sampler.mark_window_start()
    try:  # the cameras stop `duration` after they started: shutting down is not counted
        proc.wait(timeout=max(1.0, args.duration - 3))
    except subprocess.TimeoutExpired:
        sampler.close_window()
    _, err = proc.communicate(timeout=args.duration + 600)
    sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"surveillance-ray run failed: {err[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    total, streams = summary["total"], summary["streams"]
    fps = [s["fps_analysed"] for s in streams.values()]
    return {
        "fps_analysed": total["fps_analysed"], "fps_per_camera": {"min": min(fps), "mean": round(sum(fps) / len(fps), 2)},
        "latency_ms": total["latency_ms"], "frames_read": total["frames_read"], "frames_analysed": total["frames_analysed"],
        "frames_dropped": total["frames_dropped"], "dropped": total["dropped"], "in_pipeline": total["in_pipeline"],
        "failed_cameras": [cid for cid, s in streams.items() if s["state"] == "failed"],
        "vlm": summary["run"].get("vlm"),
        "detector": {k: summary["run"]["detector"].get(k) for k in ("backend", "runtime", "weights", "batch_sizes",
                                                                    "requests", "frames")},
        **_resources(sampler),
    }


def run_peer(urls: list[str], weights: str, threads: str, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / "peer.json"
    cmd = [sys.executable, "-m", "benchmarks.peer_ultralytics", "--urls", *urls, "--weights", weights, "--imgsz",
           str(args.imgsz), "--threads", threads, "--duration", str(args.duration), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sampler = TreeSampler(proc.pid, 2.0).start()
    for line in proc.stdout:  # the peer says when its first result is out (all streams open)
        if line.startswith("STREAMING"):
            sampler.mark_window_start()
            break
    try:
        proc.wait(timeout=max(1.0, args.duration - 1))
    except subprocess.TimeoutExpired:
        sampler.close_window()
    proc.communicate(timeout=args.duration + 600)
    sampler.stop()
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"peer failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    result["failed_cameras"] = []
    return {**result, **_resources(sampler)}


def _resources(sampler: TreeSampler) -> dict:
    window = (sampler.window[1] - sampler.window[0]) if sampler.window else 0.0
    by_role = sampler.cpu_by_role()
    cpu = sum(by_role.values())
    return {"uss_mb_peak": round(sampler.peak_uss / 2**20), "uss_by_role_mb": sampler.uss_by_role(),
            "cpu_by_role_s": {k: round(v, 1) for k, v in by_role.items()},
            "cpu_utilisation": round(cpu / max(1e-9, window * (os.cpu_count() or 1)), 3) if window else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, nargs="+", default=[4, 8, 12, 16])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--contenders", nargs="+", help="subset: 'surveillance-ray' and/or peer names")
    parser.add_argument("--tag", default="")
    parser.add_argument("--project-args", nargs=argparse.REMAINDER, default=[],
                        help="more flags for surveillance-ray run (last on the line)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    cores = os.cpu_count() or 1
    pt = DetectorConfig().weights
    from surveillance_ray.export import resolve  # exports now (cached), so no contender pays for it

    same = resolve(DetectorConfig(imgsz=args.imgsz)).weights
    contenders = {PROJECT: None, **peers(pt, same, cores)}
    if args.contenders:
        contenders = {k: v for k, v in contenders.items() if k in args.contenders}
    video = pets_h264()
    rows: list[dict] = []
    for n in args.cameras:
        for name, peer in contenders.items():
            print(f"== {n} cameras: {name}", flush=True)
            with RtspCameras(video, n) as cams, tempfile.TemporaryDirectory() as tmp:
                try:
                    if peer is None:
                        result = run_project(cams.urls, args, Path(tmp))
                    else:
                        result = run_peer(cams.urls, peer["weights"], peer["threads"], args, Path(tmp))
                except RuntimeError as exc:
                    result = {"error": str(exc)}
            rows.append({"cameras": n, **result, "contender": name})
            print(json.dumps(rows[-1])[:600], flush=True)
    tag = args.tag or f"{args.imgsz}_{int(args.duration)}s"
    data = {"args": {k: v for k, v in vars(args).items()}, "model_pt": pt, "model_same": same, "rows": rows,
            "machine": machine()}
    save(f"peers_{tag}", data, markdown(rows, args, same))
    plot(rows, RESULTS / f"peers_{tag}.png", args)


def ratio(rows: list[dict], n: int, peer: str) -> str:
    ours = next((r for r in rows if r["cameras"] == n and r["contender"] == PROJECT), None)
    theirs = next((r for r in rows if r["cameras"] == n and r["contender"] == peer), None)
    if not ours or not theirs or "error" in ours or "error" in theirs or not theirs["fps_analysed"]:
        return "–"
    return f"{ours['fps_analysed'] / theirs['fps_analysed']:.2f}×"


def markdown(rows: list[dict], args: argparse.Namespace, same: str) -> str:
    lines = [f"# {PROJECT} vs ultralytics `.streams` on live RTSP cameras (imgsz {args.imgsz}, {args.duration:g} s each)",
             "", f"Same file = `{Path(same).name}` (what {PROJECT} runs on this CPU). Offered: 10 fps per camera.", "",
             "| cameras | contender | analysed fps | per-camera fps slowest / mean | p50 / p95 ms | read | dropped | "
             "peak USS MB | CPU used | project ÷ this |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['cameras']} | {r['contender']} | failed: {r['error'][:80]} |||||||")
            continue
        cpu = f"{100 * r['cpu_utilisation']:.0f} %" if r.get("cpu_utilisation") is not None else "–"
        rel = "" if r["contender"] == PROJECT else ratio(rows, r["cameras"], r["contender"])
        lines.append(f"| {r['cameras']} | {r['contender']} | {r['fps_analysed']:.1f} | {r['fps_per_camera']['min']:.2f} / "
                     f"{r['fps_per_camera']['mean']:.2f} | {r['latency_ms']['p50']:.0f} / {r['latency_ms']['p95']:.0f} | "
                     f"{r['frames_read']} | {r['frames_dropped']} | {r['uss_mb_peak']} | {cpu} | {rel} |")
    lines += ["", "Latency: the project's is capture → validated (after tracking and validation); the peer's is "
              "capture → result. Dropped: frames read but never analysed (the project counts each with its "
              "reason; the peer's one-slot buffer overwrites them). USS: peak over the run, the whole process "
              "tree (the project's includes the local Ray it starts).", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(r["contender"] for r in rows):
        ok = [r for r in rows if r["contender"] == name and "error" not in r]
        xs = [r["cameras"] for r in ok]
        style = {"linewidth": 2.5, "marker": "o"} if name == PROJECT else {"linestyle": "--", "marker": "s"}
        ax1.plot(xs, [r["fps_analysed"] for r in ok], label=name, **style)
        ax2.plot(xs, [r["latency_ms"]["p95"] for r in ok], label=name, **style)
    xs = sorted({r["cameras"] for r in rows})
    ax1.plot(xs, [10 * x for x in xs], color="grey", linewidth=1, linestyle=":", zorder=0,
             label="offered (10 fps per camera)")
    ax1.set(xlabel="cameras", ylabel="analysed frames/s", title=f"throughput, imgsz {args.imgsz}")
    ax2.set(xlabel="cameras", ylabel="p95 capture→result (ms)", title="latency (p95)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_xticks(xs)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
