"""What each hot-path lever gains or costs: ``surveillance-ray run`` on N live RTSP cameras, one setting
changed at a time against the defaults, each for the same time on fresh streams, in one invocation.

    python -m benchmarks.levers --cameras 16 --duration 45

Per setting: analysed fps, p95 latency, CPU per analysed frame (the whole process tree), peak USS,
frames per detector request. Writes ``benchmarks/results/levers_<cameras>cams.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path

from benchmarks.common import machine, pets_h264, save
from benchmarks.peers import run_project
from surveillance_ray.testing.rtsp import RtspCameras

LEVERS: dict[str, dict] = {
    "defaults (OpenVINO INT8, 16 cameras per ingest actor, 1 request in flight)": {},
    "backend: torch (.pt through ultralytics)": {"detector": {"backend": "torch"}},
    "backend: ONNX Runtime (export, through ultralytics)": {"detector": {"backend": "onnx"}},
    "backend: OpenVINO FP32": {"detector": {"backend": "openvino"}},
    "1 camera per ingest actor (a process and a request per frame each)": {"ingest": {"cameras_per_actor": 1}},
    "6 cameras per ingest actor": {"ingest": {"cameras_per_actor": 6}},
    "2 detector requests in flight per ingest actor": {"ingest": {"max_inflight_requests": 2}},
    "FFmpeg decoder threads: FFmpeg's choice (one per core)": {"camera": {"decode_threads": None}},
    "detector max_batch_size 16 (8 by default)": {"detector": {"max_batch_size": 16}},
    "detector inference threads 1 (the replica's 2 CPUs by default)": {"detector": {"threads": 1}},
    "no track log (run.track_log off)": {"run": {"track_log": False}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--only", nargs="*", help="substrings of lever names to run (the defaults always run)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    video = pets_h264()
    rows = []
    for name, overrides in LEVERS.items():
        if args.only and rows and not any(s in name for s in args.only):
            continue
        print(f"== {name}", flush=True)
        with RtspCameras(video, args.cameras) as cams, tempfile.TemporaryDirectory() as tmp:
            try:
                result = run_project(cams.urls, args, Path(tmp), config=copy.deepcopy(overrides))
            except RuntimeError as exc:
                result = {"error": str(exc)}
        rows.append({"lever": name, "overrides": overrides, **result})
    base = rows[0]
    lines = [f"# Hot-path levers, {args.cameras} RTSP cameras (imgsz {args.imgsz}, {args.duration:g} s each)", "",
             "| setting | analysed fps | p95 ms | CPU ms / analysed frame | peak USS MB | frames / request | "
             "vs defaults: fps, CPU/frame, USS |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r or not r.get("cpu_utilisation"):
            lines.append(f"| {r['lever']} | failed: {r.get('error', 'not measured')[:100]} ||||||")
            continue
        cpu_ms = 1000 * r["cpu_utilisation"] * (os.cpu_count() or 1) / max(1e-9, r["fps_analysed"])
        r["cpu_ms_per_frame"] = round(cpu_ms, 2)
        det = r["detector"]
        per_request = det["frames"] / max(1, det["requests"]) if det.get("requests") else float("nan")
        rel = "" if r is base else (f"{r['fps_analysed'] / base['fps_analysed']:.2f}×, "
                                    f"{cpu_ms / base['cpu_ms_per_frame']:.2f}×, "
                                    f"{r['uss_mb_peak'] - base['uss_mb_peak']:+d} MB")
        lines.append(f"| {r['lever']} | {r['fps_analysed']:.1f} | {r['latency_ms']['p95']:.0f} | {cpu_ms:.1f} | "
                     f"{r['uss_mb_peak']} | {per_request:.1f} | {rel} |")
    lines += ["", "CPU per analysed frame: the run's whole process tree (driver, Ray, Serve, replica, ingest actors, "
              "validator) over the steady part of the run, divided by the frames analysed.", ""]
    save(f"levers_{args.cameras}cams", {"args": vars(args), "rows": rows, "machine": machine()}, "\n".join(lines))


if __name__ == "__main__":
    main()
