"""Pictures of a camera: its frame with the tracks, zones, lines and alert marks drawn (supervision
annotators), as JPEG. Used for the live view, alert snapshots and saved video; never on the frame path
unless someone asks for a picture."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from surveillance_ray.config import PERSON, CameraConfig
from surveillance_ray.messages import Tracks

ALERT_RGB, ZONE_RGB, LINE_RGB = (230, 40, 40), (255, 200, 0), (0, 200, 255)


class Annotator:
    """Draws one camera's tracks (box + ``#id class score``), zones and lines; the alert boxes in red."""

    def __init__(self, camera: CameraConfig | None, class_names: dict[int, str], faces: Any = None) -> None:
        """``faces``: a ``faces.FaceBlur`` (privacy), applied to the image before anything is drawn."""
        import supervision as sv  # here: the driver imports this module's jpeg() without it (~50 MB)

        self.sv = sv
        self.faces = faces
        self.camera = camera
        self.names = class_names
        self._boxes = sv.BoxAnnotator(color_lookup=sv.ColorLookup.TRACK, thickness=2)
        self._labels = sv.LabelAnnotator(color_lookup=sv.ColorLookup.TRACK, text_scale=0.4, text_padding=3)
        self._alert_box = sv.BoxAnnotator(color=sv.Color(*ALERT_RGB), thickness=3, color_lookup=sv.ColorLookup.INDEX)
        self._alert_label = sv.LabelAnnotator(color=sv.Color(*ALERT_RGB), color_lookup=sv.ColorLookup.INDEX, text_scale=0.45, text_padding=3,
                                              text_position=sv.Position.BOTTOM_LEFT)

    def draw(self, image: np.ndarray, tracks: Tracks, scale: float = 1.0,
             alerts: list[tuple[tuple[float, float, float, float], str]] = ()) -> np.ndarray:
        """A copy of ``image`` (``scale`` x the frame whose pixel coordinates the tracks and ``alerts``
        ((xyxy, label)) use) with everything drawn."""
        sv = self.sv
        if self.faces is not None:
            people = tracks.xyxy[tracks.class_id == PERSON].reshape(-1, 4) * scale if len(tracks) else None
            out = self.faces.apply(image, people)
        else:
            out = image.copy()
        h, w = out.shape[:2]
        if self.camera is not None:  # zones and lines are in fractions of the frame
            for zone in self.camera.zones:
                out = sv.draw_polygon(out, (np.asarray(zone.polygon, np.float32) * (w, h)).astype(np.int32),
                                      sv.Color(*ZONE_RGB), thickness=2)
            for line in self.camera.lines:
                (x1, y1), (x2, y2) = line.start, line.end
                out = sv.draw_line(out, sv.Point(round(x1 * w), round(y1 * h)), sv.Point(round(x2 * w), round(y2 * h)),
                                   sv.Color(*LINE_RGB), thickness=2)
        if len(tracks):
            dets = sv.Detections(xyxy=tracks.xyxy.reshape(-1, 4) * scale, confidence=tracks.confidence,
                                 class_id=tracks.class_id, tracker_id=tracks.track_id.astype(int))
            labels = [f"#{i} {self.names.get(int(c), str(int(c)))} {s:.2f}"
                      for i, c, s in zip(tracks.track_id, tracks.class_id, tracks.confidence)]
            out = self._boxes.annotate(out, dets)
            out = self._labels.annotate(out, dets, labels=labels)
        if alerts:
            dets = sv.Detections(xyxy=np.asarray([a[0] for a in alerts], np.float32).reshape(-1, 4) * scale)
            out = self._alert_box.annotate(out, dets)
            out = self._alert_label.annotate(out, dets, labels=[a[1] for a in alerts])
        return out


def jpeg(image: np.ndarray, quality: int = 80, longest: int | None = None) -> bytes:
    """JPEG bytes of a BGR image (downscaled so its long side is at most ``longest`` when given)."""
    if longest is not None:
        h, w = image.shape[:2]
        r = longest / max(h, w)
        if r < 1:
            image = cv2.resize(image, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
