"""Alert quality on labelled footage: how many alerts are real, how many people get one, how fast.

Every sequence with person ground truth under the shared assets (the PETS video, frames 1-269, and
``mot/``) plus the people-free clips (``negatives/``) run through the pipeline's detector and tracker
in-process (same backend, same downscaling; the pipeline's detections equal these, box for box: see the
accuracy test), then the same tracks are judged by each method. PETS09-S2L1, S3-MF1 and the people-free
clips are also judged as a camera analysed once a second sees them (``sequences.slowed``: every n-th frame,
with the ground truth of those frames), pooled with SIwR-c6s1 (filmed so) as the slow cameras; PETS09-S2L1
and S3-MF1 once more as cameras that fell behind (``-behind``: analysed once a second, while configured at
the footage's own rate, as the pipeline's cameras are when frames are dropped under load):

- raw detections: every person detection is an alert;
- tracks: every confirmed track of the tracker (BoT-SORT by default, ``--tracker``) is an alert, at its
  first frame;
- Frigate-style: a track alerts once the median of its score history (the last 10 scores of at least
  ``min_score``, padded with zeros to 3) reaches ``threshold`` (Frigate's defaults 0.5 / 0.7);
- rules: the validator's rules (BASIC → ADVANCED, and the second opinion on the crop), person object alerts;
- rules + ensemble: the same with the false-positive ensemble, trained on every other clip (leave one
  sequence out: each clip is judged by a model that never saw it).
Second opinions are answered at once from the crop scores the track log holds for the frame that asked.

An alert is true when its track overlaps a gt person at IoU >= 0.5 in at least half its frames (a raw
detection: in its frame); it is credited to the identity it overlaps most. Recall = gt identities with a true alert. Time to alert = from the identity's
first gt frame to its first true alert. Precision-recall curves sweep each method's threshold (the whole
validator's: the person threshold, the ensemble at its default; the ensemble's own threshold is swept apart),
and the whole validator's is compared with the Frigate-style rule's at every recall either reaches.

    python -m benchmarks.alert_quality [--imgsz 640] [--tracker botsort|bytetrack|cbiou] [--crop-max-enlarge 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, get_args

import numpy as np
import supervision as sv

from benchmarks.common import RESULTS, assets, machine, save
from surveillance_ray.alerts import Alert
from surveillance_ray.config import PERSON, TrackerName, TrackingConfig, ValidatorConfig
from surveillance_ray.ensemble import EnsembleModel
from surveillance_ray.sequences import (Clip, labelled_sequences, load_clips, logged_crop_score, negative_sequences,
                                        slowed)
from surveillance_ray.training import fit, person_camera, samples
from surveillance_ray.validate import replay

FRIGATE = {"min_score": 0.5, "threshold": 0.7}
SWEEP = [round(x, 2) for x in np.arange(0.25, 0.91, 0.05)]
MIN_SCENE_S = 2.0
# also judged as a camera analysed once a second sees them (with the people-free clips); TUD-Campus
# lasts 2.8 s: three frames
SLOWED = ("PETS09-S2L1", "PETS09-S3-MF1")


@dataclass
class AlertRow:
    frame: int
    identity: int | None


# -- the methods: alerts of one clip ---------------------------------------------------------
def raw_detections(clip: Clip, threshold: float = 0.25) -> list[AlertRow]:
    out = []
    for row in clip.rows:
        gt = (clip.seq.gt or {}).get(row["source_index"])
        for x1, y1, x2, y2, conf, cls in row["detections"]:
            if int(cls) != PERSON or conf < threshold:
                continue
            identity = None
            if gt is not None and len(gt):
                ious = sv.box_iou_batch(np.array([[x1, y1, x2, y2]]), gt[:, 1:])[0]
                identity = int(gt[int(np.argmax(ious)), 0]) if ious.max() >= 0.5 else None
            out.append(AlertRow(row["source_index"], identity))
    return out


def _track_scores(clip: Clip) -> dict[tuple, list[tuple[int, float]]]:
    scores: dict[tuple, list[tuple[int, float]]] = {}
    for row in clip.rows:
        for *_box, conf, cls, tid in row["tracks"]:
            if int(cls) == PERSON:
                scores.setdefault((row["stream_id"], row["epoch"], int(tid)), []).append((row["source_index"], conf))
    return scores


def tracker_tracks(clip: Clip, threshold: float = 0.0) -> list[AlertRow]:
    return [AlertRow(obs[0][0], clip.alert_labels.get(key)) for key, obs in _track_scores(clip).items()
            if statistics.fmean(c for _, c in obs) >= threshold]


def frigate(clip: Clip, threshold: float = FRIGATE["threshold"], min_score: float = FRIGATE["min_score"]) -> list[AlertRow]:
    out = []
    for key, obs in _track_scores(clip).items():
        history: list[float] = []
        for frame, conf in obs:
            if conf < min_score:
                continue  # Frigate ignores a detection under min_score
            history = (history + [conf])[-10:]
            padded = history + [0.0] * (3 - len(history))
            if statistics.median(padded) >= threshold:
                out.append(AlertRow(frame, clip.alert_labels.get(key)))
                break
    return out


def raised(clip: Clip, config: ValidatorConfig, ensemble: EnsembleModel | None = None,
           skip_share: float = 0.0) -> list[tuple[Alert, int]]:
    """The person alerts a replay of the clip's track log raises, each with the frame that raised it;
    ``skip_share`` of the second-opinion asks skipped (as the detector's budget skips them under load)."""
    answer = logged_crop_score if not skip_share else skipping(skip_share)
    result = replay(clip.rows, config, {PERSON: "person", 2: "car"}, [person_camera(clip)], ensemble, answer=answer)
    return [(a, result.raised_at[a.id]) for a in result.alerts if a.status.value == "raised" and a.class_id == PERSON]


def skipping(share: float) -> Callable[[dict, Any], float | str | None]:
    """Answers from the logged crop scores, but ``share`` of the asks skipped ('budget'), the same ones in every
    replay (a hash of the camera, frame, track and how many times it was asked)."""
    import hashlib

    asked: dict[tuple, int] = {}

    def answer(row: dict, request: Any) -> float | str | None:
        key = (row["stream_id"], row["frame_id"], request.track_id)
        asked[key] = asked.get(key, 0) + 1
        draw = hashlib.sha256(repr((*key, asked[key])).encode()).digest()
        return "budget" if int.from_bytes(draw[:4], "big") / 2**32 < share else logged_crop_score(row, request)
    return answer


def _rows(clip: Clip, alerts: list[tuple[Alert, int]]) -> list[AlertRow]:
    """Raised alerts as the metrics take them: the frame, the identity their track is credited to."""
    return [AlertRow(frame, clip.alert_labels.get((a.camera, a.epoch, a.track_id))) for a, frame in alerts]


def rules(clip: Clip, threshold: float | None = None) -> list[AlertRow]:
    update: dict[str, Any] = {"ensemble_model": None}
    if threshold is not None:
        update["class_thresholds"] = {"person": threshold}
    return _rows(clip, raised(clip, ValidatorConfig().model_copy(update=update)))


class HeldOut:
    """The ensemble trained on every clip but the one judged (leave one sequence out), fitted once per clip."""

    def __init__(self, clips: list[Clip]) -> None:
        self.parts = {c.seq.name: samples(c) for c in clips if c.seq.of is None}  # as the shipped model
        self.models: dict[str, EnsembleModel] = {}

    def model(self, clip: Clip) -> EnsembleModel:
        scene = clip.seq.scene  # a slowed copy is judged by the model that never saw its footage
        if scene not in self.models:
            self.models[scene] = fit([p for n, p in self.parts.items() if n != scene])
        return self.models[scene]


HELD_OUT: HeldOut | None = None


def whole_validator(clip: Clip, threshold: float | None = None, fp_threshold: float | None = None,
                    skip_share: float = 0.0, **settings: Any) -> list[tuple[Alert, int]]:
    """The whole validator's raised person alerts, the ensemble held out: ``threshold`` the person threshold
    (the curve's sweep, as for the rules alone), ``fp_threshold`` the ensemble's (its own sweep,
    ``ENSEMBLE_SWEEP``)."""
    assert HELD_OUT is not None
    update: dict[str, Any] = {"ensemble_model": None, **settings}
    if threshold is not None:
        update["class_thresholds"] = {"person": threshold}
    if fp_threshold is not None:
        update["fp_threshold"] = fp_threshold
    return raised(clip, ValidatorConfig().model_copy(update=update), HELD_OUT.model(clip), skip_share)


def rules_ensemble(clip: Clip, threshold: float | None = None, fp_threshold: float | None = None,
                   **settings: Any) -> list[AlertRow]:
    return _rows(clip, whole_validator(clip, threshold, fp_threshold, **settings))


# the ensemble's false-positive threshold: its held-out probabilities on the alerts the rules let through are
# mostly under 0.1, so the sweep goes down to where it starts rejecting
ENSEMBLE_SWEEP = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.7, 0.9]


# the stitching settings, chosen on the other scenes for each held-out one (stricter first on ties)
STITCH_GRID = [{"stitch_similarity": s, "stitch_window_s": w} for s in (0.9, 0.8, 0.7, 0.6) for w in (1.0, 2.0, 3.0, 4.0)]


# a slow camera's (sparse_frame_gap_s): its window, its fixed reach from the predicted place, its colours
SPARSE_STITCH_GRID = [{"sparse_stitch_window_s": w, "sparse_stitch_reach": r, "sparse_stitch_similarity": s}
                      for s in (0.9, 0.8, 0.7) for r in (0.5, 1.0, 1.5) for w in (2.0, 3.0, 4.0)]


def stitching_held_out(scenes: list[Clip], grid: list[dict[str, Any]] = STITCH_GRID) -> dict[str, dict[str, Any]]:
    """For each scene: the whole validator with the stitching settings of ``grid`` that did best on the other
    scenes (pooled recall + precision - alerts per person), and what it measures on the scene held out. A
    slowed copy is never chosen for by its own footage."""
    per = [{c.seq.name: metrics(rules_ensemble(c, **settings), c) for c in scenes} for settings in grid]

    def score(i: int, names: list[str]) -> float:
        p = pooled([per[i][n] for n in names])
        return (p["recall"] or 0) + (p["precision"] or 0) - (p["alerts_per_person"] or 0)

    out = {}
    for held in scenes:
        others = [c.seq.name for c in scenes if c.seq.scene != held.seq.scene]
        best = max(range(len(grid)), key=lambda i: (score(i, others), -i))
        out[held.seq.name] = {"settings": grid[best], **per[best][held.seq.name]}
    return out


METHODS: dict[str, tuple[Callable[..., list[AlertRow]], float | None]] = {
    "raw detections": (raw_detections, 0.25),
    "tracks": (tracker_tracks, 0.0),  # swept over the track's mean score
    "Frigate-style (0.5/0.7)": (frigate, FRIGATE["threshold"]),
    "rules": (rules, None),  # swept over the person threshold
    "rules + ensemble (held out)": (rules_ensemble, None),  # swept over the person threshold too
}
FULL, PEER = "rules + ensemble (held out)", "Frigate-style (0.5/0.7)"


def interpolated(points: list[dict[str, Any]], recall: float) -> float | None:
    """A sweep's precision at ``recall`` or more (the usual interpolation); None past its highest recall."""
    at = [p["precision"] for p in points if p["precision"] is not None and p["recall"] >= recall - 1e-9]
    return max(at) if at else None


def against(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our interpolated precision against the peer's at every recall either sweep reaches: one row per
    stretch of recall (``above_recall``, ``to_recall``] where the comparison (above / equal / below / beyond
    ours: the peer reaches further) holds. Interpolated precision is constant between the recalls the
    sweeps reach."""
    recalls = sorted({p["recall"] for p in ours + peer if p["recall"] is not None and p["precision"] is not None})
    rows: list[dict[str, Any]] = []
    for low, r in zip([0.0, *recalls], recalls):
        a, b = interpolated(ours, r), interpolated(peer, r)
        verdict = ("beyond ours" if a is None else "beyond the peer" if b is None else
                   "above" if a > b + 1e-9 else "below" if a < b - 1e-9 else "equal")
        if rows and (rows[-1]["verdict"], rows[-1]["ours"], rows[-1]["peer"]) == (verdict, a, b):
            rows[-1]["to_recall"] = r
        else:
            rows.append({"above_recall": low, "to_recall": r, "ours": a, "peer": b, "verdict": verdict})
    return rows


# -- metrics ------------------------------------------------------------------------------
def metrics(alerts: list[AlertRow], clip: Clip) -> dict[str, Any]:
    false = sum(a.identity is None for a in alerts)
    true = len(alerts) - false
    ids = clip.seq.identities
    alerted = {a.identity for a in alerts if a.identity is not None}
    first_seen = clip.seq.first_seen()
    delays = []
    for identity in alerted:
        first_alert = min(a.frame for a in alerts if a.identity == identity)
        delays.append(max(0, first_alert - first_seen[identity]) / clip.fps)
    return {
        "alerts": len(alerts), "false": false,
        "precision": round(true / len(alerts), 3) if alerts else None,
        "recall": round(len(alerted) / len(ids), 3) if ids else None,
        "identities": len(ids), "identities_alerted": len(alerted), "true": true,
        "alerts_per_person": round(true / len(alerted), 2) if alerted else None,
        "false_per_camera_hour": round(false / clip.hours, 1),
        "median_time_to_alert_s": round(statistics.median(delays), 2) if delays else None,
    }


def pooled(per_clip: list[dict[str, Any]]) -> dict[str, Any]:
    alerts, false = sum(m["alerts"] for m in per_clip), sum(m["false"] for m in per_clip)
    ids, alerted = sum(m["identities"] for m in per_clip), sum(m["identities_alerted"] for m in per_clip)
    return {"alerts": alerts, "false": false, "precision": round((alerts - false) / alerts, 3) if alerts else None,
            "recall": round(alerted / ids, 3) if ids else None,
            "alerts_per_person": round((alerts - false) / alerted, 2) if alerted else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--refresh", action="store_true", help="re-run the detector instead of the cached track logs")
    parser.add_argument("--tracker", choices=get_args(TrackerName), default=TrackingConfig().tracker)
    parser.add_argument("--reached", type=Path, default=RESULTS / "peers_overload_320.json",
                        help="a peers sweep's JSON: the scenes are also judged at the rate its project run reached "
                             "with 24 cameras, with the share of second opinions it skipped")
    parser.add_argument("--crop-max-enlarge", type=float, default=None,
                        help="second-opinion crops padded to be enlarged at most this many times (detector.crop_max_enlarge)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    global HELD_OUT
    seqs = labelled_sequences(assets()) + negative_sequences(assets())
    reached = reached_rate(args.reached)
    base = list(seqs)
    seqs += [slowed(s) for s in base if s.negative or s.name in SLOWED] + [
        slowed(s, behind=True) for s in base if s.name in SLOWED]
    if reached:  # as the cameras of the 24-camera run saw them (SIwR is filmed at 1 fps: slower already)
        seqs += [slowed(s, 1.0 / reached["fps"], behind=True) for s in base
                 if (s.negative or s.name in REACHED_SCENES) and s.name != "SIwR-c6s1"]
    clips = load_clips(seqs, args.imgsz, args.refresh, tracking=TrackingConfig(tracker=args.tracker),
                       crop_max_enlarge=args.crop_max_enlarge)
    HELD_OUT = HeldOut(clips)
    for clip in clips:  # fitted up front: the timings below are the validator's, not training's
        HELD_OUT.model(clip)
    at_reached = [c for c in clips if c.seq.behind and not c.seq.name.endswith("-1fps-behind")]
    clips_judged = [c for c in clips if c not in at_reached]
    labelled = [c for c in clips_judged if not c.seq.negative]
    negatives = [c for c in clips_judged if c.seq.negative]
    # MOT17-mini's clips last 0.1-0.5 s: too short for any track to be confirmed and judged; pooled apart
    native = [c for c in labelled if c.seq.of is None]
    scenes = [c for c in native if c.hours * 3600 >= MIN_SCENE_S]
    short = [c for c in native if c not in scenes]
    slow = [c for c in labelled if c.fps / c.seq.step <= 1.5 and c.hours * 3600 >= MIN_SCENE_S and not c.seq.behind]
    behind = [c for c in labelled if c.seq.behind]

    table: dict[str, dict[str, Any]] = {}
    for name, (method, _default) in METHODS.items():
        t0 = time.perf_counter()
        per = {c.seq.name: metrics(method(c), c) for c in clips_judged}
        table[name] = {"per_sequence": per, "pooled": pooled([per[c.seq.name] for c in scenes]),
                       "pooled_short": pooled([per[c.seq.name] for c in short]),
                       "pooled_slow": pooled([per[c.seq.name] for c in slow]),
                       "pooled_behind": pooled([per[c.seq.name] for c in behind]),
                       "negatives_false": sum(per[c.seq.name]["false"] for c in negatives),
                       "negatives_false_per_camera_hour": round(sum(per[c.seq.name]["false"] for c in negatives)
                                                                / sum(c.hours for c in negatives), 1),
                       "cpu_ms_per_frame": round((time.perf_counter() - t0) * 1000 / sum(len(c.rows) for c in clips_judged),
                                                 3)}
    curves = {name: [dict(threshold=t, **pooled([metrics(method(c, t), c) for c in scenes])) for t in SWEEP]
              for name, (method, _default) in METHODS.items()}
    data = {"imgsz": args.imgsz, "tracker": args.tracker, "crop_max_enlarge": args.crop_max_enlarge, "sequences": {c.seq.name: {"frames": len(c.rows), "fps": c.fps,
                                                            "identities": len(c.seq.identities),
                                                            "negative": c.seq.negative} for c in clips_judged},
            "at_reached_rate": judged_at_reached(reached, at_reached, clips_judged) if reached else None,
            "methods": table, "curves": curves, "frigate": FRIGATE, "machine": machine(),
            "stitching_held_out": stitching_held_out(scenes),
            "sparse_stitching_held_out": stitching_held_out(slow, SPARSE_STITCH_GRID),
            "ensemble_sweep": [dict(fp_threshold=t, **pooled([metrics(rules_ensemble(c, fp_threshold=t), c)
                                                              for c in scenes])) for t in ENSEMBLE_SWEEP],
            "pr_against_frigate": against(curves[FULL], curves[PEER])}
    data["pooled_sequences"] = [c.seq.name for c in scenes]
    data["slow_sequences"] = [c.seq.name for c in slow]
    data["behind_sequences"] = [c.seq.name for c in behind]
    name = "alert_quality" if args.tracker == TrackingConfig().tracker else f"alert_quality_{args.tracker}"
    if args.crop_max_enlarge is not None:
        name += f"_crop{args.crop_max_enlarge:g}"
    save(name, data, markdown(data, labelled, negatives, name))
    plot(curves, table, RESULTS / f"{name}.png")


REACHED_SCENES = ("PETS09-S2L1", "PETS09-S3-MF1", "TUD-Campus")


def reached_rate(path: Path | None) -> dict[str, Any] | None:
    """The per-camera rate the project analysed with 24 cameras in a peers sweep, and the share of its second
    opinions skipped (None: no such sweep)."""
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    row = next((r for r in data["rows"] if r["cameras"] == 24 and r["contender"] == "surveillance-ray"
                and "error" not in r), None)
    if row is None:
        return None
    opinions = row.get("second_opinions") or {}
    skipped = sum(n for k, n in opinions.items() if k.startswith("skipped:"))
    return {"fps": row["fps_per_camera"]["mean"], "slowest_fps": row["fps_per_camera"]["min"],
            "skip_share": round(skipped / opinions["asked"], 3) if opinions.get("asked") else 0.0,
            "from": path.name, "cpu": data.get("machine", {}).get("cpu")}


def judged_at_reached(reached: dict[str, Any], clips: list[Clip], judged: list[Clip]) -> dict[str, Any]:
    """The whole validator on the scenes as the 24-camera run's cameras saw them: every n-th frame (behind: the
    tracker configured at the footage's own rate), second opinions all answered, and with the run's share of them
    skipped; beside each scene's figures at its own rate."""
    own = {c.seq.name: c for c in judged}
    out: dict[str, Any] = {"reached": reached, "scenes": {}}
    for skip in (0.0, reached["skip_share"]):
        rows, negatives_false = [], 0
        for clip in clips:
            m = metrics(_rows(clip, whole_validator(clip, skip_share=skip)), clip)
            if clip.seq.negative:
                negatives_false += m["false"]
                continue
            rows.append(m)
            base = metrics(_rows(own[clip.seq.of], whole_validator(own[clip.seq.of])), own[clip.seq.of])
            out["scenes"].setdefault(clip.seq.name, {"own_rate": base})[f"skip_{skip:g}"] = m
        own_pool = pooled([out["scenes"][c.seq.name]["own_rate"] for c in clips if not c.seq.negative])
        out[f"pooled_skip_{skip:g}"] = {**pooled(rows), "negatives_false": negatives_false}
        out["pooled_own_rate"] = own_pool
    return out


def markdown(data: dict[str, Any], labelled: list[Clip], negatives: list[Clip], stem: str) -> str:
    crops = data.get("crop_max_enlarge")
    lines = [f"# Alert quality, persons (imgsz {data['imgsz']}, tracker {data['tracker']}"
             + ("" if crops is None else f", second-opinion crops enlarged at most {crops:g}x") + ")", "",
             "| sequence | method | alerts | false | precision | recall | alerts per real person | "
             "false per camera-hour | median time to alert s |", "|---|---|---|---|---|---|---|---|---|"]
    for clip in labelled + negatives:
        for name, result in data["methods"].items():
            m = result["per_sequence"][clip.seq.name]
            fmt = lambda v: "–" if v is None else str(v)  # noqa: E731
            lines.append(f"| {clip.seq.name} | {name} | {m['alerts']} | {m['false']} | {fmt(m['precision'])} | "
                         f"{fmt(m['recall'])} | {fmt(m['alerts_per_person'])} | {m['false_per_camera_hour']} | "
                         f"{fmt(m['median_time_to_alert_s'])} |")
    held_out = [("stitching_held_out", ("stitch_similarity", "stitch_window_s"),
                 "The whole validator with its stitching settings chosen on the other scenes (leave one scene out; "
                 "the defaults are window 2 s, similarity 0.7):", "held-out scene | chosen similarity / window s"),
                ("sparse_stitching_held_out", ("sparse_stitch_window_s", "sparse_stitch_reach", "sparse_stitch_similarity"),
                 "Slow cameras likewise, with their own stitching settings chosen on the other slow footage (the "
                 "defaults are window 3 s, reach 1 box height from the predicted place, similarity 0.8):",
                 "held-out slow camera | chosen window s / reach / similarity")]
    for key, fields, caption, head in held_out:
        lines += ["", caption, "", f"| {head} | alerts | false | precision | recall | alerts per real person |",
                  "|---|---|---|---|---|---|---|"]
        for scene, m in data[key].items():
            chosen = " / ".join(str(m["settings"][f]) for f in fields)
            lines.append(f"| {scene} | {chosen} | {m['alerts']} | {m['false']} | {m['precision']} | {m['recall']} | "
                         f"{m['alerts_per_person']} |")
    lines += ["", f"Pooled over the scenes ({', '.join(data['pooled_sequences'])}); MOT17-mini's seven clips "
              f"(4-8 frames, 0.1-0.5 s each) apart; people-free clips: false alerts only:", "",
              "| method | alerts | false | precision | recall | alerts per real person | MOT17-mini: precision / "
              "recall | false alerts on people-free footage (per camera-hour) |", "|---|---|---|---|---|---|---|---|"]
    for name, result in data["methods"].items():
        p, q = result["pooled"], result["pooled_short"]
        lines.append(f"| {name} | {p['alerts']} | {p['false']} | {p['precision']} | {p['recall']} | "
                     f"{p['alerts_per_person']} | {q['precision']} / {q['recall']} | {result['negatives_false']} "
                     f"({result['negatives_false_per_camera_hour']}) |")
    lines += ["", f"The whole validator's precision-recall sweep (person threshold {SWEEP[0]}-{SWEEP[-1]}) against "
              "the Frigate-style rule's (its threshold), precision at each recall or more:", "",
              "| recall above | up to | ours | Frigate-style | |", "|---|---|---|---|---|"]
    lines += [f"| {r['above_recall']} | {r['to_recall']} | {r['ours']} | {r['peer']} | {r['verdict']} |"
              for r in data["pr_against_frigate"]]
    lines += ["", "The whole validator with the ensemble's false-positive threshold swept (the default is 0.7), "
              "pooled over the scenes:", "", "| false-positive threshold | alerts | false | precision | recall | "
              "alerts per real person |", "|---|---|---|---|---|---|"]
    lines += [f"| {p['fp_threshold']} | {p['alerts']} | {p['false']} | {p['precision']} | {p['recall']} | "
              f"{p['alerts_per_person']} |" for p in data["ensemble_sweep"]]
    pools = [("pooled_slow", f"Slow cameras, one frame a second, pooled ({', '.join(data['slow_sequences'])}; the "
              "people-free clips' slowed copies are in the false alerts above):"),
             ("pooled_behind", f"Cameras that fell behind, pooled ({', '.join(data['behind_sequences'])}: the same "
              "frames as the 1-fps copies, each tracker configured at the footage's own rate):")]
    for key, caption in pools:
        lines += ["", caption, "", "| method | alerts | false | precision | recall | alerts per real person |",
                  "|---|---|---|---|---|---|"]
        for name, result in data["methods"].items():
            p = result[key]
            lines.append(f"| {name} | {p['alerts']} | {p['false']} | {p['precision']} | {p['recall']} | "
                         f"{p['alerts_per_person']} |")
    at = data.get("at_reached_rate")
    if at:
        r = at["reached"]
        lines += ["", f"At the rate the pipeline reached with 24 cameras ({r['fps']:g} fps per camera, slowest "
                  f"{r['slowest_fps']:g}, {100 * r['skip_share']:.0f} % of second opinions skipped; `{r['from']}`, "
                  f"{r['cpu']}): the whole validator on every n-th frame, the tracker configured at the footage's own "
                  "rate, second opinions all answered and with that share skipped:", "",
                  "| scene | own rate: alerts / P / R / per person / time to alert s | reached, all answered | "
                  "reached, skipped as in the run |", "|---|---|---|---|"]
        fmt = lambda m: (f"{m['alerts']} / {m['precision']} / {m['recall']} / {m['alerts_per_person']} / "  # noqa: E731
                         f"{m.get('median_time_to_alert_s', '–')}")
        skip_key = f"skip_{r['skip_share']:g}"
        for scene, m in at["scenes"].items():
            lines.append(f"| {scene} | {fmt(m['own_rate'])} | {fmt(m['skip_0'])} | {fmt(m[skip_key])} |")
        p0, ps, po = at["pooled_skip_0"], at[f"pooled_{skip_key}"], at["pooled_own_rate"]
        lines.append(f"| pooled | {po['alerts']} / {po['precision']} / {po['recall']} / {po['alerts_per_person']} | "
                     f"{p0['alerts']} / {p0['precision']} / {p0['recall']} / {p0['alerts_per_person']} | "
                     f"{ps['alerts']} / {ps['precision']} / {ps['recall']} / {ps['alerts_per_person']} |")
        lines.append(f"| people-free clips: person alerts | 0 | {p0['negatives_false']} | {ps['negatives_false']} |")
    frames = sum(s["frames"] for s in data["sequences"].values())
    lines += ["", f"CPU per frame ({frames} frames, one core, the method alone): "
              + ", ".join(f"{name} {r['cpu_ms_per_frame']} ms" for name, r in data["methods"].items()), "",
              f"![precision-recall]({stem}.png)", ""]
    return "\n".join(lines)


def plot(curves: dict[str, list[dict]], table: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, points in curves.items():
        pts = [(p["recall"], p["precision"]) for p in points if p["precision"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=name)
        default = table[name]["pooled"]
        if default["precision"] is not None:
            ax.scatter([default["recall"]], [default["precision"]], marker="*", s=120, zorder=3)
    ax.set_xlabel("recall (gt people alerted)")
    ax.set_ylabel("alert precision")
    ax.set_title("Person alerts, pooled over the labelled scenes (threshold sweeps; * defaults)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
