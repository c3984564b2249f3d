"""PETS09-S2L1 frames 1-269 through the distributed path vs the same backend called directly (imgsz 640),
and the fast CPU backend (OpenVINO INT8, the default) against the .pt it was exported from."""

import json
from pathlib import Path

import numpy as np

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.evaluate import (PETS_GT, PETS_GT_FRAMES, PETS_GT_SCALE, evaluate, hypotheses_from_track_log,
                                       load_mot_gt, model_hypotheses)
from surveillance_ray.pipeline import run_pipeline
from surveillance_ray.sequences import label_tracks, labelled_sequences, load_clips, slowed, track_boxes

from .conftest import settings_for

FRAMES = PETS_GT_FRAMES


def test_pipeline_loses_nothing_against_ground_truth(ray_session: None, tmp_path: Path, assets: Path,
                                                     pets_video: Path) -> None:
    gt = load_mot_gt(assets / PETS_GT, scale=PETS_GT_SCALE)
    cams = [{"id": "pets", "source": str(pets_video), "realtime": False}]
    result = run_pipeline(settings_for(tmp_path, cams, detector={"imgsz": 640}, run={"max_frames": len(FRAMES)}))
    assert result.summary["streams"]["pets"]["frames_analysed"] == len(FRAMES)
    rows = [json.loads(line) for line in (result.run_dir / "tracks.jsonl").open()]
    dets = evaluate(gt, hypotheses_from_track_log(rows, "pets", "detections"), FRAMES)
    tracks = evaluate(gt, hypotheses_from_track_log(rows, "pets", "tracks"), FRAMES)
    assert dets["precision"] >= 0.70 and dets["recall"] >= 0.85
    # BoT-SORT keeps identities (IDF1 0.68, 10 switches; ByteTrack 0.61, 16) for 1.4 points of box recall;
    # INT8 exports made on different machines differ by ~0.5 px: IDF1 0.68 with one, 0.649 with another
    assert tracks["precision"] >= 0.70 and tracks["recall"] >= 0.84 and tracks["idf1"] >= 0.63

    fast = Detector(DetectorConfig(imgsz=640))  # what the pipeline ran, called directly: no Ray
    assert fast.describe()["backend"] == result.summary["run"]["detector"]["backend"] in ("openvino-int8", "openvino")
    direct = model_hypotheses(fast, pets_video, FRAMES)
    assert len(direct) == len(FRAMES)
    reference = evaluate(gt, direct, FRAMES)
    assert (dets["true_positives"], dets["num_false_positives"]) == (
        reference["true_positives"], reference["num_false_positives"])
    pipeline_rows = {r["source_index"]: np.asarray(r["detections"]).reshape(-1, 6) for r in rows}
    for i, boxes in direct.items():  # box for box
        persons = pipeline_rows[i][pipeline_rows[i][:, 5] == 0]
        assert np.allclose(persons[:, :4], boxes[:, 1:], atol=0.01)

    pt = evaluate(gt, model_hypotheses(Detector(DetectorConfig(imgsz=640, backend="torch")), pets_video, FRAMES),
                  FRAMES)
    assert abs(reference["precision"] - pt["precision"]) <= 0.02 and abs(reference["recall"] - pt["recall"]) <= 0.02


def test_a_one_frame_a_second_camera_alerts_most_of_its_people(ray_session: None, tmp_path: Path,
                                                                assets: Path) -> None:
    """SIwR-c6s1 (one frame a second, people walk over half their height between frames) through the
    pipeline: its tracker matches frames by distance and passes a track on at its first sighting, and its
    validator asks the second opinion then. Measured in-process (benchmarks.alert_quality): 20-21 of its 29
    people alerted; by box overlap alone the trackers reach 8. The alerts counted false are a photographer
    standing half out of the frame at its left edge, whom the ground truth boxes in 4 of his 18 frames (as
    two people, 16 and 18); his track then passes to person 20, who enters where he stood, and follows a
    labelled person in less than half its frames. Some exports give him two tracks (his box widens from 20
    to 34 px between two frames as he steps in, more than a track may grow: a new track), each at the edge,
    where nothing is stitched."""
    [seq] = [s for s in labelled_sequences(assets) if s.name == "SIwR-c6s1"]
    cams = [{"id": "siwr", "source": seq.source, "realtime": False}]
    result = run_pipeline(settings_for(tmp_path, cams, detector={"imgsz": 640}))
    assert result.summary["streams"]["siwr"]["frames_analysed"] == 72
    rows = [json.loads(line) for line in (result.run_dir / "tracks.jsonl").open()]
    labels = label_tracks(rows, seq, one_identity=False)  # each track: the person it follows, or None
    alerts = [json.loads(line) for line in (result.run_dir / "alerts.jsonl").open()]
    raised = [a for a in alerts if a["status"] == "raised" and a["class_name"] == "person"]
    people = [labels.get((a["camera"], a["epoch"], a["track_id"])) for a in raised]
    boxes = track_boxes(rows)
    false = [np.median([b[0] for b in boxes[(a["camera"], a["epoch"], a["track_id"])].values()])
             for a, person in zip(raised, people) if person is None]
    assert len(false) <= 2 and all(x1 < 10 for x1 in false), false  # at most the man at the left edge
    # 18-21 locally, 16 with a fresh INT8 export (exports differ by ~0.5 px, enough to move a person or two)
    assert len(set(people) - {None}) >= 15, f"{len(set(people) - {None})} of 29 people alerted"


def test_a_slowed_copy_is_what_a_one_frame_a_second_camera_sees(tmp_path: Path, assets: Path) -> None:
    """benchmarks.alert_quality also judges PETS09-S2L1 as a camera analysed once a second: every 10th
    frame, a second apart on the camera's clock, with the ground truth of those frames only. Its tracker
    keeps people across them (before, a gap a hair over 1 s dropped every track at every frame)."""
    [pets] = [s for s in labelled_sequences(assets) if s.name == "PETS09-S2L1"]
    seq = slowed(pets)
    assert (seq.name, seq.step, seq.scene) == ("PETS09-S2L1-1fps", 10, "PETS09-S2L1")
    assert set(seq.gt) == {k for k in pets.gt if k % 10 == 0} and seq.identities <= pets.identities
    [clip] = load_clips([seq], 640, cache=tmp_path)
    assert [r["source_index"] for r in clip.rows] == list(range(0, 269, 10))
    assert np.allclose(np.diff([r["captured_at"] for r in clip.rows]), 1.0)
    assert abs(clip.hours * 3600 - 27.0) < 1e-6
    spans = sorted(len(b) for b in track_boxes(clip.rows).values())
    # the two longest tracks, of 27 frames: 25 and 23 (AMD EPYC's INT8 export), 25 and 13 (an Intel Xeon's: INT8
    # exports differ by machine); before the fix 11 and 11
    assert spans[-1] >= 20 and sum(spans[-2:]) >= 36, spans
    again = load_clips([seq], 640, cache=tmp_path)[0]  # from the cache, keyed by the footage and step
    assert again.rows == clip.rows
    # the same frames through a tracker configured at the video's 10 fps (a camera that fell behind)
    behind = load_clips([slowed(pets, behind=True)], 640, cache=tmp_path)[0]
    assert behind.seq.name == "PETS09-S2L1-1fps-behind" and behind.rows != clip.rows
    spans = sorted(len(b) for b in track_boxes(behind.rows).values())
    assert spans[-1] >= 20 and sum(spans[-2:]) >= 36, spans  # AMD: 25 and 23 of 27 frames (before: 11 and 9)
