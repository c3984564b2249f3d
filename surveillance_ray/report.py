"""``run --report``: the end-of-run summary as ``report.html`` in the run directory: per-camera fps and
latency over time (matplotlib), the summary table, the alert gallery (snapshots), the annotated videos."""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path
from typing import Any

from surveillance_ray.alerts import AlertStatus, read_alerts, snapshot_path

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #1d232b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #d6dbe1; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: .25rem .6rem; border-bottom: 1px solid #e6e9ee; text-align: right; }
td:first-child, th:first-child, td.text { text-align: left; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: .8rem; }
figure { margin: 0; border: 1px solid #e6e9ee; border-radius: 4px; overflow: hidden; }
figure img { display: block; width: 100%; } figcaption { padding: .3rem .5rem; font-size: 12px; }
.videos { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: .8rem; }
video { width: 100%; background: #000; } .dim { color: #6b7682; }
"""


def _plot(timeline: dict[str, list[list[float]]]) -> str:
    """fps and latency (p50 solid, p95 dashed) of every camera over the run, as an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (fps, lat) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for camera, points in sorted(timeline.items()):
        if not points:
            continue
        t = [p[0] for p in points]
        line, = fps.plot(t, [p[1] for p in points], label=camera, lw=1.2)
        lat.plot(t, [p[2] for p in points], color=line.get_color(), lw=1.2)
        lat.plot(t, [p[3] for p in points], color=line.get_color(), lw=0.8, ls="--")
    fps.set_ylabel("analysed frames/s")
    fps.set_ylim(bottom=0)
    lat.set_ylabel("latency ms (p50 —, p95 --)")
    lat.set_xlabel("seconds into the run")
    for ax in (fps, lat):
        ax.grid(alpha=0.3)
    if len(timeline) <= 16:
        fps.legend(ncol=4, fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(run_dir: Path, summary: dict[str, Any], max_alerts: int = 200) -> Path:
    """``run_dir/report.html``; links the snapshots and videos of the run directory (it stays beside them)."""
    e = html.escape
    run = summary.get("run", {})
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>surveillance-ray run {e(run_dir.name)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>surveillance-ray run <code>{e(run_dir.name)}</code></h1>",
             f"<p class=dim>{e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run.get('started_at', 0))))}, "
             f"{run.get('duration_s', 0):g} s, {run.get('cameras', 0)} camera(s), model {e(str(run.get('weights', '')))} "
             f"at {run.get('imgsz', '')}</p>"]
    timeline = run.get("timeline") or {}
    if any(timeline.values()):
        parts.append(f"<h2>Frames/s and latency over time</h2><img alt='fps and latency' style='max-width:100%' "
                     f"src='data:image/png;base64,{_plot(timeline)}'>")
    parts.append("<h2>Summary</h2><table><tr><th>camera</th><th>state</th><th>read</th><th>analysed</th><th>dropped</th>"
                 "<th>fps</th><th>p50 ms</th><th>p95 ms</th><th>tracks</th><th>alerts</th></tr>")
    for cid, s in [*summary["streams"].items(), ("TOTAL", summary["total"])]:
        lat = s.get("latency_ms") or {}
        parts.append(f"<tr><td>{e(cid)}</td><td class=text>{e(str(s.get('state') or ''))}"
                     f"{' — ' + e(s['error']) if s.get('error') else ''}</td><td>{s['frames_read']}</td>"
                     f"<td>{s['frames_analysed']}</td><td>{s['frames_dropped']}</td><td>{s['fps_analysed']:.1f}</td>"
                     f"<td>{lat.get('p50', 0):.0f}</td><td>{lat.get('p95', 0):.0f}</td><td>{s['tracks']}</td>"
                     f"<td>{s.get('alerts_raised', 0)}</td></tr>")
    parts.append("</table>")
    videos = run.get("videos") or {}
    if videos:
        parts.append("<h2>Annotated videos</h2><div class=videos>")
        for cid, v in sorted(videos.items()):
            parts.append(f"<figure><video controls preload=metadata src='{e(v['path'])}'></video><figcaption>{e(cid)}: "
                         f"{v['frames']} frames" + (f", {v['skipped']} left out" if v.get("skipped") else "")
                         + (f", error: {e(v['error'])}" if v.get("error") else "") + "</figcaption></figure>")
        parts.append("</div>")
    try:
        alerts = list(read_alerts(run_dir, AlertStatus.RAISED))
    except FileNotFoundError:
        alerts = []
    parts.append(f"<h2>Alerts ({len(alerts)})</h2>")
    if len(alerts) > max_alerts:
        parts.append(f"<p class=dim>the first {max_alerts} shown; `surveillance-ray alerts {e(str(run_dir))}` lists all</p>")
    parts.append("<div class=gallery>")
    for a in alerts[:max_alerts]:
        snap = snapshot_path(run_dir, a.id)
        image = (f"<img loading=lazy alt='snapshot' src='{e(str(snap.relative_to(run_dir)))}'>" if snap.is_file()
                 else "<p class=dim>(no snapshot)</p>")
        where = a.zone or (f"{a.line} {a.direction or ''}" if a.line else "")
        when = time.strftime("%H:%M:%S", time.localtime(a.raised_at))
        parts.append(f"<figure>{image}<figcaption><b>{e(a.type.value.replace('_', ' '))}</b> {e(where)} · "
                     f"{e(a.class_name)} · {e(a.level)}<br><span class=dim>{e(a.camera)} · {when} · track {a.track_id} · "
                     f"{e(a.id)}</span></figcaption></figure>")
    parts.append("</div></body></html>")
    path = run_dir / "report.html"
    path.write_text("\n".join(parts))
    return path
