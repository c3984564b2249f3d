"""The HTTP API: a FastAPI app as a Ray Serve ingress deployment (OpenAPI at /docs).

Every endpoint but ``/health`` needs an API key (``surveillance_ray.auth``). ``/detect`` runs the
detector deployment of the same Serve cluster on one uploaded image (the body: JPEG/PNG/... bytes).
No ``from __future__ import annotations`` here: Serve ships the routes by value, and FastAPI must see
the real ``Request`` type of each dependency, not a name it cannot resolve in the replica.
"""

import asyncio
import base64
import hashlib
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import cv2
import httpx
import numpy as np
import ray
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from ray import serve
from ray.util import metrics

from surveillance_ray.alerts import (Alert, AlertStatus, AlertType, alerts_after, last_alert_row, read_alert, read_alerts,
                                     snapshot_path)
from surveillance_ray.auth import Authenticator, Forbidden, Role, Unauthorized
from surveillance_ray.config import APP_NAME, ApiConfig, CameraConfig, ConfigError, LevelName
from surveillance_ray.service import CameraExists, FixedCameras, UnknownCamera
from surveillance_ray.metrics import merge_expositions

DASHBOARD = resources.files("surveillance_ray.web").joinpath("dashboard.html").read_text()
_SCRIPT = DASHBOARD.split("<script>", 1)[1].split("</script>", 1)[0]
#: The page runs only its own script (by hash) and talks only to this origin: injected markup could run nothing.
CSP = (f"default-src 'self'; script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()}'; "
       "style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
DETECTOR_TIMEOUT_S = 30.0
UPLOADS_IN_FLIGHT = 4  # per API replica
UPLOAD_WAIT_S = 5.0  # how long an upload may wait for detector time under load
STREAM_POLL_S = 0.5
JSON_LIMIT = 1 << 20  # bodies of every route but /detect (a camera's settings are a few kB)  # how often the alert stream looks for new alerts in the store

app = FastAPI(docs_url=None, openapi_url=None, title="surveillance-ray", description=(
    "Multi-camera detection, tracking and validated alerts. Send the API key as `Authorization: Bearer KEY` "
    "or `X-API-Key: KEY`; roles: viewer (read), operator (+ acknowledge), admin (+ write)."))


class Box(BaseModel):
    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float] = Field(description="pixels of the uploaded image")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")
    role: str
    name: str


class CameraStatus(BaseModel):
    id: str
    state: str = Field(description="starting, running, reconnecting, finished, failed or paused")
    error: str | None
    paused: bool
    origin: str = Field(description="config (from the config file) or api (added at runtime)")
    ingest_actor: str | None
    fps_analysed: float
    latency_ms: dict[str, float] = Field(description="capture to validated: p50, p95, max")
    frames_read: int
    frames_analysed: int
    frames_dropped: int
    dropped: dict[str, int] = Field(description="dropped frames by reason")
    reconnects: int
    tracks: int
    config: dict[str, Any] = Field(description="the camera's settings (a URL's password masked)")


class DetectResponse(BaseModel):
    width: int
    height: int
    detections: list[Box]
    inference_ms: float


TOKEN_COOKIE = "sr_token"


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key") or request.cookies.get(TOKEN_COOKIE)


def needs(role: Role):
    """A FastAPI dependency: the caller's key name, when its role is at least ``role``."""
    def check(request: Request) -> str:
        try:
            name, _ = request.app.state.auth.require(_presented_key(request), role)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from None
        return name
    return check


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over its route's limit gets 413 before it is read (declared length) or
    as soon as it passes the limit (chunked); every route but ``/detect`` takes at most ``JSON_LIMIT``."""

    def __init__(self, app: Any, detect_limit: int) -> None:
        self.app = app
        self.detect_limit = detect_limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.detect_limit if scope["path"] == "/detect" else JSON_LIMIT
        where = f"{scope['path']}" + (" (api.max_upload_mb)" if scope["path"] == "/detect" else "")
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _too_large(send, f"body of {int(declared)} bytes is over the {limit}-byte limit of {where}")
        seen, started = 0, False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _too_large(send, f"body over the {limit}-byte limit of {where}")


async def _too_large(send: Any, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field, without echoing the input (it may be huge, or bytes that are not text)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past ``limit`` bytes (before reading it when its length is declared)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {int(declared)} bytes is over the {limit}-byte limit (api.max_upload_mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over the {limit}-byte limit (api.max_upload_mb)")
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
@serve.ingress(app)
class Api:
    def __init__(self, config: dict[str, Any], detector_app: str = APP_NAME, run_dir: str | None = None,
                 validator: tuple[str, str] | None = None, cameras: tuple[str, str] | None = None,
                 jwt_secret: str | None = None) -> None:
        """``run_dir``: where the alert store is; ``validator`` and ``cameras``: the validator's and the camera
        service's actors (name, namespace; no camera service: the camera endpoints answer 503);
        ``jwt_secret``: signs the tokens of POST /token (None: no tokens)."""
        self.config = ApiConfig.model_validate(config)
        self.run_dir = Path(run_dir) if run_dir else None
        self.validator = validator
        self.cameras_actor = cameras
        app.state.auth = Authenticator(self.config.keys, jwt_secret, self.config.token_ttl_s)
        app.add_middleware(BodyLimit, detect_limit=int(self.config.max_upload_mb * 2**20))
        self.detector = serve.get_app_handle(detector_app)
        # uploads in flight to the detector at once (each holds one of its request slots): the rest answer 503
        self._uploads = asyncio.Semaphore(UPLOADS_IN_FLIGHT)
        self._names: dict[int, str] | None = None
        requests = metrics.Counter("surveillance_api_requests", "API requests by route and status.", ("route", "status"))

        @app.middleware("http")
        async def count(request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            route = request.scope.get("route")  # the route's template: unknown paths do not add series
            requests.inc(tags={"route": getattr(route, "path", "unmatched"), "status": str(response.status_code)})
            return response

    async def _class_names(self) -> dict[int, str]:
        if self._names is None:
            names = await self.detector.names.remote()
            self._names = {int(k): v for k, v in names.items()}
        return self._names

    @app.get("/health", summary="Liveness (no key needed)")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/token", summary="A JWT for an API key (also set as an HttpOnly cookie, for browsers)",
              response_model=Token)
    async def token(self, request: Request, response: Response) -> Token:
        auth: Authenticator = request.app.state.auth
        key = _presented_key(request)
        if not key:
            raise HTTPException(401, "send an API key ('Authorization: Bearer KEY' or 'X-API-Key: KEY')",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            name, role = auth.identify_key(key)  # a token never buys a longer-lived token
            token = auth.issue(name, role)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        ttl = int(auth.token_ttl_s)
        response.set_cookie(TOKEN_COOKIE, token, max_age=ttl, httponly=True, samesite="strict",
                            secure=self.config.tls_certfile is not None)
        return Token(access_token=token, expires_in=ttl, role=role.name.lower(), name=name)

    @app.get("/", summary="The live dashboard (a page; it signs in with a key and uses the token cookie)",
             response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(self) -> HTMLResponse:
        return HTMLResponse(DASHBOARD, headers={"Content-Security-Policy": CSP, "X-Frame-Options": "DENY"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(self, caller: str = Depends(needs(Role.VIEWER))) -> JSONResponse:
        """The API's description (behind a key like every endpoint but /health)."""
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs(self, caller: str = Depends(needs(Role.VIEWER))) -> HTMLResponse:
        """Swagger UI (a browser signed in on the dashboard sends the token cookie)."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="surveillance-ray API")

    @app.get("/me", summary="Who the key or token is")
    async def me(self, request: Request, caller: str = Depends(needs(Role.VIEWER))) -> dict[str, str]:
        name, role = request.app.state.auth.identify(_presented_key(request))
        return {"name": name, "role": role.name.lower()}

    @app.post("/logout", summary="Forget the token cookie")
    async def logout(self, response: Response) -> dict[str, bool]:
        response.delete_cookie(TOKEN_COOKIE)
        return {"logged_out": True}

    @app.get("/ready", summary="Readiness: the detector answers")
    async def ready(self, caller: str = Depends(needs(Role.VIEWER))) -> dict[str, Any]:
        try:
            names = await asyncio.wait_for(self._class_names(), DETECTOR_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - not ready is an answer, not an error
            raise HTTPException(503, f"detector not ready: {type(exc).__name__}") from None
        return {"ready": True, "detector_classes": len(names)}

    @app.get("/metrics", summary="Prometheus metrics of every node of the cluster", response_class=PlainTextResponse)
    async def metrics(self, all: bool = False, caller: str = Depends(needs(Role.VIEWER))) -> PlainTextResponse:
        """The pipeline's families (``ray_surveillance_*``: per camera frames read / analysed / dropped by
        reason, latency, escalations, API requests); ``?all=true`` adds Ray's own."""
        nodes = [n for n in ray.nodes() if n["Alive"] and n.get("MetricsExportPort")]
        async with httpx.AsyncClient(timeout=10) as client:
            answers = await asyncio.gather(*(client.get(f"http://{n['NodeManagerAddress']}:{n['MetricsExportPort']}/metrics")
                                             for n in nodes), return_exceptions=True)
        texts = [a.text for a in answers if isinstance(a, httpx.Response) and a.status_code == 200]
        if not texts:
            raise HTTPException(503, f"no node's metrics agent answered ({len(nodes)} node(s) asked)")
        return PlainTextResponse(merge_expositions(texts, "" if all else "ray_surveillance_"),
                                 media_type="text/plain; version=0.0.4")

    async def _from_store(self, read: Callable[[Path], Any]) -> Any:
        """``read(run_dir)`` on the run's alert store, off the event loop; 503 while there is none."""
        if self.run_dir is None:
            raise HTTPException(503, "no run: alerts exist while the pipeline runs")
        try:
            return await asyncio.to_thread(read, self.run_dir)
        except FileNotFoundError:
            raise HTTPException(503, "the run has no alert store yet") from None

    @app.get("/alerts", summary="The run's alerts, newest first", response_model=list[Alert])
    async def alerts(self, camera: str | None = None, status: AlertStatus | None = None, type: AlertType | None = None,
                     level: LevelName | None = None,
                     acknowledged: bool | None = None, since: float | None = Query(None, description="raised at or after (epoch s)"),
                     limit: int = Query(100, ge=1, le=1000),
                     caller: str = Depends(needs(Role.VIEWER))) -> list[Alert]:
        stored = await self._from_store(lambda run_dir: list(read_alerts(run_dir, status)))  # status: in SQL
        found = [a for a in reversed(stored)
                 if (camera is None or a.camera == camera)
                 and (type is None or a.type is type) and (level is None or a.level == level)
                 and (acknowledged is None or (a.acknowledged_by is not None) == acknowledged)
                 and (since is None or a.raised_at >= since)]
        return found[:limit]

    @app.get("/alerts/stream", summary="New alerts as server-sent events", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def alert_stream(self, request: Request, camera: str | None = None,
                           caller: str = Depends(needs(Role.VIEWER))) -> StreamingResponse:
        """One ``alert`` event per alert stored from now on (``id:`` its row: a client reconnecting with
        ``Last-Event-ID`` gets what it missed); a comment every 15 s keeps proxies from closing it."""
        last = await self._from_store(last_alert_row)  # no store: 503 now rather than an empty stream
        resume = request.headers.get("last-event-id", "")
        row = int(resume) if resume.isdigit() else last

        async def events() -> Any:
            nonlocal row
            quiet_since = time.monotonic()
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                found = await self._from_store(lambda run_dir: alerts_after(run_dir, row))
                for row, alert in found:
                    if camera is None or alert.camera == camera:
                        yield f"id: {row}\nevent: alert\ndata: {alert.model_dump_json()}\n\n"
                        quiet_since = time.monotonic()
                if time.monotonic() - quiet_since >= 15:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(STREAM_POLL_S)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/alerts/{alert_id}/snapshot.jpg", summary="The alert's picture (JPEG)", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def snapshot(self, alert_id: str, caller: str = Depends(needs(Role.VIEWER))) -> Response:
        found = await self._from_store(lambda run_dir: read_alert(run_dir, alert_id))
        if found is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        path = snapshot_path(self.run_dir, found.id)
        if not path.is_file():
            raise HTTPException(404, f"alert {alert_id!r} has no snapshot (yet)")
        return Response(await asyncio.to_thread(path.read_bytes), media_type="image/jpeg")

    @app.get("/alerts/{alert_id}", summary="One alert", response_model=Alert)
    async def alert(self, alert_id: str, caller: str = Depends(needs(Role.VIEWER))) -> Alert:
        found = await self._from_store(lambda run_dir: read_alert(run_dir, alert_id))
        if found is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return found

    @app.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert (operator)", response_model=Alert)
    async def acknowledge(self, alert_id: str, caller: str = Depends(needs(Role.OPERATOR))) -> Alert:
        if self.validator is None:
            raise HTTPException(503, "no run: alerts exist while the pipeline runs")
        try:
            actor = ray.get_actor(*self.validator)
            record = await actor.acknowledge.remote(alert_id, caller)
        except Exception as exc:  # noqa: BLE001 - the validator is restarting, or the run ended
            raise HTTPException(503, f"validator unavailable: {type(exc).__name__}") from None
        if record is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return Alert.model_validate(record)

    # -- cameras (the camera service of `surveillance-ray serve`) ------------------------------
    async def _service(self, method: str, *args: Any) -> Any:
        """Call the camera service; its refusals as 404 / 409 / 422, 503 while there is none."""
        if self.cameras_actor is None:
            raise HTTPException(503, "no camera service (the API runs without cameras)")
        try:
            actor = ray.get_actor(*self.cameras_actor)
        except ValueError:
            raise HTTPException(503, "the camera service is not running") from None
        try:
            return await getattr(actor, method).remote(*args)
        except ray.exceptions.RayTaskError as exc:  # the service refused: its own exception is the cause
            cause = exc.cause
            if isinstance(cause, UnknownCamera):
                raise HTTPException(404, f"no camera {cause.args[0]!r}") from None
            if isinstance(cause, CameraExists):
                raise HTTPException(409, f"camera {cause.args[0]!r} exists (remove it first, or pick another id)") from None
            if isinstance(cause, ConfigError):
                raise HTTPException(422, str(cause)) from None
            if isinstance(cause, FixedCameras):
                raise HTTPException(409, "a batch run's cameras are fixed: add, remove and pause cameras in "
                                         "`surveillance-ray serve`") from None
            raise HTTPException(503, f"camera service failed: {type(cause).__name__}: {cause}"[:300]) from None
        except ray.exceptions.RayError as exc:
            raise HTTPException(503, f"camera service unavailable: {type(exc).__name__}") from None

    @app.get("/cameras", summary="Every camera with its status", response_model=list[CameraStatus])
    async def cameras(self, caller: str = Depends(needs(Role.VIEWER))) -> list[dict[str, Any]]:
        return await self._service("cameras")

    @app.post("/cameras", summary="Add a camera (admin); it starts at once", response_model=CameraStatus,
              status_code=201)
    async def add_camera(self, camera: CameraConfig, caller: str = Depends(needs(Role.ADMIN))) -> dict[str, Any]:
        return await self._service("add", camera.model_dump(mode="json"))

    @app.get("/cameras/{camera_id}", summary="One camera's status", response_model=CameraStatus)
    async def camera(self, camera_id: str, caller: str = Depends(needs(Role.VIEWER))) -> dict[str, Any]:
        return await self._service("camera", camera_id)

    @app.delete("/cameras/{camera_id}", summary="Remove a camera (admin); the others go on")
    async def remove_camera(self, camera_id: str, caller: str = Depends(needs(Role.ADMIN))) -> dict[str, Any]:
        return await self._service("remove", camera_id)

    @app.post("/cameras/{camera_id}/pause", summary="Pause a camera (admin): stops reading it, kept paused across restarts",
              response_model=CameraStatus)
    async def pause_camera(self, camera_id: str, caller: str = Depends(needs(Role.ADMIN))) -> dict[str, Any]:
        return await self._service("pause", camera_id)

    @app.post("/cameras/{camera_id}/resume", summary="Resume a paused camera (admin)", response_model=CameraStatus)
    async def resume_camera(self, camera_id: str, caller: str = Depends(needs(Role.ADMIN))) -> dict[str, Any]:
        return await self._service("resume", camera_id)

    @app.get("/cameras/{camera_id}/frame.jpg", summary="The camera's latest analysed frame, annotated (JPEG)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def frame(self, camera_id: str, caller: str = Depends(needs(Role.VIEWER))) -> Response:
        image = await self._service("picture", camera_id)
        if image is None:
            raise HTTPException(409, f"camera {camera_id!r} has no analysed frame now (starting, paused or failed)")
        return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/cameras/{camera_id}/mjpeg", summary="Live view: annotated frames as MJPEG",
             response_class=StreamingResponse, responses={200: {"content": {"multipart/x-mixed-replace": {}}}})
    async def mjpeg(self, request: Request, camera_id: str, fps: float = Query(5.0, gt=0, le=15),
                    caller: str = Depends(needs(Role.VIEWER))) -> StreamingResponse:
        await self._service("camera", camera_id)  # 404 now, not inside the stream

        async def frames() -> Any:
            last = None
            while not await request.is_disconnected():
                t0 = time.monotonic()
                try:
                    image = await self._service("picture", camera_id)
                except HTTPException:  # removed, or the service went away: the stream ends
                    return
                if image is not None and image is not last:
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(image)).encode()
                           + b"\r\n\r\n" + image + b"\r\n")
                    last = image
                await asyncio.sleep(max(0.0, 1 / fps - (time.monotonic() - t0)))

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    @app.post("/detect", summary="Detect objects in one image", response_model=DetectResponse,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "image/*": {"schema": {"type": "string", "format": "binary"}}}}})
    async def detect(self, request: Request, caller: str = Depends(needs(Role.VIEWER))) -> DetectResponse:
        body = await read_limited(request, int(self.config.max_upload_mb * 2**20))
        if not body:
            raise HTTPException(400, "empty body: send the image bytes (e.g. curl --data-binary @frame.jpg)")
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise HTTPException(415, f"the body ({len(body)} bytes, {request.headers.get('content-type') or 'no type'}) "
                                     "is not an image OpenCV can decode (JPEG, PNG, BMP, WebP, TIFF)")
        if self._uploads.locked():
            raise HTTPException(503, f"detector busy: {UPLOADS_IN_FLIGHT} uploads in flight already; try again",
                                headers={"Retry-After": "1"})
        t0 = time.perf_counter()
        try:
            async with self._uploads:
                # auxiliary work on the detector's budget: camera frames go first
                [answer] = await asyncio.wait_for(self.detector.detect_aux.remote([image], "upload", UPLOAD_WAIT_S),
                                                  DETECTOR_TIMEOUT_S)
            names = await self._class_names()
        except Exception as exc:  # noqa: BLE001
            raise HTTPException(503, f"detector unavailable: {type(exc).__name__}") from None
        if answer.detections is None:
            raise HTTPException(503, f"detector busy: the upload waited {UPLOAD_WAIT_S:g} s for detector time "
                                     f"({answer.skipped}: cameras come first, uploads share detector.aux_share)",
                                headers={"Retry-After": "1"})
        dets = answer.detections
        boxes = [Box(class_id=int(c), class_name=names.get(int(c), str(int(c))), confidence=round(float(s), 4),
                     xyxy=tuple(round(float(v), 1) for v in xyxy))
                 for xyxy, s, c in zip(dets.xyxy, dets.confidence, dets.class_id)]
        return DetectResponse(width=image.shape[1], height=image.shape[0], detections=boxes,
                              inference_ms=round((time.perf_counter() - t0) * 1000, 1))


def api_app(config: ApiConfig, detector_app: str = APP_NAME, run_dir: str | None = None,
            validator: tuple[str, str] | None = None, cameras: tuple[str, str] | None = None,
            jwt_secret: str | None = None) -> serve.Application:
    return Api.bind(config.model_dump(mode="json"), detector_app, run_dir, validator, cameras, jwt_secret)
