"""Service mode (``surveillance-ray serve``): cameras added, removed and paused at runtime, state kept.

``CameraRegistry`` is the service's list of cameras, persisted in the state directory
(``cameras.json``): the config's cameras seed it, the API changes it, and a restart starts what it holds
(paused cameras stay paused, removed ones stay removed). ``CameraService`` is the Ray actor that owns the
ingest actors: it places a new camera on an actor with room (or starts one), takes one off without
touching the others, restarts the cameras of an ingest actor that died, keeps every camera's latest
status for the API and writes the validator's events to ``events/<day>.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ray
from pydantic import ValidationError

from surveillance_ray.config import CameraConfig, ConfigError, Settings, format_errors, unknown_classes

logger = logging.getLogger(__name__)

STATE_FILE = "cameras.json"
RESTART_AFTER_S = 2.0  # before the cameras of a dead ingest actor start again elsewhere
PURGE_EVERY_S = 3600.0


class CameraExists(KeyError):
    pass


class UnknownCamera(KeyError):
    pass


def parse_camera(data: Any, class_names: dict[int, str] | None = None) -> CameraConfig:
    """A camera's config from API/state data; ConfigError (one line per problem) when it is not valid."""
    try:
        camera = data if isinstance(data, CameraConfig) else CameraConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(exc))) from None
    unknown = unknown_classes(camera, class_names) if class_names is not None else []
    if unknown:
        raise ConfigError("\n".join(unknown))
    return camera


def redact(source: str) -> str:
    """A source URL without its password (``rtsp://user:***@host/…``), for API answers and logs."""
    parts = urlsplit(source)
    if parts.password is None:
        return source
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def camera_status(camera_id: str, config: dict[str, Any], report: dict[str, Any], origin: str, actor: str | None,
                  paused: bool = False, error: str | None = None) -> dict[str, Any]:
    """What the API shows of a camera: its state, counters and settings (a URL's password masked)."""
    state = "paused" if paused else "failed" if error else report.get("state", "starting")
    return {"id": camera_id, "state": state, "error": error or report.get("error"), "paused": paused,
            "origin": origin, "ingest_actor": actor, "fps_analysed": report.get("fps_analysed", 0.0),
            "latency_ms": report.get("latency_ms", {}), "frames_read": report.get("frames_read", 0),
            "frames_analysed": report.get("frames_analysed", 0), "frames_dropped": report.get("frames_dropped", 0),
            "dropped": report.get("dropped", {}), "reconnects": report.get("reconnects", 0),
            "tracks": report.get("tracks", 0), "config": config | {"source": redact(config["source"])}}


class FixedCameras(Exception):
    """A batch run's cameras are fixed: adding, removing and pausing are the service's."""


class BatchCameras:
    """The camera endpoints of a batch run (``run --api``): its cameras read through their ingest actors
    (``actors``: actor name -> camera ids); changes refused with ``FixedCameras``."""

    def __init__(self, cameras: list[CameraConfig], actors: dict[str, list[str]]) -> None:
        self.configs = {c.id: c.model_dump(mode="json") for c in cameras}
        self.where = {cid: name for name, ids in actors.items() for cid in ids}

    async def _reports(self, actors: set[str]) -> dict[str, dict[str, Any]]:
        """The latest report of every camera of ``actors`` (one stats call per actor)."""
        async def stats(name: str) -> dict[str, Any]:
            try:
                return (await ray.get_actor(name).stats.remote())["cameras"]
            except (ValueError, ray.exceptions.RayError):  # the actor is gone (the run is ending)
                return {}

        reports: dict[str, dict[str, Any]] = {}
        for cameras in await asyncio.gather(*(stats(name) for name in actors)):
            reports |= cameras
        return reports

    def _status(self, camera_id: str, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return camera_status(camera_id, self.configs[camera_id], reports.get(camera_id, {}), "config",
                             self.where[camera_id])

    async def cameras(self) -> list[dict[str, Any]]:
        reports = await self._reports(set(self.where.values()))
        return [self._status(cid, reports) for cid in self.configs]

    async def camera(self, camera_id: str) -> dict[str, Any]:
        if camera_id not in self.configs:
            raise UnknownCamera(camera_id)
        return self._status(camera_id, await self._reports({self.where[camera_id]}))

    async def picture(self, camera_id: str) -> bytes | None:
        if camera_id not in self.configs:
            raise UnknownCamera(camera_id)
        try:
            return await ray.get_actor(self.where[camera_id]).picture.remote(camera_id)
        except (ValueError, ray.exceptions.RayError):
            return None

    async def add(self, *_: Any) -> None:
        raise FixedCameras()

    remove = pause = resume = add


BatchCamerasActor = ray.remote(num_cpus=0, max_restarts=0)(BatchCameras)


class CameraRegistry:
    """The service's cameras: ``{id: {"config": {...}, "paused": bool, "origin": "config" | "api"}}``, the ids
    removed through the API (a config camera removed stays removed), and the session number (bumped at every
    start: it goes into alert ids, so alerts of different sessions never collide). Written atomically."""

    def __init__(self, state_dir: Path, config_cameras: list[CameraConfig]) -> None:
        self.path = state_dir / STATE_FILE
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.cameras: dict[str, dict[str, Any]] = data.get("cameras", {})
        self.removed: set[str] = set(data.get("removed", []))
        self.session: int = int(data.get("session", 0)) + 1
        for camera in config_cameras:  # the config seeds cameras the registry has never seen
            if camera.id not in self.cameras and camera.id not in self.removed:
                self.cameras[camera.id] = {"config": camera.model_dump(mode="json"), "paused": False,
                                           "origin": "config"}
        self.save()

    def add(self, camera: CameraConfig) -> None:
        if camera.id in self.cameras:
            raise CameraExists(camera.id)
        self.cameras[camera.id] = {"config": camera.model_dump(mode="json"), "paused": False, "origin": "api"}
        self.removed.discard(camera.id)
        self.save()

    def remove(self, camera_id: str) -> None:
        self.entry(camera_id)
        del self.cameras[camera_id]
        self.removed.add(camera_id)
        self.save()

    def set_paused(self, camera_id: str, paused: bool) -> None:
        self.entry(camera_id)["paused"] = paused
        self.save()

    def entry(self, camera_id: str) -> dict[str, Any]:
        if camera_id not in self.cameras:
            raise UnknownCamera(camera_id)
        return self.cameras[camera_id]

    def save(self) -> None:
        tmp = self.path.with_suffix(".part")
        tmp.write_text(json.dumps({"session": self.session, "cameras": self.cameras,
                                   "removed": sorted(self.removed)}, indent=2))
        os.replace(tmp, self.path)


class DailyLog:
    """JSON lines in one file per UTC day (``events/2026-11-24.jsonl``), so retention deletes whole days."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._day, self._file = "", None

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if day != self._day:
            self.close()
            self._day, self._file = day, (self.folder / f"{day}.jsonl").open("a")
        for row in rows:
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def purge(self, days: float) -> int:
        """Delete the days older than ``days``; how many."""
        cutoff = time.strftime("%Y-%m-%d", time.gmtime(time.time() - days * 86_400))
        old = [p for p in self.folder.glob("*.jsonl") if p.stem < cutoff]
        for path in old:
            path.unlink()
        return len(old)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class CameraService:
    """Owns the service's ingest actors (each ``persistent``); every change touches one camera only."""

    def __init__(self, settings: Settings, state_dir: str, detector: Any, validator: Any, escalator: Any,
                 class_names: dict[int, str]) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir)
        self.detector, self.validator, self.escalator = detector, validator, escalator
        self.names = {int(k): v for k, v in class_names.items()}
        self.registry = CameraRegistry(self.state_dir, settings.cameras)
        self.tag = f"s{self.registry.session}"
        self.actors: dict[str, dict[str, Any]] = {}  # name -> {"handle", "cameras": set, "task"}
        self.placement: dict[str, str] = {}  # camera id -> ingest actor name
        self.status: dict[str, dict[str, Any]] = {}  # camera id -> its latest report
        self.errors: dict[str, str] = {}  # camera id -> why it could not start
        self._lock = asyncio.Lock()  # one change at a time
        self._serial = 0
        self._attached: dict[str, int] = {}  # camera id -> times attached this session (in its alert ids)
        self._stopping = False
        self._events = DailyLog(self.state_dir / "events")
        self._poller: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Start every camera of the registry that is not paused; the session and what started."""
        async with self._lock:
            for camera_id, entry in list(self.registry.cameras.items()):
                if not entry["paused"]:
                    await self._attach_entry(camera_id, entry)
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        return {"session": self.registry.session, "cameras": len(self.registry.cameras),
                "running": len(self.placement), "errors": dict(self.errors)}

    async def stop(self) -> dict[str, dict[str, Any]]:
        """Stop every camera (frames already read are analysed); their final reports."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
        for actor in self.actors.values():
            actor["handle"].stop.remote()
        results = await asyncio.gather(*(a["task"] for a in self.actors.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, dict):
                self.status.update(result)
        await self._drain()
        self._events.close()
        return dict(self.status)

    # -- changes (the API) ----------------------------------------------------------------
    async def add(self, data: dict[str, Any]) -> dict[str, Any]:
        camera = parse_camera(data, self.names)
        async with self._lock:
            self.registry.add(camera)
            await self._attach(camera)
        return self.camera(camera.id)

    async def remove(self, camera_id: str) -> dict[str, Any]:
        async with self._lock:
            self.registry.remove(camera_id)
            report = await self._detach(camera_id)
            self.errors.pop(camera_id, None)
        self.status.pop(camera_id, None)
        return {"id": camera_id, "removed": True, "final": report}

    async def pause(self, camera_id: str) -> dict[str, Any]:
        async with self._lock:
            self.registry.set_paused(camera_id, True)
            report = await self._detach(camera_id)
        if report is not None:  # its counters as they ended; nothing is analysed while paused
            self.status[camera_id] = report | {"fps_analysed": 0.0}
        return self.camera(camera_id)

    async def resume(self, camera_id: str) -> dict[str, Any]:
        async with self._lock:
            entry = self.registry.entry(camera_id)
            if entry["paused"]:
                self.registry.set_paused(camera_id, False)
                await self._attach_entry(camera_id, entry)
        return self.camera(camera_id)

    # -- reads (the API) ------------------------------------------------------------------
    def cameras(self) -> list[dict[str, Any]]:
        return [self.camera(cid) for cid in self.registry.cameras]

    def camera(self, camera_id: str) -> dict[str, Any]:
        entry = self.registry.entry(camera_id)
        return camera_status(camera_id, entry["config"], self.status.get(camera_id, {}), entry["origin"],
                             self.placement.get(camera_id), paused=entry["paused"], error=self.errors.get(camera_id))

    async def picture(self, camera_id: str) -> bytes | None:
        """The camera's latest annotated frame (JPEG); None while it has none (starting, paused)."""
        self.registry.entry(camera_id)
        name = self.placement.get(camera_id)
        if name is None:
            return None
        return await self.actors[name]["handle"].picture.remote(camera_id)

    # -- placement ------------------------------------------------------------------------
    async def _attach_entry(self, camera_id: str, entry: dict[str, Any]) -> None:
        try:
            camera = parse_camera(entry["config"], self.names)
        except ConfigError as exc:  # e.g. a file source gone since it was added: this camera only
            self.errors[camera_id] = f"camera {camera_id!r}: {exc}"
            logger.error("%s", self.errors[camera_id])
            return
        await self._attach(camera)

    async def _attach(self, camera: CameraConfig) -> None:
        self.errors.pop(camera.id, None)
        times = self._attached[camera.id] = self._attached.get(camera.id, 0) + 1
        # alert ids carry the session and, after a pause or a restart of the camera, the attachment
        await self.validator.attach.remote(camera, self.tag if times == 1 else f"{self.tag}.{times}")
        per_actor = self.settings.ingest.cameras_per_actor
        name = next((n for n, a in self.actors.items() if len(a["cameras"]) < per_actor and not a.get("closed")), None)
        if name is None:
            name = self._new_actor()
        actor = self.actors[name]
        await actor["handle"].add_camera.remote(camera)
        actor["cameras"].add(camera.id)
        self.placement[camera.id] = name
        self.status[camera.id] = {"state": "starting"}

    def _new_actor(self) -> str:
        from surveillance_ray.pipeline import new_ingest_actor

        self._serial += 1
        name = f"ingest-svc-{self._serial}-{os.getpid()}"
        handle = new_ingest_actor(self.settings, name, [], self.detector, self.validator, self.escalator,
                                  self.names, persistent=True)
        self.actors[name] = {"handle": handle, "cameras": set()}
        self.actors[name]["task"] = asyncio.get_running_loop().create_task(self._watch(name, handle.run.remote()))
        return name

    async def _detach(self, camera_id: str) -> dict[str, Any] | None:
        name = self.placement.pop(camera_id, None)
        if name is None:
            return None
        actor = self.actors[name]
        actor["cameras"].discard(camera_id)
        try:
            report = await actor["handle"].remove_camera.remote(camera_id)
        except ray.exceptions.RayError as exc:  # its actor died: what it had is lost with it
            logger.warning("camera %r: removal on a dead ingest actor: %s", camera_id, str(exc).splitlines()[0])
            return None
        if not actor["cameras"]:  # the last camera of its actor: the actor ends too (no camera goes there now)
            actor["closed"] = True
            actor["handle"].stop.remote()
        return report

    async def _watch(self, name: str, run: Any) -> dict[str, Any]:
        """Wait for an ingest actor to end; when it died, start its cameras again on another actor."""
        try:
            return await run
        except ray.exceptions.RayError as exc:
            if self._stopping:
                return {}
            first = str(exc).strip().splitlines()[0][:200]
            actor = self.actors[name]
            actor["closed"] = True
            lost = sorted(actor["cameras"])
            logger.error("ingest actor %s died (%s); restarting its cameras %s", name, first, lost)
            await asyncio.sleep(RESTART_AFTER_S)
            async with self._lock:
                for camera_id in lost:
                    if self.placement.get(camera_id) == name:
                        del self.placement[camera_id]
                        entry = self.registry.cameras.get(camera_id)
                        if entry is not None and not entry["paused"]:
                            await self._attach_entry(camera_id, entry)
            return {}
        finally:
            if name in self.actors and self.actors[name].get("closed") and not self._stopping:
                self.actors.pop(name, None)

    # -- polling --------------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        purged_at = 0.0
        while True:
            try:
                await self._poll()
                await self._drain()
                if time.time() - purged_at >= PURGE_EVERY_S:
                    purged_at = time.time()
                    await self._purge()
            except Exception:  # noqa: BLE001 - the next poll tries again
                logger.exception("camera service: poll failed")
            await asyncio.sleep(self.settings.run.refresh_s)

    async def _purge(self) -> None:
        """Retention: alerts (and their snapshots) older than ``service.retention_days`` go."""
        days = self.settings.service.retention_days
        if days is None:
            return
        purged = await self.validator.purge.remote(time.time() - days * 86_400)
        old_days = self._events.purge(days)
        if purged or old_days:
            logger.info("retention: %d alert(s) and %d day(s) of events older than %g days deleted", purged,
                        old_days, days)

    async def _poll(self) -> None:
        actors = [a for a in self.actors.values() if not a.get("closed")]
        answers = await asyncio.gather(*(a["handle"].stats.remote() for a in actors), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, dict):
                for cid, report in answer["cameras"].items():
                    if cid in self.placement:
                        self.status[cid] = report

    async def _drain(self) -> None:
        try:
            events, _ = await self.validator.drain.remote()
        except ray.exceptions.RayError:
            return  # restarting: Ray brings it back; alerts are in the store already
        self._events.write(events)


CameraServiceActor = ray.remote(num_cpus=0, max_restarts=0)(CameraService)


def serve_forever(settings: Settings, console: Any = None, stop: Any = None) -> dict[str, dict[str, Any]]:
    """The service's driver: Ray, the detector, the validator over ``service.state_dir``, the camera
    service and the HTTP API; runs until ``stop`` (a threading.Event) is set or SIGINT/SIGTERM arrives;
    the cameras' final reports."""
    import signal
    import threading
    from contextlib import nullcontext

    from ray import serve
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from rich.console import Console
    from rich.live import Live

    from surveillance_ray.config import API_APP, APP_NAME, VLM_APP
    from surveillance_ray.escalate import EscalatorActor
    from surveillance_ray.pipeline import connect_ray, deploy_api, deploy_detector, deploy_vlm, stream_table
    from surveillance_ray.sinks import finish_sinks, start_sinks
    from surveillance_ray.validate import ValidatorActor

    console = console or Console(stderr=True)
    stop = stop or threading.Event()
    state_dir = settings.service.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "config.json").write_text(settings.model_dump_json(indent=2))
    started_ray = connect_ray()
    if threading.current_thread() is threading.main_thread():  # after Ray's own SIGTERM handler, to replace it
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    vlm = settings.vlm
    try:
        handle = deploy_detector(settings)
        names = handle.names.remote().result()
        unknown = unknown_classes(settings, names)
        if unknown:
            raise ConfigError("\n".join(unknown))
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        namespace = ray.get_runtime_context().namespace
        validator_name, service_name = f"validator-{os.getpid()}", f"cameras-{os.getpid()}"
        validator = ValidatorActor.options(name=validator_name, scheduling_strategy=here).remote(
            settings.validator, names, [], False, str(state_dir), escalate_level=vlm.min_level if vlm.enabled else None)
        escalator = None
        if vlm.enabled:
            if vlm.serve.enabled:
                deploy_vlm(settings, console)
            escalator = EscalatorActor.options(name=f"escalator-{os.getpid()}", scheduling_strategy=here).remote(
                vlm, vlm.all_endpoints(), validator)
        sinks = start_sinks(settings.sinks, str(state_dir), f"sinks-{os.getpid()}", here)
        service = CameraServiceActor.options(name=service_name, scheduling_strategy=here).remote(
            settings, str(state_dir), handle, validator, escalator, names)
        started = ray.get(service.start.remote())
        console.print(f"service: session {started['session']}, {started['running']} of {started['cameras']} "
                      f"camera(s) running, state in {state_dir}")
        for error in started["errors"].values():
            console.print(f"[red]{error}[/]")
        deploy_api(settings, console, str(state_dir), (validator_name, namespace), (service_name, namespace))
        live = settings.run.live if settings.run.live is not None else console.is_terminal
        with Live(console=console, refresh_per_second=1) if live else nullcontext() as view:
            while not stop.wait(settings.run.refresh_s):
                if sinks is not None:
                    sinks.report.remote()  # keeps them going: a sinks actor Ray restarted resumes at its next call
                if view is not None:
                    cams = ray.get(service.cameras.remote())
                    view.update(stream_table({c["id"]: c | {"stream_id": c["id"]} for c in cams}, "surveillance-ray serve"))
        console.print("service: stopping (frames already read are analysed)")
        reports = ray.get(service.stop.remote(), timeout=120)
        if sinks is not None:
            delivered = finish_sinks(sinks, settings.sinks.drain_s)
            console.print(f"sinks: {delivered}")
        ray.get(validator.close.remote(), timeout=30)
        console.print(f"service: stopped; state kept in {state_dir}")
        return reports
    finally:
        for app in [APP_NAME, API_APP] + [VLM_APP] * vlm.serve.enabled:
            try:
                serve.delete(app)
            except Exception:  # noqa: BLE001 - Serve may not have come up at all
                logger.debug("serve.delete %s failed", app, exc_info=True)
        if started_ray:
            ray.shutdown()

