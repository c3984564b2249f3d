"""Ray Serve wrapper of ``surveillance_ray.detect.Detector``: batches frames across all ingest actors."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import numpy as np
from ray import serve

from surveillance_ray.config import DetectorConfig
from surveillance_ray.detect import Detector
from surveillance_ray.messages import Detections


@serve.deployment(name="YOLODetector")
class YOLODetector:
    def __init__(self, config: dict[str, Any]) -> None:
        cfg = DetectorConfig(**config)
        self.detector = Detector(cfg)
        self.detect_batch.set_max_batch_size(cfg.max_batch_size)
        self.detect_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.batch_sizes: dict[int, int] = {}
        self.requests = 0

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def detect_batch(self, requests: list[list[np.ndarray]]) -> list[list[Detections]]:
        """Requests of several callers, each a list of frames: one forward pass (per ``max_batch_size`` frames)."""
        frames = [image for request in requests for image in request]
        self.requests += len(requests)
        self.batch_sizes[len(frames)] = self.batch_sizes.get(len(frames), 0) + 1
        # The forward pass runs off the event loop so the next batch can gather meanwhile.
        detections = await asyncio.to_thread(self.detector.detect, frames)
        out, start = [], 0
        for request in requests:
            out.append(detections[start:start + len(request)])
            start += len(request)
        return out

    async def detect_frames(self, images: list[np.ndarray]) -> list[Detections]:
        """Several frames (one per camera of an ingest actor) in, their detections out, in order."""
        return await self.detect_batch(list(images))

    async def detect_crops(self, images: list[np.ndarray]) -> list[Detections]:
        """Second-opinion crops: each on its own, never batched with frames (a crop's shape would change the
        frames' letterbox, and so their detections)."""
        return await asyncio.to_thread(self.detector.detect, list(images), True)

    async def detect(self, image: np.ndarray) -> Detections:
        """One frame in, its detections out (batched with other callers' frames)."""
        return (await self.detect_batch([image]))[0]

    def names(self) -> dict[int, str]:
        return self.detector.names

    def stats(self) -> dict[str, Any]:
        return {"batches": self.detector.batches, "frames": self.detector.frames, "crops": self.detector.crops,
                "requests": self.requests,
                "batch_sizes": dict(sorted(self.batch_sizes.items())), "torch_imported": "torch" in sys.modules,
                **self.detector.describe()}

    def check_health(self) -> None:
        """Serve calls this periodically; raising marks the replica unhealthy and restarts it."""
        if not self.detector.health()["ok"]:
            raise RuntimeError("detector health probe failed")


def detector_app(config: DetectorConfig) -> serve.Application:
    """The deployment bound with its config; resources, replicas and concurrency derived from it."""
    scaling: dict[str, Any] = {"num_replicas": config.num_replicas}
    if config.autoscaling is not None:
        scaling = {"num_replicas": "auto", "autoscaling_config": config.autoscaling.model_dump()}
    return YOLODetector.options(
        # Serve warns when fewer requests may be in flight than a batch holds; two batches' worth
        # lets the next batch fill while one runs.
        max_ongoing_requests=2 * config.max_batch_size,
        ray_actor_options={"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
        **scaling,
    ).bind(config.model_dump(mode="json"))
