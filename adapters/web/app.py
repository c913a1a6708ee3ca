"""The one ASGI application: its routes, assembled in one place, behind the request hygiene.

Adding an endpoint is one entry in ``routes`` (survey webhooks will be ``/webhooks/<source>``;
Bolt's OAuth install and redirect routes go beside ``/slack/events``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from slack_bolt import App
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from adapters.web.health import Check, Readiness, health_routes
from adapters.web.hygiene import ASGIApp, RequestHygiene
from adapters.web.metrics import metrics_routes
from adapters.web.slack import slack_routes


@dataclass
class WebParts:
    """What the process has to offer over HTTP."""

    registry: CollectorRegistry
    checks: Mapping[str, Check]
    ready_timeout: float = 2.0
    slack_app: App | None = None
    extra_routes: list[BaseRoute] = field(default_factory=list)


def routes(parts: WebParts) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        *health_routes(Readiness(parts.checks, parts.ready_timeout)),
        *metrics_routes(parts.registry),
    ]
    if parts.slack_app is not None:
        found += slack_routes(parts.slack_app)
    return found + parts.extra_routes


def build_app(parts: WebParts, *, max_body: int, body_timeout: float) -> ASGIApp:
    return RequestHygiene(Starlette(routes=routes(parts)), max_body=max_body, body_timeout=body_timeout)
