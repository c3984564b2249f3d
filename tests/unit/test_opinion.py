import numpy as np

from surveillance_ray.messages import Detections
from surveillance_ray.opinion import agreement, crop_around, pad_crop


def test_crop_keeps_a_margin_and_maps_the_box() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    crop, box = crop_around(image, (50.0, 20.0, 90.0, 60.0))  # 40 x 40 box, 10 px margin each side
    assert crop.shape == (61, 61, 3) and np.array_equal(box, [10, 10, 50, 50])
    assert np.array_equal(crop[10, 10], image[20, 50])
    edge, box = crop_around(image, (0.0, 0.0, 20.0, 100.0))  # clipped at the frame's border
    assert edge.shape[:2] == (100, 26) and np.array_equal(box, [0, 0, 20, 100])


def test_agreement_is_the_best_overlapping_detection_of_the_class() -> None:
    box = np.array([10, 10, 50, 90], np.float32)
    dets = Detections(np.array([[12, 8, 52, 88], [11, 10, 49, 90], [200, 200, 240, 280]], np.float32),
                      np.array([0.6, 0.8, 0.95], np.float32), np.array([0, 2, 0], np.int32))
    assert agreement(dets, box, class_id=0) == np.float32(0.6)  # the car and the far-away person do not count
    assert agreement(dets, box, class_id=2) == np.float32(0.8)
    assert agreement(dets, box, class_id=5) == 0.0
    assert agreement(Detections.empty(), box, 0) == 0.0


def test_a_padded_crop_keeps_its_pixels_centred_on_grey() -> None:
    crop = np.full((60, 20, 3), 7, np.uint8)
    canvas, (x0, y0) = pad_crop(crop, 160)  # at imgsz 640: enlarged 4x instead of 10.7x
    assert canvas.shape == (160, 160, 3) and (x0, y0) == (70, 50)
    assert np.array_equal(canvas[y0:y0 + 60, x0:x0 + 20], crop) and canvas[0, 0, 0] == 114 and canvas.sum() == (
        160 * 160 - 60 * 20) * 3 * 114 + 60 * 20 * 3 * 7
    big = np.zeros((200, 300, 3), np.uint8)
    assert pad_crop(big, 160)[0] is big and pad_crop(big, 160)[1] == (0, 0)  # large enough: as it is
    wide, offset = pad_crop(np.zeros((100, 300, 3), np.uint8), 160)
    assert wide.shape == (160, 300, 3) and offset == (0, 30)


class _Method:
    def __init__(self, fn) -> None:
        self.fn = fn

    def remote(self, *args):
        return self.fn(*args)


class FakeDetector:
    """detect_aux as the Serve handle answers it: one request at a time is all an ingest actor may have."""

    def __init__(self, answer) -> None:
        self.requests: list[int] = []
        self.inflight = self.most_inflight = 0
        self.answer = answer
        self.detect_aux = _Method(self._detect_aux)

    async def _detect_aux(self, crops, kind):
        import asyncio

        self.inflight += 1
        self.most_inflight = max(self.most_inflight, self.inflight)
        self.requests.append(len(crops))
        await asyncio.sleep(0.01)
        self.inflight -= 1
        return [self.answer(i) for i in range(len(crops))]


class FakeValidator:
    def __init__(self) -> None:
        self.answers: list = []
        self.second_opinions = _Method(self._take)

    async def _take(self, answers):
        self.answers += answers


def test_second_opinions_go_in_batches_one_request_at_a_time_and_a_full_backlog_skips_the_oldest() -> None:
    import asyncio

    from surveillance_ray.messages import AuxAnswer, OpinionRequest
    from surveillance_ray.opinion import SecondOpinions

    person = Detections(np.array([[20, 20, 60, 140]], np.float32), np.array([0.9], np.float32), np.zeros(1, np.int32))
    detector = FakeDetector(lambda i: AuxAnswer(person) if i % 2 == 0 else AuxAnswer(None, "budget"))
    validator = FakeValidator()
    image = np.zeros((360, 480, 3), np.uint8)

    async def run() -> SecondOpinions:
        opinions = SecondOpinions(detector, validator, backlog=12, batch=8)
        for track in range(30):  # 30 asks at once: 12 may wait, the oldest give way
            opinions.ask(OpinionRequest("cam", 0, track, 0, (30.0, 30.0, 70.0, 150.0)), image)
        await opinions.close()
        return opinions

    opinions = asyncio.run(run())
    assert detector.most_inflight == 1 and max(detector.requests) <= 8
    by_track = {a.track_id: a for a in validator.answers}
    assert sorted(by_track) == list(range(30))  # every ask answered or skipped, the validator told each
    backlog = [a for a in validator.answers if a.skipped == "backlog"]
    # asked all at once: the 12 newest wait, the 18 oldest gave way; the 12 went as 8 + 4
    assert detector.requests == [8, 4] and sorted(a.track_id for a in backlog) == list(range(18))
    answered = [a for a in validator.answers if a.score is not None]
    assert answered and all(a.score == np.float32(0.9) for a in answered)
    assert all(a.skipped == "budget" for a in validator.answers if a.score is None and a.skipped != "backlog")
    counts = opinions.counts["cam"]
    assert counts["asked"] == 30 and counts["answered"] == len(answered)
    assert counts["skipped:backlog"] == len(backlog) and counts["skipped:budget"] == 30 - len(answered) - len(backlog)
