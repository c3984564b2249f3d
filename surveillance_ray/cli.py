"""``surveillance-ray``: run the pipeline, show the effective config, list a run's alerts, replay a track log,
make API keys."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, get_args

from surveillance_ray.config import (ConfigError, RoleName, Settings, TrackerName, cameras_from_sources,
                                     load_settings)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (env SURVEILLANCE__… and flags win over it)")
    p.add_argument("--source", action="append", metavar="SRC",
                   help="camera source (file, rtsp/http URL, webcam index, image folder); repeat for more cameras")
    p.add_argument("--model", metavar="PATH", help="detector weights (.pt, .onnx, OpenVINO dir, .engine)")
    p.add_argument("--imgsz", type=int, metavar="N", help="inference size")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each camera after N frames")
    p.add_argument("--run-dir", metavar="DIR", help="output folder (default runs/<timestamp>)")
    p.add_argument("--fast", action="store_true", help="read files as fast as possible (no pacing, no drops)")
    p.add_argument("--loop", action="store_true", help="loop file sources")
    p.add_argument("--no-live", action="store_true", help="no live table")
    p.add_argument("--api", action="store_true", help="serve the HTTP API while running (api: in the config)")
    p.add_argument("--save-video", action="store_true", help="write each camera's annotated frames as videos/<id>.mp4")
    p.add_argument("--report", action="store_true", help="write report.html (fps/latency plots, alert gallery)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags as a nested settings dict (only the flags given)."""
    o: dict[str, Any] = {}
    if args.source:
        o["cameras"] = cameras_from_sources(args.source)
    det = {k: v for k, v in (("weights", args.model), ("imgsz", args.imgsz)) if v is not None}
    if det:
        o["detector"] = det
    run = {k: v for k, v in (("duration_s", args.duration), ("max_frames", args.max_frames),
                             ("run_dir", args.run_dir)) if v is not None}
    if args.no_live:
        run["live"] = False
    if getattr(args, "save_video", False):
        run["save_video"] = True
    if getattr(args, "report", False):
        run["report"] = True
    if run:
        o["run"] = run
    if getattr(args, "api", False) or getattr(args, "command", None) == "serve":
        o["api"] = {"enabled": True}
    if getattr(args, "state_dir", None):
        o["service"] = {"state_dir": args.state_dir}
    return o


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config, **overrides_from_args(args))
    if args.fast or args.loop:  # flags about all cameras, from --source or from the config
        cams = [c.model_copy(update={"realtime": c.realtime and not args.fast, "loop": c.loop or args.loop})
                for c in settings.cameras]
        settings = settings.model_copy(update={"cameras": cams})
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="surveillance-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_config_flags(sub.add_parser("run", help="run the pipeline"))
    srv = sub.add_parser("serve", help="run as a service until stopped: HTTP API on, cameras changed at runtime, "
                                       "state kept across restarts")
    _add_config_flags(srv)
    srv.add_argument("--state-dir", metavar="DIR", help="where the state lives (service.state_dir, default state/)")
    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    _add_config_flags(cfg_sub.add_parser("show", help="print the effective config (YAML)"))
    rep = sub.add_parser("replay", help="re-validate a run's track log; prints the events as JSON lines")
    rep.add_argument("run_dir", help="a run directory holding config.json and tracks.jsonl")
    rep.add_argument("--alerts", action="store_true", help="print the alerts instead of the events")
    tr = sub.add_parser("train-validator", help="train the false-positive ensemble on labelled footage")
    tr.add_argument("--mot", action="append", default=[], metavar="DIR",
                    help="a sequence in MOTChallenge layout (img1/, gt/gt.txt); repeat for more")
    tr.add_argument("--negative", action="append", default=[], metavar="PATH",
                    help="people-free footage (video or image folder): its person tracks are all false")
    tr.add_argument("--imgsz", type=int, default=640, help="detector size for the track logs")
    tr.add_argument("--tracker", choices=get_args(TrackerName), default=None,
                    help="tracker of the track logs (default: the default tracker; use your cameras' one)")
    tr.add_argument("--out", default="models/fp-ensemble.joblib", help="model file (its .card.json goes beside it)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--refresh", action="store_true", help="re-run the detector instead of cached track logs")
    al = sub.add_parser("alerts", help="list a run's alerts (from its alert store)")
    al.add_argument("run_dir", help="a run directory holding alerts.db")
    al.add_argument("--all", action="store_true", help="also the alerts suppressed by cooldowns")
    al.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    cap = sub.add_parser("capacity", help="how many cameras of a resolution and rate this machine holds, and what "
                                          "limits it (runs the real pipeline on test cameras)")
    cap.add_argument("--config", metavar="FILE", help="settings to measure with (detector, tracking, validator ...)")
    cap.add_argument("--source", metavar="VIDEO", help="footage the test cameras play (default: the PETS video)")
    cap.add_argument("--model", metavar="PATH", help="detector weights")
    cap.add_argument("--imgsz", type=int, metavar="N", help="inference size")
    cap.add_argument("--resolution", metavar="WxH", help="the cameras' resolution (default: the footage's own)")
    cap.add_argument("--fps", type=float, default=10.0, help="each camera's rate (default 10)")
    cap.add_argument("--start", type=int, default=4, help="cameras of the first probe (doubled while they hold)")
    cap.add_argument("--max-cameras", type=int, default=64, help="stop searching here")
    cap.add_argument("--warm-s", type=float, default=8.0, help="seconds of each probe before it is measured")
    cap.add_argument("--window-s", type=float, default=20.0, help="seconds each probe is measured")
    cap.add_argument("--max-latency-s", type=float, default=1.5, help="p95 capture to validated a probe may have")
    cap.add_argument("--out", metavar="FILE", help="also write the probes and the answer as JSON")
    key = sub.add_parser("api-key", help="make an API key: prints it once, and the config entry holding its hash")
    key.add_argument("--name", required=True, help="who holds it")
    key.add_argument("--role", required=True, choices=get_args(RoleName))
    args = parser.parse_args(argv)
    if args.command == "api-key":
        return _api_key(args.name, args.role)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray", "ray.serve"):  # Serve sets its own logger's level
        logging.getLogger(name).setLevel(logging.WARNING)

    if args.command == "replay":
        return _replay(Path(args.run_dir), args.alerts)
    if args.command == "alerts":
        return _alerts(Path(args.run_dir), args.all, args.json)
    if args.command == "train-validator":
        return _train(args)
    if args.command == "capacity":
        return _capacity(args)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return 2
    if args.command == "config":
        import yaml

        print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    if args.command == "serve":
        return _serve(settings)
    if not settings.cameras:
        print("config error: cameras: no camera configured (pass --source SRC or list cameras in --config)",
              file=sys.stderr)
        return 2
    from surveillance_ray.pipeline import run_pipeline  # imports Ray: only after the config is valid

    try:
        result = run_pipeline(settings)
    except ConfigError as exc:  # found once the model is loaded (its class names)
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. the detector deployment could not start
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    states = [s["state"] for s in result.summary["streams"].values()]
    return 1 if states and all(s == "failed" for s in states) else 0


def _serve(settings: Settings) -> int:
    from surveillance_ray.service import serve_forever  # imports Ray: only after the config is valid

    try:
        serve_forever(settings)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def _capacity(args: argparse.Namespace) -> int:
    from rich.console import Console

    overrides: dict[str, Any] = {}
    det = {k: v for k, v in (("weights", args.model), ("imgsz", args.imgsz)) if v is not None}
    if det:
        overrides["detector"] = det
    try:
        settings = load_settings(args.config, **overrides)
        width = height = None
        if args.resolution:
            width, height = (int(v) for v in args.resolution.lower().split("x"))
            if not (16 <= width <= 8192 and 16 <= height <= 8192):
                raise ValueError
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"capacity error: --resolution {args.resolution!r}: expected WIDTHxHEIGHT, e.g. 1280x720",
              file=sys.stderr)
        return 2
    if not 0 < args.fps <= 240 or args.start < 1 or args.max_cameras < args.start:
        print("capacity error: --fps must be in (0, 240], --start >= 1 and --max-cameras >= --start", file=sys.stderr)
        return 2
    source = args.source or next((c.source for c in load_settings().cameras), None)
    if source is None or not Path(source).is_file():
        print(f"capacity error: --source: {source or 'no default footage here'} is not a video file", file=sys.stderr)
        return 2
    from surveillance_ray.capacity import measure, report, test_clip

    console = Console(stderr=True)
    try:
        clip = test_clip(Path(source), width, height, args.fps)
    except ValueError as exc:
        print(f"capacity error: {exc}", file=sys.stderr)
        return 2
    import cv2

    probe = cv2.VideoCapture(str(clip))
    resolution = f"{int(probe.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(probe.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    probe.release()
    console.print(f"capacity: probing {resolution} cameras at {args.fps:g} fps ({clip.name}), imgsz "
                  f"{settings.detector.imgsz}, {args.window_s:g} s a probe")
    result = measure(settings, clip, resolution, args.fps, args.start, args.max_cameras, args.warm_s,
                     args.window_s, args.max_latency_s, console)
    report(result, console)
    if args.out:
        Path(args.out).write_text(json.dumps(result.as_dict(), indent=2))
    return 0


def _api_key(name: str, role: str) -> int:
    import yaml

    from surveillance_ray.auth import new_key

    key, entry = new_key(name, role)
    print(f"API key for {name!r} ({role}), shown only now: {key}", file=sys.stderr)
    print("add to api.keys in the config:", file=sys.stderr)
    print(yaml.safe_dump([entry.model_dump()], sort_keys=False), end="")
    return 0


def _train(args: argparse.Namespace) -> int:
    from surveillance_ray.training import clips_from, train_validator

    try:  # ValueError: a folder that is not labelled footage, or too few real / false tracks in it
        clips = clips_from(args.mot, args.negative, args.imgsz, args.refresh, args.tracker)
        card = train_validator(clips, Path(args.out), seed=args.seed, imgsz=args.imgsz, tracker=args.tracker)
    except ValueError as exc:
        print(f"train-validator error: {exc}", file=sys.stderr)
        return 2
    data = card["data"]
    print(f"trained on {data['samples']} candidate observations ({data['false_samples']} false) of "
          f"{sum(c['tracks'] for c in data['clips'])} tracks from {len(clips)} clips in {card['trained_s']} s")
    for name, m in card["leave_one_sequence_out"].items():
        print(f"  held out {name}: " + ", ".join(f"{k} {v}" for k, v in m.items()))
    print(f"wrote {args.out} and its model card")
    return 0


def _alerts(run_dir: Path, show_all: bool, as_json: bool) -> int:
    from rich.console import Console
    from rich.table import Table

    from surveillance_ray.alerts import AlertStatus, read_alerts

    try:
        alerts = list(read_alerts(run_dir, None if show_all else AlertStatus.RAISED))
    except FileNotFoundError as exc:
        print(f"alerts error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        for alert in alerts:
            print(alert.model_dump_json())
        return 0
    table = Table(title=f"alerts of {run_dir} ({len(alerts)})")
    for col in ("id", "camera", "type", "level", "status", "class", "where", "seen s", "to alert s", "reason"):
        table.add_column(col)
    for a in alerts:
        where = a.zone or (f"{a.line} {a.direction}" if a.line else "")
        passed = "; ".join(r.reason for r in a.rules[-2:])
        table.add_row(a.id, a.camera, a.type.value, a.level, a.status.value, a.class_name, where,
                      f"{a.last_seen_at - a.first_seen_at:.1f}", f"{a.time_to_alert_s:.2f}",
                      a.reason or passed + (f"; {', '.join(a.behaviors)}" if a.behaviors else ""))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _replay(run_dir: Path, alerts: bool = False) -> int:
    from surveillance_ray.validate import replay

    config_file, log_file = run_dir / "config.json", run_dir / "tracks.jsonl"
    for f in (config_file, log_file):
        if not f.is_file():
            print(f"replay error: {f} not found", file=sys.stderr)
            return 2
    try:
        settings = load_settings(**json.loads(config_file.read_text()))
    except ConfigError as exc:
        print(f"replay error: {config_file}: {exc}", file=sys.stderr)
        return 2
    rows = (json.loads(line) for line in log_file.open())
    class_names = {int(k): v for k, v in json.loads((run_dir / "class_names.json").read_text()).items()}
    result = replay(rows, settings.validator, class_names, settings.cameras)
    for record in (a.model_dump(mode="json") for a in result.alerts) if alerts else result.events:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
