"""cluster.yaml, serve_config.yaml, the KubeRay example and deployments/cluster-settings.yaml agree."""

from pathlib import Path

import yaml

from surveillance_ray.config import VLM_APP, VLM_ROUTE, load_settings

ROOT = Path(__file__).resolve().parents[2]


def settings():
    return load_settings(ROOT / "deployments" / "cluster-settings.yaml")


def test_serve_config_is_built_from_the_cluster_settings() -> None:
    det = settings().detector
    serve_config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app, _vlm = serve_config["applications"]
    assert app["name"] == "surveillance-detector" and app["import_path"] == "deployments.app:app"
    assert app["route_prefix"] is None and serve_config["logging_config"]["enable_access_log"] is False
    [dep] = app["deployments"]
    assert dep["ray_actor_options"]["num_cpus"] == det.num_cpus
    assert dep["max_ongoing_requests"] == 2 * det.max_batch_size
    scaling = dep["autoscaling_config"]
    assert det.autoscaling is not None
    for key in ("min_replicas", "max_replicas", "target_ongoing_requests", "upscale_delay_s", "downscale_delay_s"):
        assert scaling[key] == getattr(det.autoscaling, key), key


def test_serve_config_carries_the_vlm_of_the_cluster_settings() -> None:
    vlm = settings().vlm.serve
    _, app = yaml.safe_load((ROOT / "serve_config.yaml").read_text())["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == (VLM_APP, VLM_ROUTE, "deployments.vlm:app")
    assert app["runtime_env"]["py_executable"] == vlm.python  # its own environment (cluster.yaml's gpu_worker)
    assert app["runtime_env"]["env_vars"]["SURVEILLANCE_VLM_APP"] == "1"
    [server] = [d for d in app["deployments"] if d["name"].startswith("LLMServer")]
    scaling = server["autoscaling_config"]
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (vlm.min_replicas, vlm.max_replicas)
    assert scaling["target_ongoing_requests"] == vlm.engine_kwargs["max_num_seqs"]  # scales when batches fill
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    gpu = cluster["available_node_types"]["gpu_worker"]
    assert vlm.accelerator == "gpu" and gpu["resources"]["GPU"] * gpu["max_workers"] >= vlm.max_replicas
    assert any(".venv-vlm" in cmd and "vllm" in cmd for cmd in gpu["worker_setup_commands"])


def test_cluster_node_types_fit_the_detector() -> None:
    det = settings().detector
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    workers = {k: v for k, v in cluster["available_node_types"].items() if k != cluster["head_node_type"]}
    cpu = workers["cpu_worker"]
    assert cpu["resources"]["CPU"] >= det.num_cpus  # a replica fits on one worker
    assert cpu["resources"]["CPU"] * cpu["max_workers"] >= det.autoscaling.max_replicas * det.num_cpus
    assert cluster["max_workers"] >= sum(w["max_workers"] for w in workers.values())


def test_kuberay_example_matches() -> None:
    det = settings().detector
    job = yaml.safe_load((ROOT / "deployments" / "kuberay" / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["entrypoint"].startswith("surveillance-ray run --config /config/")
    [group] = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    cpus = int(group["rayStartParams"]["num-cpus"])
    assert cpus >= det.num_cpus and cpus * group["maxReplicas"] >= det.autoscaling.max_replicas * det.num_cpus
    configmap = yaml.safe_load((ROOT / "deployments" / "kuberay" / "cameras-configmap.yaml").read_text())
    cameras = yaml.safe_load(configmap["data"]["cameras.yaml"])
    for key in ("num_cpus", "imgsz", "max_batch_size"):
        assert cameras["detector"].get(key, getattr(det, key)) == getattr(det, key), key
    assert cameras["detector"]["autoscaling"] == {k: v for k, v in det.autoscaling.model_dump().items()
                                                  if k in cameras["detector"]["autoscaling"]}
    assert cameras["ingest"] == settings().ingest.model_dump(include=set(cameras["ingest"]))


def test_kuberay_cameras_config_is_valid(tmp_path: Path, weights: Path) -> None:
    configmap = yaml.safe_load((ROOT / "deployments" / "kuberay" / "cameras-configmap.yaml").read_text())
    cameras = yaml.safe_load(configmap["data"]["cameras.yaml"])
    assert cameras["detector"]["weights"].startswith("/opt/surveillance-ray/")  # where the image has it
    cameras["detector"]["weights"] = str(weights)  # the image's file is not on this machine
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(cameras))
    s = load_settings(path)
    assert [c.id for c in s.cameras] == ["lobby", "gate", "yard"] and s.detector.autoscaling is not None
