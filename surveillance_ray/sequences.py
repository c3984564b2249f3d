"""Labelled footage for judging alerts: sequences with ground truth, people-free clips, their track logs
(the pipeline's detector and tracker run in-process) and which tracks are real.

A track is real when it overlaps one ground-truth identity at IoU >= 0.5 in at least half of its frames.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import supervision as sv

from surveillance_ray.capture import make_frame
from surveillance_ray.config import PERSON, PETS_VIDEO, CameraConfig, TrackingConfig
from surveillance_ray.evaluate import PETS_GT, PETS_GT_SCALE, load_mot_gt
from surveillance_ray.opinion import agreement, crop_around
from surveillance_ray.sources import open_source

TrackKey = tuple[str, int, int]  # (stream, epoch, track)
TRACKLOG_FORMAT = 3  # bumped when the track log gains fields (2: colour descriptors, 3: crop scores)


@dataclass
class Sequence:
    name: str
    source: str  # video file or image-sequence folder
    gt: dict[int, np.ndarray] | None  # frame index -> (N, 5) [id, x1, y1, x2, y2]; None: people-free footage
    frames: int | None = None  # the part the ground truth covers (None: all)
    step: int = 1  # every step-th frame is analysed (a slow camera's view of the footage)
    of: str | None = None  # the sequence this one is a slowed copy of
    behind: bool = False  # the tracker is told the source's own rate: a camera analysed below it (the pipeline fell behind)

    @property
    def scene(self) -> str:
        """The footage: a slowed copy shares its original's (and must be held out with it)."""
        return self.of or self.name

    @property
    def negative(self) -> bool:
        return self.gt is None

    @property
    def identities(self) -> set[int]:
        return {int(i) for boxes in (self.gt or {}).values() for i in boxes[:, 0]}

    def first_seen(self) -> dict[int, int]:
        """Frame index where each identity first appears."""
        first: dict[int, int] = {}
        for frame in sorted(self.gt or {}):
            for i in self.gt[frame][:, 0]:
                first.setdefault(int(i), frame)
        return first


def labelled_sequences(assets: Path) -> list[Sequence]:
    """Every sequence with person ground truth under the shared assets (PETS video + ``mot/``)."""
    seqs = [Sequence("PETS09-S2L1", str(assets / PETS_VIDEO), load_mot_gt(assets / PETS_GT, scale=PETS_GT_SCALE),
                     frames=269)]
    mot = assets / "mot"
    folders = [mot / n for n in ("PETS09-S3-MF1", "TUD-Campus", "SIwR-c6s1")]
    folders += sorted((mot / "MOT17-mini" / "train").glob("MOT17-*"))
    for folder in folders:
        gt = _mot17_persons(folder / "gt" / "gt.txt") if folder.name.startswith("MOT17") else \
            load_mot_gt(folder / "gt" / "gt.txt")
        frames = len(list((folder / "img1").glob("*.jpg")))
        seqs.append(Sequence(folder.name, str(folder), gt, frames=frames))
    return seqs


def negative_sequences(assets: Path) -> list[Sequence]:
    """People-free footage: any person alert on it is false."""
    root = assets / "negatives"
    return [Sequence(p.stem if p.is_file() else p.name, str(p), None) for p in sorted(root.iterdir())
            if p.is_dir() or p.suffix in (".avi", ".mp4")]


def slowed(seq: Sequence, every_s: float = 1.0, behind: bool = False) -> Sequence:
    """``seq`` as a camera analysed once every ``every_s`` seconds sees it: every n-th frame, with the
    ground truth of those frames (people seen only between them are not counted). ``behind``: a camera
    configured at the footage's own rate that the pipeline analyses only that often (it fell behind)."""
    camera = CameraConfig(id="slowed", source=seq.source, realtime=False)
    source = open_source(camera)
    source.open()
    try:
        step = max(1, round(every_s * source.fps))
        rate = round(source.fps / step, 2)  # the rate it is analysed at, once whole frames are taken
    finally:
        source.close()
    gt = None if seq.gt is None else {k: v for k, v in seq.gt.items() if k % step == 0}
    return Sequence(f"{seq.name}-{rate:g}fps" + ("-behind" if behind else ""), seq.source, gt, seq.frames,
                    step, seq.name, behind)


def _mot17_persons(path: Path) -> dict[int, np.ndarray]:
    """MOT17 gt: class 1 (pedestrian) with the consider flag set."""
    gt: dict[int, list[list[float]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        f = line.split(",")
        if int(float(f[6])) == 0 or int(float(f[7])) != 1:
            continue
        frame, tid, left, top, w, h = (float(v) for v in f[:6])
        gt[int(frame) - 1].append([tid, left, top, left + w, top + h])
    return {k: np.asarray(v) for k, v in gt.items()}


def track_log(seq: Sequence, detector: Any, tracking: TrackingConfig, imgsz: int) -> tuple[list[dict], float]:
    """Detector and tracker over the sequence exactly as an ingest actor runs them; (track-log rows, fps).
    Each row also holds what a second opinion would answer about each person track (``crop_scores``)."""
    from surveillance_ray.track import StreamTracker, track_frame

    camera = CameraConfig(id=seq.name[:64], source=seq.source, realtime=False)
    source = open_source(camera)
    source.open()
    tracker = StreamTracker(tracking, frame_rate=source.fps if seq.behind else source.fps / seq.step)
    rows = []
    try:
        for index in range(seq.frames) if seq.frames is not None else itertools.count():
            got = source.read()
            if got is None:
                break
            if index % seq.step:
                continue
            image, media_time = got
            t = media_time if media_time is not None else index / source.fps
            frame = make_frame(camera.id, index, index, image, t, t, 0, imgsz)
            tracked = track_frame(tracker, frame, detector.detect([frame.image])[0])
            row, tracks = tracked.to_log(), tracked.tracks
            row["crop_scores"] = {}
            for box, cls, tid in zip(tracks.xyxy, tracks.class_id, tracks.track_id):
                if int(cls) == PERSON:
                    crop, local = crop_around(image, tuple(float(v) for v in box))
                    row["crop_scores"][str(int(tid))] = round(agreement(detector.detect([crop], crops=True)[0],
                                                                        local, PERSON), 4)
            rows.append(row)
    finally:
        source.close()
    return rows, source.fps


def logged_crop_score(row: dict, request: Any) -> float | None:
    """A second-opinion request answered from the crop scores a ``track_log`` row holds."""
    return row.get("crop_scores", {}).get(str(request.track_id))


def track_boxes(rows: Iterable[dict], class_id: int = 0) -> dict[TrackKey, dict[int, np.ndarray]]:
    """Per track of a class: source frame index -> box."""
    out: dict[TrackKey, dict[int, np.ndarray]] = defaultdict(dict)
    for row in rows:
        for x1, y1, x2, y2, _conf, cls, tid in row["tracks"]:
            if int(cls) == class_id:
                out[(row["stream_id"], row["epoch"], int(tid))][row["source_index"]] = np.array([x1, y1, x2, y2])
    return out


def matched_identity(seq: Sequence, frame: int, box: np.ndarray, iou: float = 0.5) -> int | None:
    """The gt identity ``box`` overlaps most in ``frame`` if at IoU >= ``iou``; None otherwise."""
    gt = (seq.gt or {}).get(frame)
    if gt is None or len(gt) == 0:
        return None
    ious = sv.box_iou_batch(box[None, :], gt[:, 1:])[0]
    best = int(np.argmax(ious))
    return int(gt[best, 0]) if ious[best] >= iou else None


def label_tracks(rows: list[dict], seq: Sequence, iou: float = 0.5, min_share: float = 0.5,
                 class_id: int = 0, one_identity: bool = True) -> dict[TrackKey, int | None]:
    """Each track of the class → the gt identity it follows, or None (a false track).

    ``one_identity``: real when one identity is matched in >= ``min_share`` of its frames (training
    labels); else when any gt person is (an alert about a person, credited to the identity most matched).
    """
    labels: dict[TrackKey, int | None] = {}
    for key, boxes in track_boxes(rows, class_id).items():
        votes: Counter[int] = Counter()
        for frame, box in boxes.items():
            identity = matched_identity(seq, frame, box, iou)
            if identity is not None:
                votes[identity] += 1
        if votes:
            identity, n = votes.most_common(1)[0]
            matched = n if one_identity else sum(votes.values())
            labels[key] = identity if matched >= min_share * len(boxes) else None
        else:
            labels[key] = None
    return labels


@dataclass
class Clip:
    """A sequence with its track log and its tracks' labels."""

    seq: Sequence
    rows: list[dict]
    fps: float
    labels: dict[TrackKey, int | None]  # one identity in >= half the frames (training)
    alert_labels: dict[TrackKey, int | None]  # any gt person in >= half the frames (is an alert true)

    @property
    def hours(self) -> float:
        return len(self.rows) * self.seq.step / self.fps / 3600


def load_clips(sequences: list[Sequence], imgsz: int, refresh: bool = False, cache: Path | None = None,
               tracking: TrackingConfig | None = None, crop_max_enlarge: float | None = None) -> list[Clip]:
    """Track logs of ``sequences`` (the default detector, its second-opinion crops padded to
    ``crop_max_enlarge`` if given; ``tracking`` or the default tracker; cached per sequence, imgsz and
    those settings)."""
    import hashlib
    import json
    import os
    import time

    from surveillance_ray.config import DetectorConfig
    from surveillance_ray.detect import Detector
    from surveillance_ray.track import TRACKER_REVISION

    tracking = tracking or TrackingConfig()
    settings = hashlib.sha1(f"{tracking.model_dump_json()} r{TRACKER_REVISION}".encode()).hexdigest()[:8]
    cache = cache or Path(os.environ.get("SURVEILLANCE_CACHE", Path.home() / ".cache" / "surveillance-ray")) / "tracklogs"
    detector, clips = None, []
    for seq in sequences:
        crops = "" if crop_max_enlarge is None else f"-crop{crop_max_enlarge:g}"
        path = cache / f"{seq.name}-{imgsz}{crops}-{tracking.tracker}-{settings}-v{TRACKLOG_FORMAT}.json"
        data = json.loads(path.read_text()) if path.is_file() and not refresh else {}
        if (data.get("source"), data.get("step", 1), data.get("behind", False)) != (seq.source, seq.step, seq.behind):
            data = {}  # another footage (or view of it) by that name
        if not data:
            detector = detector or Detector(DetectorConfig(imgsz=imgsz, crop_max_enlarge=crop_max_enlarge))
            t0 = time.perf_counter()
            rows, fps = track_log(seq, detector, tracking, imgsz)
            print(f"{seq.name}: {len(rows)} frames tracked in {time.perf_counter() - t0:.1f} s")
            data = {"rows": rows, "fps": fps, "source": seq.source, "step": seq.step, "behind": seq.behind}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))
        nominal = round(data["fps"] / (1 if seq.behind else seq.step), 3)  # the camera's own rate
        for row in data["rows"]:  # (logs cached before rows carried it)
            row.setdefault("nominal_fps", nominal)
        clips.append(Clip(seq, data["rows"], data["fps"], label_tracks(data["rows"], seq),
                          label_tracks(data["rows"], seq, one_identity=False)))
    return clips

