import numpy as np
import pytest

from surveillance_ray.stats import LatencyHistogram, merge_latency


def test_percentiles_within_a_millisecond() -> None:
    rng = np.random.default_rng(0)
    samples = rng.gamma(2.0, 0.05, 5000)  # seconds
    hist = LatencyHistogram()
    hist.add_many(samples)
    p = hist.percentiles()
    assert p["p50"] == pytest.approx(np.percentile(samples, 50) * 1000, abs=1.0)
    assert p["p95"] == pytest.approx(np.percentile(samples, 95) * 1000, abs=1.0)
    assert len(hist) == 5000


def test_empty_and_overflow() -> None:
    hist = LatencyHistogram(max_ms=100)
    assert hist.percentiles() == {"p50": 0.0, "p95": 0.0, "max": 0.0}
    hist.add(5.0)  # beyond the last bin: counted there, not lost
    assert len(hist) == 1 and hist.percentiles()["p95"] == pytest.approx(100.5)


def test_merge_over_cameras_through_reports() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.add_many([0.010] * 90)
    b.add_many([0.500] * 10)
    merged = merge_latency([{"latency_hist": a.to_sparse()}, {"latency_hist": b.to_sparse()}])
    assert merged["p50"] == pytest.approx(10.5) and merged["p95"] == pytest.approx(500.5)
    # JSON round trip turns bin keys into strings
    assert LatencyHistogram.from_sparse({str(k): v for k, v in a.to_sparse().items()}).percentiles()["p50"] == 10.5
