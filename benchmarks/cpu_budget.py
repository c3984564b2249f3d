"""Where the CPU goes: a per-analysed-frame CPU budget of ``surveillance-ray run`` by component.

    python -m benchmarks.cpu_budget --cameras 12 --duration 75 [--tag after]
    python -m benchmarks.cpu_budget --code /path/to/older/checkout --tag before   # same measurement, older code

N real RTSP cameras (the PETS video, H.264 passed through, real time) feed the pipeline; after a
warm-up, for a window of ``--window`` seconds:

- every thread of every process of the run is accounted for from ``/proc`` (CPU ticks per thread);
- py-spy samples the Python threads of the ingest actors, the detector replica, the validator and
  the driver (``--threads``, so samples carry the OS thread id); a Python thread's CPU is split
  over components in proportion to its samples, classified by the leaf-most frame that names one;
- native threads without Python frames are Ray's core-worker threads (named by Ray: transport),
  the inference runtime's threads (OpenVINO/torch workers in the replica) or FFmpeg's;
- processes py-spy does not sample are Ray's daemons and Serve's controller.

Frames analysed in the window are counted from the run's track log (capture time in the window).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

from benchmarks.common import assets, machine, pets_h264, save, tool
from surveillance_ray.proctree import role_of
from surveillance_ray.testing.rtsp import RtspCameras

CLK = os.sysconf("SC_CLK_TCK")
COMPONENTS = ["decode", "resize", "capture loop", "frame transport (Ray)", "Serve routing", "pre-processing",
              "inference", "post-processing", "tracking", "validation", "metrics & stats", "driver",
              "Serve controller", "Ray daemons", "other"]
# leaf-most frame that matches decides (patterns checked in this order for each frame)
FRAME_RULES = [
    ("resize", r"fit_to_model|make_frame|image_quality"),  # downscale to the model, luma and sharpness
    ("decode", r"CaptureSource\.(read|open)|_open_ffmpeg|ImageSequenceSource\.read|_media_time"),
    ("pre-processing", r"letterbox \(surveillance_ray|BasePredictor\.preprocess|pre_transform|LetterBox"),
    ("post-processing", r"nms \(surveillance_ray|scale_boxes|_compact|postprocess|non_max_suppression|Results|Boxes"),
    ("inference", r"OpenVINORuntime\.infer|UltralyticsRuntime\.infer|BasePredictor\.inference|AutoBackend|"
                  r"Detector\._forward|Detector\.detect|YOLO\.predict|stream_inference|torch/nn/"),
    ("tracking", r"StreamTracker|ByteTrack|trackers/|supervision/"),
    ("validation", r"process_many|Validator\.|_validated|finish_stream|validate\.py|rules\.py"),
    ("metrics & stats", r"metrics|psutil|\.stats \(surveillance|_report \(surveillance|_flush_capture_metrics"),
    ("frame transport (Ray)", r"serializ|cloudpickle|Pickler|pickle|msgpack|ObjectRef|get_objects|ray/actor\.py|"
                              r"Worker\.main_loop|ray/_private/worker\.py"),
    ("Serve routing", r"ray/serve/"),
    ("capture loop", r"_read_session|_capture|CameraCapture\._run|FrameBuffer"),
]
RAY_THREADS = re.compile(r"^(worker\.|client\.poll|server\.poll|nexting_thread|event_engine|grpc|task_event|"
                         r"gcs_client|timer_manager|lifeguard|default-executo|resolver-exec|global\.accessor)")
SAMPLED_ROLES = ("ingest actors", "detector replica", "validator", "driver")


def classify(stack: list[str], thread: str = "") -> str:
    for frame in reversed(stack):
        for component, pattern in FRAME_RULES:
            if re.search(pattern, frame):
                return component
    if "AsyncIO Thread" in thread:  # Ray's async-actor event loop running its own (Cython) callbacks
        return "frame transport (Ray)"
    return "other"


def tree(root: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(root)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def snapshot(root: int) -> dict[int, dict]:
    """Per process: role, total ticks, and per thread (tid) its name and ticks."""
    out = {}
    for proc in tree(root):
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            threads = {}
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                try:
                    comm = (task / "comm").read_text().strip()
                    tf = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    threads[int(task.name)] = (comm, int(tf[11]) + int(tf[12]))
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    continue
            out[proc.pid] = {"role": role_of(proc.cmdline() or [proc.name()]),
                             "ticks": int(fields[11]) + int(fields[12]), "threads": threads}
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            continue
    return out


def parse_pyspy(path: Path) -> dict[int, Counter]:
    """py-spy raw output → {tid: Counter(component → samples)}."""
    per_thread: dict[int, Counter] = {}
    if not path.is_file():
        return per_thread
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        m = re.match(r"thread \((?:0x[0-9a-f]+|(\d+))\)", frames[0])
        if not m or not m.group(1):
            continue
        per_thread.setdefault(int(m.group(1)), Counter())[classify(frames[1:], frames[0])] += int(count)
    return per_thread


def attribute(a: dict[int, dict], b: dict[int, dict], samples: dict[int, dict[int, Counter]]) -> dict[str, float]:
    """CPU seconds per component between snapshots ``a`` and ``b``."""
    cpu: Counter = Counter()
    for pid, end in b.items():
        start = a.get(pid, {"ticks": 0, "threads": {}})
        role = end["role"]
        total = (end["ticks"] - start["ticks"]) / CLK
        if role in ("ingest actors", "detector replica", "validator", "driver"):
            accounted = 0.0
            for tid, (comm, ticks) in end["threads"].items():
                d = (ticks - start["threads"].get(tid, (comm, 0))[1]) / CLK
                if d <= 0:
                    continue
                accounted += d
                spied = samples.get(pid, {}).get(tid)
                if role == "driver":
                    cpu["driver"] += d
                elif spied:
                    n = sum(spied.values())
                    for component, k in spied.items():
                        cpu[component] += d * k / n
                elif RAY_THREADS.match(comm):
                    cpu["frame transport (Ray)"] += d
                elif role == "detector replica":
                    cpu["inference"] += d  # the runtime's own worker threads (OpenVINO / torch)
                elif role == "ingest actors":
                    cpu["decode"] += d  # FFmpeg's threads
                else:
                    cpu["other"] += d
            cpu["other"] += max(0.0, total - accounted)  # threads that ended within the window
        elif role == "serve controller":
            cpu["Serve controller"] += total
        elif role in ("rtsp server",):
            continue
        elif role == "other":
            cpu["other"] += total
        else:
            cpu["Ray daemons"] += total
    return {k: cpu.get(k, 0.0) for k in COMPONENTS}


def analysed_in(track_log: Path, t0: float, t1: float) -> int:
    n = 0
    with track_log.open() as f:
        for line in f:
            captured = json.loads(line)["captured_at"]
            n += t0 <= captured < t1
    return n


def run(args: argparse.Namespace) -> dict:
    video = pets_h264()
    with RtspCameras(video, args.cameras) as cams, tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [args.python, "-m", "surveillance_ray.cli", "run", "--imgsz", str(args.imgsz), "--duration",
               str(args.duration), "--no-live", "--run-dir", str(run_dir)]
        for url in cams.urls:
            cmd += ["--source", url]
        env = dict(os.environ)
        if args.code:
            env["PYTHONPATH"] = str(Path(args.code).resolve())
            env["SURVEILLANCE_ASSETS"] = str(assets())  # an older checkout elsewhere finds the same assets
        proc = subprocess.Popen(cmd + args.extra, cwd=args.code or None, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(args.warmup)
        a, t0 = snapshot(proc.pid), time.time()
        spies = []
        for pid, info in a.items():
            if info["role"] in SAMPLED_ROLES:
                out = Path(tmp) / f"{pid}.txt"
                spies.append((pid, out, subprocess.Popen(
                    [tool("py-spy"), "record", "-p", str(pid), "-d", str(int(args.window)), "-r", "40", "-f", "raw", "--threads",
                     "--nonblocking", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        time.sleep(args.window)
        b, t1 = snapshot(proc.pid), time.time()
        for _, _, spy in spies:
            spy.wait(timeout=60)
        proc.wait(timeout=args.duration + 300)
        samples = {pid: parse_pyspy(out) for pid, out, _ in spies}
        cpu = attribute(a, b, samples)
        frames = analysed_in(run_dir / "tracks.jsonl", t0, t1)
        summary = json.loads((run_dir / "summary.json").read_text())
    total = sum(cpu.values())
    return {"cameras": args.cameras, "imgsz": args.imgsz, "window_s": round(t1 - t0, 2), "frames_analysed": frames,
            "fps_analysed": round(frames / (t1 - t0), 2), "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "ms_per_frame": {k: round(1000 * v / max(1, frames), 2) for k, v in cpu.items()},
            "total_ms_per_frame": round(1000 * total / max(1, frames), 2),
            "cpu_utilisation": round(total / ((t1 - t0) * (os.cpu_count() or 1)), 3),
            "run_total": summary["total"], "detector": summary["run"].get("detector", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=12)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--duration", type=float, default=75.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--code", help="run the pipeline from this checkout (e.g. an older commit's worktree)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--tag", default="after")
    parser.add_argument("extra", nargs="*", help="more flags for surveillance-ray run")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    data = run(args)
    data["machine"] = machine()
    data["code"] = args.code or "this checkout"
    lines = [f"# CPU per analysed frame, {args.cameras} RTSP cameras, imgsz {args.imgsz} ({args.tag})", "",
             f"{data['frames_analysed']} frames analysed in {data['window_s']} s ({data['fps_analysed']} fps); "
             f"CPU {100 * data['cpu_utilisation']:.0f} % of {os.cpu_count()} cores.", "",
             "| component | CPU ms per analysed frame | share |", "|---|---|---|"]
    for k, v in data["ms_per_frame"].items():
        lines.append(f"| {k} | {v:.2f} | {100 * v / max(1e-9, data['total_ms_per_frame']):.0f} % |")
    lines += [f"| **total** | **{data['total_ms_per_frame']:.2f}** | 100 % |", ""]
    save(f"cpu_budget_{args.cameras}cams_{args.tag}", data, "\n".join(lines))


if __name__ == "__main__":
    main()
