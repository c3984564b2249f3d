"""The VLM client: one review of an escalated alert through a chain of OpenAI-compatible endpoints, with
the mode's latency budget per attempt, retries with backoff, and a circuit breaker per endpoint.

A review never raises: whatever fails, it returns a ``Review`` (unreviewed, with the error).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass
from functools import lru_cache

import httpx
import jinja2
from pydantic import ValidationError

from surveillance_ray.config import VLMConfig, VLMEndpoint, prompt_path
from surveillance_ray.evidence import Evidence
from surveillance_ray.verdict import Mode, Review, ReviewStatus, Verdict, verdict_schema


class ReviewError(Exception):
    """One attempt failed (the message says how)."""


@dataclass
class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; lets one attempt through after ``reset_s``."""

    failures: int
    reset_s: float
    consecutive: int = 0
    opened_at: float | None = None

    def allows(self, now: float) -> bool:
        return self.opened_at is None or now - self.opened_at >= self.reset_s

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.consecutive, self.opened_at = 0, None
            return
        self.consecutive += 1
        if self.consecutive >= self.failures:
            self.opened_at = now

    @property
    def open(self) -> bool:
        return self.opened_at is not None


@lru_cache(maxsize=16)
def _template(name: str) -> jinja2.Template:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    return env.from_string(prompt_path(name).read_text())


def render_prompts(evidence: Evidence, prompt: str) -> tuple[str, str]:
    """(system, user) prompts of one escalation from the template files."""
    r = evidence.request
    context = {"alert": r.alert, "dwell_s": r.dwell_s, "history": r.history, "keyframes": len(evidence.frames)}
    return _template("system.j2").render(**context).strip(), _template(prompt).render(**context).strip()


def _image(jpeg: bytes) -> dict:
    return {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}}


def request_body(evidence: Evidence, model: str, prompt: str, max_tokens: int) -> dict:
    """The chat-completions request: the crop, then the keyframes, then the text; JSON-schema output."""
    system, user = render_prompts(evidence, prompt)
    content = [_image(evidence.crop), *(_image(f) for f in evidence.frames), {"type": "text", "text": user}]
    return {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "verdict", "schema": verdict_schema(), "strict": True}},
    }


def parse_verdict(payload: dict) -> Verdict:
    """The verdict in a chat-completions response, validated against the schema."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ReviewError(f"no message in the response: {str(payload)[:120]}") from None
    try:
        return Verdict.model_validate_json(content or "")
    except ValidationError as exc:
        raise ReviewError(f"invalid verdict: {exc.errors()[0]['msg']} in {str(content)[:120]!r}") from None


class VLMClient:
    """Reviews through ``endpoints`` in order (a fallback chain)."""

    def __init__(self, config: VLMConfig, endpoints: list[VLMEndpoint]) -> None:
        self.config = config
        self.endpoints = endpoints
        self.breakers = {e.url: CircuitBreaker(config.breaker_failures, config.breaker_reset_s) for e in endpoints}
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=4 * config.workers))

    async def _attempt(self, endpoint: VLMEndpoint, evidence: Evidence, mode: Mode) -> Verdict:
        m = self.config.modes[mode.value]
        key = os.environ.get(endpoint.api_key_env, "") if endpoint.api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = request_body(evidence, endpoint.model, m.prompt, m.max_tokens)
        try:
            response = await asyncio.wait_for(
                self._http.post(f"{endpoint.url}/chat/completions", json=body, headers=headers, timeout=m.budget_s),
                m.budget_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise ReviewError(f"no answer within the {mode.value} budget of {m.budget_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ReviewError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise ReviewError(f"HTTP {response.status_code}: {response.text[:120]}")
        try:
            payload = response.json()
        except ValueError:
            raise ReviewError(f"response is not JSON: {response.text[:120]!r}") from None
        return parse_verdict(payload)

    async def review(self, evidence: Evidence, mode: Mode | None = None) -> Review:
        mode = mode or Mode(evidence.mode)
        c, errors, attempts = self.config, [], 0
        for round_ in range(c.retries + 1):
            if round_:
                await asyncio.sleep(c.backoff_s * 2 ** (round_ - 1))
            for endpoint in self.endpoints:
                breaker = self.breakers[endpoint.url]
                if not breaker.allows(time.monotonic()):
                    errors.append(f"{endpoint.url}: circuit open")
                    continue
                attempts += 1
                started = time.monotonic()
                try:
                    verdict = await self._attempt(endpoint, evidence, mode)
                except ReviewError as exc:
                    breaker.record(False, time.monotonic())
                    errors.append(f"{endpoint.url}: {exc}")
                    continue
                breaker.record(True, time.monotonic())
                return Review.of(evidence.alert_id, evidence.request.stream_id, mode, verdict, endpoint=endpoint.url,
                                 attempts=attempts, latency_s=round(time.time() - evidence.queued_at, 3),
                                 answer_s=round(time.monotonic() - started, 3), reviewed_at=time.time())
        return Review(alert_id=evidence.alert_id, camera=evidence.request.stream_id, status=ReviewStatus.UNREVIEWED,
                      mode=mode, attempts=attempts, reviewed_at=time.time(),
                      error="; ".join(errors[-3:]) or "no endpoint")

    async def close(self) -> None:
        await self._http.aclose()
