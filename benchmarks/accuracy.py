"""PETS09-S2L1 frames 1-269, persons vs ground truth (IoU >= 0.5): the .pt and the default CPU backend
(OpenVINO INT8 export) called directly, and the distributed path (ingest actor → Serve detector →
tracker → validator → track log) running the default backend, side by side.

    python benchmarks/accuracy.py [--imgsz 640]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import assets, machine, pets_video, save
from surveillance_ray.config import load_settings
from surveillance_ray.evaluate import (PETS_GT, PETS_GT_FRAMES, PETS_GT_SCALE, evaluate, hypotheses_from_track_log,
                                       load_mot_gt, model_hypotheses)

FRAMES = PETS_GT_FRAMES


def direct(imgsz: int, conf: float, backend: str = "auto") -> tuple[dict[int, np.ndarray], float]:
    from surveillance_ray.config import DetectorConfig
    from surveillance_ray.detect import Detector

    detector = Detector(DetectorConfig(imgsz=imgsz, conf=conf, backend=backend))
    t0 = time.perf_counter()
    hyp = model_hypotheses(detector, pets_video(), FRAMES)
    return hyp, len(hyp) / (time.perf_counter() - t0)


def pipeline(imgsz: int, conf: float, run_dir: Path) -> tuple[list[dict], dict]:
    from surveillance_ray.pipeline import run_pipeline

    settings = load_settings(
        cameras=[{"id": "pets", "source": str(pets_video()), "realtime": False}],
        detector={"imgsz": imgsz, "conf": conf},
        run={"max_frames": len(FRAMES), "run_dir": str(run_dir), "live": False},
    )
    result = run_pipeline(settings)
    rows = [json.loads(line) for line in (run_dir / "tracks.jsonl").open()]
    return rows, result.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--conf", type=float, default=0.25)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    gt = load_mot_gt(assets() / PETS_GT, scale=PETS_GT_SCALE)

    hyp_pt, pt_fps = direct(args.imgsz, args.conf, backend="torch")
    hyp_direct, direct_fps = direct(args.imgsz, args.conf)
    with tempfile.TemporaryDirectory() as tmp:
        rows, summary = pipeline(args.imgsz, args.conf, Path(tmp) / "run")
    results = {
        "direct .pt (torch)": evaluate(gt, hyp_pt, FRAMES),
        "direct default backend (OpenVINO INT8)": evaluate(gt, hyp_direct, FRAMES),
        "pipeline_detections": evaluate(gt, hypotheses_from_track_log(rows, "pets", "detections"), FRAMES),
        "pipeline_tracks": evaluate(gt, hypotheses_from_track_log(rows, "pets", "tracks"), FRAMES),
    }
    stream = summary["streams"]["pets"]
    data = {"imgsz": args.imgsz, "conf": args.conf, "frames": len(FRAMES), "results": results,
            "direct_fps": round(direct_fps, 2), "pt_fps": round(pt_fps, 2), "pipeline_stream": stream,
            "backend": summary["run"]["detector"].get("backend"), "machine": machine()}
    lines = [f"# PETS09-S2L1 frames 1-{len(FRAMES)}, persons, IoU >= 0.5 (imgsz {args.imgsz}, conf {args.conf})", "",
             "| path | precision | recall | TP | FP | misses | MOTA | IDF1 | ID switches |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['true_positives']} | "
                     f"{r['num_false_positives']} | {r['num_misses']} | {r['mota']:.3f} | {r['idf1']:.3f} | "
                     f"{r['num_switches']} |")
    lines += ["", f"Pipeline: read {stream['frames_read']}, analysed {stream['frames_analysed']}, dropped "
              f"{stream['frames_dropped']}; direct: .pt {pt_fps:.1f} fps, default backend {direct_fps:.1f} fps; "
              f"pipeline {stream['fps_analysed']} fps (one camera, every frame, one frame per request).",
              "MOTA/IDF1 are meaningful for the tracks row only (detection ids are per-frame indices).", ""]
    save(f"accuracy_pets_{args.imgsz}", data, "\n".join(lines))


if __name__ == "__main__":
    main()
