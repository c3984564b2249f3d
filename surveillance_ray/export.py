"""The model the detector runs: a ``.pt`` exported once by ultralytics to a faster CPU backend, cached.

``detector.backend: auto`` on a CPU device exports a ``.pt`` to OpenVINO INT8 (NNCF post-training
quantization, calibrated on images that are not the evaluation footage; rejected when it disagrees with
the ``.pt`` on held-out images) and to OpenVINO FP32, times both at the deployment's batch and threads on
this CPU, and runs the faster one that passed (INT8 is 1.5-3x FP32 with VNNI, less without); torch when
OpenVINO is not installed. Exports are cached per (weights content, backend, imgsz, ultralytics and
OpenVINO versions) under ``~/.cache/surveillance-ray/models`` (``SURVEILLANCE_CACHE``) with a model card
(``card.json``), the choice per CPU (model, ISA flags) beside them and in the cards; a file lock keeps
concurrent replicas from exporting twice. Exports and timings run in a child process
(``python -m surveillance_ray.export``) so the replica does not keep their memory.

    python -m surveillance_ray.export --weights yolov8n.pt --backend openvino-int8 --imgsz 320
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from surveillance_ray.config import DetectorConfig, assets_dir
from surveillance_ray.hardware import cpu_info, cpu_label, cpu_tag

logger = logging.getLogger(__name__)

#: Image folders of the shared assets used for INT8 calibration: other scenes than PETS09-S2L1,
#: the footage accuracy is measured on.
CALIBRATION_SETS = ("mot/PETS09-S3-MF1/img1", "mot/SIwR-c6s1/img1", "mot/TUD-Campus/img1",
                    "mot/MOT17-mini/train/*/img1", "datasets/coco8/images/*")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
AGREEMENT_MIN_F1 = 0.90  # an INT8 export must find the .pt's detections (IoU >= 0.5, same class) this well


class ExportError(RuntimeError):
    """The model could not be exported; the message names the field."""


class UnloadableModel(ExportError):
    """The weights themselves cannot be loaded: no other backend would do better."""


LOAD_FAILED = 3  # exit status of the export process when the weights do not load


@dataclass(frozen=True)
class ResolvedModel:
    """What the detector loads: ``weights`` (a file or an exported folder) and which backend it is."""

    weights: str
    backend: str  # torch, openvino, openvino-int8, onnx, or native (a non-.pt file run as given)
    source: str  # the configured weights
    card: dict | None = None


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(config: DetectorConfig) -> str:
    """The backend ``detector.backend`` means for this config (``auto`` decided here)."""
    if not config.weights.endswith(".pt"):
        return "native"
    if config.backend != "auto":
        return config.backend
    if config.device != "cpu":
        return "torch"  # on a GPU the .pt runs as it is (TensorRT engines are given as .engine)
    if has("openvino"):
        return "openvino-int8" if has("nncf") else "openvino"
    return "torch"


def cache_root() -> Path:
    root = Path(os.environ.get("SURVEILLANCE_CACHE", Path.home() / ".cache" / "surveillance-ray")) / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("ultralytics", "openvino", "nncf", "onnx"):
        try:
            parts.append(f"{pkg}{version(pkg)}")
        except PackageNotFoundError:
            continue
    return "-".join(parts)


def export_dir(weights: Path, backend: str, imgsz: int, calibration: str | None) -> Path:
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    key = f"{backend}|{imgsz if backend == 'openvino-int8' else ''}|{calibration or ''}|{_versions()}"
    tag = hashlib.sha256(key.encode()).hexdigest()[:10]
    suffix = ".onnx" if backend == "onnx" else "_openvino_model"  # ultralytics tells formats by these names
    return cache_root() / f"{weights.stem}-{digest}-{backend}-{tag}{suffix}"


def resolve(config: DetectorConfig) -> ResolvedModel:
    """The model to load for ``config``: exports (in a child process, once, under a lock) when needed."""
    backend = choose_backend(config)
    if backend in ("native", "torch"):
        return ResolvedModel(config.weights, backend, config.weights)
    weights = Path(config.weights)
    if not weights.is_file():  # a hub name (yolov8n.pt): ultralytics downloads it on first use
        from ultralytics.utils.downloads import attempt_download_asset

        weights = Path(attempt_download_asset(config.weights))
    if backend == "openvino-int8" and config.backend == "auto":
        return fastest_on_this_cpu(weights, config)
    return _resolve_one(weights, backend, config)


def fastest_on_this_cpu(weights: Path, config: DetectorConfig) -> ResolvedModel:
    """OpenVINO INT8 or FP32, whichever runs faster here at the deployment's batch and threads, among the
    exports that passed the accuracy check; the choice (both figures, the CPU) is cached per CPU."""
    candidates, rejected = [], None
    try:
        candidates.append(_resolve_one(weights, "openvino-int8", config))
    except UnloadableModel:
        raise
    except ExportError as exc:
        rejected = str(exc)
        logger.warning("INT8 export not used (%s); OpenVINO FP32 runs", exc)
    candidates.append(_resolve_one(weights, "openvino", config))
    choice = _timed_choice(weights, config, candidates, rejected)
    chosen = next(c for c in candidates if c.backend == choice["chosen"])
    return replace(chosen, card={**(chosen.card or {}), "backend_choice": choice})


def _stream_key(streams: int) -> str:
    """The choice's cache-key part for ``streams`` (empty for one stream: earlier choices stay valid)."""
    return f"-s{streams}" if streams > 1 else ""


def _timed_choice(weights: Path, config: DetectorConfig, candidates: list[ResolvedModel],
                  rejected: str | None) -> dict:
    batch, threads, streams = config.max_batch_size, config.inference_threads, config.inference_streams
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    setting = f"{config.imgsz}|{batch}|{threads}{_stream_key(streams)}|{_versions()}"
    key = hashlib.sha256(setting.encode()).hexdigest()[:10]
    path = cache_root() / f"{weights.stem}-{digest}-choice-{key}-cpu{cpu_tag()}.json"
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            return json.loads(path.read_text())
        fps: dict[str, float] = {}
        precision, checked = None, None
        if len(candidates) > 1:
            fp32 = next(c.weights for c in candidates if c.backend == "openvino")
            cmd = [sys.executable, "-m", "surveillance_ray.export", "--time", *(c.weights for c in candidates),
                   "--imgsz", str(config.imgsz), "--batch", str(batch), "--threads", str(threads),
                   "--streams", str(streams), "--check-fp32", fp32, "--weights", str(weights)]
            if config.int8_calibration:  # the FP32 check holds out the images the INT8 one does
                cmd += ["--calibration", config.int8_calibration]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                tail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
                raise ExportError(f"detector.backend=auto: timing the exports failed: {tail}")
            timed = json.loads(done.stdout.strip().splitlines()[-1])
            fps = {c.backend: timed["fps"][c.weights] for c in candidates}
            precision, checked = timed["fp32_precision"], timed.get("fp32_agreement")
        passed = {k: v for k, v in fps.items()
                  if not (k == "openvino" and checked and checked["f1"] < AGREEMENT_MIN_F1)}
        chosen = max(passed, key=passed.get) if passed else candidates[0].backend
        choice = {"chosen": chosen, "fps": fps, "batch": batch, "threads": threads, "streams": streams,
                  "imgsz": config.imgsz, "int8_rejected": rejected, "fp32_precision": precision,
                  "fp32_agreement_with_pt": checked, "cpu": cpu_label(), "cpu_info": cpu_info(),
                  "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        path.write_text(json.dumps(choice, indent=2))
        for c in candidates:  # each card records the choice of every CPU (and batch, threads) it was timed on
            card_file = Path(c.weights).parent / f"{Path(c.weights).name}.card.json"
            card = json.loads(card_file.read_text())
            card.setdefault("backend_choice", {})[f"cpu{cpu_tag()}-b{batch}-t{threads}{_stream_key(streams)}"] = choice
            card_file.write_text(json.dumps(card, indent=2))
    logger.info("detector: %s chosen on %s (frames/s at batch %d: %s)", chosen, cpu_label(), batch,
                ", ".join(f"{k} {v:.0f}" for k, v in fps.items()) or "the only export that passed")
    return choice


def _resolve_one(weights: Path, backend: str, config: DetectorConfig) -> ResolvedModel:
    target = export_dir(weights, backend, config.imgsz, config.int8_calibration)
    card_file = target.parent / f"{target.name}.card.json"
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not card_file.is_file():
            cmd = [sys.executable, "-m", "surveillance_ray.export", "--weights", str(weights), "--backend", backend,
                   "--imgsz", str(config.imgsz), "--out", str(target)]
            if config.int8_calibration:
                cmd += ["--calibration", config.int8_calibration]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            tail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
            if done.returncode == LOAD_FAILED:
                raise UnloadableModel(f"detector.weights: cannot load model {str(weights)!r}: {tail}")
            if done.returncode != 0 or not card_file.is_file():
                raise ExportError(f"detector.backend={backend}: export of {weights} failed: {tail}")
    card = json.loads(card_file.read_text())
    if not card.get("accepted", True):
        raise ExportError(card.get("reason", "rejected by the accuracy check"))
    return ResolvedModel(str(target), backend, str(weights), card)


# -- the export itself (child process) -----------------------------------------------------
def calibration_images(calibration: str | None) -> list[Path]:
    """Images for INT8 calibration: a folder (recursively), or the shared assets' other scenes."""
    if calibration:
        root = Path(calibration)
        if not root.is_dir():
            raise ExportError(f"detector.int8_calibration: not a folder of images: {calibration}")
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        assets = assets_dir()
        if assets is None:
            raise ExportError("detector.int8_calibration: no calibration images (set it to a folder of frames "
                              "from your cameras)")
        images = sorted(p for pattern in CALIBRATION_SETS for p in assets.glob(f"{pattern}/*")
                        if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(images) < 32:
        raise ExportError(f"detector.int8_calibration: {len(images)} images found, need at least 32")
    return images


def _dataset(images: list[Path], names: dict[int, str], root: Path) -> Path:
    """A YOLO dataset yaml whose val split holds ``images`` (symlinks; no labels: calibration needs none)."""
    val = root / "images" / "val"
    val.mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for i, image in enumerate(images):
        (val / f"{i:06d}{image.suffix.lower()}").symlink_to(image.resolve())
    lines = [f"path: {root}", "train: images/val", "val: images/val", "names:"]
    lines += [f"  {i}: {json.dumps(n)}" for i, n in names.items()]
    yaml_file = root / "data.yaml"
    yaml_file.write_text("\n".join(lines) + "\n")
    return yaml_file


def held_out_images(images: list[Path]) -> list[Path]:
    """The images an export is checked on: every 5th (INT8 calibrates on the others), at most 64."""
    return images[::5][:64]


def agreement(reference: object, candidate: object, images: list[Path], imgsz: int) -> dict[str, float]:
    """How well ``candidate`` finds ``reference``'s detections (same class, IoU >= 0.5, conf >= 0.25)."""
    import numpy as np
    import supervision as sv

    tp = fp = fn = 0
    for image in images:
        r = reference.predict(str(image), imgsz=imgsz, conf=0.25, verbose=False)[0].boxes
        c = candidate.predict(str(image), imgsz=imgsz, conf=0.25, verbose=False)[0].boxes
        rb, cb = r.xyxy.cpu().numpy(), c.xyxy.cpu().numpy()
        rc, cc = r.cls.cpu().numpy(), c.cls.cpu().numpy()
        matched = 0
        if len(rb) and len(cb):
            iou = sv.box_iou_batch(rb, cb) * (rc[:, None] == cc[None, :])
            pairs = np.argwhere(iou >= 0.5)
            used_r: set[int] = set()
            used_c: set[int] = set()
            for i, j in pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]])]:  # greedy, best IoU first
                if i not in used_r and j not in used_c:
                    used_r.add(i)
                    used_c.add(j)
            matched = len(used_r)
        tp += matched
        fn += len(rb) - matched
        fp += len(cb) - matched
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "reference_boxes": tp + fn, "images": len(images)}


def export(weights: Path, backend: str, imgsz: int, out: Path, calibration: str | None) -> dict:
    """Export ``weights`` to ``out`` with ultralytics; write and return its model card."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    from ultralytics import YOLO

    started = time.time()
    card: dict = {"source": str(weights), "source_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                  "backend": backend, "imgsz": imgsz, "versions": _versions(), "dynamic_batch": True}
    with tempfile.TemporaryDirectory(prefix="sr-export-") as tmp:
        work = Path(tmp)
        local = work / weights.name  # ultralytics writes next to the weights: never beside the original
        shutil.copy(weights, local)
        try:
            model = YOLO(str(local), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad file
            print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
            sys.exit(LOAD_FAILED)
        kwargs: dict = {"imgsz": imgsz, "dynamic": True, "batch": 16, "verbose": False}
        held_out: list[Path] = []
        if backend == "onnx":
            kwargs["format"] = "onnx"
        else:
            kwargs["format"] = "openvino"
        if backend == "openvino-int8":
            images = calibration_images(calibration)
            held_out, used = held_out_images(images), [p for i, p in enumerate(images) if i % 5]
            kwargs.update(int8=True, data=str(_dataset(used, model.names, work / "calib")), fraction=1.0)
            card["calibration"] = {"images": len(used), "from": calibration or list(CALIBRATION_SETS)}
        produced = Path(YOLO(str(local), task="detect").export(**kwargs))
        if held_out:
            card["agreement_with_pt"] = agreement(model, YOLO(str(produced), task="detect"), held_out, imgsz)
            card["accepted"] = card["agreement_with_pt"]["f1"] >= AGREEMENT_MIN_F1
            if not card["accepted"]:
                card["reason"] = (f"INT8 export agrees with the .pt at F1 {card['agreement_with_pt']['f1']} < "
                                  f"{AGREEMENT_MIN_F1} on {len(held_out)} held-out images")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        shutil.move(str(produced), out)
    card["export_s"] = round(time.time() - started, 1)
    card["weights"] = str(out)
    (out.parent / f"{out.name}.card.json").write_text(json.dumps(card, indent=2))
    return card


def fp32_precision() -> str:
    """The precision OpenVINO runs FP32 models at on this CPU by default ("f32"; "bf16" on CPUs with AMX)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def time_models(folders: list[str], imgsz: int, batch: int, threads: int, streams: int = 1, rounds: int = 5,
                round_s: float = 0.8) -> dict[str, float]:
    """Frames/s of each OpenVINO export on batches of ``batch`` frames (real footage when the shared assets are
    here, else noise), the models taking turns so that a noisy machine bears on each alike; the median round."""
    import statistics

    import cv2
    import numpy as np

    from surveillance_ray.capture import fit_to_model
    from surveillance_ray.runtimes import OpenVINORuntime

    try:
        files = calibration_images(None)[:batch]
        frames = [fit_to_model(cv2.imread(str(f)), imgsz)[0] for f in files]
        frames = [cv2.resize(f, (imgsz, imgsz * 3 // 4)) for f in frames]  # one shape, as a camera's frames
    except ExportError:
        frames = []
    while len(frames) < batch:
        frames.append(np.random.default_rng(len(frames)).integers(0, 255, (imgsz * 3 // 4, imgsz, 3), np.uint8))
    runtimes = {f: OpenVINORuntime(f, imgsz, threads, streams) for f in folders}
    for runtime in runtimes.values():
        for _ in range(3):
            runtime.infer(frames, 0.25, 0.7, 300, None)
    rates: dict[str, list[float]] = {f: [] for f in folders}
    for _ in range(rounds):
        for folder, runtime in runtimes.items():
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < round_s:
                runtime.infer(frames, 0.25, 0.7, 300, None)
                n += len(frames)
            rates[folder].append(n / (time.perf_counter() - t0))
    return {f: round(statistics.median(r), 1) for f, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", nargs="+", metavar="FOLDER", help="time these OpenVINO exports (JSON: frames/s)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--check-fp32", metavar="FOLDER", help="with --time: check this FP32 export against "
                        "--weights when this CPU runs FP32 models below FP32 precision (bf16 on AMX)")
    parser.add_argument("--weights")
    parser.add_argument("--backend", choices=["openvino", "openvino-int8", "onnx"], default="openvino-int8")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--calibration", help="folder of images for INT8 calibration")
    parser.add_argument("--out", help="output path (default: the cache)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.time:
        fps = time_models(args.time, args.imgsz, args.batch, args.threads or os.cpu_count() or 1, args.streams)
        precision = fp32_precision()
        checked = None
        if args.check_fp32 and precision != "f32":  # the "FP32" export runs below FP32 here: gate it as INT8 is
            from ultralytics import YOLO

            try:
                held_out = held_out_images(calibration_images(args.calibration))
            except ExportError:  # no shared assets: nothing to check on, as for an INT8 export without them
                held_out = []
            if held_out:
                checked = agreement(YOLO(args.weights, task="detect"), YOLO(args.check_fp32, task="detect"),
                                    held_out, args.imgsz)
        print(json.dumps({"fps": fps, "fp32_precision": precision, "fp32_agreement": checked}))
        return
    if not args.weights:
        parser.error("--weights is required")
    if args.out:
        card = export(Path(args.weights), args.backend, args.imgsz, Path(args.out), args.calibration)
    else:
        cfg = DetectorConfig(weights=args.weights, backend=args.backend, imgsz=args.imgsz,
                             int8_calibration=args.calibration)
        card = resolve(cfg).card or {}
    print(json.dumps(asdict(ResolvedModel(card.get("weights", ""), args.backend, args.weights, None)) | {"card": card}))


if __name__ == "__main__":
    main()
