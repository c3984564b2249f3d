"""The driver: starts (or joins) Ray, deploys the detector, runs the ingest actors, writes the run.

Run directory: ``config.json`` (effective settings), ``alerts.db`` + ``alerts.jsonl`` (written by the
validator), ``events.jsonl``, ``tracks.jsonl`` (optional,
replayable with ``surveillance-ray replay``) and ``summary.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psutil
import ray
from ray import serve
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from surveillance_ray.config import API_APP, APP_NAME, VLM_APP, CameraConfig, ConfigError, Settings, unknown_classes
from surveillance_ray.ingest import IngestActorRemote
from surveillance_ray.messages import StreamState
from surveillance_ray.stats import LatencyHistogram, merge_latency
from surveillance_ray.escalate import EscalatorActor
from surveillance_ray.sinks import finish_sinks, start_sinks
from surveillance_ray.validate import ValidatorActor

logger = logging.getLogger(__name__)

DEPLOYMENT = "YOLODetector"
SUMMARY_KEYS = ("frames_read", "frames_analysed", "frames_dropped", "fps_analysed", "latency_ms", "tracks", "events")


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def connect_ray() -> bool:
    """Join ``RAY_ADDRESS`` (or an already initialised Ray) or start a local one; True if we started it."""
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
        return False
    ray.init(include_dashboard=False, log_to_driver=True, logging_level=logging.WARNING)
    return True


def deploy_detector(settings: Settings) -> Any:
    """Deploy the detector (no HTTP route: cameras call it through its handle)."""
    from deployments.detector import detector_app

    # The per-request access log costs ~11 % CPU; Serve's INFO lines would scroll over the live table.
    quiet = {"enable_access_log": False, "log_level": "WARNING"}
    # the API and the VLM, when served here, are reached over HTTP (the same proxy); cameras use handles
    api, vlm_serve = settings.api, settings.vlm.serve
    http: dict[str, Any] = ({"host": api.host, "port": api.port} if api.enabled
                            else {"host": "127.0.0.1", "port": vlm_serve.http_port})
    if api.enabled and api.tls_certfile:
        http |= {"ssl_certfile": str(api.tls_certfile.resolve()), "ssl_keyfile": str(api.tls_keyfile.resolve())}
    proxy = ({"proxy_location": "HeadOnly", "http_options": http} if api.enabled or vlm_serve.enabled
             else {"proxy_location": "Disabled"})
    serve.start(logging_config=quiet, **proxy)
    try:
        return serve.run(detector_app(settings.detector), name=APP_NAME, route_prefix=None, logging_config=quiet)
    except RuntimeError as exc:
        raise RuntimeError(f"detector deployment failed: {_deployment_failure(APP_NAME) or exc}") from None


def deploy_api(settings: Settings, console: Console, run_dir: str | None = None,
               validator: tuple[str, str] | None = None, cameras: tuple[str, str] | None = None) -> None:
    """The HTTP API (FastAPI ingress) at / of Serve's proxy; the run's alerts from ``run_dir``'s store,
    acknowledgments through the ``validator`` actor, cameras through the ``cameras`` actor (each
    (name, namespace); service.CameraService, or service.BatchCameras for a batch run)."""
    import secrets

    from deployments.api import api_app

    api = settings.api
    # one secret for every API replica (a token issued by one is accepted by the others)
    secret = api.jwt_secret_file.read_text().strip() if api.jwt_secret_file else secrets.token_urlsafe(32)
    serve.run(api_app(api, APP_NAME, run_dir, validator, cameras, secret), name=API_APP, route_prefix="/",
              logging_config={"enable_access_log": False})
    console.print(f"api: {api.scheme}://{api.host}:{api.port} (OpenAPI at /docs; {len(api.keys)} key(s))")
    if not api.keys:
        console.print("[yellow]api: api.keys is empty: every endpoint but /health answers 401 "
                      "(make one with `surveillance-ray api-key --name NAME --role viewer`)[/]")


def _deployment_failure(app: str) -> str | None:
    """The replica's own error (e.g. ``detector.weights: cannot load model …``) from Serve's status."""
    try:
        status = serve.status().applications[app]
    except Exception:  # no status to read: fall back to Serve's message
        return None
    for deployment in status.deployments.values():
        lines = [ln.strip() for ln in (deployment.message or "").splitlines() if ln.strip()]
        for line in reversed(lines):
            if "Error: " in line:
                return line.split("Error: ", 1)[1]
    return None


def run_pipeline(settings: Settings, console: Console | None = None) -> RunResult:
    """Run all cameras until their sources end, ``run.duration_s`` passes or ``run.max_frames`` is read."""
    # Off a terminal rich assumes 80 columns and truncates the table: give it room.
    console = console or Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    if not settings.cameras:
        raise ValueError("cameras: no camera configured (pass --source or list cameras in --config)")
    run_dir = settings.run.run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(settings.model_dump_json(indent=2))
    started_ray = connect_ray()
    try:
        handle = deploy_detector(settings)
        names = handle.names.remote().result()
        (run_dir / "class_names.json").write_text(json.dumps(names))
        unknown = unknown_classes(settings, names)
        if unknown:  # the model's own names differ from what the config was checked against
            raise ConfigError("\n".join(unknown))
        # on this node: it writes the alert store into the run directory
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        vlm = settings.vlm
        validator_name = f"validator-{os.getpid()}"
        validator = ValidatorActor.options(name=validator_name, scheduling_strategy=here).remote(
            settings.validator, names, settings.cameras, settings.run.track_log, str(run_dir.resolve()),
            escalate_level=vlm.min_level if vlm.enabled else None)
        sinks = start_sinks(settings.sinks, str(run_dir.resolve()), f"sinks-{os.getpid()}", here)
        vlm_info: dict[str, Any] = {}
        escalator = None
        if vlm.enabled:
            if vlm.serve.enabled:
                vlm_info["startup_s"] = deploy_vlm(settings, console)
            escalator = EscalatorActor.options(name=f"escalator-{os.getpid()}", scheduling_strategy=here).remote(
                vlm, vlm.all_endpoints(), validator)
        actors = start_ingest(settings, handle, validator, escalator, names)
        if settings.api.enabled:  # the camera endpoints read the run's cameras through their actors
            from surveillance_ray.service import BatchCamerasActor

            namespace, cameras_name = ray.get_runtime_context().namespace, f"cameras-{os.getpid()}"
            cameras_actor = BatchCamerasActor.options(name=cameras_name, scheduling_strategy=here).remote(  # noqa: F841 - held: a named actor without a handle is collected
                settings.cameras, actor_cameras(settings, actors))
            deploy_api(settings, console, str(run_dir.resolve()), (validator_name, namespace), (cameras_name, namespace))
        monitor = _Monitor(settings, actors, validator, run_dir, console, escalator, sinks)
        reports = monitor.loop()
        videos = collect_videos(actors, run_dir) if settings.run.save_video else None
        sink_report = finish_sinks(sinks, settings.sinks.drain_s) if sinks is not None else None
        counts = monitor.validator_call("counts") or {}
        monitor.validator_call("close")
        summary = build_summary(reports, counts, alert_counts(run_dir))
        summary["run"] = {
            "run_dir": str(run_dir), "started_at": monitor.started, "duration_s": round(monitor.elapsed, 2),
            "weights": settings.detector.weights, "imgsz": settings.detector.imgsz,
            "cameras": len(settings.cameras), "detector": handle.stats.remote().result(),
            "ingest_actors": monitor.actor_info, "detector_timeline": monitor.detector_timeline,
            "nodes": sorted({a.get("node_id", "") for a in monitor.actor_info.values()} - {""}),
            "validator_failures": monitor.validator_failures,
            "vlm": {**vlm_info, **monitor.escalation} if vlm.enabled else None,
            "sinks": sink_report,
            "videos": videos,
            "timeline": monitor.timeline,
            "uss_mb_total": round(process_tree_uss() / 2**20, 1) if started_ray else None,
            "uss_scope": "driver + the local Ray it started" if started_ray else "not measured (joined a cluster)",
        }
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if settings.run.report:
            from surveillance_ray.report import write_report

            write_report(run_dir, summary)
        console.print(summary_table(summary))
        for note in run_notes(summary):
            console.print(note)
        console.print(f"run directory: {run_dir}")
        return RunResult(run_dir, summary)
    finally:
        apps = [APP_NAME] + [API_APP] * settings.api.enabled + [VLM_APP] * settings.vlm.serve.enabled
        for app in apps:
            try:
                serve.delete(app)
            except Exception:  # Serve may not have come up at all
                logger.debug("serve.delete %s failed", app, exc_info=True)
        if started_ray:
            ray.shutdown()


def collect_videos(actors: dict[str, Any], run_dir: Path) -> dict[str, dict[str, Any]]:
    """Copy each camera's MP4 from its ingest actor's node into ``run_dir/videos``; per camera what it holds."""
    out: dict[str, dict[str, Any]] = {}
    for name, actor in actors.items():
        try:
            videos = ray.get(actor.video_info.remote(), timeout=60)
        except (ray.exceptions.RayError, TimeoutError) as exc:  # the actor died: its videos went with it
            logger.error("ingest actor %s: videos lost: %s", name, str(exc).splitlines()[0][:200])
            continue
        for camera_id, info in videos.items():
            path = run_dir / "videos" / f"{camera_id}.mp4"
            path.parent.mkdir(exist_ok=True)
            with path.open("wb") as f:
                while part := ray.get(actor.video_part.remote(camera_id, f.tell()), timeout=120):
                    f.write(part)
            out[camera_id] = info | {"path": str(path.relative_to(run_dir))}
        actor.drop_videos.remote()
    return out


def camera_groups(cameras: list[CameraConfig], per_actor: int) -> list[list[CameraConfig]]:
    """Cameras split into the fewest actors of at most ``per_actor`` cameras, sizes as even as possible."""
    n = -(-len(cameras) // per_actor)
    base, extra = divmod(len(cameras), n)
    groups, start = [], 0
    for i in range(n):
        size = base + (i < extra)
        groups.append(cameras[start:start + size])
        start += size
    return groups


def deploy_vlm(settings: Settings, console: Console) -> float:
    """Start the VLM deployment (its own environment) and wait until Serve runs it; seconds it took."""
    from deployments.vlm import deploy

    t0 = time.time()
    console.print(f"vlm: starting {settings.vlm.serve.model_source} on Ray Serve LLM ...")
    hint = _engine_room(settings)
    if hint:
        console.print(f"[yellow]vlm: {hint}[/]")
    deploy(settings.vlm.serve)
    while True:
        app = serve.status().applications.get(VLM_APP)
        state = getattr(app.status, "value", str(app.status)) if app else "NOT_STARTED"
        if state == "RUNNING":
            break
        if state in ("DEPLOY_FAILED", "UNHEALTHY") or time.time() - t0 > settings.vlm.serve.ready_timeout_s:
            message = (app.message if app else "") or next(
                (d.message for d in (app.deployments.values() if app else ()) if d.message), "")
            raise RuntimeError(f"vlm.serve: the VLM deployment is {state} after {time.time() - t0:.0f} s: "
                               f"{' '.join(message.split())[:300]}" + (f" ({hint})" if hint else ""))
        time.sleep(1.0)
    console.print(f"vlm: ready in {time.time() - t0:.0f} s")
    return round(time.time() - t0, 1)


def _engine_room(settings: Settings) -> str:
    """Why a CPU engine's bundle may not be placed (empty when it fits in the CPUs left now)."""
    serve_cfg = settings.vlm.serve
    free = ray.available_resources().get("CPU", 0.0)
    if serve_cfg.accelerator != "cpu" or free >= serve_cfg.engine_cpus:
        return ""
    return (f"vlm.serve.engine_cpus {serve_cfg.engine_cpus:g} but {free:g} CPU free after the detector "
            f"(detector.num_cpus {settings.detector.num_cpus:g}): the engine waits for room (an autoscaling "
            "cluster adds a node); on one machine lower vlm.serve.engine_cpus or detector.num_cpus")


def start_ingest(settings: Settings, detector: Any, validator: Any, escalator: Any = None,
                 class_names: dict[int, str] | None = None) -> dict[str, Any]:
    """One ingest actor per group of cameras, spread over the cluster's nodes (``ingest.placement``)."""
    actors = {}
    for i, group in enumerate(camera_groups(settings.cameras, settings.ingest.cameras_per_actor)):
        name = f"ingest-{i}-{os.getpid()}"
        actors[name] = new_ingest_actor(settings, name, group, detector, validator, escalator, class_names)
    return actors


def actor_cameras(settings: Settings, actors: dict[str, Any]) -> dict[str, list[str]]:
    """Actor name -> the ids of its cameras (``actors`` as ``start_ingest`` made them, in its order)."""
    groups = camera_groups(settings.cameras, settings.ingest.cameras_per_actor)
    return {name: [c.id for c in group] for name, group in zip(actors, groups)}


def new_ingest_actor(settings: Settings, name: str, cameras: list[CameraConfig], detector: Any, validator: Any,
                     escalator: Any = None, class_names: dict[int, str] | None = None,
                     persistent: bool = False) -> Any:
    """An ingest actor for ``cameras`` (placed by ``ingest.placement``); ``persistent``: see IngestActor."""
    options: dict[str, Any] = {"scheduling_strategy": "SPREAD"} if settings.ingest.placement == "spread" else {}
    return IngestActorRemote.options(name=name, **options).remote(
        cameras, detector, validator, settings.tracking, settings.ingest, settings.detector.imgsz,
        settings.run.max_frames, settings.validator.second_opinion, escalator, settings.vlm, class_names, persistent,
        settings.run.save_video and not persistent, settings.privacy)


class _Monitor:
    """Polls the ingest actors, enforces the duration, drains events to disk, shows the live table."""

    def __init__(self, settings: Settings, actors: dict[str, Any], validator: Any, run_dir: Path,
                 console: Console, escalator: Any = None, sinks: Any = None) -> None:
        self.settings = settings
        self.escalator = escalator
        self.sinks = sinks
        self.escalation: dict[str, Any] = {}
        self.actors = actors
        self.validator = validator
        self.console = console
        self.run_dir = run_dir
        self.cameras_of = actor_cameras(settings, actors)
        self.last_stats: dict[str, dict[str, Any]] = {c.id: {"stream_id": c.id, "state": "starting"}
                                                      for c in settings.cameras}
        self.actor_info: dict[str, dict[str, Any]] = {}
        self.detector_timeline: list[dict[str, Any]] = []  # each change of the detector's replicas
        self.validator_failures: list[dict[str, Any]] = []  # when the validator could not be reached
        # per camera, per poll: [t_s, fps over the poll, latency p50 / p95 ms over the poll, frames dropped so far]
        self.timeline: dict[str, list[list[float]]] = {}
        self._last_sample: dict[str, tuple[float, int, LatencyHistogram]] = {}
        self._validator_ok = True
        self.started = time.time()
        self.elapsed = 0.0

    def loop(self) -> dict[str, dict[str, Any]]:
        run = self.settings.run
        live = run.live if run.live is not None else self.console.is_terminal
        pending = {actor.run.remote(): name for name, actor in self.actors.items()}
        reports: dict[str, dict[str, Any]] = {}
        stopping = False
        events_file = (self.run_dir / "events.jsonl").open("w")
        tracks_file = (self.run_dir / "tracks.jsonl").open("w") if run.track_log else None
        try:
            with Live(self.table(), console=self.console, refresh_per_second=2) if live else nullcontext() as view:
                while pending:
                    try:
                        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=run.refresh_s)
                        for ref in ready:
                            name = pending.pop(ref)
                            reports.update(self._report(ref, name))
                        self._poll(list(pending.values()))
                        self._poll_detector()
                        self._drain(events_file, tracks_file)
                        self.elapsed = time.time() - self.started
                        if not stopping and run.duration_s is not None and self.elapsed >= run.duration_s:
                            stopping = self._stop_all()
                        if view is not None:
                            view.update(self.table())
                    except KeyboardInterrupt:
                        if stopping:
                            raise
                        self.console.print("stopping: finishing the frames already read (Ctrl-C again to abort)")
                        stopping = self._stop_all()
            self._finish_escalations()
            self._drain(events_file, tracks_file)
        finally:
            events_file.close()
            if tracks_file is not None:
                tracks_file.close()
        self.elapsed = time.time() - self.started
        return reports

    def _finish_escalations(self) -> None:
        """Give queued escalations ``vlm.drain_s`` to be reviewed; what is left stays unreviewed."""
        if self.escalator is None:
            return
        try:
            drained = ray.get(self.escalator.flush.remote(self.settings.vlm.drain_s),
                              timeout=self.settings.vlm.drain_s + 30)
            self.escalation = {"drained": drained, **ray.get(self.escalator.stats.remote(), timeout=30)}
        except (ray.exceptions.RayError, TimeoutError) as exc:
            self.escalation = {"error": f"escalator unreachable: {str(exc).splitlines()[0][:200]}"}
            logger.error("%s", self.escalation["error"])

    def _stop_all(self) -> bool:
        for actor in self.actors.values():
            actor.stop.remote()
        return True

    def _report(self, ref: Any, name: str) -> dict[str, dict[str, Any]]:
        try:
            reports = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the actor died: its cameras keep their last known counters
            first = f"{exc}".splitlines()[0]
            reports = {}
            for cid in self.cameras_of[name]:
                report = dict(self.last_stats[cid])
                report.update(state=StreamState.FAILED.value, error=f"camera {cid!r}: ingest actor died: {first}")
                logger.error("%s", report["error"])
                reports[cid] = report
        self.last_stats.update(reports)
        try:
            self.actor_info[name] = ray.get(self.actors[name].stats.remote(final=True), timeout=10)["actor"]
        except (ray.exceptions.RayError, TimeoutError):
            self.actor_info.setdefault(name, {"name": name, "cameras": self.cameras_of[name], "state": "died"})
        return reports

    def _poll_detector(self) -> None:
        """Record the detector's replica states when they change (autoscaling, a replica lost and replaced)."""
        try:
            deployment = serve.status().applications[APP_NAME].deployments[DEPLOYMENT]
        except Exception:  # Serve busy or the app gone at the end: try again at the next poll
            return
        replicas = {getattr(k, "value", str(k)): n for k, n in deployment.replica_states.items() if n}
        status = getattr(deployment.status, "value", str(deployment.status))
        last = self.detector_timeline[-1] if self.detector_timeline else None
        if last is None or (last["status"], last["replicas"]) != (status, replicas):
            self.detector_timeline.append({"t_s": round(time.time() - self.started, 1), "status": status,
                                           "replicas": replicas})
            if last is not None:
                logger.info("detector: %s, replicas %s", status, replicas)

    def validator_call(self, method: str) -> Any:
        """Call the validator; None while it is down or restarting (recorded once per outage)."""
        try:
            result = ray.get(getattr(self.validator, method).remote(), timeout=30)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            if self._validator_ok:
                first = f"{exc}".strip().splitlines()[0] if f"{exc}".strip() else type(exc).__name__
                self.validator_failures.append({"t_s": round(time.time() - self.started, 1), "error": first[:200]})
                logger.error("validator unreachable (%s); Ray restarts it, alerts are safe in alerts.db", first)
            self._validator_ok = False
            return None
        self._validator_ok = True
        return result

    def _poll(self, names: list[str]) -> None:
        refs = {name: self.actors[name].stats.remote() for name in names}
        for name, ref in refs.items():
            try:
                stats = ray.get(ref, timeout=5)
            except (ray.exceptions.RayError, TimeoutError):
                continue  # reported when its run() returns
            self.last_stats.update(stats["cameras"])
            self.actor_info[name] = stats["actor"]
            for cid, report in stats["cameras"].items():
                self._sample(cid, report)
        if self.sinks is not None:
            self.sinks.report.remote()  # keeps them going: a sinks actor Ray restarted resumes at its next call
        for cid, c in (self.validator_call("counts") or {}).items():
            if cid in self.last_stats:
                self.last_stats[cid]["events"] = c["events"]
                self.last_stats[cid]["alerts_raised"] = raised(c["alerts"])

    def _sample(self, cid: str, report: dict[str, Any]) -> None:
        """One point of the camera's timeline: [seconds since the start, fps and latency p50 / p95 since the previous
        poll, frames dropped and analysed so far]."""
        now = time.time()
        hist = LatencyHistogram.from_sparse(report.get("latency_hist") or {})
        analysed = report.get("frames_analysed", 0)
        last = self._last_sample.get(cid)
        self._last_sample[cid] = (now, analysed, hist)
        if last is None or now - last[0] <= 0:
            return
        interval = LatencyHistogram()
        interval.counts = hist.counts - last[2].counts
        p = interval.percentiles()
        self.timeline.setdefault(cid, []).append([round(now - self.started, 2), round((analysed - last[1]) / (now - last[0]), 2),
                                                  p["p50"], p["p95"], report.get("frames_dropped", 0), analysed])

    def _drain(self, events_file: TextIO, tracks_file: TextIO | None) -> None:
        events, tracks = self.validator_call("drain") or ([], [])
        for event in events:
            events_file.write(json.dumps(event) + "\n")
        events_file.flush()
        if tracks_file is not None:
            for row in tracks:
                tracks_file.write(json.dumps(row) + "\n")
            tracks_file.flush()

    def table(self) -> Table:
        return stream_table(self.last_stats, title=f"surveillance-ray  {self.elapsed:5.0f} s")


def raised(alerts: dict[str, int]) -> int:
    """Alerts raised, from counts by "status:type"."""
    return sum(n for tag, n in alerts.items() if tag.startswith("raised:"))


def alert_counts(run_dir: Path) -> dict[str, dict[str, int]]:
    """Per camera, alerts by "status:type" from the alert store (complete even if the validator restarted)."""
    from surveillance_ray.alerts import read_alerts

    out: dict[str, dict[str, int]] = {}
    try:
        for alert in read_alerts(run_dir):
            tags = out.setdefault(alert.camera, {})
            tag = f"{alert.status.value}:{alert.type.value}"
            tags[tag] = tags.get(tag, 0) + 1
    except FileNotFoundError:
        pass
    return out


def build_summary(reports: dict[str, dict[str, Any]], counts: dict[str, dict[str, Any]],
                  stored: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """``{"streams": {id: {...}}, "total": {...}}`` from the cameras' final reports and the validator
    (alert counts from the alert store when given: they survive a validator restart)."""
    streams: dict[str, dict[str, Any]] = {}
    for cid, r in reports.items():
        c = dict(counts.get(cid, {}))
        if stored is not None:
            stitched = {k: n for k, n in c.get("alerts", {}).items() if k.startswith("stitched:")}
            c["alerts"] = {**stored.get(cid, {}), **stitched}
        streams[cid] = {
            "frames_read": r.get("frames_read", 0), "frames_analysed": r.get("frames_analysed", 0),
            "frames_dropped": r.get("frames_dropped", 0), "fps_analysed": r.get("fps_analysed", 0.0),
            "latency_ms": r.get("latency_ms", {"p50": 0.0, "p95": 0.0, "max": 0.0}), "tracks": r.get("tracks", 0),
            "events": c.get("events", 0),
            "state": r.get("state"), "error": r.get("error"), "reconnects": r.get("reconnects", 0),
            "frames_decoded": r.get("frames_decoded", 0), "dropped": r.get("dropped", {}),
            "dropped_overflow": r.get("dropped_overflow", 0),
            "dropped_detector_error": r.get("dropped_detector_error", 0), "in_pipeline": r.get("in_pipeline", 0),
            "decode_errors": r.get("decode_errors", 0),
            "confirmed_tracks": c.get("confirmed_tracks", 0), "events_by_kind": c.get("events_by_kind", {}),
            "started_by_class": c.get("started_by_class", {}), "alerts": c.get("alerts", {}),
            "alerts_raised": raised(c.get("alerts", {})),
            "second_opinions": r.get("second_opinions", {}),
            "ingest_actor": r.get("ingest_actor"),
            "node_id": r.get("node_id"),
        }
    total: dict[str, Any] = {k: sum(s[k] for s in streams.values())
                             for k in ("frames_read", "frames_analysed", "frames_dropped", "tracks", "events",
                                       "in_pipeline", "alerts_raised")}
    total["fps_analysed"] = round(sum(s["fps_analysed"] for s in streams.values()), 2)
    total["latency_ms"] = merge_latency(reports.values())
    dropped: dict[str, int] = {}
    started: dict[str, int] = {}
    for s in streams.values():
        for reason, n in s["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
        for name, n in s["started_by_class"].items():
            started[name] = started.get(name, 0) + n
    alerts: dict[str, int] = {}
    for s in streams.values():
        for tag, n in s["alerts"].items():
            alerts[tag] = alerts.get(tag, 0) + n
    total["dropped"] = dropped
    total["started_by_class"] = started
    opinions: dict[str, int] = {}
    for s in streams.values():
        for what, n in s["second_opinions"].items():
            opinions[what] = opinions.get(what, 0) + n
    total["second_opinions"] = opinions
    total["alerts"] = alerts
    return {"streams": streams, "total": total}


def stream_table(stats: dict[str, dict[str, Any]], title: str, total: dict[str, Any] | None = None) -> Table:
    table = Table(title=title)
    for col in ("camera", "state", "read", "analysed", "dropped", "fps", "p50 ms", "p95 ms", "tracks", "events",
                "alerts"):
        table.add_column(col, justify="left" if col in ("camera", "state") else "right")
    rows = list(stats.items()) + ([("TOTAL", total)] if total else [])
    for cid, s in rows:
        lat = s.get("latency_ms") or {}
        state = s.get("state") or ""
        if s.get("error"):
            state = f"{state}: {s['error']}"[:60]
        table.add_row(cid, state, str(s.get("frames_read", 0)), str(s.get("frames_analysed", 0)),
                      str(s.get("frames_dropped", 0)), f"{s.get('fps_analysed', 0.0):.1f}",
                      f"{lat.get('p50', 0.0):.0f}", f"{lat.get('p95', 0.0):.0f}", str(s.get("tracks", 0)),
                      str(s.get("events", "")), str(s.get("alerts_raised", "")))
    return table


DROP_REASONS = {
    "overflow": "camera buffer full: the pipeline was behind, oldest frames dropped",
    "detector_error": "the detector failed them (error, timeout, or a replica lost with them in flight)",
    "validator_error": "the validator failed them",
    "camera_error": "the camera's own processing failed",
    "removed": "the camera was removed or paused before they were analysed",
    "superseded": "a newer frame of the camera was analysed instead (the pipeline was behind: newest first)",
    "stale": "older than detector.max_frame_age_s when its forward pass began (the detector was behind)",
}


def run_notes(summary: dict[str, Any]) -> list[str]:
    """What happened, in words, under the summary table: drops by reason, detector replica changes."""
    notes = []
    for reason, n in sorted((summary["total"].get("dropped") or {}).items()):
        notes.append(f"dropped {n} frame(s), {reason}: {DROP_REASONS.get(reason, reason)}")
    alerts = summary["total"].get("alerts") or {}
    if alerts:
        raised = {k.split(":", 1)[1]: n for k, n in alerts.items() if k.startswith("raised:")}
        held = sum(n for k, n in alerts.items() if k.startswith("suppressed:"))
        notes.append("alerts raised: " + (", ".join(f"{n} {kind}" for kind, n in sorted(raised.items())) or "none")
                     + (f"; {held} suppressed by cooldowns" if held else "")
                     + " (surveillance-ray alerts RUN_DIR lists them)")
    opinions = summary["total"].get("second_opinions") or {}
    if opinions:
        skipped = {k.split(":", 1)[1]: n for k, n in opinions.items() if k.startswith("skipped:")}
        notes.append(f"second opinions: {opinions.get('asked', 0)} asked, {opinions.get('answered', 0)} answered"
                     + (", skipped " + ", ".join(f"{n} ({why})" for why, n in sorted(skipped.items())) if skipped else "")
                     + " (a skipped one is asked again while its alert waits; then the rule passes, saying so)")
    scheduler = (summary.get("run", {}).get("detector") or {}).get("scheduler") or {}
    if scheduler:
        notes.append(f"detector: busy {100 * scheduler['busy_share']:.0f} % of the run, auxiliary work "
                     f"{100 * scheduler['aux_share']:.1f} % (budget {100 * summary['run']['detector'].get('aux_share_budget', 0):.0f} %"
                     " while live cameras run)" + (", skipped " + ", ".join(f"{n} {k}" for k, n in scheduler["skipped"].items())
                                             if scheduler.get("skipped") else ""))
    failures = summary.get("run", {}).get("validator_failures") or []
    if failures:
        notes.append(f"validator unreachable {len(failures)} time(s) (first at {failures[0]['t_s']:g} s: "
                     f"{failures[0]['error']}); Ray restarted it: alerts were already in alerts.db, events and "
                     "track-log rows it held were lost, frames sent meanwhile are counted validator_error")
    vlm = summary.get("run", {}).get("vlm")
    if vlm:
        c = vlm.get("counts") or {}
        lat = "; ".join(f"{m} p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms" for m, p in (vlm.get("latency_ms") or {}).items())
        notes.append(f"vlm: {c.get('queued', 0)} alert(s) escalated, {c.get('reviewed', 0)} reviewed, "
                     f"{c.get('failed', 0)} failed, {c.get('dropped', 0)} dropped (queue full)"
                     + (f"; {lat}" if lat else "") + (f"; ready in {vlm['startup_s']:g} s" if "startup_s" in vlm else "")
                     + ("" if vlm.get("drained", True) else "; the run ended before the queue emptied")
                     + (f"; {vlm['error']}" if vlm.get("error") else ""))
    sinks = summary.get("run", {}).get("sinks")
    if sinks:
        notes.append("sinks: " + ("; ".join(
            f"{name} {s['delivered']} delivered ({s['retried']} retries), {s['failed']} failed"
            + (f", {s['behind']} not sent" if s["behind"] else "") + (f" (last error: {s['last_error']})" if s["failed"] else "")
            for name, s in (sinks.get("sinks") or {}).items()) or sinks.get("error", ""))
            + ("" if sinks.get("drained", True) else "; the run ended before they caught up"))
    timeline = summary.get("run", {}).get("detector_timeline") or []
    if len(timeline) > 1:
        steps = "; ".join(f"{e['t_s']:g} s {e['status'].lower()} "
                          + ", ".join(f"{n} {state.lower()}" for state, n in e["replicas"].items()) for e in timeline)
        notes.append(f"detector replicas: {steps}")
    return notes


def summary_table(summary: dict[str, Any]) -> Table:
    return stream_table(summary["streams"], title="run summary", total=summary["total"])


def process_tree_uss(root: psutil.Process | None = None) -> int:
    """Unique memory (bytes) of a process and all its descendants (the local Ray it started)."""
    root = root or psutil.Process()
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total

