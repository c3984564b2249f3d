"""Per-process accounting of a process tree: peak USS and CPU seconds by role (capacity, benchmarks).

A sampler thread walks the tree of one root process (a contender: the peer's process, or
``surveillance-ray run`` and the local Ray it starts) and keeps, per pid, the last CPU times and
USS seen; processes that exit keep their last sample. Roles come from Ray's process titles.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import psutil

from surveillance_ray.config import VLM_APP

_ROLES = [
    (re.compile(r"ray::CameraActor|ray::IngestActor|ray::Ingest"), "ingest actors"),
    (re.compile(rf"ray::ServeReplica:{VLM_APP}:"), "vlm replicas"),
    (re.compile(r"VLLM::"), "vlm engine"),  # EngineCore, Worker
    (re.compile(r"ray::Escalator"), "escalator"),
    (re.compile(r"ray::ServeReplica"), "detector replica"),
    (re.compile(r"ray::ServeController"), "serve controller"),
    (re.compile(r"ray::Validator"), "validator"),
    (re.compile(r"ray::ProxyActor"), "serve proxy"),
    (re.compile(r"ray::DashboardAgent|dashboard/agent\.py"), "dashboard agent"),
    (re.compile(r"ray::RuntimeEnvAgent|runtime_env/agent"), "runtime-env agent"),
    (re.compile(r"ray::IDLE|default_worker\.py"), "idle ray workers"),
    (re.compile(r"ray/core/src/ray/raylet/raylet"), "raylet"),
    (re.compile(r"gcs_server"), "gcs"),
    (re.compile(r"dashboard/dashboard\.py"), "dashboard"),
    (re.compile(r"autoscaler/_private/monitor\.py"), "autoscaler monitor"),
    (re.compile(r"log_monitor\.py"), "log monitor"),
    (re.compile(r"rtsp_server\.py"), "rtsp server"),
    (re.compile(r"benchmarks\.peer_ultralytics"), "peer process"),
    (re.compile(r"surveillance-ray|surveillance_ray"), "driver"),
]


def role_of(cmdline: list[str]) -> str:
    """The role of a process from its command line (Ray workers: the title Ray gives them, first word)."""
    head = cmdline[0] if cmdline and cmdline[0].startswith("ray::") else " ".join(cmdline[:3])
    for pattern, role in _ROLES:
        if pattern.search(head):
            return role
    return "other"


@dataclass
class _Proc:
    role: str
    cpu_s: float = 0.0
    cpu_at_start: float | None = None
    uss: int = 0


@dataclass
class TreeSampler:
    """Samples the process tree under ``root_pid`` every ``interval_s`` until ``stop``."""

    root_pid: int
    interval_s: float = 2.0
    procs: dict[int, _Proc] = field(default_factory=dict)
    peak_uss: int = 0
    window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._system: list | None = None  # the whole machine's CPU times at the window's start and latest sample
        self._mark = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def mark_window_start(self) -> None:
        """CPU from here on is what ``cpu_by_role`` reports (start-up excluded)."""
        self._mark = True

    def close_window(self) -> None:
        """CPU after this (shutting down) is not counted; USS still is."""
        self.sample()
        self._closed = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root_pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        total_uss = 0
        mark, self._mark = self._mark, False
        now = time.time()
        if mark:
            self.window = (now, now)
            self._system = [psutil.cpu_times(), None]
        elif self.window is not None and not self._closed and self._system is not None:
            self._system[1] = psutil.cpu_times()
        for proc in self._tree():
            try:
                with proc.oneshot():
                    cpu = proc.cpu_times()
                    uss = proc.memory_full_info().uss
                    role = role_of(proc.cmdline() or [proc.name()])
                    entry = self.procs.get(proc.pid)
                    if entry is None:
                        entry = self.procs[proc.pid] = _Proc(role)
                    entry.role = role  # an idle Ray worker becomes an actor
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            entry.uss = uss
            if self._closed:
                total_uss += uss
                continue
            entry.cpu_s = cpu.user + cpu.system + cpu.children_user + cpu.children_system
            if mark or (self.window is not None and entry.cpu_at_start is None):
                entry.cpu_at_start = entry.cpu_s if mark else 0.0
            total_uss += uss
        if self.window is not None and not self._closed:
            self.window = (self.window[0], now)
        self.peak_uss = max(self.peak_uss, total_uss)

    def system_busy(self) -> float | None:
        """Share of the machine's CPU in use over the window, every process counted (None: no window)."""
        if not self._system or self._system[1] is None:
            return None
        start, end = self._system
        total = sum(end) - sum(start)
        idle = (end.idle + getattr(end, "iowait", 0.0)) - (start.idle + getattr(start, "iowait", 0.0))
        return max(0.0, min(1.0, 1.0 - idle / total)) if total > 0 else None

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds per role within the window (or over the whole run when no window was marked)."""
        out: dict[str, float] = {}
        for p in self.procs.values():
            base = p.cpu_at_start if self.window is not None else 0.0
            if base is None:
                continue
            out[p.role] = out.get(p.role, 0.0) + max(0.0, p.cpu_s - base)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def uss_by_role(self) -> dict[str, float]:
        """MB of USS per role at the last sample of each process."""
        out: dict[str, float] = {}
        for p in self.procs.values():
            out[p.role] = out.get(p.role, 0.0) + p.uss / 2**20
        return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}
