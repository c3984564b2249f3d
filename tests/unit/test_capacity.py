"""``surveillance-ray capacity``: the search over camera counts, how a probe is judged, and the limit named."""

import io

import pytest
from rich.console import Console

import surveillance_ray.capacity as capacity
from surveillance_ray.capacity import Probe
from surveillance_ray.config import Settings


@pytest.fixture
def machine_holding(monkeypatch):
    """A fake machine that holds ``n`` cameras: probes hold up to it; the probes asked are recorded."""
    asked: list[int] = []

    def install(n: int, detector_busy: float = 0.95, cpu_busy: float = 0.7):
        def probe(settings, clip, cams, fps, warm_s, window_s, max_latency_s, console):
            asked.append(cams)
            analysed = min(cams, n) * fps
            return Probe(cams, cams * fps, analysed, analysed / cams, 300.0, detector_busy=detector_busy,
                         cpu_busy=cpu_busy, cpu_by_role={"detector replica": 1.2, "ingest actors": 0.4}
                         ).judge(fps, max_latency_s)
        monkeypatch.setattr(capacity, "run_probe", probe)
        monkeypatch.setattr("surveillance_ray.pipeline.connect_ray", lambda: False)
        return asked
    return install


def run(start: int, max_cameras: int) -> capacity.Capacity:
    return capacity.measure(Settings(), None, "480x360", 10.0, start, max_cameras, 1.0, 1.0, 1.5,
                            Console(file=io.StringIO()))


def test_doubles_while_probes_hold_then_bisects(machine_holding) -> None:
    asked = machine_holding(13)
    result = run(4, 64)
    assert result.cameras == 13 and not result.capped
    assert asked == [4, 8, 16, 12, 14, 13]  # each count probed once
    assert result.limit.startswith("detector: busy 95 %")


def test_stops_at_the_most_it_may_try_and_says_so(machine_holding) -> None:
    asked = machine_holding(100)
    result = run(4, 40)
    assert result.cameras == 40 and result.capped and asked == [4, 8, 16, 32, 40]
    assert result.limit.startswith("not reached")


def test_looks_below_a_first_probe_that_does_not_hold(machine_holding) -> None:
    asked = machine_holding(2, detector_busy=0.5, cpu_busy=0.93)
    result = run(8, 64)
    assert result.cameras == 2 and asked == [8, 4, 2, 3]  # 0 < 2 <= n < 3 < 4 < 8
    assert result.limit.startswith("CPU: the machine is 93 % busy") and "detector replica" in result.limit


def test_a_probe_holds_only_with_its_frames_its_slowest_camera_and_latency() -> None:
    ok = Probe(8, 80.0, 78.0, 9.5, 400.0).judge(10.0, 1.5)
    assert ok.holds and ok.why == ""
    slow = Probe(8, 80.0, 78.0, 8.0, 400.0).judge(10.0, 1.5)
    late = Probe(8, 80.0, 78.0, 9.5, 1800.0).judge(10.0, 1.5)
    short = Probe(8, 80.0, 70.0, 9.0, 400.0).judge(10.0, 1.5)
    assert not slow.holds and "slowest camera 8.0 fps" in slow.why
    assert not late.holds and "p95 1800 ms" in late.why
    assert not short.holds and "analysed 70.0 of 80 frames/s" in short.why
    assert Probe(8, 80, 50, 5, 300, cpu_by_role={"validator": 0.95}, cpu_busy=0.6, detector_busy=0.5
                 ).limit() == "validator: one core, all used"
    assert Probe(8, 80, 50, 5, 300, cpu_busy=0.5, detector_busy=0.5).limit().startswith("the frame path's round trip: nothing saturated")
