"""The detector's scheduler: one forward pass at a time, camera frames first, auxiliary work on a budget.

Camera frames are the detector's job. Auxiliary work (second-opinion crops, ``/detect`` uploads, health
probes) shares it on a budget: while cameras are running it may take at most ``share`` of the detector's
time (a token bucket of detector seconds), batched (under load an aux pass waits until a whole batch waits or
the oldest has waited half its wait), one aux pass between frame passes. An auxiliary image
that cannot start within its wait, or finds the queue full, is *skipped* with the reason: it is answered at
once, never queued without bound, so it cannot pile up in front of frames. With no *live* camera frame for
``idle_after_s`` auxiliary work runs freely: the detector is idle, or it only serves frames that wait for
it (files read as fast as possible, which lose nothing by waiting; an offline replay gets every second
opinion it asks, as it would on a fast machine).

A live camera's frame may carry a deadline (``detector.max_frame_age_s`` after its capture): when its pass
begins later than that, it is not run but answered ``STALE`` (its camera counts it dropped, reason ``stale``):
past the detector's share of a slow machine, frames waiting behind other passes would otherwise reach the
validator seconds late; the camera's next, newer frame goes instead.

Pure asyncio with the forward passes given as functions (the Serve deployment passes the detector's),
so the policy is unit-tested with a fake clock and fake passes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

SKIP_BUDGET = "budget"  # no detector time within its wait: the budget was spent on earlier auxiliary work
SKIP_QUEUE = "queue_full"  # too many auxiliary images waiting already
STALE = "stale"  # a live camera's frame past its deadline when its pass began: analysing it would only add latency


@dataclass
class AuxBudget:
    """Detector seconds for auxiliary work: ``share`` of every second accrues, up to ``burst_s``; work is
    charged what it took (the credit may fall to ``-burst_s``: later work waits until it is positive again)."""

    share: float
    burst_s: float
    credit: float = 0.0
    at: float | None = None

    def refill(self, now: float) -> None:
        self.credit = self.burst_s if self.at is None else min(self.burst_s, self.credit + self.share * (now - self.at))
        self.at = now

    def allows(self, now: float) -> bool:
        self.refill(now)
        return self.credit > 0

    @property
    def full(self) -> bool:
        """The credit is at its cap (as of the last refill): nothing has been spent lately."""
        return self.credit >= self.burst_s

    def charge(self, seconds: float, now: float) -> None:
        self.refill(now)
        self.credit = max(-self.burst_s, self.credit - seconds)

    def affordable(self, cost_each: float) -> int:
        """How many items of ``cost_each`` seconds the credit covers (at least one when it is positive)."""
        return max(1, math.ceil(self.credit / cost_each)) if cost_each > 0 else 1 << 30


@dataclass
class _AuxItem:
    image: Any
    kind: str
    deadline: float
    future: asyncio.Future
    queued_at: float


@dataclass
class SchedulerStats:
    """Cumulative: seconds the detector spent on each kind of work, passes, images, skips."""

    started: float
    busy_s: Counter = field(default_factory=Counter)  # "frames" / "aux"
    passes: Counter = field(default_factory=Counter)
    images: Counter = field(default_factory=Counter)  # frames, and aux images by kind ("crop", "upload", ...)
    skipped: Counter = field(default_factory=Counter)  # "<kind>:<reason>"
    aux_wait_s: float = 0.0  # summed over the aux images run: time from queued to started
    frames_delayed_s: float = 0.0  # aux passes that ran while frames waited

    def as_dict(self, now: float) -> dict[str, Any]:
        wall = max(1e-9, now - self.started)
        aux_images = sum(n for k, n in self.images.items() if k != "frames")
        return {"wall_s": round(wall, 2), "busy_s": {k: round(v, 3) for k, v in self.busy_s.items()},
                "busy_share": round(sum(self.busy_s.values()) / wall, 4),
                "aux_share": round(self.busy_s["aux"] / wall, 4), "passes": dict(self.passes),
                "images": dict(self.images), "skipped": dict(self.skipped),
                "aux_wait_ms_mean": round(1000 * self.aux_wait_s / aux_images, 1) if aux_images else None,
                "frames_delayed_by_aux_s": round(self.frames_delayed_s, 3)}


class DetectorScheduler:
    """Runs ``run_frames(images)`` and ``run_aux(images, kinds)`` one at a time on a worker task (each pass
    in a thread, off the event loop), by the policy in the module's docstring."""

    def __init__(self, run_frames: Callable[[list], list], run_aux: Callable[[list, list[str]], list], *,
                 share: float, max_batch: int, queue_size: int, wait_s: float, idle_after_s: float = 1.0,
                 burst_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 to_thread: Callable[..., Any] = asyncio.to_thread) -> None:
        self._run_frames, self._run_aux = run_frames, run_aux
        self.budget = AuxBudget(share, burst_s if burst_s is not None else max(0.05, 2.0 * share))
        self.max_batch, self.queue_size, self.wait_s, self.idle_after_s = max_batch, queue_size, wait_s, idle_after_s
        self._clock, self._to_thread = clock, to_thread
        self._frames: deque[tuple[list, asyncio.Future, bool, list]] = deque()  # (images, future, live, deadlines)
        self._aux: deque[_AuxItem] = deque()
        self._last_frames_at = -math.inf
        self._last_live_at = -math.inf
        self._last_kind = "aux"
        self._aux_cost = 0.0  # seconds per aux image (moving average): how many the credit covers
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self.stats = SchedulerStats(started=clock())

    # -- callers ---------------------------------------------------------------------------
    async def frames(self, images: list, live: bool = True, deadlines: list[float | None] | None = None) -> list:
        """Detections of camera frames (first in line). ``live``: frames of a camera that drops what it cannot
        send (these put auxiliary work on its budget); False for frames that wait for the detector.
        ``deadlines`` (this clock; None: none): a frame whose pass would begin after its deadline is not run,
        its answer is ``STALE``."""
        future = self._start().create_future()
        self._frames.append((images, future, live, deadlines or [None] * len(images)))
        self._wake.set()
        return await future

    async def aux(self, images: list, kind: str, wait_s: float | None = None) -> list:
        """Per image its detections, or the reason (a str) it was skipped."""
        loop = self._start()
        now = self._clock()
        wait = self.wait_s if wait_s is None else wait_s
        futures = []
        for image in images:
            future = loop.create_future()
            if len(self._aux) >= self.queue_size:
                self._skip(kind, SKIP_QUEUE, future)
            else:
                self._aux.append(_AuxItem(image, kind, now + wait, future, now))
            futures.append(future)
        self._wake.set()
        return list(await asyncio.gather(*futures))

    def now(self) -> float:
        return self._clock()

    def busy(self) -> bool:
        """Camera frames went through within ``idle_after_s`` (the detector is working for the cameras)."""
        return bool(self._frames) or self._clock() - self._last_frames_at < self.idle_after_s

    # -- the worker -------------------------------------------------------------------------
    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._work())
        return loop

    async def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._sleep_s())
                except asyncio.TimeoutError:
                    pass
                continue
            await self._run(*job)

    def _sleep_s(self) -> float | None:
        """Until the next aux deadline, the oldest aux image is overdue or urgent, or the credit covers a batch
        (None: nothing waits)."""
        if not self._aux:
            return None
        now = self._clock()
        self.budget.refill(now)
        first = self._aux[0]
        wait = first.deadline - first.queued_at
        times = [min(item.deadline for item in self._aux), first.queued_at + 0.5 * wait, first.queued_at + 0.8 * wait]
        if self.budget.share > 0:
            need = max(1e-6, min(self.max_batch, len(self._aux)) * self._aux_cost)
            times.append(now + (need - self.budget.credit) / self.budget.share)
        later = [t - now for t in times if t > now]
        return max(0.001, min(later)) if later else 0.001

    def _next(self) -> tuple[str, list, bool] | None:
        """The next pass: (kind, its work: frame jobs or aux items, whether frames were waiting)."""
        now = self._clock()
        self._expire(now)
        frames_wait = bool(self._frames)
        if self._aux:
            loaded = any(job[2] for job in self._frames) or now - self._last_live_at < self.idle_after_s
            # while in credit, in the gaps between frame passes or, once the oldest has waited half its wait, ahead
            # of waiting frames (one pass, never two in a row). Under load a pass of one crop costs nearly what a
            # pass of several does, so it waits for a batch: a whole one waiting, or the oldest overdue, and the
            # credit to cover it (unless the oldest is about to be skipped). At once while the credit is full
            # (light load). Without live frames: free, taking turns with frames that wait
            first = self._aux[0]
            waited, wait = now - first.queued_at, first.deadline - first.queued_at
            overdue, urgent = waited >= 0.5 * wait, waited >= 0.8 * wait
            alternate = not frames_wait or self._last_kind != "aux"
            ready = loaded and self.budget.allows(now) and (
                self.budget.full or ((len(self._aux) >= self.max_batch or overdue) and (urgent or (
                    self.budget.affordable(self._aux_cost) >= min(self.max_batch, len(self._aux))))))
            if (not loaded and alternate) or (ready and (not frames_wait or (overdue and self._last_kind != "aux"))):
                n = min(self.max_batch, len(self._aux), self.budget.affordable(self._aux_cost) if loaded else 1 << 30)
                items = [self._aux.popleft() for _ in range(n)]
                return "aux", items, frames_wait
        if frames_wait:
            jobs = [self._frames.popleft() for _ in range(len(self._frames))]
            return "frames", jobs, False
        return None

    async def _run(self, kind: str, work: list, frames_waited: bool) -> None:
        t0 = self._clock()
        if kind == "frames":
            fresh = [deadline is None or deadline > t0 for _, _, _, deadlines in work for deadline in deadlines]
            if not all(fresh):
                self.stats.skipped["frame:" + STALE] += fresh.count(False)
            if not any(fresh):  # nothing left to run: answer at once, the detector stays free
                self._answer_frames(work, [], fresh)
                return
            images = [image for image, ok in zip((image for batch, *_ in work for image in batch), fresh) if ok]
            futures = [f for _, f, *_ in work]
        else:
            images = [item.image for item in work]
            futures = [item.future for item in work]
            self.stats.aux_wait_s += sum(t0 - item.queued_at for item in work)
        try:
            if kind == "frames":
                out = await self._to_thread(self._run_frames, images)
            else:
                out = await self._to_thread(self._run_aux, images, [item.kind for item in work])
        except Exception as exc:  # noqa: BLE001 - the callers get the error, the worker goes on
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            out = None
        now = self._clock()
        took = now - t0
        self.stats.busy_s[kind] += took
        self.stats.passes[kind] += 1
        self._last_kind = kind
        if kind == "frames":
            self._last_frames_at = now
            if any(job[2] for job in work):
                self._last_live_at = now
            self.stats.images["frames"] += len(images)
            if out is not None:
                self._answer_frames(work, out, fresh)
            return
        self.budget.charge(took, now)
        if frames_waited:
            self.stats.frames_delayed_s += took
        per_image = took / max(1, len(work))
        self._aux_cost = per_image if self._aux_cost == 0 else 0.8 * self._aux_cost + 0.2 * per_image
        for item in work:
            self.stats.images[item.kind] += 1
        if out is not None:
            for future, result in zip(futures, out):
                if not future.done():
                    future.set_result(result)

    @staticmethod
    def _answer_frames(work: list, out: list, fresh: list[bool]) -> None:
        """Each frame job's answers: the pass's detections in order, ``STALE`` for the frames not run."""
        answers = iter(out)
        flags = iter(fresh)
        for batch, future, *_ in work:
            result = [next(answers) if next(flags) else STALE for _ in batch]
            if not future.done():
                future.set_result(result)

    def _expire(self, now: float) -> None:
        """Aux images past their wait are skipped: the budget had no time for them."""
        while self._aux and any(item.deadline <= now for item in self._aux):
            kept: deque[_AuxItem] = deque()
            for item in self._aux:
                if item.deadline <= now:
                    self._skip(item.kind, SKIP_BUDGET, item.future)
                else:
                    kept.append(item)
            self._aux = kept

    def _skip(self, kind: str, reason: str, future: asyncio.Future) -> None:
        self.stats.skipped[f"{kind}:{reason}"] += 1
        if not future.done():
            future.set_result(reason)
