"""Detector frames/s against batch size (the gain cross-camera batching can give), in-process, no Ray.

    python -m benchmarks.detector_throughput --device cpu --imgsz 320 640 --batch 1 4 8
    python -m benchmarks.detector_throughput --device cuda:0 --half --batch 1 4 8 16 32

Frames are real PETS frames; each setting runs warm-up passes first, then at least ``--seconds``.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2

from benchmarks.common import machine, pets_video, save
from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector


def measure(detector: Detector, frames: list, batch: int, seconds: float, sync) -> float:
    for _ in range(3):
        detector.detect(frames[:batch])
    sync()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        start = done % 32  # 64 frames: any batch up to 32 fits from any start below 32
        detector.detect(frames[start:start + batch])
        done += batch
    sync()
    return done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    cap = cv2.VideoCapture(str(pets_video()))
    frames = [cap.read()[1] for _ in range(64)]
    rows = []
    for imgsz in args.imgsz:
        extra = {"weights": args.weights} if args.weights else {}
        cfg = DetectorConfig(imgsz=imgsz, device=args.device, half=args.half, num_cpus=os.cpu_count() or 1, **extra)
        detector = Detector(cfg)
        for batch in args.batch:
            fps = measure(detector, frames, batch, args.seconds, sync)
            rows.append({"imgsz": imgsz, "batch": batch, "fps": round(fps, 1)})
            print(rows[-1], flush=True)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU x{os.cpu_count()}"
    lines = [f"# Detector throughput on {device_name} ({args.device}{', fp16' if args.half else ''})", "",
             "| imgsz | batch | frames/s | vs batch 1 |", "|---|---|---|---|"]
    for r in rows:
        base = next(x["fps"] for x in rows if x["imgsz"] == r["imgsz"] and x["batch"] == args.batch[0])
        lines.append(f"| {r['imgsz']} | {r['batch']} | {r['fps']} | {r['fps'] / base:.2f}x |")
    name = f"detector_throughput_{args.device.replace(':', '')}{args.tag}"
    save(name, {"args": vars(args), "rows": rows, "device": device_name, "torch": torch.__version__,
                "machine": machine()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
