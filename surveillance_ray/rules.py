"""Validation rules, each a small class with its level; the validator runs them in level order and the
first level that fails stops the alert. Every rule gives a ``RuleResult``: passed, a score, a reason.

BASIC         ConfidenceThresholdRule   per-class threshold with context modifiers from the frame
INTERMEDIATE  TemporalConsistencyRule   persistence, smooth motion and size over the track's history
              SpatialCoherenceRule      aspect ratio per class, size plausible for the place (perspective)
ADVANCED      ContextualValidationRule  masks, zones with their classes/thresholds/schedules, time of day
              BehaviorAnalysisRule      loitering, line crossing with direction, running
CRITICAL      MultiModelAgreementRule   the detector, asked again about the crop at full resolution, agrees
              FalsePositivePredictionRule  the ML ensemble's probability that the track is false
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from surveillance_ray.alerts import AlertType
from surveillance_ray.config import CameraConfig, LineConfig, ValidatorConfig, ZoneConfig
from surveillance_ray.ensemble import EnsembleModel, track_features
from surveillance_ray.history import Observation, TrackHistory
from surveillance_ray.messages import AlertLevel
from surveillance_ray.scene import CameraScene


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that should raise an alert of ``type`` (in a zone, at a line)."""

    type: AlertType
    level: AlertLevel
    cooldown_s: float
    zone: str | None = None
    line: str | None = None
    direction: str | None = None

    @property
    def key(self) -> str:
        return "-".join(p for p in (self.type.value, self.zone or self.line, self.direction) if p)


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    level: AlertLevel
    passed: bool
    score: float
    reason: str
    findings: tuple[Finding, ...] = ()
    behaviors: tuple[str, ...] = ()

    def outcome(self) -> dict:
        return {"rule": self.rule, "level": self.level.name, "passed": self.passed,
                "score": round(float(self.score), 4), "reason": self.reason}


@dataclass
class RuleInput:
    """What a rule sees: the track (its newest observation last), the camera, the frame's zones."""

    track: TrackHistory
    scene: CameraScene
    zones: list[ZoneConfig] = field(default_factory=list)
    crossings: list[tuple[LineConfig, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # what earlier rules of this evaluation found
    own_gap_s: float | None = None  # between the camera's frames at its own rate (None: not known)

    @property
    def obs(self) -> Observation:
        return self.track.last

    @property
    def camera(self) -> CameraConfig:
        return self.scene.camera


class Rule(Protocol):
    name: str
    level: AlertLevel

    def evaluate(self, inp: RuleInput) -> RuleResult: ...


def _classes_match(classes: list[str] | None, name: str) -> bool:
    return classes is None or name in classes


class ConfidenceThresholdRule:
    """Per-class threshold, raised for small, edge, dark or blurred, lowered in crowds; / sensitivity."""

    name = "ConfidenceThresholdRule"
    level = AlertLevel.BASIC

    def __init__(self, config: ValidatorConfig) -> None:
        self.config = config

    def threshold(self, obs: Observation, sensitivity: float = 1.0) -> tuple[float, list[str]]:
        c = self.config
        base = c.class_thresholds.get(obs.class_name, c.default_threshold)
        why = []
        h, w = obs.frame_shape
        if obs.width * obs.height / float(max(1, h * w)) < c.small_box_frac:
            base += c.small_box_penalty
            why.append("small")
        if obs.at_edge(c.edge_margin_frac):
            base += c.edge_penalty
            why.append("edge")
        if 0 <= obs.luma < c.low_light_luma:
            base += c.low_light_penalty
            why.append("low light")
        if 0 <= obs.sharpness < c.blur_sharpness:
            base += c.blur_penalty
            why.append("blurred")
        if obs.detections >= c.crowd_count:
            base -= c.crowd_relief
            why.append("crowded")
        return float(np.clip(base / sensitivity, 0.0, 1.0)), why

    def check(self, obs: Observation, sensitivity: float = 1.0) -> RuleResult:
        threshold, why = self.threshold(obs, sensitivity)
        mods = f" ({', '.join(why)})" if why else ""
        passed = obs.confidence >= threshold
        return RuleResult(self.name, self.level, passed, obs.confidence,
                          f"{obs.class_name} {obs.confidence:.2f} {'>=' if passed else '<'} {threshold:.2f}{mods}")

    def evaluate(self, inp: RuleInput) -> RuleResult:
        return self.check(inp.obs, inp.camera.sensitivity)


class TemporalConsistencyRule:
    """Persistence (passing BASIC in ``confirm_frames`` of the last ``confirm_window`` observations) and
    smoothness (consecutive boxes of plausible size change and motion)."""

    name = "TemporalConsistencyRule"
    level = AlertLevel.INTERMEDIATE

    def __init__(self, config: ValidatorConfig) -> None:
        self.config = config

    def smoothness(self, track: TrackHistory) -> tuple[float, int]:
        c = self.config
        recent = list(track.recent)[-c.smooth_window:]
        ok = steps = 0
        for a, b in zip(recent, recent[1:]):
            dt = max(0.0, b.t - a.t)
            ratio = max(b.height / a.height, a.height / b.height)
            (xa, ya), (xb, yb) = a.centre, b.centre
            moved = ((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5
            height = (a.height + b.height) / 2
            ok += ratio <= c.max_size_change and moved <= (c.max_speed * dt + 0.25) * height
            steps += 1
        return (ok / steps if steps else 1.0), steps

    def passing_span(self, track: TrackHistory) -> float:
        """Seconds between the first and last observations of the window that passed BASIC."""
        recent = list(track.recent)[-len(track.basic):]
        times = [o.t for o, ok in zip(recent, list(track.basic)[-len(recent):]) if ok]
        return times[-1] - times[0] if len(times) >= 2 else 0.0

    def evaluate(self, inp: RuleInput) -> RuleResult:
        c, track = self.config, inp.track
        passes = sum(track.basic)
        sparse = c.confirm_seconds > 0 and passes >= 2 and self.passing_span(track) >= c.confirm_seconds
        if passes < c.confirm_frames and not sparse:
            return RuleResult(self.name, self.level, False, passes / c.confirm_frames,
                              f"passed BASIC in {passes} of the last {len(track.basic)} observations "
                              f"(needs {c.confirm_frames}, or 2 over {c.confirm_seconds:g} s)")
        if track.class_share < c.min_class_share:
            return RuleResult(self.name, self.level, False, track.class_share,
                              f"{track.class_share:.0%} of its observations are {track.class_name} "
                              f"(needs {c.min_class_share:.0%})")
        median = track.median_score(c.smooth_window)
        if median < c.min_median_score:
            return RuleResult(self.name, self.level, False, median,
                              f"median score {median:.2f} < {c.min_median_score:.2f}")
        smooth, steps = self.smoothness(track)
        passed = smooth >= c.min_smooth_frac
        return RuleResult(self.name, self.level, passed, smooth,
                          f"persistent ({passes}/{len(track.basic)}), median score {median:.2f}; {smooth:.0%} of "
                          f"{steps} steps smooth" + ("" if passed else f" (needs {c.min_smooth_frac:.0%})"))


class SpatialCoherenceRule:
    """A box of plausible shape for its class, and of plausible size for its place in the frame
    (the camera's perspective model, fitted online from alerted tracks)."""

    name = "SpatialCoherenceRule"
    level = AlertLevel.INTERMEDIATE

    def __init__(self, config: ValidatorConfig) -> None:
        self.config = config

    def evaluate(self, inp: RuleInput) -> RuleResult:
        c, obs = self.config, inp.obs
        recent = list(inp.track.recent)[-5:]
        aspect = float(np.median([o.height / o.width for o in recent]))
        reasons = [f"h/w {aspect:.2f}"]
        track = inp.track
        bounds = c.aspect_ranges.get(track.class_name)
        if bounds and not obs.at_edge(c.edge_margin_frac) and not bounds[0] <= aspect <= bounds[1]:
            return RuleResult(self.name, self.level, False, aspect,
                              f"h/w {aspect:.2f} outside [{bounds[0]:g}, {bounds[1]:g}] for {track.class_name}")
        frame_h = obs.frame_shape[0]
        expected = inp.scene.perspective.expected(track.class_id, obs.xyxy[3] / frame_h)
        if expected is None:
            return RuleResult(self.name, self.level, True, 1.0, "; ".join(reasons + ["no perspective model yet"]))
        ratio = (obs.height / frame_h) / max(expected, 1e-3)
        tol = c.perspective_tolerance
        if expected > 0 and not obs.at_edge(c.edge_margin_frac) and not 1 / tol <= ratio <= tol:
            return RuleResult(self.name, self.level, False, ratio,
                              f"box {ratio:.2f}x the height expected at its place (tolerance {tol:g}x)")
        return RuleResult(self.name, self.level, True, ratio, "; ".join(reasons + [f"{ratio:.2f}x expected height"]))


class ContextualValidationRule:
    """Masks, zones with their classes, thresholds and schedules, and the camera's armed hours.

    Fails when the track stands in a mask, when a watch zone's threshold is not met, or when nothing
    could alert about it here (its class raises no object alert and no armed zone or line is about it).
    """

    name = "ContextualValidationRule"
    level = AlertLevel.ADVANCED

    def evaluate(self, inp: RuleInput) -> RuleResult:
        cam, obs, track = inp.camera, inp.obs, inp.track
        at, cls = obs.captured_at, track.class_name
        default = cam.rules.object_classes
        armed = [z for z in inp.zones if inp.scene.armed(z.schedule, at)]
        for zone in armed:
            if zone.kind == "mask":
                return RuleResult(self.name, self.level, False, 0.0, f"inside mask {zone.name!r}")
        findings: list[Finding] = []
        watch = [z for z in armed if z.kind == "watch" and _classes_match(z.classes, cls)]
        for zone in watch:
            if zone.min_confidence is not None and track.mean_confidence < zone.min_confidence:
                return RuleResult(self.name, self.level, False, track.mean_confidence,
                                  f"mean confidence {track.mean_confidence:.2f} < zone {zone.name!r}'s "
                                  f"{zone.min_confidence:.2f}")
            findings.append(Finding(AlertType.OBJECT, _level(zone.level, AlertLevel.BASIC), zone.cooldown_s,
                                    zone=zone.name))
        if not watch and (default is None or cls in default) and inp.scene.armed(cam.rules.schedule, at):
            findings.append(Finding(AlertType.OBJECT, AlertLevel.BASIC, cam.rules.object_cooldown_s))
        for zone in armed:
            if zone.kind == "intrusion" and _classes_match(zone.classes, cls):
                if zone.min_confidence is None or track.mean_confidence >= zone.min_confidence:
                    findings.append(Finding(AlertType.INTRUSION, _level(zone.level, AlertLevel.ADVANCED),
                                            zone.cooldown_s, zone=zone.name))
        watched_elsewhere = any(_classes_match(z.classes, cls) for z in cam.zones if z.kind != "mask") or \
            any(_classes_match(ln.classes, cls) for ln in cam.lines)
        if not findings and not watched_elsewhere:
            return RuleResult(self.name, self.level, False, 0.0,
                              f"no alert for {cls} here (not an object class of camera {cam.id!r}, "
                              "or its schedule is not armed, and no zone or line is about it)")
        where = ", ".join(z.name for z in inp.zones) or "no zone"
        return RuleResult(self.name, self.level, True, 1.0, f"{cls} in {where}", findings=tuple(findings))


class BehaviorAnalysisRule:
    """Loitering (dwell in an armed loitering zone > ``loiter_s``), line crossings in an alerting
    direction, and running (speed over the camera's ``running_speed``). Describes, never rejects."""

    name = "BehaviorAnalysisRule"
    level = AlertLevel.ADVANCED

    def evaluate(self, inp: RuleInput) -> RuleResult:
        cam, obs, track = inp.camera, inp.obs, inp.track
        at, cls = obs.captured_at, track.class_name
        findings: list[Finding] = []
        notes: list[str] = []
        for zone in inp.zones:
            if zone.kind == "loitering" and _classes_match(zone.classes, cls):
                dwell = obs.t - track.zone_since.get(zone.name, obs.t)
                notes.append(f"{dwell:.1f} s in {zone.name!r}")
                if dwell >= zone.loiter_s and inp.scene.armed(zone.schedule, at):
                    findings.append(Finding(AlertType.LOITERING, _level(zone.level, AlertLevel.ADVANCED),
                                            zone.cooldown_s, zone=zone.name))
        for line, direction in inp.crossings:
            notes.append(f"crossed {line.name!r} {direction}")
            if line.direction in ("both", direction) and _classes_match(line.classes, cls) and \
                    inp.scene.armed(line.schedule, at):
                findings.append(Finding(AlertType.LINE_CROSSING, _level(line.level, AlertLevel.INTERMEDIATE),
                                        line.cooldown_s, line=line.name, direction=direction))
        speed = track.speed()
        behaviors = ("running",) if speed >= cam.rules.running_speed else ()
        notes.append(f"speed {speed:.1f} h/s" + (" (running)" if behaviors else ""))
        return RuleResult(self.name, self.level, True, speed, "; ".join(notes), findings=tuple(findings),
                          behaviors=behaviors)


class MultiModelAgreementRule:
    """A second opinion on the track's crop, cut from the full-resolution frame and run through the detector
    again (the same model at a higher effective resolution), asked for once the track passes ADVANCED and
    answered off the frame path; the alert waits for it, at most ``second_opinion_wait_s``.

    A skipped ask (the detector's auxiliary budget had no time for it, or the ingest actor's backlog was full)
    counts as not answered yet: it is asked again at the track's next evaluation, and once the wait is over
    without an answer the rule passes, saying how many asks were skipped and why."""

    name = "MultiModelAgreementRule"
    level = AlertLevel.CRITICAL

    def __init__(self, config: ValidatorConfig, ask: Callable[[TrackHistory], None]) -> None:
        self.config = config
        self.ask = ask

    def _ask(self, track: TrackHistory, early: bool, again: bool = False) -> None:
        if not again:  # a skipped ask asked again keeps its wait's start
            track.opinion_asked_t, track.opinion_asked_at = track.last_t, track.observations
        track.opinion_early, track.opinion_pending = early, True
        self.ask(track)

    def _skipped_waiting(self, track: TrackHistory) -> bool:
        """Its last ask was skipped and the wait is not over: ask again."""
        return (track.opinion is None and track.opinion_asked_t is not None and not track.opinion_pending
                and track.last_t - track.opinion_asked_t < self.config.second_opinion_wait_s)

    def ask_early(self, track: TrackHistory) -> None:
        """Ask before ADVANCED passes (a slow camera: the answer is in by its next frame)."""
        if track.opinion is None and track.opinion_asked_t is None:
            self._ask(track, early=True)
        elif self._skipped_waiting(track):
            self._ask(track, early=track.opinion_early, again=True)

    def evaluate(self, inp: RuleInput) -> RuleResult:
        track, c = inp.track, self.config
        if track.opinion is not None and track.opinion < c.second_opinion_min and (
                track.opinion_early or track.observations - track.opinion_asked_at >= c.second_opinion_every
                or (inp.own_gap_s is not None
                    and track.last_t - track.opinion_asked_t >= c.second_opinion_every * inp.own_gap_s)):
            # disagreed a while ago (as many observations as its camera's own rate gives in that time: a camera
            # analysed below its rate is asked again as soon), or before the track was persistent: ask again
            track.opinion, track.opinion_asked_t, track.opinion_early = None, None, False
            track.opinion_skipped = 0
        if track.opinion is not None:
            passed = track.opinion >= c.second_opinion_min
            return RuleResult(self.name, self.level, passed, track.opinion,
                              f"second opinion {track.opinion:.2f} {'>=' if passed else '<'} {c.second_opinion_min:.2f}")
        if track.opinion_asked_t is None:
            self._ask(track, early=False)
            return RuleResult(self.name, self.level, False, 0.0, "asked for a second opinion")
        waited = track.last_t - track.opinion_asked_t
        skipped = (f" ({track.opinion_skipped} ask(s) skipped: {track.opinion_skip_reason})"
                   if track.opinion_skipped else "")
        if waited >= c.second_opinion_wait_s:
            return RuleResult(self.name, self.level, True, -1.0, f"no second opinion within {waited:.1f} s{skipped}")
        if self._skipped_waiting(track):
            self._ask(track, early=False, again=True)
            return RuleResult(self.name, self.level, False, 0.0, f"asked again for a second opinion{skipped}")
        return RuleResult(self.name, self.level, False, 0.0, "awaiting the second opinion")


class FalsePositivePredictionRule:
    """The ensemble's probability that the track is a false positive must not exceed ``fp_threshold``.
    A track it rejects is asked again every ``ensemble_every`` observations (more history, new answer).

    While ``defer`` is a list (the validator's batch), a track that needs a fresh probability is put on it
    and fails for now; the validator scores the list in one call (``score``: a call costs about the same
    for one track as for twenty) and evaluates those tracks again."""

    name = "FalsePositivePredictionRule"
    level = AlertLevel.CRITICAL
    costly = True  # a few ms a call: not asked while another rule of its level fails (validate)

    def __init__(self, config: ValidatorConfig, model: EnsembleModel) -> None:
        self.config = config
        self.model = model
        self.defer: list[TrackHistory] | None = None

    def score(self, tracks: list[TrackHistory]) -> None:
        """A fresh probability for each of ``tracks``, in one call of the ensemble."""
        features = np.stack([track_features(t, self.config.edge_margin_frac) for t in tracks])
        for track, p in zip(tracks, self.model.fp_probabilities(features)):
            track.fp_probability, track.fp_at = float(p), track.observations

    def evaluate(self, inp: RuleInput) -> RuleResult:
        track, c = inp.track, self.config
        if track.fp_at < 0 or track.observations - track.fp_at >= c.ensemble_every:
            if self.defer is not None:
                self.defer.append(track)
                return RuleResult(self.name, self.level, False, 0.0, "false-positive probability: scored with the batch")
            self.score([track])
        p = track.fp_probability
        passed = p <= c.fp_threshold
        return RuleResult(self.name, self.level, passed, p,
                          f"false-positive probability {p:.2f} {'<=' if passed else '>'} {c.fp_threshold:.2f}")


def _level(name: str | None, default: AlertLevel) -> AlertLevel:
    return AlertLevel[name] if name else default


def default_rules(config: ValidatorConfig, ensemble: EnsembleModel | None = None,
                  ask: Callable[[TrackHistory], None] | None = None) -> list[Rule]:
    """The rules in level order (stable within a level: contextual before behaviour, agreement before the
    ensemble)."""
    rules: list[Rule] = [ConfidenceThresholdRule(config), TemporalConsistencyRule(config),
                         SpatialCoherenceRule(config), ContextualValidationRule(), BehaviorAnalysisRule()]
    if config.second_opinion and ask is not None:
        rules.append(MultiModelAgreementRule(config, ask))
    if ensemble is not None:
        rules.append(FalsePositivePredictionRule(config, ensemble))
    return sorted(rules, key=lambda r: r.level)
