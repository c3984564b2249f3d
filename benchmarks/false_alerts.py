"""What the whole validator's false alerts look like: each one's track, frame by frame, with the ground truth.

The alert-quality harness (``benchmarks.alert_quality``) counts an alert false when its track overlaps no gt
person at IoU >= 0.5 in at least half its frames. Where the ground truth leaves people out, that is not the
same as "no person there": this draws, for every false alert of the whole validator (defaults, ensemble held
out, as the harness runs it), up to ``--frames`` of its track's frames cropped around its box: the track's
box in red, the gt boxes in green with their ids, and under each the gt's verdict for that frame (the id it
matches at IoU >= 0.5, or "no gt person").

    python -m benchmarks.false_alerts [--frames 8]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import cv2
import numpy as np
import supervision as sv

from benchmarks import alert_quality as aq
from benchmarks.common import RESULTS, assets, machine, save
from surveillance_ray.config import CameraConfig
from surveillance_ray.sequences import (Clip, TrackKey, labelled_sequences, load_clips, matched_identity,
                                        negative_sequences, track_boxes)
from surveillance_ray.sources import open_source

SCENES = ("PETS09-S2L1", "PETS09-S3-MF1", "TUD-Campus", "SIwR-c6s1")
THUMB = 160  # px, each frame's crop
GT_BOXES = sv.BoxAnnotator(color=sv.Color(0, 200, 0), thickness=1, color_lookup=sv.ColorLookup.INDEX)
GT_LABELS = sv.LabelAnnotator(color=sv.Color(0, 200, 0), color_lookup=sv.ColorLookup.INDEX, text_scale=0.35,
                              text_padding=1)
TRACK_BOX = sv.BoxAnnotator(color=sv.Color(230, 40, 40), thickness=1, color_lookup=sv.ColorLookup.INDEX)


def false_tracks(clip: Clip) -> list[TrackKey]:
    """The tracks of the whole validator's false person alerts (the harness's judgement)."""
    keys = [(a.camera, a.epoch, a.track_id) for a, _frame in aq.whole_validator(clip)]
    return [k for k in keys if clip.alert_labels.get(k) is None]


def frames(clip: Clip, wanted: set[int]) -> dict[int, np.ndarray]:
    """The clip's frames of these indices, read in one pass."""
    source = open_source(CameraConfig(id="audit", source=clip.seq.source, realtime=False))
    source.open()
    out: dict[int, np.ndarray] = {}
    try:
        index = 0
        while len(out) < len(wanted):
            got = source.read()
            if got is None:
                break
            if index in wanted:
                out[index] = got[0]
            index += 1
    finally:
        source.close()
    return out


def thumbnail(image: np.ndarray, box: np.ndarray, gt: np.ndarray | None, caption: str) -> np.ndarray:
    """The track's box (red) and the gt boxes with their ids (green), cropped around the box, captioned."""
    canvas = image.copy()
    if gt is not None and len(gt):
        people = sv.Detections(xyxy=gt[:, 1:].astype(np.float32))
        canvas = GT_BOXES.annotate(canvas, people)
        canvas = GT_LABELS.annotate(canvas, people, labels=[str(int(i)) for i in gt[:, 0]])
    canvas = TRACK_BOX.annotate(canvas, sv.Detections(xyxy=box[None, :].astype(np.float32)))
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * 2.0  # the box and as much around it
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(min(w, cx + side / 2))
    c, d = int(max(0, cy - side / 2)), int(min(h, cy + side / 2))
    crop = cv2.resize(canvas[c:d, a:b], (THUMB, THUMB))
    strip = np.full((22, THUMB, 3), 255, np.uint8)
    cv2.putText(strip, caption, (3, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return np.vstack([crop, strip])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="frames drawn per false alert")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    clips = load_clips(labelled_sequences(assets()) + negative_sequences(assets()), 640)
    aq.HELD_OUT = aq.HeldOut(clips)  # trained as the harness trains it, each scene held out
    rows: list[np.ndarray] = []
    found: list[dict[str, Any]] = []
    for clip in (c for c in clips if c.seq.name in SCENES):
        tracks = track_boxes(clip.rows)
        shown: dict[TrackKey, list[int]] = {}
        for key in false_tracks(clip):
            order = sorted(tracks[key])
            shown[key] = [order[round(i)] for i in np.linspace(0, len(order) - 1, min(args.frames, len(order)))]
        images = frames(clip, {f for fs in shown.values() for f in fs})
        for key, picked in shown.items():
            boxes = tracks[key]
            judged = {f: matched_identity(clip.seq, f, box) for f, box in boxes.items()}
            labelled = sum(v is not None for v in judged.values())
            found.append({"sequence": clip.seq.name, "track": key[2], "frames": len(boxes),
                          "frames_on_a_gt_person": labelled,
                          "gt_ids": sorted({v for v in judged.values() if v is not None}),
                          "first_frame": min(boxes), "last_frame": max(boxes)})
            thumbs = [thumbnail(images[f], boxes[f], (clip.seq.gt or {}).get(f),
                                f"{f}: " + ("no gt person" if judged[f] is None else f"gt {judged[f]}"))
                      for f in picked if f in images]
            thumbs += [np.full_like(thumbs[0], 255)] * (args.frames - len(thumbs))
            title = np.full((24, THUMB * args.frames, 3), 255, np.uint8)
            cv2.putText(title, f"{clip.seq.name} track {key[2]}: on a gt person in {labelled} of {len(boxes)} frames",
                        (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
            rows += [title, np.hstack(thumbs)]
    lines = ["# The whole validator's false person alerts, looked at", "",
             "Each one's track (red) with the ground truth (green, with ids), cropped around the track's box; "
             "under each crop the frame and the gt person the box matches at IoU >= 0.5.", "",
             "| sequence | track | frames | on a gt person | gt ids matched | frames |", "|---|---|---|---|---|---|"]
    lines += [f"| {f['sequence']} | {f['track']} | {f['frames']} | {f['frames_on_a_gt_person']} | "
              f"{', '.join(map(str, f['gt_ids'])) or '–'} | {f['first_frame']}–{f['last_frame']} |" for f in found]
    lines += ["", "![false alerts](false_alerts.png)", ""]
    save("false_alerts", {"false_alerts": found, "machine": machine()}, "\n".join(lines))
    if rows:
        cv2.imwrite(str(RESULTS / "false_alerts.png"), np.vstack(rows))


if __name__ == "__main__":
    main()
