"""Shared helpers for benchmark scripts: asset paths and writing results (JSON + Markdown)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from surveillance_ray.config import PETS_VIDEO, assets_dir

RESULTS = Path(__file__).resolve().parent / "results"


def assets() -> Path:
    found = assets_dir()
    if found is None:
        raise SystemExit("shared assets not found: set SURVEILLANCE_ASSETS to the folder holding weights/ and videos/")
    return found


def pets_video() -> Path:
    return assets() / PETS_VIDEO


def pets_h264(repeat: int = 3) -> Path:
    """The PETS video as an IP camera sends it (H.264, a keyframe a second), ~4 min long, cached."""
    from surveillance_ray.testing.rtsp import h264_video

    return h264_video(pets_video(), repeat=repeat)


def tool(name: str) -> str:
    """A command installed beside this Python (the venv's bin), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def machine() -> dict[str, Any]:
    """The machine a result was measured on: the CPU's model and ISA flags first (they decide the figures)."""
    from surveillance_ray.hardware import cpu_info, cpu_label

    return {"cpu": cpu_label(), **cpu_info(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def save(name: str, data: dict[str, Any], markdown: str) -> Path:
    """``results/<name>.json`` and ``.md``, both naming the CPU they were measured on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data.setdefault("machine", machine())
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    path = RESULTS / f"{name}.md"
    cpu = data["machine"].get("cpu") or machine()["cpu"]
    markdown = markdown.rstrip("\n") + f"\n\nCPU: {cpu}; {data['machine'].get('when', '')}.\n"
    path.write_text(markdown)
    print(markdown)
    return path
