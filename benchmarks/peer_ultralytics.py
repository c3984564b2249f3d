"""The peer: ultralytics' own multi-stream mode (``model.predict("list.streams", stream=True)``), one process.

    python -m benchmarks.peer_ultralytics --urls URL... --weights W --imgsz 320 --threads 2 --duration 60 --out F

Instrumented only to measure it like the project: each decoded frame's capture time is recorded as
ultralytics' reader thread retrieves it (a ``cv2.VideoCapture`` subclass put in its loader's place),
so a result's latency is capture -> result, frames read but never analysed (its one-slot buffer
keeps only the newest frame) are counted as dropped, and nothing else about the peer changes.
``--threads default`` leaves torch's threads as ultralytics sets them (cpu_count - 1).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import types
import weakref
from pathlib import Path

import cv2
import numpy as np

_captured: dict[int, tuple[weakref.ref, float, int]] = {}
_reads: list[int] = []  # frames decoded per camera since the measurement window opened
_lock = threading.Lock()
_window = threading.Event()  # opened at the first result: every stream is streaming by then


class _TimedCapture(cv2.VideoCapture):
    """cv2.VideoCapture that remembers when each retrieved frame was decoded, and counts them."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        with _lock:
            self.index = len(_reads)
            _reads.append(0)

    def _note(self, ok: bool, image: np.ndarray | None) -> None:
        if ok and image is not None:
            with _lock:
                _reads[self.index] += _window.is_set()
                _captured[id(image)] = (weakref.ref(image), time.time(), self.index)

    def read(self, *args: object):  # type: ignore[override]
        ok, image = super().read(*args)
        self._note(ok, image)
        return ok, image

    def retrieve(self, *args: object):  # type: ignore[override]
        ok, image = super().retrieve(*args)
        self._note(ok, image)
        return ok, image


def _capture_info(image: np.ndarray) -> tuple[float, int] | None:
    with _lock:
        entry = _captured.pop(id(image), None)
        if len(_captured) > 10_000:  # frames the loader overwrote: forget those already freed
            for key in [k for k, (ref, _, _) in _captured.items() if ref() is None]:
                del _captured[key]
    if entry is None or entry[0]() is not image:
        return None
    return entry[1], entry[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--urls", nargs="+", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--threads", default="default", help="torch threads, or 'default' (ultralytics' choice)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    import ultralytics.data.loaders as loaders
    from ultralytics import YOLO

    loaders.cv2 = types.SimpleNamespace(**{k: getattr(cv2, k) for k in dir(cv2) if not k.startswith("__")})
    loaders.cv2.VideoCapture = _TimedCapture
    model = YOLO(args.weights, task="detect")
    with tempfile.TemporaryDirectory() as tmp:
        streams = Path(tmp) / "list.streams"
        streams.write_text("\n".join(args.urls) + "\n")
        n = len(args.urls)
        analysed, latencies = [0] * n, []
        t0 = t_end = None
        threads_set = None
        batches = 0
        results = model.predict(str(streams), stream=True, imgsz=args.imgsz, verbose=False, device="cpu")
        for r in results:
            now = time.time()
            if threads_set is None:
                if args.threads != "default":  # after the predictor's setup, which sets ultralytics' choice
                    torch.set_num_threads(int(args.threads))
                threads_set = torch.get_num_threads()
                t0 = now
                _window.set()
                print("STREAMING", flush=True)
            info = _capture_info(r.orig_img)
            if info is None or info[0] < t0:  # decoded before the window opened
                continue
            captured_at, index = info
            analysed[index] += 1
            latencies.append(now - captured_at)
            if now - t0 >= args.duration:
                t_end = now
                break
        results.close()
    elapsed = (t_end or time.time()) - t0
    reads = list(_reads)
    lat = np.asarray(latencies) * 1000
    per_cam = [a / elapsed for a in analysed]
    out = {
        "weights": args.weights, "threads": threads_set, "cameras": n,
        "elapsed_s": round(elapsed, 2), "frames_read": sum(reads), "frames_analysed": sum(analysed),
        "frames_dropped": sum(reads) - sum(analysed), "fps_analysed": round(sum(analysed) / elapsed, 2),
        "fps_per_camera": {"min": round(min(per_cam), 2), "mean": round(float(np.mean(per_cam)), 2)},
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1)},
        "reads_per_camera": reads, "analysed_per_camera": analysed,
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))
    os._exit(0)  # the loader's reader threads may sit in a blocking read


if __name__ == "__main__":
    main()
