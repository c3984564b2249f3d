"""``surveillance-ray capacity``: how many cameras of a given resolution and rate the real pipeline holds on
this machine (or cluster), and which stage limits it.

Each probe runs the whole pipeline (decode, detect, track, validate, with the settings of ``--config``) on N
cameras playing a clip encoded at the asked resolution and rate (H.264, a keyframe a second, as IP cameras
send), paced in real time, for a short window. N doubles from ``--start`` while probes hold, then bisects
between the last that held and the first that did not. A probe holds when at least 95 % of the offered frames
are analysed, the slowest camera gets 90 % of its rate and p95 capture -> validated is within
``--max-latency-s``. The limit is read off the first probe that did not hold: the machine's CPU by role
(inference, decode and tracking in the ingest actors, validation, Ray) when it is saturated, else the
detector when it is busy all the time, else the validator (one core), else the frame path's round trip.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from surveillance_ray.config import Settings

logger = logging.getLogger(__name__)

HOLD_ANALYSED = 0.95  # of the offered frames
HOLD_SLOWEST = 0.90  # of a camera's rate, for the slowest camera
SATURATED = 0.90  # of the detector's time, or of the validator's core
CPU_SATURATED = 0.85  # of the machine's CPU: the rest is the gaps of a bursty load


@dataclass
class Probe:
    cameras: int
    offered_fps: float
    analysed_fps: float = 0.0
    slowest_fps: float = 0.0
    p95_ms: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)
    detector_busy: float = 0.0  # share of the time the detector replica(s) ran passes
    detector_aux: float = 0.0
    cpu_busy: float | None = None  # share of this machine's cores in use (None: a cluster, not measured)
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # cores
    holds: bool = False
    why: str = ""

    def judge(self, fps: float, max_latency_s: float) -> "Probe":
        misses = []
        if self.analysed_fps < HOLD_ANALYSED * self.offered_fps:
            misses.append(f"analysed {self.analysed_fps:.1f} of {self.offered_fps:.0f} frames/s")
        if self.slowest_fps < HOLD_SLOWEST * fps:
            misses.append(f"slowest camera {self.slowest_fps:.1f} fps")
        if self.p95_ms > 1000 * max_latency_s:
            misses.append(f"p95 {self.p95_ms:.0f} ms")
        self.holds, self.why = not misses, "; ".join(misses)
        return self

    def limit(self) -> str:
        """The stage that limits this probe, in words."""
        roles = sorted(self.cpu_by_role.items(), key=lambda kv: -kv[1])
        share = ", ".join(f"{name} {cores:.2f}" for name, cores in roles[:4])
        if self.cpu_busy is not None and self.cpu_busy >= CPU_SATURATED:
            lead = roles[0][0] if roles else "?"
            return (f"CPU: the machine is {100 * self.cpu_busy:.0f} % busy (cores by role: {share}); "
                    f"most goes to the {lead}")
        if self.detector_busy >= SATURATED:
            return f"detector: busy {100 * self.detector_busy:.0f} % of the time (add replicas or a GPU)"
        if self.cpu_by_role.get("validator", 0.0) >= SATURATED:
            return "validator: one core, all used"
        return (f"the frame path's round trip: nothing saturated (detector busy {100 * self.detector_busy:.0f} %"
                + (f", CPU {100 * self.cpu_busy:.0f} %" if self.cpu_busy is not None else "")
                + "); frames wait while each ingest actor's request is away (more ingest.max_inflight_requests "
                  "or fewer ingest.cameras_per_actor trade latency and memory for throughput)")


def test_clip(source: Path, width: int | None, height: int | None, fps: float, seconds: float = 60.0) -> Path:
    """``source`` at ``width`` x ``height`` (its own size when None) and ``fps``, as H.264 (a keyframe a second,
    no B-frames), ``seconds`` long (looped if shorter); encoded once, cached."""
    import av
    import cv2

    from surveillance_ray.testing.rtsp import cache_dir

    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    size = f"{width}x{height}" if width and height else "own"
    out = cache_dir() / "capacity" / f"{source.stem}-{digest}-{size}-{fps:g}fps-{seconds:g}s.mp4"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(source))
    src_fps = cap.get(cv2.CAP_PROP_FPS) or fps
    frames: list[Any] = []
    ok, image = cap.read()
    if not ok:
        raise ValueError(f"--source: cannot read a frame from {source}")
    while ok:
        frames.append(image)
        ok, image = cap.read()
    cap.release()
    w, h = width or frames[0].shape[1], height or frames[0].shape[0]
    w, h = w - w % 2, h - h % 2  # yuv420p
    tmp = out.with_suffix(f".{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = max(1, round(fps))
        stream.codec_context.max_b_frames = 0
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(round(seconds * fps)):
            image = frames[int(i * src_fps / fps) % len(frames)]
            if image.shape[1::-1] != (w, h):
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(out)
    return out


def run_probe(settings: Settings, clip: Path, n: int, fps: float, warm_s: float, window_s: float,
              max_latency_s: float, console: Console) -> Probe:
    """The pipeline on ``n`` cameras playing ``clip`` at ``fps`` for ``warm_s + window_s``; judged on the window."""
    from surveillance_ray.config import CameraConfig
    from surveillance_ray.pipeline import run_pipeline
    from surveillance_ray.proctree import TreeSampler

    cameras = [CameraConfig(id=f"cap{i:03d}", source=str(clip), fps=fps, loop=True) for i in range(n)]
    local = not os.environ.get("RAY_ADDRESS")
    with tempfile.TemporaryDirectory(prefix="sr-capacity-") as tmp:
        run = settings.run.model_copy(update={"duration_s": warm_s + window_s, "run_dir": Path(tmp) / "run",
                                              "live": False, "track_log": False, "report": False,
                                              "save_video": False})
        probe_settings = settings.model_copy(update={"cameras": cameras, "run": run})
        sampler = TreeSampler(os.getpid(), 1.0).start() if local else None
        timer = threading.Timer(warm_s, sampler.mark_window_start) if sampler else None
        if timer:
            timer.start()
        started = time.time()
        summary = run_pipeline(probe_settings, console=Console(file=io.StringIO(), width=160)).summary
        if sampler:
            sampler.close_window()
            sampler.stop()
    per_camera = []
    for points in (summary["run"].get("timeline") or {}).values():
        window = [p[1] for p in points if p[0] >= warm_s]
        per_camera.append(sum(window) / len(window) if window else 0.0)
    scheduler = (summary["run"].get("detector") or {}).get("scheduler") or {}
    probe = Probe(cameras=n, offered_fps=n * fps, analysed_fps=round(sum(per_camera), 2),
                  slowest_fps=round(min(per_camera, default=0.0), 2), p95_ms=summary["total"]["latency_ms"]["p95"],
                  dropped=summary["total"].get("dropped") or {}, detector_busy=scheduler.get("busy_share", 0.0),
                  detector_aux=scheduler.get("aux_share", 0.0))
    if sampler and sampler.window:
        seconds = max(1e-6, sampler.window[1] - sampler.window[0])
        probe.cpu_by_role = {role: round(s / seconds, 3) for role, s in sampler.cpu_by_role().items() if s > 0}
        busy = sampler.system_busy()
        probe.cpu_busy = round(busy if busy is not None else sum(probe.cpu_by_role.values()) / (os.cpu_count() or 1), 3)
    probe.judge(fps, max_latency_s)
    console.print(f"  {n:3d} cameras: {probe.analysed_fps:6.1f} of {probe.offered_fps:.0f} frames/s, slowest "
                  f"{probe.slowest_fps:.1f} fps, p95 {probe.p95_ms:.0f} ms, detector busy "
                  f"{100 * probe.detector_busy:.0f} %" + (f", CPU {100 * probe.cpu_busy:.0f} %" if probe.cpu_busy
                                                         is not None else "")
                  + (" -> holds" if probe.holds else f" -> does not hold ({probe.why})")
                  + f"  [{time.time() - started:.0f} s]")
    return probe


@dataclass
class Capacity:
    cameras: int  # the most that held (0: not even the first probe)
    resolution: str
    fps: float
    imgsz: int
    probes: list[Probe]
    limit: str
    capped: bool  # the search stopped at --max-cameras with every probe holding

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(settings: Settings, clip: Path, resolution: str, fps: float, start: int, max_cameras: int,
            warm_s: float, window_s: float, max_latency_s: float, console: Console) -> Capacity:
    """Double from ``start`` while probes hold, then bisect."""
    from surveillance_ray.pipeline import connect_ray

    started_ray = connect_ray()
    probes: dict[int, Probe] = {}

    def holds(n: int) -> bool:
        if n not in probes:
            probes[n] = run_probe(settings, clip, n, fps, warm_s, window_s, max_latency_s, console)
        return probes[n].holds

    try:
        good, bad, n = 0, None, max(1, start)
        while n <= max_cameras:
            if holds(n):
                good = n
                n *= 2
            else:
                bad = n
                break
        if bad is None and good < max_cameras and holds(max_cameras):
            good = max_cameras
        elif bad is None and good < max_cameras:
            bad = max_cameras
        if bad is not None and good == 0 and bad > 1:  # the first probe failed: look below it
            lo, hi = 0, bad
        else:
            lo, hi = good, bad
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            if holds(mid):
                lo = mid
            else:
                hi = mid
        good, bad = lo, hi
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    failing = probes.get(bad) if bad is not None else None
    limit = failing.limit() if failing else f"not reached: every probe up to --max-cameras {max_cameras} held"
    return Capacity(good, resolution, fps, settings.detector.imgsz, [probes[k] for k in sorted(probes)], limit,
                    capped=failing is None)


def report(result: Capacity, console: Console) -> None:
    table = Table(title=f"capacity: {result.resolution} at {result.fps:g} fps, imgsz {result.imgsz}")
    for col in ("cameras", "offered fps", "analysed fps", "slowest cam fps", "p95 ms", "detector busy", "CPU busy",
                "holds"):
        table.add_column(col, justify="right")
    for p in result.probes:
        table.add_row(str(p.cameras), f"{p.offered_fps:.0f}", f"{p.analysed_fps:.1f}", f"{p.slowest_fps:.1f}",
                      f"{p.p95_ms:.0f}", f"{100 * p.detector_busy:.0f} %",
                      "-" if p.cpu_busy is None else f"{100 * p.cpu_busy:.0f} %", "yes" if p.holds else "no")
    console.print(table)
    more = "at least " if result.capped else ""
    console.print(f"This machine holds {more}{result.cameras} camera(s) of {result.resolution} at {result.fps:g} fps "
                  f"(decode + detect + track + validate, imgsz {result.imgsz}).")
    console.print(f"Limit: {result.limit}")
