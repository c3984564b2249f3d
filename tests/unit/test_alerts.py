"""The alert store: committed to SQLite (WAL) before it counts, mirrored to alerts.jsonl, listed by the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from surveillance_ray.alerts import Alert, AlertStatus, AlertStore, AlertType, Cooldowns, read_alerts
from surveillance_ray.cli import main


def alert(i: int, status: AlertStatus = AlertStatus.RAISED, **kw) -> Alert:
    return Alert(id=f"cam-e0-t{i}-object", camera="cam", type=AlertType.OBJECT, level="BASIC", status=status,
                 track_id=i, epoch=0, class_id=0, class_name="person", first_seen_at=100.0 + i,
                 last_seen_at=100.5 + i, raised_at=100.5 + i, time_to_alert_s=0.5, frame_id=5 * i, confidence=0.8,
                 xyxy=(1, 2, 3, 4), rules=[{"rule": "ConfidenceThresholdRule", "level": "BASIC", "passed": True,
                                           "score": 0.8, "reason": "person 0.80 >= 0.35"}], **kw)


def test_committed_before_counted_and_readable_by_another_process(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    store.add(alert(1))
    # a second connection (another process, or a crash right now) already sees it: it was committed
    other = sqlite3.connect(tmp_path / "alerts.db")
    assert other.execute("SELECT id, status FROM alerts").fetchall() == [("cam-e0-t1-object", "raised")]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.add(alert(2, AlertStatus.SUPPRESSED, reason="within the 30 s cooldown of yard"))
    store.track_ended(["cam-e0-t1-object"], 142.0)
    store.stitched(["cam-e0-t1-object"], 7, 141.0)  # a later fragment of the same person
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["cam-e0-t1-object", "cam-e0-t2-object"]
    assert [a.id for a in read_alerts(tmp_path, AlertStatus.RAISED)] == ["cam-e0-t1-object"]
    everything = list(read_alerts(tmp_path))
    assert [a.status for a in everything] == [AlertStatus.RAISED, AlertStatus.SUPPRESSED]
    assert everything[0] == alert(1).model_copy(update={"last_seen_at": 142.0, "stitched_tracks": [7]})
    with pytest.raises(sqlite3.IntegrityError):  # an id is raised once
        store.add(alert(1))
    store.close()


def test_cooldowns_per_scope_and_kind() -> None:
    c = Cooldowns()
    assert not c.suppressed("cam", "yard", "intrusion:", 10.0, 30.0)
    assert c.suppressed("cam", "yard", "intrusion:", 20.0, 30.0)
    assert not c.suppressed("cam", "gate", "intrusion:", 20.0, 30.0)  # another zone
    assert not c.suppressed("cam2", "yard", "intrusion:", 20.0, 30.0)  # another camera
    assert not c.suppressed("cam", "yard", "loitering:", 20.0, 30.0)  # another type
    assert not c.suppressed("cam", "yard", "intrusion:", 41.0, 30.0)  # cooled down
    assert not c.suppressed("cam", "class:person", "object:", 41.0, 0.0)  # no cooldown
    assert not c.suppressed("cam", "class:person", "object:", 41.0, 0.0)


def test_cli_lists_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = AlertStore(tmp_path)
    store.add(alert(1))
    store.add(alert(2, AlertStatus.SUPPRESSED, reason="within the 30 s cooldown of yard"))
    store.close()
    assert main(["alerts", str(tmp_path), "--json"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == ["cam-e0-t1-object"]
    assert main(["alerts", str(tmp_path), "--all"]) == 0
    out = capsys.readouterr().out
    assert "cam-e0-t2-object" in out and "suppressed" in out and "cooldown" in out
    assert main(["alerts", str(tmp_path / "nowhere")]) == 2
    assert "no alert store" in capsys.readouterr().err


def test_retention_purges_old_alerts_their_snapshots_and_jsonl_lines(tmp_path: Path) -> None:
    from surveillance_ray.alerts import alerts_after, last_alert_row, snapshot_path, write_snapshot

    store = AlertStore(tmp_path)
    for i in range(1, 5):  # raised at 101.5, 102.5, 103.5, 104.5
        store.add(alert(i))
        write_snapshot(tmp_path, alert(i).id, b"\xff\xd8jpeg")
    assert last_alert_row(tmp_path) == 4
    assert [(r, a.id) for r, a in alerts_after(tmp_path, 2)] == [(3, "cam-e0-t3-object"), (4, "cam-e0-t4-object")]
    assert store.purge(103.0) == ["cam-e0-t1-object", "cam-e0-t2-object"]
    assert [a.id for a in read_alerts(tmp_path)] == ["cam-e0-t3-object", "cam-e0-t4-object"]
    assert not snapshot_path(tmp_path, "cam-e0-t1-object").exists() and snapshot_path(tmp_path, "cam-e0-t3-object").exists()
    store.add(alert(5))  # the mirror is still appended to after its rewrite
    lines = [json.loads(line)["id"] for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert lines == ["cam-e0-t3-object", "cam-e0-t4-object", "cam-e0-t5-object"]
    assert [r for r, _ in alerts_after(tmp_path, 4)] == [5]  # a feed resuming after row 4 gets the new one
    assert store.purge(50.0) == []


def test_snapshot_paths_stay_in_the_snapshots_folder(tmp_path: Path) -> None:
    from surveillance_ray.alerts import snapshot_path

    for alert_id in ("../../etc/passwd", "a/b", "..", "cam-e0-t1-intrusion-door"):
        path = snapshot_path(tmp_path, alert_id)
        assert path.parent == tmp_path / "snapshots" and path.suffix == ".jpg", alert_id
