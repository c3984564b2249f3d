"""Merging several nodes' Prometheus expositions into one the Prometheus parser reads back."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from surveillance_ray.metrics import merge_expositions


def node(address: str, frames: int) -> str:
    registry = CollectorRegistry()
    c = Counter("ray_surveillance_frames_analysed", "Frames validated.", ["stream", "NodeAddress"], registry=registry)
    c.labels(stream=f"cam-{address}", NodeAddress=address).inc(frames)
    h = Histogram("ray_surveillance_latency_ms", 'Capture to "validated".', ["NodeAddress"], buckets=[10, 100],
                  registry=registry)
    h.labels(NodeAddress=address).observe(42)
    Counter("ray_gcs_other", "Ray's own.", registry=registry).inc()
    return generate_latest(registry).decode()


def test_each_family_appears_once_with_every_nodes_samples_and_others_are_left_out() -> None:
    text = merge_expositions([node("10.0.0.1", 5), node("10.0.0.2", 7)], "ray_surveillance_")
    # prometheus_client adds *_created gauges (Ray's agents do not): not what this checks
    families = {f.name: f for f in text_string_to_metric_families(text) if not f.name.endswith("_created")}
    assert set(families) == {"ray_surveillance_frames_analysed", "ray_surveillance_latency_ms"}
    frames = {s.labels["NodeAddress"]: s.value for s in families["ray_surveillance_frames_analysed"].samples
              if s.name.endswith("_total")}
    assert frames == {"10.0.0.1": 5.0, "10.0.0.2": 7.0}
    assert families["ray_surveillance_latency_ms"].documentation == 'Capture to "validated".'
    assert text.count("# TYPE ray_surveillance_frames_analysed_total counter") == 1
    buckets = [s for s in families["ray_surveillance_latency_ms"].samples if s.name.endswith("_bucket")]
    assert {s.labels["le"] for s in buckets} == {"10.0", "100.0", "+Inf"} and len(buckets) == 6
    assert "ray_gcs_other" in merge_expositions([node("10.0.0.1", 1)])
