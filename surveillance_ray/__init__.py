"""surveillance-ray: multi-camera video surveillance on Ray (camera actors, batched YOLO on Serve,
ByteTrack, validation, events)."""

__version__ = "0.1.0"
