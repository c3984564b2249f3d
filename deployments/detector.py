"""Ray Serve wrapper of ``surveillance_ray.detect.Detector``: batches frames across all ingest actors; a
``DetectorScheduler`` runs the passes, camera frames first and auxiliary work on its budget."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from ray import serve

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.messages import AuxAnswer, Detections
from surveillance_ray.scheduler import DetectorScheduler


@serve.deployment(name="YOLODetector")
class YOLODetector:
    def __init__(self, config: dict[str, Any]) -> None:
        cfg = DetectorConfig(**config)
        self.config = cfg
        self.detector = Detector(cfg)
        self.scheduler = DetectorScheduler(self.detector.detect, self.detector.detect_aux, share=cfg.aux_share,
                                           max_batch=cfg.max_batch_size, queue_size=cfg.aux_queue,
                                           wait_s=cfg.aux_wait_s)
        self.detect_batch.set_max_batch_size(cfg.max_batch_size)
        self.detect_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.batch_sizes: dict[int, int] = {}
        self.requests = 0

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def detect_batch(self, requests: list[list[np.ndarray]], live: list[bool],
                           ages: list[list[float | None] | None]) -> list[list[Detections | str]]:
        """Requests of several callers, each a list of frames, whether a live camera's and each frame's age
        (see ``DetectorScheduler.frames``): one forward pass (per ``max_batch_size`` frames)."""
        frames = [image for request in requests for image in request]
        self.requests += len(requests)
        self.batch_sizes[len(frames)] = self.batch_sizes.get(len(frames), 0) + 1
        now, most = self.scheduler.now(), self.config.max_frame_age_s
        deadlines = [None if most is None or age is None else now - age + most
                     for request, request_ages in zip(requests, ages)
                     for age in (request_ages or [None] * len(request))]
        detections = await self.scheduler.frames(frames, live=any(live), deadlines=deadlines)
        out, start = [], 0
        for request in requests:
            out.append(detections[start:start + len(request)])
            start += len(request)
        return out

    async def detect_frames(self, images: list[np.ndarray], live: bool = True,
                            ages: list[float | None] | None = None) -> list[Detections | str]:
        """Several frames (one per camera of an ingest actor) in, their detections out, in order. ``live``:
        False when every camera of the request waits for the detector (files read as fast as possible).
        ``ages``: seconds since each frame's capture (None: a frame that waits for the detector); a frame
        older than ``max_frame_age_s`` when its pass begins is answered ``"stale"`` instead."""
        return await self.detect_batch(list(images), live, ages)

    async def detect_aux(self, images: list[np.ndarray], kind: str = "crop",
                         wait_s: float | None = None) -> list[AuxAnswer]:
        """Auxiliary images (second-opinion crops, uploads) on the auxiliary budget: per image its detections,
        or why it was skipped (``wait_s``: how long it may wait for detector time; the config's by default)."""
        out = await self.scheduler.aux(list(images), kind, wait_s)
        return [AuxAnswer(None, r) if isinstance(r, str) else AuxAnswer(r) for r in out]

    async def detect(self, image: np.ndarray) -> Detections:
        """One frame in, its detections out (batched with other callers' frames)."""
        return (await self.detect_batch([image], True, None))[0]

    def names(self) -> dict[int, str]:
        return self.detector.names

    def stats(self) -> dict[str, Any]:
        return {"batches": self.detector.batches, "frames": self.detector.frames, "crops": self.detector.crops,
                "aux": dict(self.detector.aux), "requests": self.requests,
                "batch_sizes": dict(sorted(self.batch_sizes.items())), "torch_imported": "torch" in sys.modules,
                "scheduler": self.scheduler.stats.as_dict(self.scheduler.now()), "aux_share_budget": self.config.aux_share,
                **self.detector.describe()}

    async def check_health(self) -> None:
        """Serve calls this periodically; raising marks the replica unhealthy and restarts it. Frames that went
        through lately prove the model works; else a probe pass, as auxiliary work."""
        if self.scheduler.busy():
            return
        [answer] = await self.scheduler.aux([self.detector.probe_image()], "probe", wait_s=10.0)
        if isinstance(answer, str):
            raise RuntimeError(f"detector health probe not run: {answer}")


def detector_app(config: DetectorConfig) -> serve.Application:
    """The deployment bound with its config; resources, replicas and concurrency derived from it."""
    scaling: dict[str, Any] = {"num_replicas": config.num_replicas}
    if config.autoscaling is not None:
        scaling = {"num_replicas": "auto", "autoscaling_config": config.autoscaling.model_dump()}
    return YOLODetector.options(
        # Serve warns when fewer requests may be in flight than a batch holds; two batches' worth
        # lets the next batch fill while one runs. Auxiliary work never holds more than a few of these
        # (one request per ingest actor): the replica's slots stay free for frames.
        max_ongoing_requests=2 * config.max_batch_size,
        ray_actor_options={"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
        **scaling,
    ).bind(config.model_dump(mode="json"))
