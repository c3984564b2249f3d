"""Peer load test, an overload sweep: N live RTSP cameras, ultralytics' own multi-stream mode vs
``surveillance-ray run``, from below the machine's capacity to far past it.

    python -m benchmarks.peers --cameras 4 8 12 16 24 32 --duration 45      # make bench-peers
    python -m benchmarks.peers --cpus 0 --tag 320_45s_1core ...                # the same on one core

For each camera count, every contender gets the same streams for the same time, one after the other
in one invocation: a fresh GStreamer RTSP server (one mount per camera, the PETS video as H.264
passed through, paced in real time) is started for each, so all see the same frames. Contenders:

- ``surveillance-ray run`` with its defaults (on a CPU: the ``.pt`` exported to the OpenVINO backend it
  chose on this CPU);
- ultralytics ``.streams`` given that same file, and given the OpenVINO FP32 export (the peer at its best
  is the better of the two at each count); the ``.pt`` variants on request (``--contenders``).

``--cpus 0`` runs both contenders under ``taskset`` on those cores (the RTSP server, the cameras, stays
outside): a deliberately slower machine. Per contender: analysed fps, per-camera fps (slowest / mean),
p50/p95 capture→result latency, frames read / dropped (the project: by reason, and its detector's auxiliary
share and second opinions skipped), peak USS of its whole process tree, CPU used; the project's ratio to
the peer at its best, and the issue's targets checked. Writes ``benchmarks/results/peers_<tag>.{json,md,png}``.
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
from surveillance_ray.proctree import TreeSampler
from surveillance_ray.config import DetectorConfig
from surveillance_ray.testing.rtsp import RtspCameras

PROJECT = "surveillance-ray"


PEER = "ultralytics .streams"


def peers(pt: str, same: str, other: str, other_name: str, cores: int) -> dict[str, dict]:
    """The peer's variants: the OpenVINO export the project runs on this CPU, the other one, the .pt."""
    return {
        f"{PEER} (same file)": {"weights": same, "threads": "default"},
        f"{PEER} ({other_name})": {"weights": other, "threads": "default"},
        f"{PEER} (.pt, {cores} threads)": {"weights": pt, "threads": str(cores)},
        f"{PEER} (.pt, default threads)": {"weights": pt, "threads": "default"},
    }


DEFAULT_PEERS = (f"{PEER} (same file)", f"{PEER} (OpenVINO FP32)", f"{PEER} (OpenVINO INT8)")


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
    code = getattr(args, "code", None)  # an older checkout's pipeline (a before/after)
    env = {**os.environ, "PYTHONPATH": str(Path(code).resolve())} if code else None
    proc = subprocess.Popen(pinned(cmd + getattr(args, "project_args", []), args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=code or None, env=env)
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
    timeline = summary["run"].get("timeline") or {}
    fps = steady_fps(timeline) or [s["fps_analysed"] for s in streams.values()]
    scheduler = summary["run"]["detector"].get("scheduler") or {}
    return {
        "fps_whole_run": total["fps_analysed"],
        "unaccounted": sum(s["frames_read"] - s["frames_analysed"] - s["frames_dropped"] for s in streams.values()),
        "second_opinions": total.get("second_opinions", {}),
        "aux_share": scheduler.get("aux_share"), "detector_busy": scheduler.get("busy_share"),
        "aux_skipped": scheduler.get("skipped", {}),
        "steady_share_analysed": steady_share(timeline),
        "fps_analysed": round(sum(fps), 2), "fps_per_camera": {"min": min(fps), "mean": round(sum(fps) / len(fps), 2)},
        "latency_ms": total["latency_ms"], "frames_read": total["frames_read"], "frames_analysed": total["frames_analysed"],
        "frames_dropped": total["frames_dropped"], "dropped": total["dropped"], "in_pipeline": total["in_pipeline"],
        "failed_cameras": [cid for cid, s in streams.items() if s["state"] == "failed"],
        "vlm": summary["run"].get("vlm"),
        "detector": {k: summary["run"]["detector"].get(k) for k in ("backend", "runtime", "weights", "batch_sizes",
                                                                    "requests", "frames", "backend_choice",
                                                                    "threads")},
        **_resources(sampler),
    }


def steady_start(timeline: dict[str, list[list[float]]], settle_s: float = 3.0) -> float | None:
    """When the steady window begins: ``settle_s`` after the last camera's first analysed frame (None: a camera
    never ran). An ingest actor opens its streams one after the other (about a second each), and the first ones
    open have the detector to themselves meanwhile, as the peer, which opens every stream before its first
    result, never has (its window starts then)."""
    started = [next((t for t, fps, *_ in points if fps > 0), None) for points in timeline.values()]
    return None if not timeline or None in started else max(started) + settle_s


def steady_fps(timeline: dict[str, list[list[float]]], settle_s: float = 3.0) -> list[float]:
    """Each camera's analysed fps over the steady window (``steady_start``)."""
    start = steady_start(timeline, settle_s)
    if start is None:
        return []
    rates = [[fps for t, fps, *_ in points if t > start] for points in timeline.values()]
    return [round(sum(r) / len(r), 2) for r in rates] if all(rates) else []


def steady_share(timeline: dict[str, list[list[float]]], settle_s: float = 3.0) -> float | None:
    """Analysed / (analysed + dropped) over the same window as ``steady_fps``: without each stream's connect burst
    (an RTSP stream delivers the seconds it buffered while opening at once; newest first, most are superseded)."""
    start = steady_start(timeline, settle_s)
    if start is None or any(len(p) < 6 for points in timeline.values() for p in points):
        return None
    analysed = dropped = 0
    for points in timeline.values():
        before = [p for p in points if p[0] <= start]
        if not before or before[-1] is points[-1]:
            return None
        analysed += points[-1][5] - before[-1][5]
        dropped += points[-1][4] - before[-1][4]
    return round(analysed / max(1, analysed + dropped), 4)


def run_peer(urls: list[str], weights: str, threads: str, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / "peer.json"
    cmd = [sys.executable, "-m", "benchmarks.peer_ultralytics", "--urls", *urls, "--weights", weights, "--imgsz",
           str(args.imgsz), "--threads", threads, "--duration", str(args.duration), "--out", str(out)]
    proc = subprocess.Popen(pinned(cmd, args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def pinned(cmd: list[str], args: argparse.Namespace) -> list[str]:
    """``cmd`` under ``taskset`` on ``--cpus`` (a slower machine), or as it is."""
    cpus = getattr(args, "cpus", None)
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def _resources(sampler: TreeSampler) -> dict:
    window = (sampler.window[1] - sampler.window[0]) if sampler.window else 0.0
    by_role = sampler.cpu_by_role()
    cpu = sum(by_role.values())
    return {"uss_mb_peak": round(sampler.peak_uss / 2**20), "uss_by_role_mb": sampler.uss_by_role(),
            "cpu_by_role_s": {k: round(v, 1) for k, v in by_role.items()},
            "cpu_utilisation": round(cpu / max(1e-9, window * (os.cpu_count() or 1)), 3) if window else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, nargs="+", default=[4, 8, 12, 16, 24, 32])
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--cpus", help="run the contenders on these cores only (taskset -c), e.g. 0")
    parser.add_argument("--code", help="run the project from this checkout (e.g. the previous release's worktree)")
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

    env_cores = None
    if args.cpus:  # the export's choice is per core count: make it as the pinned project will
        env_cores = subprocess.run(["taskset", "-c", args.cpus, sys.executable, "-c",
                                    "from surveillance_ray.export import resolve; from surveillance_ray.config import "
                                    f"DetectorConfig; print(resolve(DetectorConfig(imgsz={args.imgsz})).weights)"],
                                   capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    same = env_cores or resolve(DetectorConfig(imgsz=args.imgsz)).weights
    fp32 = resolve(DetectorConfig(imgsz=args.imgsz, backend="openvino")).weights
    int8 = resolve(DetectorConfig(imgsz=args.imgsz, backend="openvino-int8")).weights
    other, other_name = (int8, "OpenVINO INT8") if same == fp32 else (fp32, "OpenVINO FP32")
    contenders = {PROJECT: None, **peers(pt, same, other, other_name, cores)}
    wanted = args.contenders or [PROJECT, *DEFAULT_PEERS]
    contenders = {k: v for k, v in contenders.items() if k in wanted}
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
    from surveillance_ray.hardware import cpu_label

    cpu = subprocess.run(pinned([sys.executable, "-c", "from surveillance_ray.hardware import cpu_label; "
                                 "print(cpu_label())"], args), capture_output=True, text=True).stdout.strip()
    data = {"args": {k: v for k, v in vars(args).items()}, "model_pt": pt, "model_same": same, "model_fp32": fp32,
            "rows": rows, "targets": targets(rows), "machine": machine() | {"cpu": cpu or cpu_label()}}
    save(f"peers_{tag}", data, markdown(rows, args, same, data["targets"], data["machine"]["cpu"]))
    plot(rows, RESULTS / f"peers_{tag}.png", args, data["machine"]["cpu"])


def _ok(rows: list[dict], name: str) -> dict[int, dict]:
    return {r["cameras"]: r for r in rows if r["contender"] == name and "error" not in r}


def peer_best(rows: list[dict]) -> dict[int, dict]:
    """Per camera count, the peer variant that analysed the most frames."""
    best: dict[int, dict] = {}
    for r in rows:
        if r["contender"] != PROJECT and "error" not in r and r["fps_analysed"] > best.get(r["cameras"], {}).get(
                "fps_analysed", -1):
            best[r["cameras"]] = r
    return best


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, each with what this run measured and whether it was met."""
    ours, best = _ok(rows, PROJECT), peer_best(rows)
    counts = sorted(ours)
    out: list[dict] = []
    if not counts:  # every project run failed: nothing to judge
        return out

    def add(target: str, measured: str, met: bool | None) -> None:
        out.append({"target": target, "measured": measured, "met": met})

    ratios = {n: ours[n]["fps_analysed"] / best[n]["fps_analysed"] for n in counts if n >= 8 and n in best}
    if ratios:
        add("analysed fps >= 1.1x the peer at its best, 8-32 cameras",
            ", ".join(f"{n}: {r:.2f}x" for n, r in ratios.items()), all(r >= 1.1 for r in ratios.values()))
    if 4 in ours:
        share = ours[4]["frames_analysed"] / max(1, ours[4]["frames_read"])
        steady = ours[4].get("steady_share_analysed")
        judged = share if steady is None else steady
        add(">= 98 % of offered frames analysed at 4 cameras",
            f"{100 * share:.1f} % of the whole run" + ("" if steady is None else
                                                     f", {100 * steady:.1f} % once the streams are open"),
            judged >= 0.98)
    peak, cliffs = 0.0, []
    for n in counts:
        fps = ours[n]["fps_analysed"]
        if peak and fps < 0.9 * peak:
            cliffs.append(f"{n}: {fps / peak:.2f}x")
        peak = max(peak, fps)
    add("no cliff: analysed fps >= 0.9x the highest at fewer cameras", ", ".join(cliffs) or "held at every count",
        not cliffs)
    fair = {n: ours[n]["fps_per_camera"]["min"] / max(1e-9, ours[n]["fps_per_camera"]["mean"]) for n in counts}
    add("slowest camera >= 0.8x the mean", ", ".join(f"{n}: {f:.2f}" for n, f in fair.items()),
        all(f >= 0.8 for f in fair.values()))
    p95 = {n: ours[n]["latency_ms"]["p95"] for n in counts}
    add("p95 capture -> validated <= 1.5 s", ", ".join(f"{n}: {v:.0f} ms" for n, v in p95.items()),
        all(v <= 1500 for v in p95.values()))
    aux = {n: ours[n].get("aux_share") for n in counts if ours[n].get("aux_share") is not None}
    add("auxiliary detector time <= its budget (15 %)",
        ", ".join(f"{n}: {100 * a:.1f} %" for n, a in aux.items()) or "not measured (no scheduler in this code)",
        all(a <= 0.15 + 0.005 for a in aux.values()) if aux else None)
    lost = sum(ours[n].get("unaccounted", 0) for n in counts)
    add("0 frames unaccounted", str(lost), lost == 0)
    if 24 in ours:
        add("peak USS at 24 cameras <= 2 GB", f"{ours[24]['uss_mb_peak']} MB", ours[24]["uss_mb_peak"] <= 2048)
    return out


def markdown(rows: list[dict], args: argparse.Namespace, same: str, checks: list[dict], cpu: str) -> str:
    best = peer_best(rows)
    lines = [f"# {PROJECT} vs ultralytics `.streams` on live RTSP cameras (imgsz {args.imgsz}, {args.duration:g} s each)",
             "", f"CPU: {cpu}" + (f", contenders pinned to cores {args.cpus} (taskset)" if args.cpus else "") + ".",
             f"Same file = `{Path(same).name}` (what {PROJECT} runs on this CPU). Offered: 10 fps per camera.", "",
             "| cameras | contender | analysed fps | per-camera fps slowest / mean | p50 / p95 ms | read | dropped | "
             "aux share / second opinions skipped | peak USS MB | CPU used | project ÷ peer at its best |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['cameras']} | {r['contender']} | failed: {r['error'][:80]} ||||||||")
            continue
        cpu_used = f"{100 * r['cpu_utilisation']:.0f} %" if r.get("cpu_utilisation") is not None else "–"
        aux = ""
        rel = ""
        if r["contender"] == PROJECT:
            skipped = sum(n for k, n in (r.get("second_opinions") or {}).items() if k.startswith("skipped:"))
            asked = (r.get("second_opinions") or {}).get("asked", 0)
            aux = (f"{100 * (r.get('aux_share') or 0):.1f} % / {skipped} of {asked}"
                   if r.get("aux_share") is not None else "")
            peer = best.get(r["cameras"])
            rel = f"{r['fps_analysed'] / peer['fps_analysed']:.2f}×" if peer and peer["fps_analysed"] else "–"
        dropped = f"{r['frames_dropped']}" + (
            " (" + ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items())) + ")" if r.get("dropped") else "")
        lines.append(f"| {r['cameras']} | {r['contender']} | {r['fps_analysed']:.1f} | {r['fps_per_camera']['min']:.2f} / "
                     f"{r['fps_per_camera']['mean']:.2f} | {r['latency_ms']['p50']:.0f} / {r['latency_ms']['p95']:.0f} | "
                     f"{r['frames_read']} | {dropped} | {aux} | {r['uss_mb_peak']} | {cpu_used} | {rel} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['target']} | {c['measured']} | {'n/a' if c['met'] is None else 'yes' if c['met'] else 'no'} |")
    lines += ["", "Latency: the project's is capture → validated (after tracking and validation); the peer's is "
              "capture → result. Dropped: frames read but never analysed (the project counts each with its "
              "reason; the peer's one-slot buffer overwrites them). USS: peak over the run, the whole process "
              "tree (the project's includes the local Ray it starts). Aux share: the project's detector time spent "
              "on second-opinion crops, of the wall time.", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, args: argparse.Namespace, cpu: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = {PROJECT: _ok(rows, PROJECT), f"{PEER} at its best": peer_best(rows)}
    for name in dict.fromkeys(r["contender"] for r in rows if r["contender"] != PROJECT):
        series[name] = _ok(rows, name)
    for name, points in series.items():
        xs = sorted(points)
        style = ({"linewidth": 2.5, "marker": "o"} if name == PROJECT else
                 {"linewidth": 2, "marker": "s"} if name.endswith("its best") else
                 {"linestyle": ":", "marker": ".", "alpha": 0.6})
        ax1.plot(xs, [points[x]["fps_analysed"] for x in xs], label=name, **style)
        ax2.plot(xs, [points[x]["latency_ms"]["p95"] for x in xs], label=name, **style)
    xs = sorted({r["cameras"] for r in rows})
    ax1.plot(xs, [10 * x for x in xs], color="grey", linewidth=1, linestyle="--", zorder=0,
             label="offered (10 fps per camera)")
    ax1.set(xlabel="cameras", ylabel="analysed frames/s", title=f"throughput, imgsz {args.imgsz}")
    ax2.set(xlabel="cameras", ylabel="p95 capture→result (ms)", title="latency (p95)")
    ax2.axhline(1500, color="grey", linewidth=1, linestyle="--")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_xticks(xs)
    ax1.legend(fontsize=7)
    fig.suptitle(cpu + (f", pinned to cores {args.cpus}" if args.cpus else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
