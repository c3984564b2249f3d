from pathlib import Path

import pytest

from surveillance_ray.config import CameraConfig
from surveillance_ray.pipeline import build_summary, camera_groups, run_notes
from surveillance_ray.stats import LatencyHistogram


def cams(n: int, video: Path) -> list[CameraConfig]:
    return [CameraConfig(id=f"c{i}", source=str(video)) for i in range(n)]


@pytest.mark.parametrize(("n", "per_actor", "sizes"), [(12, 6, [6, 6]), (16, 6, [6, 5, 5]), (24, 16, [12, 12]), (4, 6, [4]),
                                                       (5, 1, [1] * 5), (13, 4, [4, 3, 3, 3])])
def test_camera_groups_are_few_and_even(pets_video: Path, n: int, per_actor: int, sizes: list[int]) -> None:
    groups = camera_groups(cams(n, pets_video), per_actor)
    assert [len(g) for g in groups] == sizes
    assert [c.id for g in groups for c in g] == [f"c{i}" for i in range(n)]  # every camera once, in order


def test_summary_totals_and_drop_reasons() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.add_many([0.1] * 10)
    b.add_many([0.3] * 10)
    reports = {
        "x": {"frames_read": 12, "frames_analysed": 10, "frames_dropped": 2, "dropped": {"overflow": 2},
              "fps_analysed": 5.0, "latency_hist": a.to_sparse()},
        "y": {"frames_read": 13, "frames_analysed": 10, "frames_dropped": 3,
              "dropped": {"overflow": 1, "detector_error": 2}, "fps_analysed": 4.0, "latency_hist": b.to_sparse()},
    }
    summary = build_summary(reports, {"x": {"events": 3}})
    total = summary["total"]
    assert total["frames_read"] == 25 and total["frames_analysed"] == 20 and total["frames_dropped"] == 5
    assert total["dropped"] == {"overflow": 3, "detector_error": 2}
    assert total["fps_analysed"] == 9.0 and total["events"] == 3
    assert total["latency_ms"] == {"p50": 100.5, "p95": 300.5, "max": 300.5}


def test_run_notes_say_what_happened() -> None:
    summary = {"total": {"dropped": {"overflow": 4, "detector_error": 2}},
               "run": {"detector_timeline": [{"t_s": 0.5, "status": "HEALTHY", "replicas": {"RUNNING": 1}},
                                             {"t_s": 12.0, "status": "UNHEALTHY", "replicas": {"STARTING": 1}},
                                             {"t_s": 16.5, "status": "HEALTHY", "replicas": {"RUNNING": 1}}]}}
    notes = run_notes(summary)
    assert notes[0].startswith("dropped 2 frame(s), detector_error: the detector failed them")
    assert notes[1].startswith("dropped 4 frame(s), overflow")
    assert notes[2] == ("detector replicas: 0.5 s healthy 1 running; 12 s unhealthy 1 starting; "
                        "16.5 s healthy 1 running")
