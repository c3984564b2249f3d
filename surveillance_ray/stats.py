"""Per-camera counters and latency percentiles, in constant memory and mergeable across cameras."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from surveillance_ray.messages import StreamState


class LatencyHistogram:
    """Latencies in 1 ms bins up to ``max_ms`` (one overflow bin above): percentiles within 1 ms."""

    def __init__(self, max_ms: int = 20_000) -> None:
        self.counts = np.zeros(max_ms + 1, np.int64)

    def add(self, seconds: float) -> None:
        self.counts[min(int(seconds * 1000.0), len(self.counts) - 1)] += 1

    def add_many(self, seconds: Iterable[float]) -> None:
        ms = np.minimum((np.fromiter(seconds, np.float64) * 1000.0).astype(np.int64), len(self.counts) - 1)
        np.add.at(self.counts, ms, 1)

    def merge(self, other: "LatencyHistogram") -> "LatencyHistogram":
        self.counts += other.counts
        return self

    def __len__(self) -> int:
        return int(self.counts.sum())

    def percentiles(self) -> dict[str, float]:
        """``{"p50": ms, "p95": ms, "max": ms}`` (bin midpoints; 0 when empty)."""
        n = len(self)
        if n == 0:
            return {"p50": 0.0, "p95": 0.0, "max": 0.0}
        cum = np.cumsum(self.counts)
        out = {}
        for name, q in (("p50", 0.50), ("p95", 0.95)):
            out[name] = float(np.searchsorted(cum, q * n) + 0.5)
        out["max"] = float(np.flatnonzero(self.counts)[-1] + 0.5)
        return out

    def to_sparse(self) -> dict[int, int]:
        """Non-empty bins, to ship in a report."""
        nz = np.flatnonzero(self.counts)
        return {int(i): int(self.counts[i]) for i in nz}

    @classmethod
    def from_sparse(cls, bins: dict[int, int] | dict[str, int], max_ms: int = 20_000) -> "LatencyHistogram":
        hist = cls(max_ms)
        for k, v in bins.items():
            hist.counts[min(int(k), max_ms)] += int(v)
        return hist


@dataclass
class StreamStats:
    """One camera's report: ``frames_read == frames_analysed + frames_dropped + in_pipeline``."""

    stream_id: str
    state: str = StreamState.STARTING.value
    error: str | None = None
    frames_decoded: int = 0  # every frame decoded, including those skipped by fps sampling
    frames_read: int = 0  # frames taken into the pipeline
    frames_analysed: int = 0  # detected, tracked and validated
    frames_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # by reason: overflow, detector_error, …
    in_pipeline: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    tracks: int = 0
    source_fps: float | None = None
    started_at: float = 0.0
    elapsed_s: float = 0.0  # since the camera's first frame (opening a stream takes a while)
    fps_analysed: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_hist: dict[int, int] = field(default_factory=dict)
    ingest_actor: str = ""
    node_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dropped"] = dict(self.dropped)
        # flat copies of the common reasons, for tables and older readers of summary.json
        d["dropped_overflow"] = self.dropped.get("overflow", 0)
        d["dropped_detector_error"] = self.dropped.get("detector_error", 0)
        return d


def merge_latency(reports: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Percentiles over several cameras' latency histograms."""
    total = LatencyHistogram()
    for r in reports:
        total.merge(LatencyHistogram.from_sparse(r.get("latency_hist") or {}))
    return total.percentiles()
