"""What the core tells an operator's metrics, without knowing how they are kept.

The core calls ``telemetry()`` at the moments an operator counts (a command handled, a post
delivered or given up, a redelivered event ignored, a classifier fallback, the clock's lead and
its jobs). By default nothing is kept. The web adapter installs an implementation backed by
prometheus_client at start (``install``); the core never imports a metrics library.
"""

from __future__ import annotations

import re
from typing import Protocol


class Telemetry(Protocol):
    def command_handled(self, name: str, outcome: str, seconds: float) -> None:
        """A chat command answered: its registered name (or "unknown"), "ok" / "refused" /
        "failed" / "database_unavailable", and how long the core took."""

    def delivery(self, platform: str, outcome: str, error_class: str) -> None:
        """One attempt to post an outbox row: "sent", "retried" or "given_up", and for the last
        two the error's class ("" for sent)."""

    def inbound_deduplicated(self, platform: str) -> None:
        """A platform delivered an event or command again; it was ignored."""

    def classifier_fallback(self, what: str) -> None:
        """OpenAI failed and the offline classifier (or summariser) answered instead."""

    def clock_leading(self, leading: bool) -> None:
        """Whether this process's clock holds the lead now."""

    def job_ran(self, job: str, outcome: str, at: float) -> None:
        """A clock job ran to the end ("ok") or raised ("failed"); ``at`` is a Unix time."""


class NoTelemetry:
    """The default: nothing is kept."""

    def command_handled(self, name: str, outcome: str, seconds: float) -> None:
        pass

    def delivery(self, platform: str, outcome: str, error_class: str) -> None:
        pass

    def inbound_deduplicated(self, platform: str) -> None:
        pass

    def classifier_fallback(self, what: str) -> None:
        pass

    def clock_leading(self, leading: bool) -> None:
        pass

    def job_ran(self, job: str, outcome: str, at: float) -> None:
        pass


_current: Telemetry = NoTelemetry()


def telemetry() -> Telemetry:
    return _current


def install(implementation: Telemetry) -> None:
    """Set once at start by the composition root (``cxbot run``); tests install their own."""
    global _current
    _current = implementation


_SNAKE_WORD = re.compile(r"[a-z][a-z0-9_]{0,39}")


def error_class(reason: str) -> str:
    """A delivery error's class, for a metric label with few values: "rate_limited", "http_503",
    "network", "timeout", a Slack error code such as "channel_not_found", else "other"; never
    the rest of the text, which may name a channel."""
    text = reason.split(": ", 1)[1] if reason.startswith(("slack: ", "discord: ")) else reason
    if text.startswith("rate limited"):
        return "rate_limited"
    if text.startswith("HTTP "):
        status = text[5:8]
        return f"http_{status}" if status.isdigit() else "http"
    if text.startswith("network"):
        return "network"
    if text.startswith("timed out"):
        return "timeout"
    word = text.split(" ", 1)[0]
    return word if _SNAKE_WORD.fullmatch(word) else "other"
