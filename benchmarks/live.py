"""N cameras playing PETS in real time for a fixed time: per-stream read/analysed/dropped, fps, latency,
person events, and USS memory of each camera actor and of the whole run.

    python -m benchmarks.live --cameras 4 --duration 60 --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.common import machine, pets_video, save
from surveillance_ray.config import load_settings
from surveillance_ray.pipeline import run_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--fps", type=float, default=None, help="per-camera target fps (default: the video's 10)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            cameras=[{"id": f"pets{i}", "source": str(pets_video()), "fps": args.fps} for i in range(args.cameras)],
            detector={"imgsz": args.imgsz},
            run={"duration_s": args.duration, "run_dir": str(Path(tmp) / "run"), "live": False, "track_log": False},
        )
        summary = run_pipeline(settings).summary
    name = f"live_{args.cameras}cams_{int(args.duration)}s_{args.imgsz}"
    lines = [f"# {args.cameras} PETS cameras in real time, {args.duration:g} s, imgsz {args.imgsz}", "",
             "| camera | read | analysed | dropped | analysed fps | p50 ms | p95 ms | tracks | events | person tracks started |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [*summary["streams"].items(), ("total", summary["total"])]
    for cid, s in rows:
        lines.append(f"| {cid} | {s['frames_read']} | {s['frames_analysed']} | {s['frames_dropped']} | "
                     f"{s['fps_analysed']} | {s['latency_ms']['p50']} | {s['latency_ms']['p95']} | {s['tracks']} | "
                     f"{s['events']} | {s['started_by_class'].get('person', 0)} |")
    run = summary["run"]
    lines += ["", f"Whole run USS (driver + local Ray + Serve + actors): {run['uss_mb_total']} MB. "
              f"Detector: {run['detector']['backend']} on {run['detector']['runtime']}, batches "
              f"{run['detector']['batch_sizes']} (size: count) from {run['detector']['requests']} requests.", ""]
    save(name, {"args": vars(args), "summary": summary, "machine": machine()}, "\n".join(lines))


if __name__ == "__main__":
    main()
