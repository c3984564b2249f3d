"""Face blurring (``privacy.face_blur``) measured on images with faces: the shared images, the COCO8 images
with people, the first frame of every labelled sequence (MOT17-mini's seven, TUD-Campus, SIwR, PETS).

Per image: people the detector (YOLOv8n) finds, faces the face detector finds (the whole frame alone, and with
each person's head square), head regions blurred without a face found (the fallback), and what the face
detector still finds on the blurred picture outside every blurred region (a face left readable: should be
none), with the time it takes. JSON + Markdown + PNG (before / after of the image with the most faces)."""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import RESULTS, assets, machine, save


def images() -> list[Path]:
    a = assets()
    found = [a / "images" / "zidane.jpg", a / "images" / "bus.jpg"]
    found += [Path(p) for p in sorted(glob.glob(str(a / "datasets" / "coco8" / "images" / "*" / "*.jpg")))]
    for folder in sorted(glob.glob(str(a / "mot" / "MOT17-mini" / "train" / "*" / "img1"))) + [
            str(a / "mot" / name / "img1") for name in ("TUD-Campus", "SIwR-c6s1", "PETS09-S3-MF1")]:
        frames = sorted(glob.glob(folder + "/*.jpg"))
        if frames:
            found.append(Path(frames[0]))
    return found


def inside(box: np.ndarray, regions: list[np.ndarray], frac: float = 0.5) -> bool:
    """At least ``frac`` of ``box`` lies in one of ``regions``."""
    x1, y1, x2, y2 = box
    area = max(1e-6, (x2 - x1) * (y2 - y1))
    for r in regions:
        w = max(0.0, min(x2, r[2]) - max(x1, r[0]))
        h = max(0.0, min(y2, r[3]) - max(y1, r[1]))
        if w * h / area >= frac:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()
    from ultralytics import YOLO

    from surveillance_ray.config import PERSON, default_weights
    from surveillance_ray.faces import FaceBlur

    model = YOLO(default_weights())
    blur = FaceBlur()
    rows, best = [], None
    for path in images():
        image = cv2.imread(str(path))
        result = model(image, imgsz=args.imgsz, verbose=False)[0]
        people = result.boxes.xyxy.numpy()[result.boxes.cls.numpy() == PERSON]
        if not len(people):
            continue
        whole, _ = blur.detect(image, None)
        t0 = time.perf_counter()
        out, regions = blur.blur(image, people)
        ms = (time.perf_counter() - t0) * 1000
        faces, faceless = blur.detect(image, people)
        after, _ = blur.detect(out, people)
        readable = [b for b in after if not inside(b, regions)]
        name = path.parent.parent.name if path.parent.name == "img1" else path.name
        rows.append({"image": name, "size": f"{image.shape[1]}x{image.shape[0]}", "people": len(people),
                     "faces_whole_frame": len(whole), "faces": len(faces), "heads_fallback": len(faceless),
                     "regions_blurred": len(regions), "faces_left_readable": len(readable), "ms": round(ms, 1)})
        if best is None or len(faces) > best[0]:
            best = (len(faces), image, out)
    total = {k: sum(r[k] for r in rows) for k in ("people", "faces_whole_frame", "faces", "heads_fallback",
                                                   "regions_blurred", "faces_left_readable")}
    total["ms_mean"] = round(float(np.mean([r["ms"] for r in rows])), 1)
    lines = ["# Face blurring (privacy.face_blur)", "", f"{machine()['when']}, {len(rows)} images with people "
             f"(detector at imgsz {args.imgsz}); BlazeFace full-range on OpenVINO, one thread", "",
             "| image | size | people | faces (whole frame only) | faces (with head squares) | heads blurred without a face "
             "| faces left readable after | ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['size']} | {r['people']} | {r['faces_whole_frame']} | {r['faces']} | "
                     f"{r['heads_fallback']} | {r['faces_left_readable']} | {r['ms']} |")
    lines.append(f"| **total** | | {total['people']} | {total['faces_whole_frame']} | {total['faces']} | "
                 f"{total['heads_fallback']} | {total['faces_left_readable']} | {total['ms_mean']} (mean) |")
    if best is not None:
        _, before, after = best
        scale = 900 / (2 * before.shape[1])
        pair = cv2.resize(np.hstack([before, after]), None, fx=min(1.0, scale), fy=min(1.0, scale))
        RESULTS.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(RESULTS / "privacy.png"), pair)
        lines += ["", "![before / after](privacy.png)"]
    save("privacy", {"machine": machine(), "imgsz": args.imgsz, "images": rows, "total": total}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
