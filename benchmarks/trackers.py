"""The trackers side by side on the same detections: identities kept, boxes, people reached.

Each labelled scene's track log (the pipeline's detector, imgsz 640, cached by ``alert_quality``) gives the
detections of every frame; each tracker of ``tracking.tracker`` re-tracks them through the pipeline's own
``StreamTracker`` (the frames' media timestamps, the default settings; and each by box overlap alone, without
matching frames far apart by distance) and is scored against the ground
truth with motmetrics (MOTA, IDF1, identity switches, box precision/recall at IoU 0.5), plus the people
it reaches (a track following them at IoU >= 0.5 in half its frames: what an alert can credit) and its
tracks per person reached.

    python -m benchmarks.trackers [--imgsz 640]   # results/trackers.* (other sizes: trackers_<imgsz>.*)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, get_args

import numpy as np

from benchmarks.common import RESULTS, assets, machine, save
from surveillance_ray.config import TrackerName, TrackingConfig
from surveillance_ray.evaluate import evaluate, hypotheses_from_track_log
from surveillance_ray.messages import Detections
from surveillance_ray.sequences import Clip, label_tracks, labelled_sequences, load_clips
from surveillance_ray.track import StreamTracker

SCENES = ("PETS09-S2L1", "PETS09-S3-MF1", "TUD-Campus", "SIwR-c6s1")


def retrack(clip: Clip, tracking: TrackingConfig) -> list[dict]:
    """The clip's logged detections through a fresh tracker: track-log rows with its tracks."""
    stream = StreamTracker(tracking, frame_rate=clip.fps)
    rows = []
    for row in clip.rows:
        d = np.asarray(row["detections"], np.float32).reshape(-1, 6)
        tracks = stream.update(Detections(d[:, :4], d[:, 4], d[:, 5].astype(np.int32)), row["media_time"])
        rows.append({**row, "tracks": [[*map(float, box), float(conf), int(cls), int(tid)] for box, conf, cls, tid
                                       in zip(tracks.xyxy, tracks.confidence, tracks.class_id, tracks.track_id)]})
    return rows


def scores(clip: Clip, rows: list[dict]) -> dict[str, Any]:
    frames = [r["source_index"] for r in rows]
    m = evaluate(clip.seq.gt or {}, hypotheses_from_track_log(rows, rows[0]["stream_id"], "tracks"), frames)
    labels = label_tracks(rows, clip.seq, one_identity=False)
    reached = {v for v in labels.values() if v is not None}
    true = sum(v is not None for v in labels.values())
    return {"mota": m["mota"], "idf1": m["idf1"], "switches": m["num_switches"], "precision": m["precision"],
            "recall": m["recall"], "people": len(clip.seq.identities), "people_reached": len(reached),
            "tracks_per_person": round(true / len(reached), 2) if reached else None,
            "false_tracks": len(labels) - true}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    clips = load_clips([s for s in labelled_sequences(assets()) if s.name in SCENES], args.imgsz)
    # each tracker as configured, and by box overlap alone on every frame (frames far apart not matched by
    # distance: sparse_after_s 0), which only changes SIwR's one frame a second
    variants = {t: TrackingConfig(tracker=t) for t in get_args(TrackerName)}
    variants |= {f"{t}, overlap only": TrackingConfig(tracker=t, sparse_after_s=0) for t in get_args(TrackerName)}
    table = {name: {c.seq.name: scores(c, retrack(c, cfg)) for c in clips} for name, cfg in variants.items()}
    data = {"imgsz": args.imgsz, "default": TrackingConfig().tracker, "trackers": table,
            "fps": {c.seq.name: c.fps for c in clips}, "machine": machine()}
    name = "trackers" if args.imgsz == 640 else f"trackers_{args.imgsz}"
    save(name, data, markdown(data, name))
    plot(table, RESULTS / f"{name}.png")


def markdown(data: dict[str, Any], name: str) -> str:
    lines = [f"# Trackers on the same detections (imgsz {data['imgsz']}; default {data['default']})", "",
             "| scene (fps) | tracker | MOTA | IDF1 | switches | box precision | box recall | people reached | "
             "tracks per person | false tracks |", "|---|---|---|---|---|---|---|---|---|---|"]
    for scene, fps in data["fps"].items():
        for tracker, per in data["trackers"].items():
            m = per[scene]
            lines.append(f"| {scene} ({fps:g}) | {tracker} | {m['mota']} | {m['idf1']} | {m['switches']} | "
                         f"{m['precision']} | {m['recall']} | {m['people_reached']}/{m['people']} | "
                         f"{m['tracks_per_person']} | {m['false_tracks']} |")
    lines += ["", f"![IDF1 per scene]({name}.png)", ""]
    return "\n".join(lines)


def plot(table: dict[str, dict[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = list(next(iter(table.values())))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(table)
    for k, (tracker, per) in enumerate(table.items()):
        x = np.arange(len(scenes)) + k * width
        axes[0].bar(x, [per[s]["idf1"] for s in scenes], width, label=tracker)
        axes[1].bar(x, [per[s]["switches"] for s in scenes], width, label=tracker)
    for ax, title in zip(axes, ("IDF1 (higher: identities kept)", "identity switches")):
        ax.set_xticks(np.arange(len(scenes)) + 0.4 - width / 2, scenes, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
