import shutil
from pathlib import Path

import numpy as np
import pytest

from surveillance_ray.config import CameraConfig
from surveillance_ray.sources import CaptureSource, ImageSequenceSource, SourceError, open_source


def read_all(source) -> list[tuple[np.ndarray, float | None]]:
    source.open()
    frames = []
    while (item := source.read()) is not None:
        frames.append(item)
    source.close()
    return frames


def test_video_file_counts_decoded_frames_and_times(pets_video: Path) -> None:
    source = open_source(CameraConfig(id="pets", source=str(pets_video)))
    assert isinstance(source, CaptureSource) and not source.live
    frames = read_all(source)
    assert len(frames) == 795  # every decodable frame, whatever the container says
    times = np.array([t for _, t in frames])
    assert source.fps == pytest.approx(10.0)
    assert np.all(np.diff(times) > 0)
    assert times[-1] - times[0] == pytest.approx(79.4, abs=0.05)  # decoded timestamps, 0.1 s apart
    assert frames[0][0].shape == (360, 480, 3)


def test_truncated_video_ends_early_without_error(pets_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.avi"
    cut.write_bytes(pets_video.read_bytes()[: 1_200_000])
    frames = read_all(open_source(CameraConfig(id="cut", source=str(cut))))
    assert 100 < len(frames) < 795


def test_corrupt_video_names_the_camera(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(50_000))
    source = open_source(CameraConfig(id="yard", source=str(junk)))
    with pytest.raises(SourceError, match="camera 'yard'"):
        read_all(source)


def test_unreachable_stream_names_the_camera() -> None:
    source = open_source(CameraConfig(id="gate", source="rtsp://127.0.0.1:9/none", read_timeout_s=2))
    assert source.live
    with pytest.raises(SourceError, match="camera 'gate': cannot open source"):
        source.open()


def test_image_sequence_mot_layout(assets: Path, tmp_path: Path) -> None:
    seq = tmp_path / "MOT17-05"
    shutil.copytree(assets / "mot/MOT17-mini/train/MOT17-05-FRCNN", seq)
    (seq / "img1" / "000003.jpg").write_bytes(b"not a jpeg")
    source = open_source(CameraConfig(id="mot", source=str(seq)))
    assert isinstance(source, ImageSequenceSource)
    frames = read_all(source)
    assert source.fps == 14.0  # from seqinfo.ini
    assert len(frames) == 5 and source.decode_errors == 1
    assert [round(t * 14) for _, t in frames] == [0, 1, 3, 4, 5]
    assert frames[0][0].shape == (480, 640, 3)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="camera 'empty': no images"):
        open_source(CameraConfig(id="empty", source=str(tmp_path))).open()


def test_source_fps_override(pets_video: Path) -> None:
    source = open_source(CameraConfig(id="p", source=str(pets_video), source_fps=5))
    source.open()
    assert source.fps == 5
    source.close()
