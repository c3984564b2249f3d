"""`run --save-video --report`: an annotated H.264 MP4 per camera, a snapshot per alert, report.html, checked
by decoding the video and by opening the report in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from surveillance_ray.alerts import read_alerts, snapshot_path
from surveillance_ray.pipeline import run_pipeline

from .conftest import settings_for
from .test_service import chromium


def test_save_video_and_report(ray_session: None, tmp_path: Path, pets_video: Path) -> None:
    door = {"name": "door", "kind": "intrusion", "polygon": [[0, 0], [0.6, 0], [0.6, 0.8], [0, 0.8]], "cooldown_s": 2}
    settings = settings_for(tmp_path, [{"id": "lobby", "source": str(pets_video), "zones": [door],
                                        "rules": {"object_classes": []}},
                                       {"id": "yard", "source": str(pets_video)}],
                            detector={"imgsz": 320}, run={"duration_s": 15, "save_video": True, "report": True})
    result = run_pipeline(settings)
    run_dir, streams = result.run_dir, result.summary["streams"]
    videos = result.summary["run"]["videos"]
    for cam in ("lobby", "yard"):
        info = videos[cam]
        assert info["error"] is None and info["frames"] + info["skipped"] == streams[cam]["frames_analysed"]
        with av.open(str(run_dir / info["path"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (480, 360)
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
            duration = float(container.duration / 1e6)
        assert len(frames) == info["frames"] > 100
        # played in real time: the video lasts as long as the camera ran (its frames' own clock)
        assert abs(duration - streams[cam]["frames_analysed"] / streams[cam]["fps_analysed"]) < 2.0
        # the annotations are there: the lobby's zone edge (x = 0.6 of the width, yellow) drawn, not on the yard
        edge = [f[20:270, 286:291] for f in frames[-20:]]
        yellow = [np.mean(np.any((e[:, :, 0] < 90) & (e[:, :, 1] > 150) & (e[:, :, 2] > 200), axis=1)) for e in edge]
        # (most frames: a person's box drawn over the edge hides it in some)
        assert (np.median(yellow) > 0.7) if cam == "lobby" else (max(yellow) < 0.2), (cam, yellow)
    alerts = list(read_alerts(run_dir))
    assert alerts and all(snapshot_path(run_dir, a.id).is_file() for a in alerts)
    snap = cv2.imread(str(snapshot_path(run_dir, alerts[0].id)))
    assert snap.shape == (360, 480, 3)
    report = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in report and report.count("<video") == 2

    driver = chromium(tmp_path)
    try:
        driver.get((run_dir / "report.html").resolve().as_uri())
        images = driver.execute_script("return [...document.images].map(i => [i.getAttribute('src').slice(0, 40), i.complete && i.naturalWidth])")
        assert len(images) == 1 + sum(a.status.value == "raised" for a in alerts)
        assert all(width > 0 for _, width in images), images
        # Chromium reads the MP4's header: H.264 it can play, with the video's length
        driver.execute_script("document.querySelector('video').load()")
        for _ in range(50):
            duration = driver.execute_script("return document.querySelector('video').duration")
            if duration and duration == duration:  # not NaN
                break
            driver.implicitly_wait(0.1)
            __import__("time").sleep(0.1)
        assert duration and duration > 10, duration
    finally:
        driver.quit()


def test_faces_are_blurred_in_what_is_stored(ray_session: None, tmp_path: Path, pets_video: Path) -> None:
    door = {"name": "door", "kind": "intrusion", "polygon": [[0, 0], [0.6, 0], [0.6, 0.8], [0, 0.8]], "cooldown_s": 2}
    settings = settings_for(tmp_path, [{"id": "lobby", "source": str(pets_video), "zones": [door],
                                        "rules": {"object_classes": []}}],
                            detector={"imgsz": 320}, run={"duration_s": 12}, privacy={"face_blur": True})
    result = run_pipeline(settings)
    alerts = list(read_alerts(result.run_dir))
    assert alerts
    video = cv2.VideoCapture(str(pets_video))  # the frames as the camera sent them (frame_id: its index here)

    def detail(image: np.ndarray, region: tuple) -> float:
        return cv2.Laplacian(cv2.cvtColor(image[region], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()

    heads, bodies = [], []
    for a in alerts:
        video.set(cv2.CAP_PROP_POS_FRAMES, a.frame_id)
        ok, raw = video.read()
        snap = cv2.imread(str(snapshot_path(result.run_dir, a.id)))
        x1, y1, x2, y2 = (int(round(v)) for v in a.xyxy)
        height = y2 - y1
        head = (slice(y1 + 4, y1 + int(0.2 * height)), slice(x1 + 4, x2 - 4))  # inside the drawn box's lines
        body = (slice(y1 + int(0.35 * height), y2 - 8), slice(x1 + 4, x2 - 4))
        heads.append(detail(snap, head) / max(1e-6, detail(raw, head)))
        bodies.append(detail(snap, body) / max(1e-6, detail(raw, body)))
    # PETS faces are a few pixels: the head regions are blurred (the fallback), the bodies are left as they were
    # (without face_blur the heads' median is ~1.1 like the bodies'; with it 0.48-0.52 on one machine's INT8
    # export at imgsz 320, lower on another's: which frames raise the alerts moves it)
    assert np.median(heads) < 0.65 and np.median(bodies) > 0.8, (heads, bodies)
