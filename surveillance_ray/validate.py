"""The validator: turns tracked frames into events (track started / persisted / ended).

``Validator`` is plain Python (unit-testable, replayable from a track log); the pipeline runs it as
one Ray actor that all cameras call (``ValidatorActor``), and drains its events and track log.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import ray

from surveillance_ray.config import ValidatorConfig
from surveillance_ray.messages import AlertLevel, Event, EventKind, TrackedFrame, Verdict
from surveillance_ray.rules import ClassThresholdRule, Observation, Rule, TemporalConfirmation


@dataclass
class TrackState:
    stream_id: str
    epoch: int
    track_id: int
    class_id: int
    first_seen_at: float
    last_seen_at: float
    last_frame_id: int
    history: deque[bool]
    xyxy: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    confidence: float = 0.0
    observations: int = 0
    confirmed: bool = False
    last_event_at: float = 0.0
    reason: str = ""


@dataclass
class StreamCounts:
    events: int = 0
    confirmed_tracks: int = 0
    epoch: int = -1
    last_captured_at: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    started_by_class: dict[str, int] = field(default_factory=dict)


class Validator:
    """Multi-level validation over confirmed tracks; state is per (stream, epoch, track)."""

    def __init__(self, config: ValidatorConfig, class_names: dict[int, str],
                 sensitivity: dict[str, float] | None = None, record_tracks: bool = False) -> None:
        self.config = config
        self.class_names = {int(k): v for k, v in class_names.items()}
        self.rules: list[Rule] = sorted([ClassThresholdRule(config, sensitivity or {})], key=lambda r: r.level)
        self.confirmation = TemporalConfirmation(config)
        self.record_tracks = record_tracks
        self._tracks: dict[tuple[str, int, int], TrackState] = {}
        self._streams: dict[str, StreamCounts] = {}
        self._outbox_events: list[dict[str, Any]] = []
        self._outbox_tracks: list[dict[str, Any]] = []

    # -- the frame path -------------------------------------------------------------------
    def process(self, frame: TrackedFrame) -> Verdict:
        stream = self._streams.setdefault(frame.stream_id, StreamCounts())
        events: list[Event] = []
        if frame.epoch != stream.epoch:
            events += self._end_where(lambda s: s.stream_id == frame.stream_id and s.epoch != frame.epoch,
                                      "source reconnected or looped")
            stream.epoch = frame.epoch
        stream.last_captured_at = frame.captured_at
        t = frame.tracks
        for i in range(len(t)):
            events += self._observe(frame, int(t.track_id[i]), int(t.class_id[i]), float(t.confidence[i]),
                                    tuple(float(v) for v in t.xyxy[i]))
        horizon = frame.captured_at - self.config.end_after_s
        events += self._end_where(lambda s: s.stream_id == frame.stream_id and s.last_seen_at < horizon,
                                  f"unseen for {self.config.end_after_s:g} s")
        if self.record_tracks:
            self._outbox_tracks.append(frame.to_log())
        self._emit(events)
        return Verdict(validated_at=time.time(), events=tuple(events))

    def process_many(self, frames: list[TrackedFrame]) -> list[Verdict]:
        """One call per detector request of an ingest actor (frames of several cameras)."""
        return [self.process(frame) for frame in frames]

    def _observe(self, frame: TrackedFrame, track_id: int, class_id: int, confidence: float,
                 xyxy: tuple[float, float, float, float]) -> list[Event]:
        key = (frame.stream_id, frame.epoch, track_id)
        state = self._tracks.get(key)
        if state is None:
            state = TrackState(frame.stream_id, frame.epoch, track_id, class_id, frame.captured_at,
                               frame.captured_at, frame.frame_id, self.confirmation.new_history())
            self._tracks[key] = state
        state.class_id, state.xyxy, state.confidence = class_id, xyxy, confidence
        state.last_seen_at, state.last_frame_id = frame.captured_at, frame.frame_id
        state.observations += 1
        obs = Observation(frame.stream_id, track_id, class_id, self.class_names.get(class_id, str(class_id)),
                          confidence, xyxy, frame.frame_shape, frame.captured_at)
        results = [rule.check(obs) for rule in self.rules]
        passed = all(r.passed for r in results)
        state.reason = "; ".join(r.reason for r in results)
        confirmed = self.confirmation.update(state.history, passed)
        if confirmed and not state.confirmed:
            state.confirmed = True
            state.last_event_at = frame.captured_at
            self._streams[frame.stream_id].confirmed_tracks += 1
            return [self._event(state, EventKind.TRACK_STARTED, frame.frame_id, frame.captured_at)]
        if state.confirmed and frame.captured_at - state.last_event_at >= self.config.persist_every_s:
            state.last_event_at = frame.captured_at
            return [self._event(state, EventKind.TRACK_PERSISTED, frame.frame_id, frame.captured_at)]
        return []

    def _end_where(self, predicate: Any, reason: str) -> list[Event]:
        ended = [key for key, s in self._tracks.items() if predicate(s)]
        events = []
        for key in ended:
            state = self._tracks.pop(key)
            if state.confirmed:
                state.reason = reason
                events.append(self._event(state, EventKind.TRACK_ENDED, state.last_frame_id, state.last_seen_at))
        return events

    def _event(self, s: TrackState, kind: EventKind, frame_id: int, at: float) -> Event:
        return Event(kind=kind, level=AlertLevel.BASIC, stream_id=s.stream_id, track_id=s.track_id, epoch=s.epoch,
                     class_id=s.class_id, class_name=self.class_names.get(s.class_id, str(s.class_id)),
                     frame_id=frame_id, captured_at=at, confidence=round(s.confidence, 4),
                     xyxy=tuple(round(v, 1) for v in s.xyxy), first_seen_at=s.first_seen_at,
                     duration_s=round(s.last_seen_at - s.first_seen_at, 3), observations=s.observations,
                     reason=s.reason)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            counts = self._streams.setdefault(event.stream_id, StreamCounts())
            counts.events += 1
            counts.by_kind[event.kind.value] = counts.by_kind.get(event.kind.value, 0) + 1
            if event.kind is EventKind.TRACK_STARTED:
                counts.started_by_class[event.class_name] = counts.started_by_class.get(event.class_name, 0) + 1
            self._outbox_events.append(event.to_dict())

    # -- control --------------------------------------------------------------------------
    def finish_stream(self, stream_id: str) -> list[Event]:
        """The stream stopped: end its open tracks."""
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
                      "started_by_class": dict(c.started_by_class)} for sid, c in self._streams.items()}


ValidatorActor = ray.remote(num_cpus=0, max_restarts=0)(Validator)


def replay(rows: Iterable[dict[str, Any]], config: ValidatorConfig, class_names: dict[int, str],
           sensitivity: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Run a track log through a fresh validator; gives the events the run produced."""
    validator = Validator(config, class_names, sensitivity)
    streams: list[str] = []
    for row in rows:
        frame = TrackedFrame.from_log(row)
        if frame.stream_id not in streams:
            streams.append(frame.stream_id)
        validator.process(frame)
    for stream_id in streams:
        validator.finish_stream(stream_id)
    return validator.drain()[0]
