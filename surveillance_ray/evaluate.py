"""Quality against MOTChallenge ground truth: precision/recall (and MOTA/IDF1 for tracks) with motmetrics."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import cv2
import motmetrics as mm
import numpy as np
import supervision as sv

#: PETS09-S2L1 ground truth (under the shared assets): frames 1-269, gt frame n is video frame n-1,
#: boxes in 768x576 pixels while the video is 480x360.
PETS_GT = "mot/PETS09-S2L1/gt/gt.txt"
PETS_GT_FRAMES = range(269)
PETS_GT_SCALE = 0.625


def load_mot_gt(path: str | Path, scale: float = 1.0, frame_offset: int = -1) -> dict[int, np.ndarray]:
    """MOT ``gt.txt`` → {0-based frame index: (N, 5) [id, x1, y1, x2, y2]} (valid rows only, scaled)."""
    gt: dict[int, list[list[float]]] = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        f = line.split(",")
        if len(f) < 6 or (len(f) > 6 and float(f[6]) == 0):  # flag 0: ignore region
            continue
        frame, tid, left, top, w, h = (float(v) for v in f[:6])
        gt[int(frame) + frame_offset].append([tid, left * scale, top * scale, (left + w) * scale, (top + h) * scale])
    return {k: np.asarray(v, np.float64) for k, v in gt.items()}


def _distance(gt: np.ndarray, hyp: np.ndarray, iou_threshold: float) -> np.ndarray:
    """1 - IoU, NaN (never match) below the threshold. (motmetrics' iou_matrix needs NumPy < 2.)"""
    if len(gt) == 0 or len(hyp) == 0:
        return np.empty((len(gt), len(hyp)))
    iou = sv.box_iou_batch(gt, hyp)
    return np.where(iou >= iou_threshold, 1.0 - iou, np.nan)


def evaluate(gt: dict[int, np.ndarray], hyp: dict[int, np.ndarray], frames: Iterable[int],
             iou_threshold: float = 0.5) -> dict[str, Any]:
    """``hyp`` maps frame → (N, 5) [id, x1, y1, x2, y2]; ids may be per-frame indices for plain detections.

    Matching is motmetrics' (Hungarian on 1 - IoU, pairs below ``iou_threshold`` never match).
    """
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in frames:
        g = gt.get(frame, np.zeros((0, 5)))
        h = hyp.get(frame, np.zeros((0, 5)))
        dist = _distance(g[:, 1:], h[:, 1:], iou_threshold)
        acc.update(g[:, 0].astype(int).tolist(), h[:, 0].astype(int).tolist(), dist, frameid=frame)
    names = ["num_frames", "num_objects", "num_predictions", "num_matches", "num_false_positives", "num_misses",
             "precision", "recall", "mota", "idf1", "num_switches"]
    row = mm.metrics.create().compute(acc, metrics=names, name="run").iloc[0]
    out = {k: int(row[k]) if k.startswith("num_") else round(float(row[k]), 4) for k in names}
    out["true_positives"] = out["num_objects"] - out["num_misses"]  # matches + identity switches
    return out


def hypotheses_from_track_log(rows: Iterable[dict[str, Any]], stream_id: str, kind: str,
                              class_id: int = 0) -> dict[int, np.ndarray]:
    """Per source frame, the pipeline's ``detections`` (ids = index) or ``tracks`` (ids = track id)."""
    hyp: dict[int, np.ndarray] = {}
    for row in rows:
        if row["stream_id"] != stream_id:
            continue
        items = [r for r in row[kind] if int(r[5]) == class_id]
        ids = [r[6] for r in items] if kind == "tracks" else list(range(len(items)))
        hyp[row["source_index"]] = np.asarray([[i, *r[:4]] for i, r in zip(ids, items)], np.float64).reshape(-1, 5)
    return hyp


def model_hypotheses(detector: Any, video: str | Path, frames: Iterable[int],
                     class_id: int = 0) -> dict[int, np.ndarray]:
    """The model called directly, one frame at a time (the reference the pipeline must match)."""
    cap, hyp = cv2.VideoCapture(str(video)), {}
    for i in frames:
        ok, image = cap.read()
        if not ok:
            break
        d = detector.detect([image])[0]
        keep = d.class_id == class_id
        hyp[i] = np.column_stack([np.arange(keep.sum()), d.xyxy[keep]]).astype(np.float64)
    cap.release()
    return hyp
