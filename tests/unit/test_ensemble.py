"""The false-positive ensemble: features, model files and their checks, the rule that asks it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from surveillance_ray.config import ConfigError, ValidatorConfig, load_settings
from surveillance_ray.ensemble import (DEFAULT_MODEL, FEATURES, EnsembleError, card_path, load_model,
                                       track_features)
from surveillance_ray.history import Observation, TrackHistory
from surveillance_ray.training import Samples, TooFewTracks, cross_validate, fit
from surveillance_ray.validate import Validator


def track(n: int = 12, conf: float = 0.8) -> TrackHistory:
    obs = [Observation("cam", 1, 0, "person", conf, (100 + 3 * i, 100, 130 + 3 * i, 180), (400, 600), 1000 + i / 10,
                       t=i / 10, frame_id=i, luma=110, sharpness=300, detections=4) for i in range(n)]
    h = TrackHistory.start(obs[0], 0, 64, 5)
    for o in obs:
        h.add(o, True)
    return h


def test_features_describe_the_track() -> None:
    f = dict(zip(FEATURES, track_features(track())))
    assert len(f) == len(FEATURES)
    assert f["observations"] == 12 and f["duration_s"] == pytest.approx(1.1) and f["conf_mean"] == pytest.approx(0.8)
    assert f["aspect_median"] == pytest.approx(80 / 30) and f["height_frac"] == pytest.approx(0.2)
    assert f["speed_h_per_s"] == pytest.approx(30 / 80, rel=0.01)  # 3 px a frame at 10 fps, 80 px tall
    assert f["class_share"] == 1.0 and f["edge_share"] == 0.0 and f["crowd_mean"] == 4


def test_shipped_model_loads_and_scores() -> None:
    model = load_model(DEFAULT_MODEL)
    card = model.card
    assert card["features"] == list(FEATURES) and card["data"]["false_samples"] > 0
    assert "leave_one_sequence_out" in card and "PETS09-S2L1" in card["leave_one_sequence_out"]
    steady, weak = model.fp_probability(track_features(track())), model.fp_probability(track_features(track(12, 0.4)))
    assert 0 <= steady <= 1 and 0 <= weak <= 1 and steady < weak  # weak scores: more likely false


def test_loaded_forests_answer_as_scikit_learn_does_only_quicker() -> None:
    import time

    import joblib

    quick = load_model(DEFAULT_MODEL).model
    plain = joblib.load(DEFAULT_MODEL)["model"]  # as scikit-learn runs it
    X = np.random.default_rng(0).normal(size=(300, len(FEATURES))) * 3
    assert np.array_equal(quick.predict_proba(X), plain.predict_proba(X))

    def per_call(model) -> float:
        t0 = time.perf_counter()
        for row in X[:40]:
            model.predict_proba(row[None])
        return time.perf_counter() - t0

    assert per_call(quick) < 0.7 * per_call(plain)  # measured 5.4 vs 13.4 ms a call


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    path = tmp_path / "m.joblib"
    shutil.copy(DEFAULT_MODEL, path)
    shutil.copy(card_path(DEFAULT_MODEL), card_path(path))
    return path


def test_bad_model_files_are_refused_naming_the_file(model_copy: Path, tmp_path: Path) -> None:
    card = json.loads(card_path(model_copy).read_text())
    with pytest.raises(EnsembleError, match="ensemble model file not found"):
        load_model(tmp_path / "none.joblib")
    card_path(model_copy).write_text(json.dumps(card | {"features": card["features"][:-1]}))
    with pytest.raises(EnsembleError, match=r"m.joblib: trained on other features \(22 vs 23 now\)"):
        load_model(model_copy)
    card_path(model_copy).write_text(json.dumps(card | {"versions": {"scikit-learn": "0.24.2"}}))
    with pytest.raises(EnsembleError, match="trained with scikit-learn 0.24.2"):
        load_model(model_copy)
    card_path(model_copy).write_text(json.dumps(card))
    model_copy.write_bytes(b"not a joblib file")
    with pytest.raises(EnsembleError, match="m.joblib: cannot load the ensemble model"):
        load_model(model_copy)
    card_path(model_copy).unlink()
    with pytest.raises(EnsembleError, match="no model card beside it"):
        load_model(model_copy)


def test_config_names_the_model_file_before_ray_starts(model_copy: Path) -> None:
    card = json.loads(card_path(model_copy).read_text())
    card_path(model_copy).write_text(json.dumps(card | {"features": ["a", "b"]}))
    with pytest.raises(ConfigError, match="validator.ensemble_model: .*m.joblib: trained on other features"):
        load_settings(validator={"ensemble_model": str(model_copy)})


def test_a_validator_whose_model_cannot_load_refuses_to_start(model_copy: Path) -> None:
    config = ValidatorConfig(ensemble_model=str(model_copy))  # checked: a sound card
    model_copy.write_bytes(b"corrupted after the config was read")
    with pytest.raises(EnsembleError, match="cannot load the ensemble model"):
        Validator(config, {0: "person"})
    assert Validator(config.model_copy(update={"ensemble_model": None}), {0: "person"}).ensemble is None


def test_rule_asks_again_every_n_observations() -> None:
    from surveillance_ray.rules import FalsePositivePredictionRule, RuleInput
    from surveillance_ray.scene import CameraScene
    from surveillance_ray.config import CameraConfig

    calls = []

    class Stub:  # records when it is asked; answers "false" until the 10th observation
        def fp_probabilities(self, features: np.ndarray) -> np.ndarray:
            calls.extend(int(row[0]) for row in features)
            return np.where(features[:, 0] < 10, 0.9, 0.1)

    config = ValidatorConfig(ensemble_model=None, ensemble_every=5)
    rule = FalsePositivePredictionRule(config, Stub())  # type: ignore[arg-type]
    scene = CameraScene(CameraConfig(id="cam", source="rtsp://127.0.0.1/x"), config)
    h = track(3)
    results = []
    for i in range(3, 14):
        results.append(rule.evaluate(RuleInput(h, scene)).passed)
        h.add(h.last, True)
    assert calls == [3, 8, 13] and results == [False] * 10 + [True]


def samples_of(name: str, real: int, false: int, per_track: int = 6) -> "Samples":
    """Synthetic candidates: real tracks score high, false ones low (``per_track`` observations each)."""
    rng = np.random.default_rng(len(name) + real + false)
    rows, labels, keys = [], [], []
    for t in range(real + false):
        label = int(t < real)
        for _ in range(per_track):
            rows.append(rng.normal(0.8 if label else 0.3, 0.05, len(FEATURES)))
            labels.append(label)
            keys.append((name, 0, t))
    return Samples(name, np.array(rows), np.array(labels, np.int64), keys)


def test_the_ensemble_needs_two_tracks_of_each_label() -> None:
    with pytest.raises(TooFewTracks, match=r"hold 1 track\(s\) of one label"):  # a clear error, not one of scikit-learn's
        fit([samples_of("a", real=5, false=1), samples_of("b", real=4, false=0)])
    # two false tracks, in one clip: two calibration folds, each training on a false track
    model = fit([samples_of("a", real=5, false=2), samples_of("b", real=4, false=0)])
    assert model.fp_probability(np.full(len(FEATURES), 0.3)) > model.fp_probability(np.full(len(FEATURES), 0.8))
    cv = cross_validate([samples_of("a", real=5, false=2), samples_of("b", real=4, false=1)], 0.7, 5)
    assert "under 2 real or false tracks" in cv["a"]["note"] and cv["b"]["false"] == 1
