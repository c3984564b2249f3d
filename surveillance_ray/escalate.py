"""Escalation: a bounded queue of alerts waiting for the VLM, off the frame path.

Ingest actors ``submit`` evidence without waiting; when the queue is full the oldest escalation is
dropped (counted, its alert stays unreviewed). Workers review through the ``VLMClient`` and hand each
``Review`` to the validator, which writes it onto the alert in the store and emits ``alert_reviewed``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any

import ray
from ray.util import metrics

from surveillance_ray.config import VLMConfig, VLMEndpoint
from surveillance_ray.evidence import Evidence
from surveillance_ray.stats import LatencyHistogram
from surveillance_ray.verdict import Mode, Review, ReviewStatus
from surveillance_ray.vlm import VLMClient

logger = logging.getLogger(__name__)
DELIVERY_TRIES = 20  # the validator restarts within seconds after a crash


class Escalator:
    """The escalation queue and its workers (a Ray actor, async)."""

    def __init__(self, config: VLMConfig, endpoints: list[VLMEndpoint], validator: Any) -> None:
        self.config = config
        self._client = VLMClient(config, endpoints)
        self._validator = validator
        self._queue: deque[Evidence] = deque()
        self._ready: asyncio.Event | None = None
        self._workers: list[asyncio.Task] = []
        self._busy = 0
        self.counts: Counter[str] = Counter()
        self.latency: dict[str, LatencyHistogram] = {m.value: LatencyHistogram() for m in Mode}
        tags = ("mode",)
        self._m_count = {k: metrics.Counter(f"surveillance_escalations_{k}", f"Escalations {k}", tag_keys=tags)
                         for k in ("queued", "reviewed", "failed", "dropped")}
        self._m_latency = metrics.Histogram("surveillance_review_latency_ms", "Queue to verdict (ms)",
                                            boundaries=[100, 250, 500, 1000, 2500, 5000, 10000, 30000], tag_keys=tags)

    def _start(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(self.config.workers)]

    def _count(self, kind: str, mode: str) -> None:
        self.counts[kind] += 1
        self._m_count[kind].inc(tags={"mode": mode})

    async def submit(self, evidence: Evidence) -> None:
        """Queue one escalation (returns at once); a full queue drops its oldest."""
        self._start()
        if len(self._queue) >= self.config.queue_size:
            old = self._queue.popleft()
            self._count("dropped", old.mode)
            logger.warning("escalation queue full (%d): dropped alert %s", self.config.queue_size, old.alert_id)
            await self._deliver(Review(alert_id=old.alert_id, camera=old.request.stream_id,
                                       status=ReviewStatus.UNREVIEWED, mode=Mode(old.mode), reviewed_at=time.time(),
                                       error=f"dropped: escalation queue full ({self.config.queue_size})"))
        self._queue.append(evidence)
        self._count("queued", evidence.mode)
        self._ready.set()

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            evidence = self._queue.popleft()
            self._busy += 1
            try:
                review = await self._client.review(evidence)
                if review.status is ReviewStatus.UNREVIEWED:
                    self._count("failed", evidence.mode)
                    logger.warning("alert %s unreviewed: %s", evidence.alert_id, review.error)
                else:
                    self._count("reviewed", evidence.mode)
                    self.latency[evidence.mode].add(review.latency_s or 0.0)
                    self._m_latency.observe((review.latency_s or 0.0) * 1000, tags={"mode": evidence.mode})
                await self._deliver(review)
            except Exception:  # noqa: BLE001 - a worker must survive anything one review does
                logger.exception("escalation of alert %s failed", evidence.alert_id)
                self._count("failed", evidence.mode)
            finally:
                self._busy -= 1

    async def _deliver(self, review: Review) -> None:
        """Hand the review to the validator (retried while it restarts: a review is never lost silently)."""
        for attempt in range(DELIVERY_TRIES):
            try:
                await self._validator.reviewed.remote(review.model_dump(mode="json"))
                return
            except Exception as exc:  # noqa: BLE001
                if attempt == DELIVERY_TRIES - 1:
                    self.counts["undelivered"] += 1
                    logger.error("review of alert %s not delivered: %s", review.alert_id, exc)
                    return
                await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt))

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued escalation is answered (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self._queue and not self._busy

    def stats(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "queued_now": len(self._queue), "in_review": self._busy,
                "latency_ms": {m: h.percentiles() for m, h in self.latency.items() if len(h)},
                "open_circuits": [url for url, b in self._client.breakers.items() if b.open]}


EscalatorActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(Escalator)
