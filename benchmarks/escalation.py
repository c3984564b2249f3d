"""Escalation under load: N live RTSP cameras with and without VLM review, and the VLM killed mid-run.

    python -m benchmarks.escalation --cameras 12 --duration 60          # part of make bench (~15 min)

Every run gets the same streams (a fresh GStreamer RTSP server each, the PETS video in real time) and
runs ``surveillance-ray run`` for ``--duration`` seconds, one after the other:

- ``off``: no VLM (the cameras' baseline);
- ``idle``: the VLM deployed (Ray Serve LLM, vLLM engine), nothing escalated (min_level CRITICAL);
- ``FAST`` / ``BALANCED`` / ``THOROUGH``: every raised alert escalated (min_level BASIC) in that mode;
- ``FAST-normal``: as FAST with the VLM's processes at the workers' own CPU priority (``vlm.serve.cpu_priority``
  normal; the default, idle, runs them under SCHED_IDLE);
- ``kill``: as FAST, with every process of the VLM's environment SIGKILLed ``--kill-at`` s in.

The VLM is the tiny random-weight Qwen2-VL the tests build (``--model`` for a real one): its answers are
meaningless, the engine, images, structured output and Serve path are real. Per run: analysed fps (all
cameras; slowest / mean camera) and its ratio to ``off``; escalations queued / reviewed / failed /
dropped, offered and reviewed per second (within the window), queue→verdict and answer-time p50/p95,
the share answered within the seed's GPU budget; for ``kill``: reviews before and after the kill, the
errors, and when reviews came back. Every run uses the same detector settings (one reserved CPU, two
inference threads, so that the engine's CPU bundle fits on a 2-core machine).
Writes ``benchmarks/results/escalation_<tag>.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.common import RESULTS, machine, pets_h264, save
from benchmarks.peers import run_project
from surveillance_ray.alerts import read_alerts
from surveillance_ray.config import PACKAGE_ROOT, VLM_APP, VLMConfig, VLMServeConfig
from surveillance_ray.testing.rtsp import RtspCameras

VLM_VENV = PACKAGE_ROOT / ".venv-vlm"
MODES = ("FAST", "BALANCED", "THOROUGH")


def build_tiny_vlm(out: Path) -> Path:
    subprocess.run([str(VLM_VENV / "bin" / "python"), "-m", "surveillance_ray.testing.tiny_vlm", str(out)],
                   check=True, cwd=PACKAGE_ROOT, capture_output=True, timeout=300)
    return out


def review_mode(run: str) -> str:
    """The review mode of a run (``FAST-normal`` → FAST; ``idle`` and ``kill`` run FAST)."""
    mode = run.partition("-")[0]
    return "FAST" if mode in ("idle", "kill") else mode


def run_config(run: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """The --config of one run (``surveillance-ray run``)."""
    config: dict[str, Any] = {"detector": {"num_cpus": 1, "threads": args.detector_threads}}
    if run == "off":
        return config
    mode, variant = review_mode(run), run.partition("-")[2]
    seed = VLMConfig().modes
    modes = {m: {**seed[m].model_dump(), "budget_s": args.budget_s} for m in MODES}
    config["vlm"] = {"enabled": True, "mode": mode, "min_level": "CRITICAL" if run == "idle" else "BASIC",
                     "modes": modes, "drain_s": args.drain_s,
                     "serve": {"enabled": True, "model_source": model, "model_id": "vlm-bench",
                               "engine_cpus": args.engine_cpus, **({"cpu_priority": variant} if variant else {})}}
    return config


class Watch(threading.Thread):
    """Notes when the cameras start (``events.jsonl`` appears) and, for ``kill``, kills the VLM then."""

    def __init__(self, run_dir: Path, kill_at: float | None) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.kill_at = run_dir, kill_at
        self.started: float | None = None
        self.killed: dict[str, Any] | None = None
        self.vlm_sched: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not (self.run_dir / "events.jsonl").exists():
            if self._done.wait(0.1):
                return
        self.started = time.time()
        self.vlm_sched = sorted({_sched(p.pid) for p in vlm_processes()})
        if self.kill_at is not None and not self._done.wait(self.kill_at):
            self.killed = kill_vlm()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def vlm_processes() -> list[psutil.Process]:
    """The VLM application's Serve replicas and their children (the vLLM engine core and worker)."""
    replicas = [p for p in psutil.process_iter(["cmdline"]) if f"ServeReplica:{VLM_APP}:" in " ".join(p.info["cmdline"] or [])]
    return replicas + [c for p in replicas for c in _children(p)]


def kill_vlm() -> dict[str, Any]:
    """SIGKILL every process of the VLM."""
    victims = []
    for proc in vlm_processes():
        try:
            title = " ".join(proc.cmdline())[:60]
            proc.send_signal(signal.SIGKILL)
            victims.append({"pid": proc.pid, "cmd": title})
        except psutil.Error:
            continue
    return {"at": time.time(), "processes": victims}


def _sched(pid: int) -> str:
    try:
        return {os.SCHED_OTHER: "other", os.SCHED_IDLE: "idle", os.SCHED_BATCH: "batch"}.get(
            os.sched_getscheduler(pid), "rt") + f" nice {psutil.Process(pid).nice()}"
    except (OSError, psutil.Error):
        return "gone"


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def review_figures(run_dir: Path, started: float, duration: float, killed_at: float | None,
                   seed_budget_s: float) -> dict[str, Any]:
    """Per-alert review outcomes from the run's alert store."""
    escalated = [a for a in read_alerts(run_dir) if a.escalated]
    reviews = [a.review for a in escalated if a.review is not None]
    answered = [r for r in reviews if r.status.value != "unreviewed"]
    end = started + duration
    lat = np.array([r.latency_s for r in answered], dtype=float)
    ans = np.array([r.answer_s for r in answered if r.answer_s is not None], dtype=float)

    def pct(a: np.ndarray) -> dict[str, float | None]:
        return {p: (round(float(np.percentile(a, q)) * 1000) if len(a) else None) for p, q in (("p50", 50), ("p95", 95))}

    out: dict[str, Any] = {
        "escalated": len(escalated), "without_review": len(escalated) - len(reviews),
        "by_status": {s: sum(r.status.value == s for r in reviews) for s in ("confirmed", "dismissed", "unreviewed")},
        "offered_per_s": round(sum(started <= a.raised_at <= end for a in escalated) / duration, 2),
        "reviewed_per_s": round(sum(started <= r.reviewed_at <= end for r in answered) / duration, 2),
        "latency_ms": pct(lat), "answer_ms": pct(ans),
        "within_seed_budget": round(float((ans <= seed_budget_s).mean()), 3) if len(ans) else None,
        "errors": sorted({r.error.split(": ", 1)[-1][:90] for r in reviews if r.error})[:6],
    }
    if killed_at is not None:
        before = [r for r in reviews if r.reviewed_at < killed_at]
        after = [r for r in reviews if r.reviewed_at >= killed_at]
        back = [r.reviewed_at for r in after if r.status.value != "unreviewed"]
        out["kill"] = {
            "reviewed_before": sum(r.status.value != "unreviewed" for r in before),
            "unreviewed_after": sum(r.status.value == "unreviewed" for r in after),
            "reviewed_after": len(back),
            "first_review_after_kill_s": round(min(back) - killed_at, 1) if back else None,
        }
    return out


def one_run(run: str, urls: list[str], model: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        watch = Watch(tmp_path / "run", args.kill_at if run == "kill" else None)
        watch.start()
        try:
            result = run_project(urls, args, tmp_path, run_config(run, model, args))
        finally:
            watch.stop()
        if run != "off":
            result["reviews"] = review_figures(tmp_path / "run", watch.started or time.time(), args.duration,
                                               watch.killed["at"] if watch.killed else None,
                                               VLMConfig().modes[review_mode(run)].budget_s)
            result["vlm"] = {**{k: result["vlm"].get(k) for k in ("startup_s", "counts", "drained", "open_circuits")},
                             "scheduling": watch.vlm_sched}
        if watch.killed:
            result["killed"] = {"at_s": args.kill_at, "processes": len(watch.killed["processes"]),
                                "commands": sorted({p["cmd"] for p in watch.killed["processes"]})[:6]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=12)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--runs", nargs="+", default=["off", "idle", *MODES, "FAST-nice0", "kill"])
    parser.add_argument("--model", help="VLM folder or HF id (default: the tiny random-weight VLM, built now)")
    parser.add_argument("--budget-s", type=float, default=30.0,
                        help="per-attempt budget of every mode (the seed's GPU budgets would time most out on a CPU)")
    parser.add_argument("--drain-s", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=20.0, help="kill run: seconds after the cameras start")
    parser.add_argument("--engine-cpus", type=float, default=1.0)
    parser.add_argument("--detector-threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tag", default="")
    parser.add_argument("--replot", metavar="TAG", help="only redraw the PNG of escalation_TAG.json")
    args = parser.parse_args()
    if args.replot:
        data = json.loads((RESULTS / f"escalation_{args.replot}.json").read_text())
        plot(data["rows"], RESULTS / f"escalation_{args.replot}.png", argparse.Namespace(**data["args"]))
        return
    args.project_args = []
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if not (VLM_VENV / "bin" / "python").exists():
        raise SystemExit(f"{VLM_VENV} missing: run `make vlm-env`")
    video = pets_h264()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as vlm_dir:
        model = args.model or str(build_tiny_vlm(Path(vlm_dir)))
        for run in args.runs:
            print(f"== {run}: {args.cameras} cameras, {args.duration:g} s", flush=True)
            with RtspCameras(video, args.cameras) as cams:
                try:
                    row = one_run(run, cams.urls, model, args)
                except RuntimeError as exc:
                    row = {"error": str(exc)[-600:]}
            rows.append({"run": run, **row})
            print({k: rows[-1].get(k) for k in ("run", "fps_analysed", "fps_per_camera", "reviews", "error")}, flush=True)
    tag = args.tag or f"{args.cameras}cams_{int(args.duration)}s"
    data = {"args": {k: v for k, v in vars(args).items() if k != "project_args"},
            "model": args.model or "tiny random-weight Qwen2-VL (surveillance_ray.testing.tiny_vlm)",
            "rows": rows, "machine": machine()}
    save(f"escalation_{tag}", data, markdown(rows, args))
    plot(rows, RESULTS / f"escalation_{tag}.png", args)


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = next((r for r in rows if r["run"] == "off" and "error" not in r), None)
    model = args.model or "the tiny random-weight Qwen2-VL the tests build"
    lines = [f"# VLM escalation with {args.cameras} live cameras ({args.duration:g} s per run, imgsz {args.imgsz})", "",
             f"VLM: {model} on Ray Serve LLM (vLLM engine, {args.engine_cpus:g} CPU reserved, CPU priority {VLMServeConfig().cpu_priority} but in "
             "`FAST-normal`). Escalated: every "
             f"raised alert (min_level BASIC; `idle`: none). Per-attempt budget {args.budget_s:g} s in every mode "
             "(within seed budget: answers inside the seed's GPU budget of 1.2 / 2.5 / 4.8 s).", "",
             "| run | analysed fps | ÷ off | camera fps slowest / mean | p95 ms | escalated | reviewed | unreviewed "
             "| dropped | offered /s | reviewed /s | queue→verdict p50 / p95 ms | answer p50 / p95 ms | within seed budget | VLM CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['run']} | failed: {r['error'][:100]} ||||||||||||||")
            continue
        ratio = f"{r['fps_analysed'] / base['fps_analysed']:.2f}" if base and base["fps_analysed"] else "–"
        rv, counts = r.get("reviews"), (r.get("vlm") or {}).get("counts") or {}
        vlm_cpu = round(sum(v for k, v in r.get("cpu_by_role_s", {}).items() if k.startswith("vlm")), 1)
        cells = ["–"] * 10 if rv is None else [
            rv["escalated"], rv["by_status"]["confirmed"] + rv["by_status"]["dismissed"], rv["by_status"]["unreviewed"],
            counts.get("dropped", 0), rv["offered_per_s"], rv["reviewed_per_s"],
            f"{rv['latency_ms']['p50']} / {rv['latency_ms']['p95']}", f"{rv['answer_ms']['p50']} / {rv['answer_ms']['p95']}",
            "–" if rv["within_seed_budget"] is None else f"{100 * rv['within_seed_budget']:.0f} %", vlm_cpu]
        lines.append(f"| {r['run']} | {r['fps_analysed']:.1f} | {ratio} | {r['fps_per_camera']['min']:.2f} / "
                     f"{r['fps_per_camera']['mean']:.2f} | {r['latency_ms']['p95']:.0f} | " + " | ".join(map(str, cells)) + " |")
    for r in rows:
        if r.get("killed"):
            k, rv = r["killed"], r["reviews"]
            lines += ["", f"**kill**: {k['processes']} processes of the VLM's environment SIGKILLed {k['at_s']:g} s after "
                      f"the cameras started ({'; '.join(k['commands'][:3])}). Reviewed before: "
                      f"{rv['kill']['reviewed_before']}; after: {rv['kill']['reviewed_after']} reviewed, "
                      f"{rv['kill']['unreviewed_after']} unreviewed; first review after the kill: "
                      f"{rv['kill']['first_review_after_kill_s']} s. Errors: {'; '.join(rv['errors']) or 'none'}. "
                      f"Cameras: {r['fps_analysed']:.1f} fps, {len(r['failed_cameras'])} failed."]
    lines += ["", "Analysed fps: frames analysed per second over all cameras (offered: 10 per camera). VLM CPU s: "
              "CPU seconds of the VLM's processes within the window. Queue→verdict: from the escalation leaving the "
              "camera to the validated verdict; answer: the answering request alone.", ""]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    names = [r["run"] for r in ok]
    ax1.bar(range(len(ok)), [r["fps_analysed"] for r in ok], color=["grey" if n == "off" else "tab:blue" for n in names])
    ax1.set_xticks(range(len(ok)), names, rotation=25)
    ax1.set(ylabel="analysed frames/s (all cameras)", title=f"{args.cameras} cameras: fps with and without escalation")
    reviewed = [r for r in ok if r.get("reviews") and r["reviews"]["latency_ms"]["p50"] is not None]
    xs = np.arange(len(reviewed))
    for i, (key, label) in enumerate((("latency_ms", "queue→verdict"), ("answer_ms", "answer"))):
        for j, p in enumerate(("p50", "p95")):
            ax2.bar(xs + (2 * i + j) * 0.2 - 0.3, [r["reviews"][key][p] or 0 for r in reviewed], 0.2,
                    label=f"{label} {p}")
    ax2.set_xticks(xs, [r["run"] for r in reviewed], rotation=25)
    ax2.set(ylabel="ms", title="review latency per mode")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
