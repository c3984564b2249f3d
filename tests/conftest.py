"""Shared test setup: offline ultralytics, the shared assets (required, never written to)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

from surveillance_ray.config import DEQUANT_WEIGHTS, PETS_VIDEO, assets_dir  # noqa: E402

ASSETS = assets_dir()
if ASSETS is None:
    raise RuntimeError("tests need ../shared/assets (or SURVEILLANCE_ASSETS): weights, videos, MOT ground truth")


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def pets_video() -> Path:
    return ASSETS / PETS_VIDEO


@pytest.fixture(scope="session")
def weights() -> Path:
    return ASSETS / DEQUANT_WEIGHTS
