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
from surveillance_ray.config import PERSON, CameraConfig, ValidatorConfig
from surveillance_ray.sequences import (Clip, labelled_sequences, load_clips, logged_crop_score, negative_sequences,
                                        track_boxes)
from surveillance_ray.sources import open_source
from surveillance_ray.training import person_camera
from surveillance_ray.validate import replay

SCENES = ("PETS09-S2L1", "PETS09-S3-MF1", "TUD-Campus", "SIwR-c6s1")
THUMB = 160  # px, each frame's crop


def false_tracks(clip: Clip) -> list[tuple[str, int, int]]:
    """The tracks of the whole validator's false person alerts (the harness's judgement)."""
    assert aq.HELD_OUT is not None
    result = replay(clip.rows, ValidatorConfig().model_copy(update={"ensemble_model": None}),
                    {PERSON: "person", 2: "car"}, [person_camera(clip)], aq.HELD_OUT.model(clip),
                    answer=logged_crop_score)
    keys = [(a.camera, a.epoch, a.track_id) for a in result.alerts
            if a.status.value == "raised" and a.class_id == PERSON]
    return [k for k in keys if clip.alert_labels.get(k) is None]


def frames(clip: Clip, wanted: set[int]) -> dict[int, np.ndarray]:
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


def verdicts(clip: Clip, boxes: dict[int, np.ndarray]) -> dict[int, int | None]:
    """Per frame of the track: the gt id its box matches at IoU >= 0.5, or None."""
    out: dict[int, int | None] = {}
    for frame, box in boxes.items():
        gt = (clip.seq.gt or {}).get(frame)
        out[frame] = None
        if gt is not None and len(gt):
            ious = sv.box_iou_batch(box[None, :], gt[:, 1:])[0]
            if ious.max() >= 0.5:
                out[frame] = int(gt[int(np.argmax(ious)), 0])
    return out


def thumbnail(image: np.ndarray, box: np.ndarray, gt: np.ndarray | None, caption: str) -> np.ndarray:
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * 2.0  # the box and as much around it
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(min(w, cx + side / 2))
    c, d = int(max(0, cy - side / 2)), int(min(h, cy + side / 2))
    canvas = image.copy()
    for row in (gt if gt is not None else []):
        p = row[1:].astype(int)
        cv2.rectangle(canvas, (p[0], p[1]), (p[2], p[3]), (0, 200, 0), 1)
        cv2.putText(canvas, str(int(row[0])), (p[0], max(10, p[1] - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 200, 0), 1)
    q = box.astype(int)
    cv2.rectangle(canvas, (q[0], q[1]), (q[2], q[3]), (0, 0, 255), 1)
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
        for key in false_tracks(clip):
            boxes = tracks[key]
            judged = verdicts(clip, boxes)
            order = sorted(boxes)
            shown = [order[round(i)] for i in np.linspace(0, len(order) - 1, min(args.frames, len(order)))]
            images = frames(clip, set(shown))
            labelled = sum(v is not None for v in judged.values())
            found.append({"sequence": clip.seq.name, "track": key[2], "frames": len(order),
                          "frames_on_a_gt_person": labelled,
                          "gt_ids": sorted({v for v in judged.values() if v is not None}),
                          "first_frame": order[0], "last_frame": order[-1]})
            thumbs = [thumbnail(images[f], boxes[f], (clip.seq.gt or {}).get(f),
                                f"{f}: " + ("no gt person" if judged[f] is None else f"gt {judged[f]}"))
                      for f in shown if f in images]
            thumbs += [np.full_like(thumbs[0], 255)] * (args.frames - len(thumbs))
            title = np.full((24, THUMB * args.frames, 3), 255, np.uint8)
            cv2.putText(title, f"{clip.seq.name} track {key[2]}: on a gt person in {labelled} of {len(order)} frames",
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
