"""``surveillance-ray train-validator`` on real labelled footage: track logs from the real detector and
tracker, leave-one-sequence-out, a model file with its card that the validator then loads and uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surveillance_ray.cli import main
from surveillance_ray.config import ValidatorConfig
from surveillance_ray.ensemble import FEATURES, load_model
from surveillance_ray.sequences import labelled_sequences, load_clips
from surveillance_ray.training import person_camera
from surveillance_ray.validate import replay


def test_train_validator_writes_a_model_the_validator_uses(tmp_path: Path, assets: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    mot = [assets / "mot" / n for n in ("TUD-Campus", "PETS09-S3-MF1", "SIwR-c6s1")]
    out = tmp_path / "fp.joblib"
    args = ["train-validator", "--imgsz", "320", "--refresh", "--out", str(out),
            "--negative", str(assets / "negatives" / "wallflower_waving_trees")]
    assert main(args + [a for m in mot for a in ("--mot", str(m))]) == 0
    printed = capsys.readouterr().out
    assert "held out TUD-Campus" in printed and f"wrote {out}" in printed

    card = json.loads((tmp_path / "fp.card.json").read_text())
    assert card["features"] == list(FEATURES) and card["versions"]["scikit-learn"]
    clips = {c["name"]: c for c in card["data"]["clips"]}
    assert set(clips) == {"TUD-Campus", "PETS09-S3-MF1", "SIwR-c6s1", "wallflower_waving_trees"}
    assert card["data"]["false_samples"] > 0 and card["data"]["real_samples"] > card["data"]["false_samples"]
    held = card["leave_one_sequence_out"]["TUD-Campus"]
    assert held["tracks"] == held["real"] + held["false"] > 0  # judged by a model trained on the other clips

    model = load_model(out)
    [tud] = [c for c in load_clips([s for s in labelled_sequences(assets) if s.name == "TUD-Campus"], 320)]
    config = ValidatorConfig(ensemble_model=str(out))
    result = replay(tud.rows, config, {0: "person"}, [person_camera(tud)])
    assert result.alerts and all(a.rules[-1].rule == "FalsePositivePredictionRule" for a in result.alerts)
    again = replay(tud.rows, config, {0: "person"}, [person_camera(tud)], ensemble=model)
    assert [a.model_dump() for a in again.alerts] == [a.model_dump() for a in result.alerts]  # deterministic


def test_train_validator_rejects_a_folder_without_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-validator", "--mot", str(tmp_path)]) == 2
    assert "expected img1/ and gt/gt.txt" in capsys.readouterr().err
