"""The false-positive ensemble: per-track features, and a scikit-learn random forest + gradient boosting +
MLP voting softly, with calibrated probabilities. ``FalsePositivePredictionRule`` asks it how likely a
track that passed every other rule is to be false; ``training.py`` builds and cross-validates it.

A model file is a joblib dump of ``{"model", "features", "format"}`` with a JSON model card beside it
(``<file>.card.json``): data, features, per-sequence metrics, library versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surveillance_ray.history import TrackHistory

FORMAT = 1
#: The features, in order. A model trained on another list is refused.
FEATURES = (
    "observations", "duration_s", "obs_per_s", "basic_pass_share",
    "conf_mean", "conf_std", "conf_min", "conf_max", "conf_last", "conf_median_recent",
    "class_share", "aspect_median", "height_frac", "area_frac", "foot_y_frac", "edge_share",
    "speed_h_per_s", "net_move_h", "size_jitter", "step_jitter_h",
    "luma_mean", "sharpness_log", "crowd_mean",
)
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "fp-ensemble.joblib"


class EnsembleError(ValueError):
    """A model file that cannot be used, phrased as one line naming the file."""


def track_features(track: TrackHistory, edge_margin_frac: float = 0.01) -> np.ndarray:
    """The track's features as the rules see it now (its recent observations and running statistics)."""
    recent = list(track.recent)
    last = recent[-1]
    h, w = last.frame_shape
    n = track.observations
    conf = np.array([o.confidence for o in recent])
    heights = np.array([o.height for o in recent])
    centres = np.array([o.centre for o in recent])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1) / heights[1:] if len(recent) > 1 else np.zeros(1)
    mean = track.conf_sum / n
    duration = max(track.duration_s, 1e-3)
    return np.array([
        n, track.duration_s, n / duration if track.duration_s > 0 else 0.0, track.basic_passes / n,
        mean, max(0.0, track.conf_sq / n - mean * mean) ** 0.5, track.conf_min, track.conf_max, last.confidence,
        float(np.median(conf)),
        track.class_share, float(np.median(heights / np.array([o.width for o in recent]))),
        float(np.median(heights)) / h, float(np.median([o.width * o.height for o in recent])) / (h * w),
        last.xyxy[3] / h, float(np.mean([o.at_edge(edge_margin_frac) for o in recent])),
        track.speed(), float(np.linalg.norm(centres[-1] - centres[0])) / float(np.median(heights)),
        float(np.std(np.diff(np.log(heights)))) if len(recent) > 2 else 0.0, float(np.std(steps)),
        float(np.mean([o.luma for o in recent])), float(np.log1p(max(0.0, np.mean([o.sharpness for o in recent])))),
        float(np.mean([o.detections for o in recent])),
    ], np.float64)


def build(seed: int = 0) -> Any:
    """Random forest + gradient boosting + MLP, soft voting, sigmoid-calibrated (unfitted)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, VotingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    voting = VotingClassifier([
        ("forest", RandomForestClassifier(n_estimators=150, min_samples_leaf=2, class_weight="balanced",
                                          random_state=seed)),
        ("boosting", GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.05, subsample=0.8,
                                                random_state=seed)),
        ("mlp", make_pipeline(StandardScaler(), MLPClassifier((32, 16), alpha=1e-3, max_iter=2000,
                                                              random_state=seed))),
    ], voting="soft")
    return CalibratedClassifierCV(voting, method="sigmoid", cv=3, ensemble=False)


@dataclass
class EnsembleModel:
    """A fitted ensemble: ``fp_probability`` of a feature vector (class 0 = false track)."""

    model: Any
    path: Path | None = None
    card: dict | None = None

    def fp_probability(self, features: np.ndarray) -> float:
        return float(self.fp_probabilities(features.reshape(1, -1))[0])

    def fp_probabilities(self, features: np.ndarray) -> np.ndarray:
        """One probability per row of ``features`` (one call of the model)."""
        return self.model.predict_proba(features)[:, list(self.model.classes_).index(0)]

    def save(self, path: Path, card: dict) -> None:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"model": self.model, "features": list(FEATURES), "format": FORMAT}, path, compress=3)
        card_path(path).write_text(json.dumps(card, indent=2))


def card_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".joblib") + ".card.json")


def check_model_file(path: Path) -> dict:
    """Cheap checks from the model card (no unpickling): before Ray starts. Returns the card."""
    if not path.is_file():
        raise EnsembleError(f"{path}: ensemble model file not found (train one: surveillance-ray train-validator)")
    card_file = card_path(path)
    if not card_file.is_file():
        raise EnsembleError(f"{path}: no model card beside it ({card_file.name})")
    try:
        card = json.loads(card_file.read_text())
    except ValueError as exc:
        raise EnsembleError(f"{card_file}: unreadable model card: {exc}") from None
    if card.get("features") != list(FEATURES):
        raise EnsembleError(f"{path}: trained on other features ({len(card.get('features') or [])} vs "
                            f"{len(FEATURES)} now); retrain with surveillance-ray train-validator")
    from importlib.metadata import version

    trained, here = str(card.get("versions", {}).get("scikit-learn", "?")), version("scikit-learn")
    if trained.split(".")[:2] != here.split(".")[:2]:
        raise EnsembleError(f"{path}: trained with scikit-learn {trained}, this is {here}; "
                            "retrain with surveillance-ray train-validator")
    return card


def load_model(path: Path) -> EnsembleModel:
    """Load and check a model file; EnsembleError (one line naming the file) when it cannot be used."""
    card = check_model_file(path)
    import joblib

    try:
        blob = joblib.load(path)
        model = blob["model"]
        ok = blob.get("format") == FORMAT and blob.get("features") == list(FEATURES) and hasattr(model, "predict_proba")
    except Exception as exc:  # unpickling raises many types for a bad file
        raise EnsembleError(f"{path}: cannot load the ensemble model: {type(exc).__name__}: {exc}") from None
    if not ok:
        raise EnsembleError(f"{path}: not an ensemble model file of format {FORMAT} with the current features")
    probe = np.zeros(len(FEATURES))
    try:
        EnsembleModel(model).fp_probability(probe)
    except Exception as exc:
        raise EnsembleError(f"{path}: the model does not predict: {type(exc).__name__}: {exc}") from None
    return EnsembleModel(_quick_forests(model), path, card)


def _quick_forests(model: Any) -> Any:
    """The model with each random forest's ``predict_proba`` done tree by tree in a plain loop: scikit-learn
    dispatches every tree through joblib even for one row (8.6 ms of the ensemble's 13 ms a call on the shipped
    model); the same arithmetic in the same order, so the probabilities are identical (tested)."""
    from sklearn.ensemble import RandomForestClassifier

    def quick(forest: RandomForestClassifier) -> Any:
        def predict_proba(X: Any) -> np.ndarray:
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            total = None
            for tree in forest.estimators_:  # as DecisionTreeClassifier.predict_proba, summed in order
                proba = tree.tree_.predict(X32)[:, :forest.n_classes_]
                norm = proba.sum(axis=1, keepdims=True)
                proba = proba / np.where(norm == 0.0, 1.0, norm)
                total = proba if total is None else total + proba
            return total / len(forest.estimators_)
        return predict_proba

    for calibrated in getattr(model, "calibrated_classifiers_", ()):
        for estimator in getattr(calibrated.estimator, "named_estimators_", {}).values():
            if isinstance(estimator, RandomForestClassifier) and estimator.n_outputs_ == 1:
                estimator.predict_proba = quick(estimator)
    return model
