"""The VLM deployment: Ray Serve LLM (vLLM engine) serving a vision-language model, OpenAI-compatible.

It runs in its own Python environment (``.venv-vlm``: vLLM pins its own torch), so this module is
imported only there: ``deploy`` (called from the pipeline's interpreter) starts a Ray task under that
interpreter (``runtime_env.py_executable``) that builds the application and hands it to Serve, in the
same Serve cluster as the detector, under the route prefix ``/vlm``. ``serve build deployments.vlm:app``
(from the VLM environment) gives its Serve config.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # Ray workers of the VLM environment start elsewhere
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from surveillance_ray.config import VLM_APP, VLM_ROUTE, VLMConfig, VLMServeConfig  # noqa: E402

logger = logging.getLogger(__name__)


def vlm_python(config: VLMServeConfig) -> str:
    """The VLM environment's interpreter."""
    if config.python:
        return config.python
    local = ROOT / ".venv-vlm" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def runtime_env(config: VLMServeConfig) -> dict[str, Any]:
    """The VLM's interpreter and environment. py_executable takes a command line: ``chrt --idle 0`` puts
    the replicas under SCHED_IDLE, which the engine's processes inherit."""
    python = vlm_python(config)
    if config.cpu_priority == "idle":
        chrt = shutil.which("chrt")
        if chrt is None:
            logger.warning("vlm.serve.cpu_priority idle: chrt (util-linux) not found, the VLM runs at normal priority")
        else:
            python = f"{chrt} --idle 0 {python}"
    return {"py_executable": python, "env_vars": dict(config.env)}


def build_app(config: VLMServeConfig) -> Any:
    """The OpenAI-compatible Serve application (ingress + one LLM server deployment)."""
    from ray.serve.llm import LLMConfig, build_openai_app

    gpu = config.accelerator == "gpu"
    llm = LLMConfig(
        model_loading_config={"model_id": config.model_id, "model_source": config.model_source},
        engine_kwargs=dict(config.engine_kwargs),
        runtime_env=runtime_env(config),
        accelerator_type=config.accelerator_type if gpu else None,
        # on CPU the engine's bundle holds one core; the replica itself asks for none, else a 2-core
        # machine is full and the ingress never schedules
        **({} if gpu else {"accelerator_config": {"kind": "cpu"},
                           "placement_group_config": {"bundles": [{"CPU": config.engine_cpus}]}}),
        deployment_config={
            # a replica counts as busy when its engine's batch is full (Serve LLM's default never scales up)
            "autoscaling_config": {"min_replicas": config.min_replicas, "max_replicas": config.max_replicas,
                                   "initial_replicas": max(1, config.min_replicas),
                                   "target_ongoing_requests": config.engine_kwargs.get("max_num_seqs", 4)},
            **({} if gpu else {"ray_actor_options": {"num_cpus": 0}}),
        },
    )
    return build_openai_app({
        "llm_configs": [llm],
        "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0, "runtime_env": runtime_env(config)}},
    })


def _run(config_json: str) -> str:
    """In the VLM environment: build and start the application (not waiting for the engine)."""
    from ray import serve

    config = VLMServeConfig.model_validate_json(config_json)
    serve._run(build_app(config), _blocking=False, name=VLM_APP, route_prefix=VLM_ROUTE)  # readiness: polled
    return VLM_APP


def deploy(config: VLMServeConfig) -> None:
    """Start the VLM application on the running Ray cluster from any interpreter (``_run`` is shipped by
    reference: the task imports this module under the VLM environment's interpreter)."""
    import ray

    env = runtime_env(config)
    env["env_vars"]["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    ray.get(ray.remote(num_cpus=0, runtime_env=env)(_run).remote(config.model_dump_json()))


def serve_config_of(path: str | None) -> VLMServeConfig:
    """``vlm.serve`` of a settings file (only that section: the VLM environment lacks the detector's and
    the validator's packages that the rest validates against)."""
    if not path:
        return VLMServeConfig()
    data = yaml.safe_load((ROOT / path).read_text()) or {}
    return VLMConfig.model_validate(data.get("vlm") or {}).serve


app = build_app(serve_config_of(os.environ.get("SURVEILLANCE_CONFIG"))) if os.environ.get("SURVEILLANCE_VLM_APP") else None
