"""What moving frames to the detector costs, without the model: CPU per frame of a Serve round trip.

    python -m benchmarks.transport [--frames 3000] [--per-request 6]

An actor (standing in for an ingest actor) sends real-size frames (240x320x3 uint8, as the cameras
send at imgsz 320) to a Serve deployment that only touches them, in three ways:

- ``request per frame``: one handle call per frame (the previous release's pattern);
- ``frames in one request``: one call carrying ``--per-request`` frames (today's pattern);
- ``object refs``: each frame ``ray.put`` by the sender, one call carrying the refs, the replica
  ``ray.get``s them (Ray's object store for every frame, zero-copy reads).

CPU is the whole local Ray's (driver, sender, replica, controller, raylet, GCS, agents), from /proc,
divided by the frames sent. Writes ``benchmarks/results/transport.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
import psutil
import ray
from ray import serve

from benchmarks.common import machine, save

SHAPE = (240, 320, 3)


@serve.deployment(max_ongoing_requests=16)
class Sink:
    """Touches every frame (reads a pixel of each), like a replica that got them."""

    async def frames(self, images: list[np.ndarray]) -> int:
        return sum(int(im[0, 0, 0]) for im in images) + len(images)

    async def refs(self, refs: list[ray.ObjectRef]) -> int:
        images = await asyncio.gather(*refs)
        return sum(int(im[0, 0, 0]) for im in images) + len(images)


@ray.remote(num_cpus=0)
class Sender:
    def __init__(self, handle: object) -> None:
        self.handle = handle
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 255, SHAPE, np.uint8) for _ in range(32)]

    async def run(self, mode: str, frames: int, per_request: int) -> float:
        t0 = time.perf_counter()
        sent = 0
        while sent < frames:
            n = 1 if mode == "request per frame" else per_request
            batch = [self.images[(sent + i) % 32] for i in range(n)]
            if mode == "object refs":
                await self.handle.refs.remote([ray.put(im) for im in batch])
            else:
                await self.handle.frames.remote(batch)
            sent += n
        return time.perf_counter() - t0


def tree_cpu() -> float:
    total = 0.0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--per-request", type=int, default=6)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    serve.start(proxy_location="Disabled", logging_config={"enable_access_log": False, "log_level": "WARNING"})
    handle = serve.run(Sink.bind(), name="transport", route_prefix=None)
    sender = Sender.remote(handle)
    rows = []
    for mode in ("request per frame", "frames in one request", "object refs"):
        ray.get(sender.run.remote(mode, 200, args.per_request))  # warm up
        cpu0 = tree_cpu()
        wall = ray.get(sender.run.remote(mode, args.frames, args.per_request))
        cpu = tree_cpu() - cpu0
        rows.append({"mode": mode, "frames": args.frames, "cpu_ms_per_frame": round(1000 * cpu / args.frames, 3),
                     "frames_per_s": round(args.frames / wall, 1)})
        print(rows[-1], flush=True)
    serve.shutdown()
    ray.shutdown()
    lines = [f"# Moving frames to a Serve deployment ({SHAPE[1]}x{SHAPE[0]} uint8, no model)", "",
             f"| mode | CPU ms per frame (whole local Ray) | frames/s | vs request per frame |", "|---|---|---|---|"]
    base = rows[0]["cpu_ms_per_frame"]
    for r in rows:
        lines.append(f"| {r['mode']}{'' if r['mode'] == 'request per frame' else f' ({args.per_request})'} | "
                     f"{r['cpu_ms_per_frame']:.2f} | {r['frames_per_s']:.0f} | {r['cpu_ms_per_frame'] / base:.2f}× |")
    save("transport", {"args": vars(args), "rows": rows, "machine": machine()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
