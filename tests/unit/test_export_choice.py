"""The backend choice's policy: the faster export that passed its accuracy check, the reasons on record."""

import json
import subprocess
from pathlib import Path

import pytest

from surveillance_ray import export
from surveillance_ray.config import DetectorConfig
from surveillance_ray.export import ResolvedModel, _timed_choice


def _candidates(tmp_path: Path) -> list[ResolvedModel]:
    out = []
    for backend in ("openvino-int8", "openvino"):
        folder = tmp_path / f"m-{backend}_openvino_model"
        folder.mkdir(exist_ok=True)
        Path(f"{folder}.card.json").write_text(json.dumps({"backend": backend}))
        out.append(ResolvedModel(str(folder), backend, "m.pt", {"backend": backend}))
    return out


def _timing(monkeypatch: pytest.MonkeyPatch, fps: dict[str, float], precision: str, f1: float | None) -> list:
    """The timing subprocess answers ``fps`` per folder (what the real one prints), and records its command."""
    calls: list = []
    real_run = subprocess.run

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        if "--time" not in cmd:  # anything else (the CPU's description) runs for real
            return real_run(cmd, **kwargs)
        calls.append(cmd)
        folders = cmd[cmd.index("--time") + 1:cmd.index("--imgsz")]
        checked = None if f1 is None else {"precision": f1, "recall": f1, "f1": f1, "images": 60}
        answer = {"fps": {f: fps["openvino-int8" if "int8" in f else "openvino"] for f in folders},
                  "fp32_precision": precision, "fp32_agreement": checked}
        return subprocess.CompletedProcess(cmd, 0, json.dumps(answer) + "\n", "")

    monkeypatch.setattr(export.subprocess, "run", fake_run)
    return calls


@pytest.mark.parametrize("precision, f1, chosen", [
    ("f32", None, "openvino"),  # FP32 at full precision: the faster one runs
    ("bf16", 0.98, "openvino"),  # below FP32 (AMX), it passed the gate: still the faster one
    ("bf16", 0.50, "openvino-int8"),  # below FP32 and it failed the gate: the slower INT8 that passed runs
])
def test_the_faster_export_that_passed_its_accuracy_check_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               precision: str, f1: float | None, chosen: str) -> None:
    monkeypatch.setenv("SURVEILLANCE_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "m.pt"
    weights.write_bytes(b"weights")
    calls = _timing(monkeypatch, {"openvino-int8": 270.0, "openvino": 337.0}, precision, f1)
    cfg = DetectorConfig(imgsz=320, threads=2, streams=2)
    choice = _timed_choice(weights, cfg, _candidates(tmp_path), None)
    assert choice["chosen"] == chosen and choice["fps"] == {"openvino-int8": 270.0, "openvino": 337.0}
    assert choice["fp32_precision"] == precision and choice["streams"] == 2 and choice["threads"] == 2
    assert (choice["fp32_agreement_with_pt"] or {}).get("f1") == f1
    cmd = calls[0]
    assert cmd[cmd.index("--streams") + 1] == "2" and cmd[cmd.index("--check-fp32") + 1].endswith(
        "m-openvino_openvino_model")
    # cached per CPU, batch, threads and streams: asked again, no second timing
    assert _timed_choice(weights, cfg, _candidates(tmp_path), None)["chosen"] == chosen and len(calls) == 1
    _timed_choice(weights, DetectorConfig(imgsz=320, threads=2, streams=1), _candidates(tmp_path), None)
    assert len(calls) == 2
