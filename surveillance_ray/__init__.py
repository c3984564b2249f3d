"""surveillance-ray: multi-camera video surveillance on Ray (camera actors, batched YOLO on Serve,
per-camera tracking, validation, alerts)."""

__version__ = "0.1.0"
