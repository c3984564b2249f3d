"""The validator: turns tracked frames into track events and alerts.

Per observation the BASIC rule decides whether the track is above its threshold (track events:
started / persisted / ended). Alerts run every rule in level order (``rules.py``); the first level
that fails stops the alert for now, a track that passes them all raises an alert per finding (object,
intrusion, loitering, line crossing), de-duplicated per track and suppressed within a zone's cooldown,
committed to the alert store before it counts.

``Validator`` is plain Python (unit-testable, replayable from a track log); the pipeline runs it as
one Ray actor that all cameras call (``ValidatorActor``, on the driver's node, next to the run
directory it writes ``alerts.db`` and ``alerts.jsonl`` into).
"""

from __future__ import annotations

import logging
import sqlite3
import statistics
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import ray

from surveillance_ray.alerts import Alert, AlertStatus, AlertStore, AlertType, Cooldowns, write_snapshot
from surveillance_ray.config import CameraConfig, ValidatorConfig
from surveillance_ray.ensemble import EnsembleModel, load_model, track_features
from surveillance_ray.history import Observation, TrackHistory
from surveillance_ray.metrics import AlertMetrics
from surveillance_ray.evidence import EscalationRequest
from surveillance_ray.messages import (AlertLevel, Event, EventKind, OpinionAnswer, OpinionRequest, SnapshotRequest,
                                      TrackedFrame, Validated)
from surveillance_ray.rules import (ConfidenceThresholdRule, FalsePositivePredictionRule, Finding,
                                    MultiModelAgreementRule, RuleInput, RuleResult, default_rules)
from surveillance_ray.scene import CameraScene

logger = logging.getLogger(__name__)

KEEP_OBSERVATIONS = 64  # per track, for the rules' windows


@dataclass
class StreamCounts:
    events: int = 0
    confirmed_tracks: int = 0
    epoch: int = -1
    clock_offset: float = 0.0  # added to the source's media time: the camera clock never goes back
    t: float = 0.0  # the camera clock at its latest frame
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=5))  # between its latest frames
    sparse: bool = False  # its frames lately come further apart than sparse_frame_gap_s (median of gaps)
    own_gap_s: float | None = None  # between frames at its own rate (configured, else the source's; None: not known)
    slow: bool | None = None  # that gap is over sparse_frame_gap_s
    tag: str = ""  # in alert ids after the camera id (the service's session): ids stay unique across restarts
    by_kind: dict[str, int] = field(default_factory=dict)
    started_by_class: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)  # "raised:object", "suppressed:intrusion", ...

    def asks_early(self) -> bool:
        """Its tracks ask their second opinion at their first sighting (answered by the next frame, when
        persistence can pass): a camera slow by its own rate. One that is only analysed slowly (the pipeline
        is behind) asks as fast cameras do, when a track passes ADVANCED: early asks for every new track
        would add detector work exactly when it has none to spare. Not known (a track log without the rate):
        sparse by its analysed frames, or at its first frame."""
        return self.slow if self.slow is not None else (self.sparse or not self.gaps)


@dataclass
class _Observed:
    """A frame observed, not yet settled (``Validator.process_many``): what it produced so far."""

    events: list[Event]
    present: set[int]
    requests: tuple[OpinionRequest, ...]
    escalations: tuple[EscalationRequest, ...]
    snapshots: tuple[SnapshotRequest, ...]


class Validator:
    """Multi-level validation over confirmed tracks; state is per (stream, epoch, track)."""

    def __init__(self, config: ValidatorConfig, class_names: dict[int, str],
                 cameras: Iterable[CameraConfig] = (), record_tracks: bool = False,
                 run_dir: str | Path | None = None, keep_alerts: bool = False,
                 ensemble: EnsembleModel | None = None, collect: int = 0, escalate_level: str | None = None) -> None:
        """``ensemble``: use this model instead of ``config.ensemble_model`` (cross-validation);
        ``collect``: record the features of up to this many candidate observations per track (training);
        ``escalate_level``: raised alerts at or above this level are escalated to the VLM (None: none)."""
        self.config = config
        self.class_names = {int(k): v for k, v in class_names.items()}
        self.cameras = {c.id: c for c in cameras}
        if ensemble is None and config.ensemble_model and not collect:
            ensemble = load_model(Path(config.ensemble_model))  # refuses to start rather than pass everything
        self.ensemble = None if collect else ensemble
        self.basic = ConfidenceThresholdRule(config)
        self.rules = [r for r in default_rules(config, self.ensemble, None if collect else self._ask)
                      if r.level > AlertLevel.BASIC]
        self._requests: list[OpinionRequest] = []  # second opinions asked during the frame being processed
        self._escalations: list[EscalationRequest] = []  # alerts for the VLM raised during the frame
        self._snapshots: list[SnapshotRequest] = []  # alerts stored during the frame: their pictures
        self.escalate_level = AlertLevel[escalate_level] if escalate_level else None
        self._opinions_to_log: dict[str, list[list]] = {}
        self.levels = sorted({r.level for r in self.rules})
        self._agreement = next((r for r in self.rules if isinstance(r, MultiModelAgreementRule)), None)
        self._fp_rule = next((r for r in self.rules if isinstance(r, FalsePositivePredictionRule)), None)
        self.record_tracks = record_tracks
        self.store = AlertStore(Path(run_dir)) if run_dir is not None else None
        self._metrics = AlertMetrics() if self.store is not None and ray.is_initialized() else None  # not in replays
        # restarted after a crash: what the store holds was raised by the previous incarnation
        self._stored = self.store.ids() if self.store is not None else set()
        self.cooldowns = Cooldowns()
        self._scenes: dict[str, CameraScene] = {}
        self._tracks: dict[tuple[str, int, int], TrackHistory] = {}
        self._lost: dict[str, deque[TrackHistory]] = {}  # tracks that ended inside the view, for stitching
        self._present: set[int] = set()  # track ids of the frame being processed
        self._answered: dict[str, list[TrackHistory]] = {}  # per camera: second opinions in, tracks not rechecked
        self._streams: dict[str, StreamCounts] = {}
        self._outbox_events: list[dict[str, Any]] = []
        self._outbox_tracks: list[dict[str, Any]] = []
        self._kept_alerts: list[Alert] | None = [] if keep_alerts else None
        self.collect = collect
        self.candidates: list[tuple[tuple[str, int, int], np.ndarray]] = []
        self._collected: dict[tuple[str, int, int], int] = {}

    def scene(self, stream_id: str) -> CameraScene:
        scene = self._scenes.get(stream_id)
        if scene is None:
            camera = self.cameras.get(stream_id) or CameraConfig.model_construct(id=stream_id, source="")
            scene = self._scenes[stream_id] = CameraScene(camera, self.config)
        return scene

    # -- the frame path -------------------------------------------------------------------
    def process(self, frame: TrackedFrame) -> Validated:
        """One camera frame (as ``process_many`` of one)."""
        return self.process_many([frame])[0]

    def process_many(self, frames: list[TrackedFrame]) -> list[Validated]:
        """Frames of several cameras (one call per detector request of an ingest actor), in rounds of at most
        one frame per camera: a round observes its frames, scores every track that needs the ensemble in one
        call (it costs about the same for one track as for twenty), then settles each frame (those tracks'
        rules again, its reply). A camera's frames go through the same steps alone or in a batch (its state is
        its own), so a replay of the track log one frame at a time raises what the run raised."""
        out: list[Validated | None] = [None] * len(frames)
        rounds: list[list[int]] = []
        seen: Counter = Counter()
        for i, frame in enumerate(frames):
            if seen[frame.stream_id] == len(rounds):
                rounds.append([])
            rounds[seen[frame.stream_id]].append(i)
            seen[frame.stream_id] += 1
        for indices in rounds:
            for i, validated in zip(indices, self._round([frames[i] for i in indices])):
                out[i] = validated
        return out  # type: ignore[return-value]

    def _round(self, frames: list[TrackedFrame]) -> list[Validated]:
        with self._scored_together() as deferred:
            staged = [self._observe_frame(frame) for frame in frames]
        return [self._settle(frame, step, [t for t in deferred if t.stream_id == frame.stream_id])
                for frame, step in zip(frames, staged)]

    @contextmanager
    def _scored_together(self) -> Iterator[list[TrackHistory]]:
        """Inside, a track whose rules need a fresh ensemble probability goes on the yielded list (the rule fails
        for now: ``FalsePositivePredictionRule.defer``); on leaving, the list holds each such track once, all
        scored in one call of the ensemble. Their rules are then asked again (``_alerts_again``)."""
        rule, deferred = self._fp_rule, []
        if rule is None:
            yield deferred
            return
        outer, rule.defer = rule.defer, deferred
        try:
            yield deferred
        finally:
            rule.defer = outer
        deferred[:] = {id(t): t for t in deferred}.values()
        if deferred:
            rule.score(deferred)

    def _alerts_again(self, state: TrackHistory, scene: CameraScene) -> None:
        """The rules again on the track's last observation (an answer or a score came in since)."""
        self._alerts(state, scene, self.basic.check(state.last, scene.camera.sensitivity), *state.last_places)

    def _settle(self, frame: TrackedFrame, step: _Observed, deferred: list[TrackHistory]) -> Validated:
        """The rules again for the frame's tracks that waited for the ensemble, then the frame's reply."""
        self._present = step.present  # as after this frame alone (stitching reads it)
        if deferred:
            scene = self.scene(frame.stream_id)
            for state in deferred:
                first = not state.alerted
                self._alerts_again(state, scene)
                if first and state.last.frame_id == frame.frame_id:  # alerted now: as _observe would have done
                    self._learn_perspective(state, scene)
        if self.record_tracks:
            row = frame.to_log()
            if frame.stream_id in self._opinions_to_log:
                row["opinions"] = self._opinions_to_log.pop(frame.stream_id)
            self._outbox_tracks.append(row)
        self._emit(step.events)
        requests, self._requests = step.requests + tuple(self._requests), []
        escalations, self._escalations = step.escalations + tuple(self._escalations), []
        snapshots, self._snapshots = step.snapshots + tuple(self._snapshots), []
        return Validated(validated_at=time.time(), events=tuple(step.events), requests=requests,
                         escalations=escalations, snapshots=snapshots)

    def _observe_frame(self, frame: TrackedFrame) -> _Observed:
        stream = self._streams.setdefault(frame.stream_id, StreamCounts())
        events: list[Event] = []
        self._recheck_answered(frame.stream_id)
        # values rounded as the track log rounds them, so that a replay sees exactly what the run saw
        media = round(frame.media_time, 4) if frame.media_time >= 0 else frame.captured_at
        if frame.epoch != stream.epoch:
            events += self._end_where(lambda s: s.stream_id == frame.stream_id and s.epoch != frame.epoch,
                                      "source reconnected or looped")
            if stream.epoch != -1:  # a new session (or the camera attached again): its media time restarts
                stream.clock_offset = stream.t - media + 0.1
            stream.epoch = frame.epoch
        else:  # the median: one late frame does not make a camera sparse
            stream.gaps.append(media + stream.clock_offset - stream.t)
            stream.sparse = statistics.median(stream.gaps) > self.config.sparse_frame_gap_s
        if frame.nominal_fps > 0:
            stream.own_gap_s = 1.0 / frame.nominal_fps
            stream.slow = stream.own_gap_s > self.config.sparse_frame_gap_s
        stream.t = media + stream.clock_offset
        scene = self.scene(frame.stream_id)
        seen = scene.observe(frame)
        t = frame.tracks
        self._present = {int(i) for i in t.track_id}
        for i in range(len(t)):
            class_id = int(t.class_id[i])
            obs = Observation(frame.stream_id, int(t.track_id[i]), class_id,
                              self.class_names.get(class_id, str(class_id)), round(float(t.confidence[i]), 4),
                              tuple(round(float(v), 4) for v in t.xyxy[i]), frame.frame_shape, frame.captured_at,
                              stream.t, frame.frame_id, round(frame.luma, 2), round(frame.sharpness, 2),
                              len(frame.detections),
                              None if t.appearance is None else np.round(t.appearance[i], 2))
            events += self._observe(frame.epoch, obs, scene, seen.zones[i], seen.crossings[i])
        horizon = stream.t - self.config.end_after_s
        events += self._end_where(lambda s: s.stream_id == frame.stream_id and s.last_t < horizon,
                                  f"unseen for {self.config.end_after_s:g} s")
        step = _Observed(events, self._present, tuple(self._requests), tuple(self._escalations),
                         tuple(self._snapshots))
        self._requests, self._escalations, self._snapshots = [], [], []
        return step

    def attach(self, camera: CameraConfig, tag: str = "") -> None:
        """A camera (re)starts at runtime (service mode): its settings, and ``tag`` in its alert ids."""
        self.cameras[camera.id] = camera
        self._scenes.pop(camera.id, None)
        stream = self._streams.setdefault(camera.id, StreamCounts())
        stream.tag = tag
        if stream.epoch != -1:
            stream.epoch = -2  # its source starts again: the next frame begins a new session

    def purge(self, before: float) -> int:
        """Retention: delete the alerts raised before ``before`` (epoch s) and their snapshots; how many."""
        if self.store is None:
            return 0
        gone = self.store.purge(before)
        self._stored -= set(gone)
        return len(gone)

    def snapshot(self, alert_id: str, image: bytes) -> None:
        """The alert's picture (JPEG, from the ingest actor) beside the store: ``snapshots/<id>.jpg``."""
        if self.store is not None:
            write_snapshot(self.store.path.parent, alert_id, image)

    def _ask(self, state: TrackHistory) -> None:
        self._requests.append(OpinionRequest(state.stream_id, state.epoch, state.track_id, state.class_id,
                                             state.last.xyxy))

    def second_opinion(self, stream_id: str, epoch: int, track_id: int, score: float | None,
                       skipped: str | None = None) -> None:
        """The answer to an ``OpinionRequest`` (from the ingest actor), or ``score`` None and why it was
        ``skipped`` (the rule asks again while its wait lasts); logged so that a replay sees it."""
        score = None if score is None else round(float(score), 4)
        state = self._tracks.get((stream_id, epoch, track_id))
        if self.record_tracks:  # logged with the camera's next frame, applied before it on replay
            self._opinions_to_log.setdefault(stream_id, []).append(
                [epoch, track_id, score] if score is not None else [epoch, track_id, None, skipped or "skipped"])
        if state is None:
            return
        state.opinion_pending = False
        if score is None:
            state.opinion_skipped += 1
            state.opinion_skip_reason = skipped or "skipped"
            return
        if state.opinion is None and state.opinion_asked_t is not None:  # its alert was waiting for this
            self._answered.setdefault(stream_id, []).append(state)
        state.opinion = score

    def second_opinions(self, answers: list[OpinionAnswer]) -> None:
        """Several answers at once (an ingest actor's batch of crops)."""
        for a in answers:
            self.second_opinion(a.stream_id, a.epoch, a.track_id, a.score, a.skipped)

    def _recheck_answered(self, stream_id: str) -> None:
        """Tracks of the camera whose second opinion came since its last frame: the rules again on their
        last observation, so that an alert does not wait for another sighting (a slow camera, someone
        leaving). Done on the camera's next frame (or its end): what it raises goes out with that frame,
        to the camera's own ingest actor, and a replay applies the logged answer at the same point."""
        waiting = self._answered.pop(stream_id, ())
        if not waiting:
            return
        scene = self.scene(stream_id)
        with self._scored_together() as deferred:  # scored here, on these observations (not the frame's newer ones)
            for state in waiting:
                self._alerts_again(state, scene)
        for state in deferred:
            self._alerts_again(state, scene)

    def _observe(self, epoch: int, obs: Observation, scene: CameraScene, zones: list, crossings: list) -> list[Event]:
        key = (obs.stream_id, epoch, obs.track_id)
        state = self._tracks.get(key)
        if state is None:
            state = self._tracks[key] = TrackHistory.start(obs, epoch, KEEP_OBSERVATIONS, self.config.confirm_window)
        basic = self.basic.check(obs, scene.camera.sensitivity)
        state.add(obs, basic.passed)
        state.update_zones([z.name for z in zones], obs.t)
        state.last_places = (zones, crossings)
        state.reason = basic.reason
        self._alerts(state, scene, basic, zones, crossings)
        self._learn_perspective(state, scene)
        # track events: a track is confirmed once it passed BASIC often enough (persistence)
        if not state.confirmed and sum(state.basic) >= self.config.confirm_frames:
            state.confirmed = True
            state.last_event_at = obs.t
            self._streams[obs.stream_id].confirmed_tracks += 1
            return [self._event(state, EventKind.TRACK_STARTED, obs.frame_id, obs.captured_at)]
        if state.confirmed and obs.t - state.last_event_at >= self.config.persist_every_s:
            state.last_event_at = obs.t
            return [self._event(state, EventKind.TRACK_PERSISTED, obs.frame_id, obs.captured_at)]
        return []

    def _learn_perspective(self, state: TrackHistory, scene: CameraScene) -> None:
        """An alerted track's box teaches the camera's perspective (every third observation, off the edge)."""
        obs = state.last
        if state.alerted and state.observations % 3 == 0 and not obs.at_edge(self.config.edge_margin_frac):
            h = obs.frame_shape[0]
            scene.perspective.add(state.class_id, obs.xyxy[3] / h, obs.height / h, obs.track_id)

    # -- alerts ---------------------------------------------------------------------------
    def _alerts(self, state: TrackHistory, scene: CameraScene, basic: RuleResult, zones: list,
                crossings: list) -> None:
        camera = scene.camera
        key = (state.stream_id, state.epoch, state.track_id)
        collecting = self._collected.get(key, 0) < self.collect
        if state.alerted and not camera.zones and not camera.lines and not collecting:
            return  # its object alert is out and nothing else can alert here
        results = [basic]
        if not basic.passed:
            return
        stream = self._streams[state.stream_id]
        if self._agreement is not None and stream.asks_early():
            # answered by the camera's next frame, when persistence can pass
            self._agreement.ask_early(state)
        inp = RuleInput(state, scene, zones, crossings, own_gap_s=stream.own_gap_s)
        behaviors: tuple[str, ...] = ()
        for level in self.levels:
            failed = None
            for rule in (r for r in self.rules if r.level == level):
                if failed is not None and getattr(rule, "costly", False):
                    continue  # the level fails anyway: the ensemble waits for the second opinion
                result = rule.evaluate(inp)
                results.append(result)
                inp.findings += result.findings
                behaviors += result.behaviors
                if not result.passed and failed is None:
                    failed = result
            if failed is not None:
                state.reason = f"{failed.rule}: {failed.reason}"
                return
        if collecting:
            self.candidates.append((key, track_features(state, self.config.edge_margin_frac)))
            self._collected[key] = self._collected.get(key, 0) + 1
        for finding in inp.findings:
            if finding.key in state.alerted:
                continue
            state.alerted.add(finding.key)
            earlier = self._continued(state) if finding.type is AlertType.OBJECT else None
            if earlier is not None:  # the same person again: one person, one alert
                self._stitch(state, earlier)
            else:
                self._raise(state, finding, results, behaviors)

    def _continued(self, state: TrackHistory) -> TrackHistory | None:
        """The alerted track, lost within ``stitch_window_s``, that this new track continues, if any.

        The candidates, alerted or not: the tracks still held by the tracker but missing from this frame, and
        the confirmed (or alerted) ones that ended within the window, all inside the view; motion, size and
        colours must agree, the closest in place and colours wins, and only an alerted winner is a stitch (a
        track continuing a person who never alerted is someone else than the alerted ones nearby). A sparse
        camera has its own window, similarity and a fixed reach around the place its last two sightings point
        to (``sparse_stitch_*``)."""
        c = self.config
        stream = self._streams[state.stream_id]
        # the reach: base + per_s x the gap (where the person could have walked since); fixed on a sparse
        # camera, whose heading comes from its last two sightings
        if stream.sparse:
            window, min_similarity = c.sparse_stitch_window_s, c.sparse_stitch_similarity
            span, base, per_s = 1.5 * statistics.median(stream.gaps), c.sparse_stitch_reach, 0.0
        else:
            window, min_similarity = c.stitch_window_s, c.stitch_similarity
            span, base, per_s = 1.0, c.stitch_distance, c.stitch_speed
        if window <= 0:
            return None
        live = [s for s in self._tracks.values() if s.stream_id == state.stream_id and s is not state
                and s.track_id not in self._present and not s.last.at_edge(c.edge_margin_frac)]
        first = state.recent[0]
        looks = state.looks(first=True)
        best, best_cost = None, float("inf")
        for old in [*self._lost.get(state.stream_id, ()), *live]:
            if old.epoch != state.epoch or old.class_name != state.class_name or old.stitched_to is not None:
                continue
            gap = state.first_t - old.last_t
            if not -0.5 <= gap <= window:
                continue
            vx, vy = old.velocity(span)
            (x0, y0), (x1, y1) = old.last.centre, first.centre
            d = ((x1 - x0 - vx * max(gap, 0)) ** 2 + (y1 - y0 - vy * max(gap, 0)) ** 2) ** 0.5 / old.last.height
            ratio = max(first.height / old.last.height, old.last.height / first.height)
            old_looks = old.looks(first=False)
            similarity = float(looks @ old_looks) if looks is not None and old_looks is not None else None
            reach = base + per_s * max(gap, 0)
            if d > reach or ratio > c.stitch_size_ratio or (
                    similarity is not None and similarity < min_similarity):
                continue
            # place and colours, each as a share of its own limit
            cost = d / reach + (0.0 if similarity is None else
                                (1 - similarity) / max(1e-6, 1 - min_similarity))
            if cost < best_cost:
                best, best_cost = old, cost
        return best if best is not None and best.alert_ids else None

    def _stitch(self, state: TrackHistory, earlier: TrackHistory) -> None:
        state.alert_ids = list(earlier.alert_ids)
        state.alerted |= earlier.alerted
        state.stitched_from = earlier.track_id
        earlier.alert_ids = []
        earlier.stitched_to = state.track_id  # one continuation per fragment
        lost = self._lost.get(state.stream_id)
        if lost is not None and earlier in lost:
            lost.remove(earlier)
        if self.store is not None:
            self.store.stitched(state.alert_ids, state.track_id, state.last_seen_at)
        counts = self._streams[state.stream_id].alerts
        counts["stitched:object"] = counts.get("stitched:object", 0) + 1

    def _raise(self, state: TrackHistory, finding: Finding, results: list[RuleResult],
               behaviors: tuple[str, ...]) -> None:
        obs = state.last
        scope = finding.zone or finding.line or f"class:{state.class_name}"
        kind = f"{finding.type.value}:{finding.direction or ''}"
        suppressed = self.cooldowns.suppressed(obs.stream_id, scope, kind, obs.t, finding.cooldown_s)
        level = finding.level
        fp = next((r.score for r in results if r.rule == "FalsePositivePredictionRule"), None)
        if behaviors and finding.type is AlertType.OBJECT:
            level = max(level, AlertLevel.ADVANCED)
        escalated = self.escalate_level is not None and not suppressed and level >= self.escalate_level
        session = self._streams[obs.stream_id].tag
        alert = Alert(
            id=f"{obs.stream_id}-{session + '-' if session else ''}e{state.epoch}-t{state.track_id}-{finding.key}",
            camera=obs.stream_id,
            type=finding.type, level=level.name, status=AlertStatus.SUPPRESSED if suppressed else AlertStatus.RAISED,
            track_id=state.track_id, epoch=state.epoch, class_id=state.class_id, class_name=state.class_name,
            zone=finding.zone, line=finding.line, direction=finding.direction, behaviors=list(behaviors),
            first_seen_at=state.first_seen_at, last_seen_at=obs.captured_at, raised_at=obs.captured_at,
            time_to_alert_s=round(obs.t - state.first_t, 3),
            frame_id=obs.frame_id, confidence=round(obs.confidence, 4), xyxy=tuple(round(v, 1) for v in obs.xyxy),
            rules=[r.outcome() for r in results], fp_probability=None if fp is None else round(fp, 4),
            reason=f"within the {finding.cooldown_s:g} s cooldown of {scope}" if suppressed else "",
            escalated=escalated)
        if alert.id in self._stored:  # raised before a restart; its track is the same
            state.alert_ids.append(alert.id)
            return
        if self.store is not None:
            try:
                self.store.add(alert)  # committed before it counts
            except sqlite3.IntegrityError:  # an id the store holds (a bug if it happens): never fail the frame
                logger.error("alert %s is already in the store: not raised again", alert.id)
                self._stored.add(alert.id)
                state.alert_ids.append(alert.id)
                return
        if self._kept_alerts is not None:
            self._kept_alerts.append(alert)
        state.alert_ids.append(alert.id)
        counts = self._streams[obs.stream_id].alerts
        tag = f"{alert.status.value}:{alert.type.value}"
        counts[tag] = counts.get(tag, 0) + 1
        if self._metrics is not None:
            self._metrics.stored.inc(tags={"stream": alert.camera, "type": alert.type.value, "status": alert.status.value})
        if self.store is not None:
            where = alert.zone or alert.line
            self._snapshots.append(SnapshotRequest(alert.id, alert.camera, alert.track_id, alert.xyxy,
                                                   f"{alert.type.value}{' ' + where if where else ''} {alert.level}"))
        if escalated:
            self._escalations.append(self._escalation(state, alert))

    def _escalation(self, state: TrackHistory, alert: Alert) -> EscalationRequest:
        obs = state.last
        since = state.zone_since.get(alert.zone) if alert.zone else None
        vx, vy = state.velocity()
        heading = ("left" if vx < 0 else "right") if abs(vx) >= abs(vy) else ("up" if vy < 0 else "down")
        speed = state.speed()
        history = (f"seen for {state.duration_s:.1f} s in {state.observations} frames, median score "
                   f"{state.median_score(self.config.smooth_window):.2f}, "
                   + (f"moving {heading} at {speed:.1f} body heights/s" if speed >= 0.1 else "standing still"))
        return EscalationRequest(alert.model_dump(mode="json"), alert.camera, obs.xyxy,
                                 None if since is None else round(obs.t - since, 1), history)

    def reviewed(self, review: dict[str, Any]) -> None:
        """The VLM's review of an escalated alert (from the escalator): onto the alert, and an event."""
        if self.store is not None:
            self.store.review(review["alert_id"], review)
        counts = self._count_event(review["camera"], EventKind.ALERT_REVIEWED)
        key = f"reviewed:{review['status']}"
        counts.alerts[key] = counts.alerts.get(key, 0) + 1
        self._outbox_events.append({"kind": EventKind.ALERT_REVIEWED.value, "stream_id": review["camera"],
                                    "alert_id": review["alert_id"], "review": review})

    def acknowledge(self, alert_id: str, by: str) -> dict[str, Any] | None:
        """An operator's acknowledgment (from the HTTP API): onto the alert, and an event; the alert's
        record, or None when the store has no such alert."""
        record = self.store.acknowledge(alert_id, by, time.time()) if self.store is not None else None
        if record is not None and record.get("acknowledged_by") == by:
            self._count_event(record["camera"], EventKind.ALERT_ACKNOWLEDGED)
            self._outbox_events.append({"kind": EventKind.ALERT_ACKNOWLEDGED.value, "stream_id": record["camera"],
                                        "alert_id": alert_id, "by": by, "at": record["acknowledged_at"]})
        return record

    # -- ends -----------------------------------------------------------------------------
    def _end_where(self, predicate: Any, reason: str) -> list[Event]:
        ended = [key for key, s in self._tracks.items() if predicate(s)]
        events = []
        window = max(self.config.stitch_window_s, self.config.sparse_stitch_window_s)  # of lost tracks kept
        for key in ended:
            state = self._tracks.pop(key)
            if state.alert_ids and self.store is not None:
                self.store.track_ended(state.alert_ids, state.last_seen_at)
            # remembered: tracks the rules confirmed (BASIC in confirm_frames observations) or that alerted (a
            # slow camera's, seen twice), ended inside the view; one lost at the frame's edge left it
            if window > 0 and reason != "stream stopped" and (state.confirmed or state.alert_ids) and \
                    not state.last.at_edge(self.config.edge_margin_frac):
                lost = self._lost.setdefault(state.stream_id, deque(maxlen=64))
                lost.append(state)
                while lost and lost[0].last_t < state.last_t - window:
                    lost.popleft()
            if state.confirmed:
                state.reason = reason
                events.append(self._event(state, EventKind.TRACK_ENDED, state.last_frame_id, state.last_seen_at))
        return events

    def _event(self, s: TrackHistory, kind: EventKind, frame_id: int, at: float) -> Event:
        last = s.last
        return Event(kind=kind, level=AlertLevel.BASIC, stream_id=s.stream_id, track_id=s.track_id, epoch=s.epoch,
                     class_id=s.class_id, class_name=self.class_names.get(s.class_id, str(s.class_id)),
                     frame_id=frame_id, captured_at=at, confidence=round(last.confidence, 4),
                     xyxy=tuple(round(v, 1) for v in last.xyxy), first_seen_at=s.first_seen_at,
                     duration_s=round(s.duration_s, 3), observations=s.observations,
                     reason=s.reason)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            counts = self._count_event(event.stream_id, event.kind)
            if event.kind is EventKind.TRACK_STARTED:
                counts.started_by_class[event.class_name] = counts.started_by_class.get(event.class_name, 0) + 1
            self._outbox_events.append(event.to_dict())

    def _count_event(self, stream_id: str, kind: EventKind) -> StreamCounts:
        counts = self._streams.setdefault(stream_id, StreamCounts())
        counts.events += 1
        counts.by_kind[kind.value] = counts.by_kind.get(kind.value, 0) + 1
        return counts

    # -- control --------------------------------------------------------------------------
    def finish_stream(self, stream_id: str) -> list[Event]:
        """The stream stopped: end its open tracks."""
        self._recheck_answered(stream_id)
        events = self._end_where(lambda s: s.stream_id == stream_id, "stream stopped")
        self._emit(events)
        return events

    def drain(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Events and track-log rows produced since the last drain (the driver writes them out)."""
        events, tracks = self._outbox_events, self._outbox_tracks
        self._outbox_events, self._outbox_tracks = [], []
        return events, tracks

    def counts(self) -> dict[str, dict[str, Any]]:
        return {sid: {"events": c.events, "confirmed_tracks": c.confirmed_tracks, "events_by_kind": dict(c.by_kind),
                      "started_by_class": dict(c.started_by_class), "alerts": dict(c.alerts)}
                for sid, c in self._streams.items()}

    @property
    def alerts(self) -> list[Alert]:
        """The alerts raised or suppressed so far (``keep_alerts=True`` only: replays, harnesses)."""
        return list(self._kept_alerts or [])

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


#: Restarted by Ray if its process dies: alerts are in the store already (it reopens it and does not raise
#: them again); tracks, events not yet drained and track-log rows it held are lost, frames sent to it while
#: it restarts are counted ``validator_error``.
ValidatorActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(Validator)


@dataclass
class Replay:
    events: list[dict[str, Any]]
    alerts: list[Alert]
    candidates: list[tuple[tuple[str, int, int], np.ndarray]] = field(default_factory=list)
    raised_at: dict[str, int] = field(default_factory=dict)  # alert id -> frame (source index) that raised it


def replay(rows: Iterable[dict[str, Any]], config: ValidatorConfig, class_names: dict[int, str],
           cameras: Iterable[CameraConfig] = (), ensemble: EnsembleModel | None = None, collect: int = 0,
           answer: Callable[[dict[str, Any], OpinionRequest], float | str | None] | None = None) -> Replay:
    """Run a track log through a fresh validator; gives the events and alerts the run produced (and,
    with ``collect``, the features of its candidate observations: ``Replay.candidates``). Second opinions
    the run logged are applied where it applied them; ``answer`` (row, request) → score answers the
    requests of logs that hold none, at once (e.g. ``sequences.logged_crop_score``; a str: skipped, why)."""
    validator = Validator(config, class_names, cameras, keep_alerts=True, ensemble=ensemble, collect=collect)
    streams: list[str] = []
    raised_at: list[tuple[Alert, int]] = []  # in the order raised
    last: dict[str, int] = {}
    for row in rows:
        for epoch, track_id, score, *skipped in row.get("opinions", ()):
            validator.second_opinion(row["stream_id"], epoch, track_id, score, *skipped)
        frame = TrackedFrame.from_log(row)
        if frame.stream_id not in streams:
            streams.append(frame.stream_id)
        for request in validator.process(frame).requests:
            score = answer(row, request) if answer is not None else None
            if isinstance(score, str):  # skipped, with this reason (the detector had no time for it)
                validator.second_opinion(request.stream_id, request.epoch, request.track_id, None, score)
            elif score is not None:
                validator.second_opinion(request.stream_id, request.epoch, request.track_id, score)
        last[frame.stream_id] = frame.source_index
        _note_raised(validator, raised_at, frame.source_index)
    for stream_id in streams:
        validator.finish_stream(stream_id)
        _note_raised(validator, raised_at, last[stream_id])
    return Replay(validator.drain()[0], validator.alerts, validator.candidates,
                  {alert.id: index for alert, index in raised_at})


def _note_raised(validator: Validator, raised_at: list[tuple[Alert, int]], index: int) -> None:
    """Alerts new since the last call were raised at frame ``index`` (an alert rechecked once its second
    opinion came is raised at the camera's next frame, after the frame it is about)."""
    raised_at += [(alert, index) for alert in validator.alerts[len(raised_at):]]
