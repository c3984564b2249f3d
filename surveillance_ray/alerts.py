"""Alerts: the record, de-duplication and cooldowns, and the store (SQLite + ``alerts.jsonl``).

An alert is committed to SQLite (WAL, synchronous FULL) before it counts as raised, and appended to
``alerts.jsonl``; a crash after that loses none. Alerts carry no wall-clock field of the validator's
own, so a track log replays to the same alerts.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from surveillance_ray.verdict import Review


class AlertType(str, enum.Enum):
    OBJECT = "object"
    INTRUSION = "intrusion"
    LOITERING = "loitering"
    LINE_CROSSING = "line_crossing"


class AlertStatus(str, enum.Enum):
    RAISED = "raised"
    SUPPRESSED = "suppressed"  # a duplicate within its zone's cooldown: stored, not sent


class RuleOutcome(BaseModel):
    """One rule's verdict on the alert."""

    model_config = ConfigDict(frozen=True)

    rule: str
    level: str
    passed: bool
    score: float
    reason: str


class Alert(BaseModel):
    """An alert about one track (distinct from the track events)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="camera-e<epoch>-t<track>-<type>[-<zone or line>]: unique within a run")
    camera: str
    type: AlertType
    level: str = Field(description="Severity: BASIC, INTERMEDIATE, ADVANCED or CRITICAL")
    status: AlertStatus = AlertStatus.RAISED
    track_id: int
    epoch: int
    class_id: int
    class_name: str
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    behaviors: list[str] = Field(default_factory=list, description="e.g. running")
    first_seen_at: float
    last_seen_at: float
    raised_at: float = Field(description="capture time of the frame that raised it")
    time_to_alert_s: float = Field(description="from the track's first observation to the alert, camera clock")
    frame_id: int
    confidence: float
    xyxy: tuple[float, float, float, float]
    rules: list[RuleOutcome]
    fp_probability: float | None = None
    reason: str = ""
    stitched_tracks: list[int] = Field(default_factory=list, description=(
        "later tracks of the same person (fragments the tracker split off), stitched to this alert"))
    escalated: bool = Field(False, description="sent to the VLM for review (its level reached vlm.min_level)")
    review: Review | None = Field(None, description="the VLM's review, for escalated alerts (once it came)")
    acknowledged_by: str | None = Field(None, description="the API key (name) that acknowledged it")
    acknowledged_at: float | None = None


class Cooldowns:
    """Suppression: after an alert of a type in a zone (or line, or camera-wide class), the same
    again within ``cooldown_s`` is suppressed."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], float] = {}

    def suppressed(self, camera: str, scope: str, kind: str, at: float, cooldown_s: float) -> bool:
        key = (camera, scope, kind)
        last = self._last.get(key)
        if last is not None and at - last < cooldown_s:
            return True
        self._last[key] = at
        return False


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, camera TEXT NOT NULL, type TEXT NOT NULL, level TEXT NOT NULL,
    status TEXT NOT NULL, raised_at REAL NOT NULL, last_seen_at REAL NOT NULL, record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_camera_time ON alerts (camera, raised_at);
"""


class AlertStore:
    """SQLite alert store of a run directory (``alerts.db``), mirrored to ``alerts.jsonl``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "alerts.db"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._jsonl = (run_dir / "alerts.jsonl").open("a")

    def ids(self) -> set[str]:
        """Alerts already in the store (a validator restarted after a crash must not raise them again)."""
        return {row[0] for row in self._db.execute("SELECT id FROM alerts")}

    def add(self, alert: Alert) -> None:
        """Commit the alert; only then is it raised (written to ``alerts.jsonl`` and counted)."""
        record = alert.model_dump_json()
        with self._db:
            self._db.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (alert.id, alert.camera, alert.type.value, alert.level, alert.status.value,
                              alert.raised_at, alert.last_seen_at, record))
        self._jsonl.write(record + "\n")
        self._jsonl.flush()

    def track_ended(self, alert_ids: list[str], last_seen_at: float) -> None:
        """The alerts' track ended: record when it was last seen."""
        self._update(alert_ids, lambda r: r | {"last_seen_at": max(r["last_seen_at"], last_seen_at)})

    def _update(self, alert_ids: list[str], change: Callable[[dict], dict]) -> list[dict]:
        """Apply ``change`` to each alert's record; the records as written (unknown ids left out)."""
        written = []
        with self._db:
            for alert_id in alert_ids:
                row = self._db.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is None:
                    continue
                record = change(json.loads(row[0]))
                self._db.execute("UPDATE alerts SET last_seen_at = ?, record = ? WHERE id = ?",
                                 (record["last_seen_at"], json.dumps(record), alert_id))
                written.append(record)
        return written

    def stitched(self, alert_ids: list[str], track_id: int, last_seen_at: float) -> None:
        """A later fragment of the same person continues these alerts."""
        self._update(alert_ids, lambda r: r | {"stitched_tracks": [*r.get("stitched_tracks", []), track_id],
                                               "last_seen_at": max(r["last_seen_at"], last_seen_at)})

    def review(self, alert_id: str, review: dict) -> None:
        """The VLM's review of an escalated alert (a later one replaces it)."""
        self._update([alert_id], lambda r: r | {"review": review})

    def acknowledge(self, alert_id: str, by: str, at: float) -> dict | None:
        """An operator acknowledged the alert (the first acknowledgment stands); its record, None if unknown."""
        written = self._update([alert_id], lambda r: r if r.get("acknowledged_by") else
                               r | {"acknowledged_by": by, "acknowledged_at": at})
        return written[0] if written else None

    def purge(self, before: float) -> list[str]:
        """Delete the alerts raised before ``before`` (retention): rows, snapshots and their lines of
        ``alerts.jsonl`` (rewritten whole, then swapped in); the ids deleted."""
        with self._db:
            gone = [r[0] for r in self._db.execute("SELECT id FROM alerts WHERE raised_at < ?", (before,))]
            self._db.execute("DELETE FROM alerts WHERE raised_at < ?", (before,))
        if not gone:
            return gone
        run_dir = self.path.parent
        for alert_id in gone:
            snapshot_path(run_dir, alert_id).unlink(missing_ok=True)
        jsonl = run_dir / "alerts.jsonl"
        self._jsonl.close()
        tmp = jsonl.with_suffix(".part")
        with jsonl.open() as src, tmp.open("w") as dst:
            for line in src:
                if line.strip() and json.loads(line)["raised_at"] >= before:
                    dst.write(line)
        os.replace(tmp, jsonl)
        self._jsonl = jsonl.open("a")
        return gone

    def close(self) -> None:
        self._jsonl.close()
        self._db.close()


def snapshot_path(run_dir: Path, alert_id: str) -> Path:
    """Where an alert's snapshot JPEG is (its id with anything outside [A-Za-z0-9_.-] replaced)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", alert_id).lstrip(".") or "_"
    return run_dir / "snapshots" / f"{safe}.jpg"


def write_snapshot(run_dir: Path, alert_id: str, image: bytes) -> Path:
    """Write the snapshot whole or not at all (a reader never sees half a JPEG)."""
    path = snapshot_path(run_dir, alert_id)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(image)
    os.replace(tmp, path)
    return path


def read_alerts(run_dir: Path, status: AlertStatus | None = None) -> Iterator[Alert]:
    """The alerts of a run directory from its SQLite store, oldest first."""
    yield from _read(run_dir, "WHERE status = ?" if status else "", (status.value,) if status else ())


def read_alert(run_dir: Path, alert_id: str) -> Alert | None:
    """One alert of a run directory's store (None: no such alert)."""
    return next(_read(run_dir, "WHERE id = ?", (alert_id,)), None)


def last_alert_row(run_dir: Path) -> int:
    """The store's last row (0 when empty): a feed of new alerts starts after it."""
    with closing(_reader(run_dir)) as db:
        return db.execute("SELECT coalesce(max(rowid), 0) FROM alerts").fetchone()[0]


def alerts_after(run_dir: Path, row: int, limit: int = 500) -> list[tuple[int, Alert]]:
    """(row, alert) of the alerts stored after ``row``, in the order they were stored (a feed resumes
    from the last row it saw)."""
    with closing(_reader(run_dir)) as db:
        return [(r, Alert.model_validate_json(record)) for r, record in db.execute(
            "SELECT rowid, record FROM alerts WHERE rowid > ? ORDER BY rowid LIMIT ?", (row, limit))]


def _reader(run_dir: Path) -> sqlite3.Connection:
    path = run_dir / "alerts.db"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no alert store (not a run directory, or a run from before alerts)")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _read(run_dir: Path, where: str, params: tuple) -> Iterator[Alert]:
    with closing(_reader(run_dir)) as db:
        for (record,) in db.execute(f"SELECT record FROM alerts {where} ORDER BY raised_at, id", params):
            yield Alert.model_validate_json(record)
