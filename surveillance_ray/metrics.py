"""Prometheus metrics (through Ray's metrics agent), tagged by stream."""

from __future__ import annotations

from ray.util import metrics


class StreamMetrics:
    """Per-camera counters and the capture→validated latency histogram (tags given per call)."""

    def __init__(self) -> None:
        self.read = metrics.Counter("surveillance_frames_read", "Frames taken into the pipeline.", ("stream",))
        self.analysed = metrics.Counter("surveillance_frames_analysed", "Frames validated.", ("stream",))
        self.dropped = metrics.Counter("surveillance_frames_dropped", "Frames dropped, by reason.",
                                       ("stream", "reason"))
        self.latency = metrics.Histogram(
            "surveillance_latency_ms", "Capture to validated latency (ms).",
            boundaries=[10, 25, 50, 100, 200, 400, 800, 1600, 3200], tag_keys=("stream",))
