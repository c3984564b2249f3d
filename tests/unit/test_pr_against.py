"""The alert-quality harness's comparison of two precision-recall sweeps (the issue's "above Frigate's at
every recall it reaches" target is read from it)."""

from benchmarks.alert_quality import against, interpolated


def point(precision: float | None, recall: float) -> dict:
    return {"precision": precision, "recall": recall}


def test_interpolated_precision_is_the_best_at_that_recall_or_more() -> None:
    sweep = [point(0.9, 0.8), point(1.0, 0.5), point(0.95, 0.6), point(None, 0.0)]
    assert interpolated(sweep, 0.5) == 1.0
    assert interpolated(sweep, 0.55) == 0.95
    assert interpolated(sweep, 0.8) == 0.9
    assert interpolated(sweep, 0.81) is None


def test_against_gives_each_stretch_of_recall_its_verdict() -> None:
    ours = [point(1.0, 0.3), point(0.97, 0.7), point(0.96, 0.8)]
    peer = [point(1.0, 0.3), point(0.98, 0.6), point(0.9, 0.9)]
    assert [(r["above_recall"], r["to_recall"], r["verdict"]) for r in against(ours, peer)] == [
        (0.0, 0.3, "equal"), (0.3, 0.6, "below"), (0.6, 0.7, "above"), (0.7, 0.8, "above"), (0.8, 0.9, "beyond ours")]
    assert against(ours, peer[:2])[-1]["verdict"] == "beyond the peer"
