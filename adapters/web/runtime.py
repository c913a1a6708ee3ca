"""Starting the web surface for ``cxbot run``: metrics installed as the core's telemetry, the
readiness checks, the limits from the settings, uvicorn on the port."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry
from slack_bolt import App
from sqlalchemy import Engine

from adapters.web.app import WebParts, build_app
from adapters.web.health import Check
from adapters.web.metrics import DatabaseCollector, PrometheusTelemetry
from adapters.web.server import ServerLimits, WebServer
from bot.config import Settings
from bot.store.db import database_answers, schema_head, schema_is_at
from bot.telemetry import install

DEFAULTS = Settings.model_construct()  # the settings' defaults, without reading the environment


def start_web(
    settings: Settings,
    engine: Engine,
    port: int,
    *,
    platforms: Mapping[str, Check],
    slack_app: App | None = None,
    host: str = "0.0.0.0",
) -> WebServer:
    registry = CollectorRegistry()
    install(PrometheusTelemetry(registry))
    registry.register(DatabaseCollector(engine))
    head = schema_head()
    checks: dict[str, Check] = {
        "database": lambda: database_answers(engine),
        "migrations": lambda: schema_is_at(engine, head),
        **{f"platform:{name}": check for name, check in platforms.items()},
    }
    parts = WebParts(registry=registry, checks=checks, ready_timeout=settings.ready_timeout, slack_app=slack_app)
    app = build_app(parts, max_body=settings.web_max_body, body_timeout=settings.web_body_timeout)
    limits = ServerLimits(
        header_timeout=settings.web_header_timeout,
        keep_alive=settings.web_keep_alive,
        max_connections=settings.web_max_connections,
        shutdown_grace=settings.shutdown_grace,
    )
    return WebServer(app, host, port, limits).start()


def serve_slack(app: App, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None) -> WebServer:
    """Bolt's app alone on the web server, with the default limits (tests, benchmarks)."""
    parts = WebParts(registry=CollectorRegistry(), checks={}, slack_app=app)
    asgi = build_app(parts, max_body=DEFAULTS.web_max_body, body_timeout=DEFAULTS.web_body_timeout)
    return WebServer(asgi, host, port, limits).start()
