"""Prometheus metrics (through Ray's metrics agent), tagged by stream."""

from __future__ import annotations

import math
from typing import Any

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
        self.opinions = metrics.Counter(
            "surveillance_second_opinions", "Second opinions asked, answered and skipped (skipped:<reason>).",
            ("stream", "outcome"))
        self.stage = metrics.Histogram(
            "surveillance_stage_ms", "Time per pipeline stage (ms): queue (a frame in its camera's buffer), detect "
            "(detector round trip per request), track (per frame), validate (validator round trip per request).",
            boundaries=[1, 2, 5, 10, 25, 50, 100, 200, 400, 800, 1600], tag_keys=("stage",))


class AlertMetrics:
    """Alerts stored, per camera, type and status (raised / suppressed)."""

    def __init__(self) -> None:
        self.stored = metrics.Counter("surveillance_alerts", "Alerts stored, by camera, type and status.",
                                      ("stream", "type", "status"))


def merge_expositions(texts: list[str], prefix: str = "") -> str:
    """Several nodes' Prometheus text expositions as one (each family once, its samples together); only
    the families whose name starts with ``prefix`` (e.g. ``ray_surveillance_``)."""
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Any] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name.startswith(prefix):
                families.setdefault(family.name, (family, []))[1].extend(family.samples)
    lines = []
    for family, samples in families.values():
        # the parser names a counter family without its _total; the 0.0.4 text format names it as sampled
        name = f"{family.name}_total" if family.type == "counter" and all(
            s.name.endswith("_total") for s in samples) else family.name
        kind = "untyped" if family.type == "unknown" else family.type
        lines += [f"# HELP {name} {_escape(family.documentation)}", f"# TYPE {name} {kind}"]
        for s in samples:
            labels = ",".join(f'{k}="{_escape(v, quoted=True)}"' for k, v in s.labels.items())
            lines.append(f"{s.name}{{{labels}}} {_value(s.value)}" if labels else f"{s.name} {_value(s.value)}")
    return "\n".join(lines) + "\n"


def _escape(text: str, quoted: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quoted else text


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))
