"""The detector's scheduler: frames first, auxiliary work batched within its share, skipped with a reason."""

import asyncio

import pytest

from surveillance_ray.scheduler import SKIP_BUDGET, SKIP_QUEUE, STALE, AuxBudget, DetectorScheduler

FRAME_S, AUX_S = 0.010, 0.006  # detector seconds per frame / per aux image (a pass costs the sum)


class FakeDetector:
    """Passes that take fake time: the scheduler's clock moves only when the detector works (or a test moves it)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.passes: list[tuple[str, int]] = []

    def clock(self) -> float:
        return self.t

    async def to_thread(self, fn, *args):
        result = fn(*args)
        await asyncio.sleep(0)
        return result

    def frames(self, images: list) -> list:
        self.t += FRAME_S * len(images)
        self.passes.append(("frames", len(images)))
        return [f"det:{x}" for x in images]

    def aux(self, images: list, kinds: list[str]) -> list:
        self.t += AUX_S * len(images)
        self.passes.append(("aux", len(images)))
        return [f"aux:{x}" for x in images]


def scheduler(fake: FakeDetector, **kw) -> DetectorScheduler:
    options = {"share": 0.15, "max_batch": 8, "queue_size": 64, "wait_s": 1.0, "burst_s": 0.05} | kw
    return DetectorScheduler(fake.frames, fake.aux, clock=fake.clock, to_thread=fake.to_thread, **options)


def test_budget_accrues_its_share_up_to_the_burst_and_charges_what_work_took() -> None:
    b = AuxBudget(share=0.1, burst_s=0.2)
    assert b.allows(0.0) and b.credit == pytest.approx(0.2)  # starts full
    b.charge(0.5, 0.0)
    assert b.credit == pytest.approx(-0.2)  # never below -burst
    assert not b.allows(1.9)  # 0.1 s of credit per second: back above zero after 2 s
    assert b.allows(2.1)
    assert b.allows(9.0) and b.credit == pytest.approx(0.2)  # capped
    assert b.affordable(0.03) == 7 and AuxBudget(0.1, 0.2, credit=0.001, at=0).affordable(0.03) == 1


def test_under_saturating_frames_aux_gets_its_share_and_frames_the_rest() -> None:
    async def run() -> tuple[FakeDetector, DetectorScheduler, list]:
        fake = FakeDetector()
        sched = scheduler(fake)
        answers: list = []

        async def cameras() -> None:  # an ingest actor: one request of 8 frames in flight, always
            while fake.t < 20.0:
                out = await sched.frames(list(range(8)))
                assert out == [f"det:{i}" for i in range(8)]
                # every frame pass brings 3 new asks: far more than 15 % of the detector can answer
                for _ in range(3):
                    answers.append(asyncio.ensure_future(sched.aux(["crop"], "crop", wait_s=0.5)))

        await cameras()
        busy, passes = dict(sched.stats.busy_s), list(fake.passes)
        wall = fake.t
        fake.t += 2.0  # the cameras stopped: every ask still waiting is past its wait
        sched._wake.set()
        await asyncio.gather(*answers)
        return wall, busy, passes, sched, [a.result()[0] for a in answers]

    wall, busy, passes, sched, results = asyncio.run(run())
    stats = sched.stats.as_dict(wall)
    aux_s = busy["aux"]
    assert aux_s <= 0.15 * wall + 0.05 + 8 * AUX_S  # the share, the burst, at most one pass more
    assert aux_s >= 0.10 * wall  # and it does get its share
    assert busy["frames"] >= 0.84 * wall
    # never two aux passes in a row while the cameras run
    kinds = [k for k, _ in passes]
    assert all(not (a == b == "aux") for a, b in zip(kinds, kinds[1:]))
    answered = [r for r in results if r.startswith("aux:")]
    skipped = [r for r in results if r == SKIP_BUDGET]
    assert answered and skipped and len(answered) + len(skipped) == len(results)  # each answered or skipped
    assert stats["skipped"] == {f"crop:{SKIP_BUDGET}": len(skipped)}
    assert stats["images"]["crop"] == len(answered)
    assert max(n for k, n in passes if k == "aux") > 1  # batched


def test_under_load_aux_passes_wait_for_a_batch_and_answer_more_within_the_share() -> None:
    """A pass costs a fixed part plus a part per image (as a forward pass does): under saturating frames and
    asks, an aux pass waits for a whole batch (or its oldest to be overdue), so the share answers far more crops
    than one per pass would."""
    class Overhead(FakeDetector):
        def aux(self, images: list, kinds: list[str]) -> list:
            self.t += 0.015  # the pass's fixed cost, on top of AUX_S per image
            return super().aux(images, kinds)

    async def run() -> tuple[float, float, list, list]:
        fake = Overhead()
        sched = scheduler(fake, burst_s=0.3)
        answers: list = []
        while fake.t < 20.0:
            await sched.frames(list(range(8)))
            for _ in range(2):  # 25 asks a second: more than the share answers even in full batches
                answers.append(asyncio.ensure_future(sched.aux(["crop"], "crop", wait_s=1.0)))
        aux_s, wall, sizes = sched.stats.busy_s["aux"], fake.t, [n for k, n in fake.passes if k == "aux"]
        fake.t += 2.0  # the cameras stopped: what still waits is past its wait
        sched._wake.set()
        await asyncio.gather(*answers)
        return aux_s, wall, sizes, [a.result()[0] for a in answers]

    aux_s, wall, sizes, results = asyncio.run(run())
    assert aux_s <= 0.15 * wall + 0.3 + 0.015 + 8 * AUX_S  # within the share (and the burst)
    assert sum(sizes) / len(sizes) >= 4, sizes
    one_by_one = 0.15 * wall / (0.015 + AUX_S)  # what the share answers a crop per pass
    assert sum(r == "aux:crop" for r in results) >= 1.5 * one_by_one, (len(results), one_by_one)


def test_aux_runs_freely_when_the_cameras_leave_the_detector_idle() -> None:
    async def run() -> tuple[FakeDetector, DetectorScheduler, list]:
        fake = FakeDetector()
        sched = scheduler(fake, share=0.01, burst_s=0.001)
        out = await sched.aux([f"u{i}" for i in range(20)], "upload")
        return fake, sched, out

    fake, sched, out = asyncio.run(run())
    assert out == [f"aux:u{i}" for i in range(20)]
    assert [n for _, n in fake.passes] == [8, 8, 4]  # batches of max_batch, no credit needed
    assert sched.stats.busy_s["aux"] == pytest.approx(20 * AUX_S)


def test_frames_that_wait_for_the_detector_leave_aux_unbudgeted_taking_turns() -> None:
    """A file read as fast as possible saturates the detector but loses nothing by waiting: its replay gets
    every second opinion it asks, one aux pass between frame passes."""
    async def run() -> tuple[FakeDetector, list]:
        fake = FakeDetector()
        sched = scheduler(fake)
        answers: list = []
        while fake.t < 5.0:
            await sched.frames(list(range(8)), live=False)
            for _ in range(3):
                answers.append(asyncio.ensure_future(sched.aux(["crop"], "crop", wait_s=0.5)))
        await asyncio.gather(*answers)
        return fake, [a.result()[0] for a in answers]

    fake, results = asyncio.run(run())
    assert results and all(r == "aux:crop" for r in results)  # none skipped
    kinds = [k for k, _ in fake.passes]
    assert all(not (a == b == "aux") for a, b in zip(kinds, kinds[1:]))  # frames are not starved either


def test_frames_past_their_deadline_when_their_pass_begins_are_answered_stale_not_run() -> None:
    """Two requests wait behind a pass: the frames whose deadline passed meanwhile are not run (answered STALE,
    counted), the others are, each request's answers in its own order; a request with nothing fresh costs no pass."""
    async def run() -> tuple[FakeDetector, DetectorScheduler, list, list, list]:
        fake = FakeDetector()
        sched = scheduler(fake)
        first = asyncio.ensure_future(sched.frames(list(range(8))))  # runs at t=0, takes 0.08 s
        await asyncio.sleep(0)
        a = asyncio.ensure_future(sched.frames(["a0", "a1", "a2"], deadlines=[0.05, None, 1.0]))
        b = asyncio.ensure_future(sched.frames(["b0"], deadlines=[0.01]))
        await first
        results = await asyncio.gather(a, b)
        alone = await sched.frames(["c0"], deadlines=[fake.t - 0.001])
        return fake, sched, results[0], results[1], alone

    fake, sched, a, b, alone = asyncio.run(run())
    assert a == [STALE, "det:a1", "det:a2"] and b == [STALE] and alone == [STALE]
    assert fake.passes == [("frames", 8), ("frames", 2)]  # the stale frames were never run
    assert sched.stats.skipped == {f"frame:{STALE}": 3}


def test_a_full_queue_skips_at_once() -> None:
    async def run() -> list:
        fake = FakeDetector()
        sched = scheduler(fake, queue_size=3)
        return await sched.aux(["a", "b", "c", "d", "e"], "crop")

    out = asyncio.run(run())
    assert out[3:] == [SKIP_QUEUE, SKIP_QUEUE] and all(r.startswith("aux:") for r in out[:3])


def test_an_aux_image_that_cannot_start_within_its_wait_is_skipped() -> None:
    async def run() -> tuple[list, DetectorScheduler]:
        fake = FakeDetector()
        sched = scheduler(fake)
        sched.budget.charge(1.0, 0.0)  # credit spent: 0.05 s in debt, a third of a second to pay back
        await sched.frames([0])  # the cameras are working
        pending = asyncio.ensure_future(sched.aux(["x"], "crop", wait_s=0.2))
        await asyncio.sleep(0.01)
        assert not pending.done()  # no credit: it waits
        fake.t += 0.3  # its wait passes (frames still went through lately: no free time)
        sched._last_live_at = fake.t
        sched._wake.set()
        return await pending, sched

    out, sched = asyncio.run(run())
    assert out == [SKIP_BUDGET] and sched.stats.skipped == {f"crop:{SKIP_BUDGET}": 1}


def test_a_failing_pass_fails_its_callers_and_the_scheduler_goes_on() -> None:
    async def run() -> list:
        fake = FakeDetector()
        calls = []

        def broken(images):
            calls.append(len(images))
            if len(calls) == 1:
                raise RuntimeError("replica lost its model")
            return fake.frames(images)

        sched = DetectorScheduler(broken, fake.aux, share=0.15, max_batch=8, queue_size=8, wait_s=1.0,
                                  clock=fake.clock, to_thread=fake.to_thread)
        with pytest.raises(RuntimeError, match="lost its model"):
            await sched.frames([1, 2])
        return await sched.frames([3])

    assert asyncio.run(run()) == ["det:3"]
