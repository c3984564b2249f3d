import threading
import time
from pathlib import Path

import numpy as np
import pytest

from surveillance_ray.capture import CameraCapture, Decoded, FrameBuffer, fit_to_model
from surveillance_ray.config import CameraConfig
from surveillance_ray.messages import Frame


def frame(i: int) -> Decoded:
    return Decoded(i, i, np.zeros((2, 2, 3), np.uint8), float(i), time.time(), 0)


def drain(buffer: FrameBuffer) -> list[Decoded]:
    out = []
    while (f := buffer.get()) is not None:
        out.append(f)
    return out


def test_buffer_drops_oldest_and_counts() -> None:
    buffer = FrameBuffer(3, block=False)
    stop = threading.Event()
    dropped = [buffer.put(frame(i), stop) for i in range(7)]
    assert dropped == [False] * 3 + [True] * 4
    assert buffer.dropped == 4
    assert [f.frame_id for f in drain(buffer)] == [4, 5, 6]


def test_a_live_cameras_newest_frame_is_taken_and_the_older_ones_superseded() -> None:
    live, files = FrameBuffer(3, block=False), FrameBuffer(3, block=True)
    stop = threading.Event()
    for i in range(3):
        live.put(frame(i), stop)
        files.put(frame(i), stop)
    taken, superseded = live.take()
    assert (taken.frame_id, superseded, len(live)) == (2, 2, 0)  # the pipeline was behind: newest first
    assert live.take() == (None, 0)
    assert [files.take()[0].frame_id for _ in range(3)] == [0, 1, 2]  # files read as fast as possible: in order


def test_blocking_buffer_waits_instead_of_dropping() -> None:
    buffer = FrameBuffer(2, block=True)
    stop = threading.Event()
    writer = threading.Thread(target=lambda: [buffer.put(frame(i), stop) for i in range(5)])
    writer.start()
    got = []
    while len(got) < 5:
        f = buffer.get(timeout=1.0)
        assert f is not None
        got.append(f.frame_id)
    writer.join(5)
    assert got == [0, 1, 2, 3, 4] and buffer.dropped == 0


@pytest.mark.parametrize(("shape", "imgsz", "expected"), [
    ((360, 480), 320, (240, 320)), ((1080, 1920), 640, (360, 640)), ((360, 480), 640, (360, 480)),
])
def test_fit_to_model_downscales_only(shape: tuple, imgsz: int, expected: tuple) -> None:
    image, scale = fit_to_model(np.zeros((*shape, 3), np.uint8), imgsz)
    assert image.shape[:2] == expected
    assert scale == pytest.approx(min(1.0, imgsz / max(shape)))


def capture(camera: CameraConfig, max_frames: int | None, imgsz: int = 320) -> tuple[CameraCapture, list[Frame], float]:
    woken = []
    cap = CameraCapture(camera, imgsz=imgsz, max_frames=max_frames, on_frame=lambda: woken.append(1))
    t0 = time.perf_counter()
    cap._run()  # the capture thread's body, run here
    assert cap.done.is_set() and len(woken) == cap.stats.frames_read + 1  # each frame, and the end
    return cap, [cap.frame(d) for d in drain(cap.buffer)], time.perf_counter() - t0


def test_file_paced_like_a_camera(pets_video: Path) -> None:
    cam = CameraConfig(id="p", source=str(pets_video), buffer_size=64)
    cap, frames, elapsed = capture(cam, max_frames=15)
    assert len(frames) == 15 and elapsed >= 1.35  # 15 frames of a 10 fps source take 1.4 s
    assert cap.stats.state == "finished"
    assert frames[0].image.shape == (240, 320, 3) and frames[0].original_shape == (360, 480)


def test_fast_file_sampled_to_target_fps(pets_video: Path) -> None:
    cam = CameraConfig(id="p", source=str(pets_video), realtime=False, fps=2.5, buffer_size=64)
    cap, frames, elapsed = capture(cam, max_frames=20)
    assert elapsed < 5
    assert [f.source_index for f in frames[:5]] == [0, 4, 8, 12, 16]  # every 4th of 10 fps
    assert cap.stats.frames_decoded == 77 and cap.stats.frames_read == 20
    assert [f.frame_id for f in frames] == list(range(20))


def test_loop_bumps_epoch(assets: Path) -> None:
    seq = assets / "mot/MOT17-mini/train/MOT17-02-FRCNN"  # 4 frames
    cam = CameraConfig(id="m", source=str(seq), realtime=False, loop=True, buffer_size=64)
    cap, frames, _ = capture(cam, max_frames=10)
    assert [f.epoch for f in frames] == [0] * 4 + [1] * 4 + [2] * 2
    assert [f.source_index for f in frames] == [0, 1, 2, 3] * 2 + [0, 1]
    assert cap.stats.reconnects == 0  # loops are not reconnects


def test_corrupt_file_fails_the_camera(tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\x00" * 4096)
    cap, frames, _ = capture(CameraConfig(id="junk", source=str(junk)), max_frames=None)
    assert frames == [] and cap.stats.state == "failed" and "camera 'junk'" in cap.stats.error


def test_unreachable_stream_gives_up_after_budget() -> None:
    cam = CameraConfig(id="gate", source="rtsp://127.0.0.1:9/none", max_reconnects=2, reconnect_initial_s=0.05,
                       reconnect_max_s=0.1, read_timeout_s=1)
    cap, frames, _ = capture(cam, max_frames=None)
    assert frames == [] and cap.stats.state == "failed"
    assert "gave up after 2 reconnect attempts" in cap.stats.error and "camera 'gate'" in cap.stats.error


def test_first_frame_time_is_recorded(pets_video: Path) -> None:
    cam = CameraConfig(id="p", source=str(pets_video), realtime=False, buffer_size=64)
    cap, frames, _ = capture(cam, max_frames=3)
    assert cap.stats.first_frame_at == frames[0].captured_at
