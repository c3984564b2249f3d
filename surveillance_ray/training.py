"""``surveillance-ray train-validator``: labelled tracks → the false-positive ensemble and its model card.

The tracks come from replaying track logs of footage with ground truth (and people-free footage, whose
person tracks are all false) through the validator without the ensemble: every observation where a
track passes every other rule is a candidate (up to ``PER_TRACK`` per track), labelled with its track (a
track is real when it matches one gt identity at IoU >= 0.5 in >= 50 % of its frames). Cross-validation
leaves one sequence out; the model written is then fitted on all of them.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from surveillance_ray.config import PERSON, CameraConfig, TrackingConfig, ValidatorConfig
from surveillance_ray.ensemble import FEATURES, EnsembleModel, build
from surveillance_ray.sequences import Clip
from surveillance_ray.validate import replay

PER_TRACK = 10  # candidate observations kept per track


@dataclass
class Samples:
    """One clip's candidates: features, labels (1 real, 0 false) and the track of each."""

    name: str
    X: np.ndarray
    y: np.ndarray
    tracks: list[tuple[str, int, int]]


def rules_config(config: ValidatorConfig | None = None) -> ValidatorConfig:
    """The rules the candidates pass: the validator's, relaxed (person threshold 0.25, median score 0.3,
    class share 0.5) so the ensemble also learns from the borderline tracks the rules let through."""
    base = (config or ValidatorConfig()).model_copy(update={"ensemble_model": None})
    return base.model_copy(update={
        "class_thresholds": {**base.class_thresholds, "person": min(0.25, base.class_thresholds.get("person", 1))},
        "min_median_score": min(0.3, base.min_median_score), "min_class_share": min(0.5, base.min_class_share)})


def person_camera(clip: Clip) -> CameraConfig:
    stream = clip.rows[0]["stream_id"] if clip.rows else clip.seq.name
    return CameraConfig(id=stream, source="rtsp://127.0.0.1/replay", rules={"object_classes": ["person"]})


def samples(clip: Clip, config: ValidatorConfig | None = None) -> Samples:
    """The candidate observations of a clip's person tracks, labelled."""
    result = replay(clip.rows, rules_config(config), {PERSON: "person", 2: "car"}, [person_camera(clip)],
                    collect=PER_TRACK)
    keys = [key for key, _ in result.candidates]
    X = np.array([f for _, f in result.candidates]).reshape(-1, len(FEATURES))
    y = np.array([0 if clip.seq.negative or clip.labels.get(k) is None else 1 for k in keys], np.int64)
    return Samples(clip.seq.name, X, y, keys)


CALIBRATION_FOLDS = 3


class TooFewTracks(ValueError):
    """Not enough real and false tracks among the candidates to fit and calibrate the ensemble."""


def fewest_tracks(parts: list[Samples]) -> int:
    """Tracks of the rarer label (real or false) among these clips' candidates."""
    labels: dict[tuple[str, tuple], int] = {(p.name, t): int(v) for p in parts for t, v in zip(p.tracks, p.y)}
    return min(sum(v == label for v in labels.values()) for label in (0, 1))


def fit(parts: list[Samples], seed: int = 0) -> EnsembleModel:
    """The ensemble fitted on these clips' samples. Its calibration folds never split a track and each
    training fold holds tracks of both labels, so it needs at least 2 of each (3 folds from 3)."""
    from sklearn.model_selection import StratifiedGroupKFold

    fewest = fewest_tracks(parts)
    if fewest < 2:
        raise TooFewTracks(f"the candidates hold {fewest} track(s) of one label (real or false; a false one "
                           "matches no gt person): the ensemble needs at least 2 of each. Add labelled footage "
                           "with false detections (--mot) or people-free footage (--negative)")
    X = np.concatenate([p.X for p in parts])
    y = np.concatenate([p.y for p in parts])
    groups = [f"{p.name}/{t}" for p in parts for t in p.tracks]
    model = build(seed)
    folds = StratifiedGroupKFold(n_splits=min(CALIBRATION_FOLDS, fewest), shuffle=True, random_state=seed)
    model.cv = list(folds.split(X, y, groups))
    model.fit(X, y)
    return EnsembleModel(model)


def track_decisions(model: EnsembleModel, part: Samples, threshold: float, every: int) -> dict[tuple, tuple[int, bool]]:
    """Per track (label, accepted): accepted when the model, asked at the first candidate and again every
    ``every`` candidates after a rejection (as the rule asks), lets it through."""
    out: dict[tuple, tuple[int, bool]] = {}
    for i, (key, label) in enumerate(zip(part.tracks, part.y)):
        seen = [j for j, k in enumerate(part.tracks[:i + 1]) if k == key]
        if key in out and out[key][1]:
            continue
        if (len(seen) - 1) % every == 0:
            accepted = model.fp_probability(part.X[i]) <= threshold
            out[key] = (int(label), accepted)
    return out


def cross_validate(parts: list[Samples], threshold: float, every: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Leave one clip out: train on the others, judge the held-out clip's tracks."""
    metrics: dict[str, dict[str, Any]] = {}
    for held in parts:
        train = [p for p in parts if p is not held]
        if len(held.y) == 0 or fewest_tracks(train) < 2:
            metrics[held.name] = {"tracks": len(set(held.tracks)),
                                  "note": "no candidates, or under 2 real or false tracks in the others to learn"}
            continue
        model = fit(train, seed)
        decisions = track_decisions(model, held, threshold, every)
        real = [a for lab, a in decisions.values() if lab == 1]
        false = [a for lab, a in decisions.values() if lab == 0]
        kept = sum(real) + sum(false)
        metrics[held.name] = {
            "tracks": len(decisions), "real": len(real), "false": len(false),
            "real_kept": int(sum(real)), "false_kept": int(sum(false)),
            "precision": round(sum(real) / kept, 3) if kept else None,
            "recall_of_candidates": round(sum(real) / len(real), 3) if real else None,
            "false_rejected": round(1 - sum(false) / len(false), 3) if false else None,
        }
    return metrics


def train_validator(clips: list[Clip], out: Path, config: ValidatorConfig | None = None, seed: int = 0,
                    imgsz: int | None = None, tracker: str | None = None) -> dict[str, Any]:
    """Cross-validate, fit on everything, write ``out`` and its model card; returns the card."""
    config = config or ValidatorConfig()
    t0 = time.perf_counter()
    parts = [samples(c, config) for c in clips]
    cv = cross_validate(parts, config.fp_threshold, config.ensemble_every, seed)
    model = fit(parts, seed)
    y = np.concatenate([p.y for p in parts])
    card = {
        "model": "scikit-learn CalibratedClassifierCV(sigmoid) over soft voting of RandomForest, "
                 "GradientBoosting and MLP; class 0 = false track",
        "features": list(FEATURES), "fp_threshold": config.fp_threshold, "seed": seed, "imgsz": imgsz,
        "tracker": tracker or TrackingConfig().tracker,
        "data": {"clips": [{"name": p.name, "source": c.seq.source, "negative": c.seq.negative,
                            "samples": int(len(p.y)), "tracks": len(set(p.tracks)),
                            "false_tracks": len({t for t, lab in zip(p.tracks, p.y) if lab == 0})}
                           for p, c in zip(parts, clips)],
                 "samples": int(len(y)), "real_samples": int(y.sum()), "false_samples": int(len(y) - y.sum()),
                 "per_track": PER_TRACK,
                 "label": "a track is real when it overlaps one gt identity at IoU >= 0.5 in >= 50 % of its frames"},
        "leave_one_sequence_out": cv,
        "versions": {"scikit-learn": version("scikit-learn"), "numpy": np.__version__,
                     "python": platform.python_version()},
        "trained_s": round(time.perf_counter() - t0, 1),
    }
    model.save(out, card)
    return card


def clips_from(mot: list[str], negatives: list[str], imgsz: int, refresh: bool,
               tracker: str | None = None) -> list[Clip]:
    """Labelled clips: MOT-layout folders (img1/ + gt/gt.txt) and people-free clips, tracked by ``tracker``
    (default: the default tracker); none given: the shared assets' labelled sequences and negatives."""
    from surveillance_ray.config import assets_dir
    from surveillance_ray.evaluate import load_mot_gt
    from surveillance_ray.sequences import Sequence, labelled_sequences, load_clips, negative_sequences

    if not mot and not negatives:
        assets = assets_dir()
        if assets is None:
            raise ValueError("no labelled footage: pass --mot DIR (MOT layout) and/or --negative PATH")
        seqs = labelled_sequences(assets) + negative_sequences(assets)
    else:
        seqs = []
        for folder in map(Path, mot):
            gt = folder / "gt" / "gt.txt"
            if not (folder / "img1").is_dir() or not gt.is_file():
                raise ValueError(f"--mot {folder}: expected img1/ and gt/gt.txt (MOTChallenge layout)")
            seqs.append(Sequence(folder.name, str(folder), load_mot_gt(gt)))
        for path in map(Path, negatives):
            if not path.exists():
                raise ValueError(f"--negative {path}: not found")
            seqs.append(Sequence(path.stem, str(path), None))
    return load_clips(seqs, imgsz, refresh, tracking=TrackingConfig(tracker=tracker) if tracker else None)
