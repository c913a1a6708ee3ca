"""Slack over Socket Mode: an outgoing websocket, no public URL.

Bolt offers four Socket Mode clients. slack_sdk's built-in one acknowledges an envelope sent on
the new socket right after Slack asks for a reconnect (``disconnect``/``refresh_requested``)
only after about 3 s, Slack's limit, because it first waits out the old socket's receive
timeout. The websocket-client based one acknowledges at once across reconnects and runs the
synchronous Bolt App on its own threads (benchmarks/socket_mode_reconnect.py measures all four).
"""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)


class SocketModeRefused(Exception):
    """Slack would not open a Socket Mode connection; the message is one line for the operator."""


def connect_socket_mode(app: App, app_token: str) -> SocketModeHandler:
    """Connect over Socket Mode (returns at once; the handler's threads keep it running and
    reconnect whenever Slack asks). Raises SocketModeRefused when Slack refuses the app-level
    token or cannot be reached."""
    client_log = logging.getLogger("slack_sdk.socket_mode")
    handler = SocketModeHandler(app, app_token=app_token, logger=client_log)
    silenced = _DropAll()  # at start, a refusal is told once, in one line, by the caller
    client_log.addFilter(silenced)
    try:
        handler.connect()
    except SlackApiError as exc:  # apps.connections.open said ok: false
        error = exc.response.get("error") if exc.response is not None else None
        raise SocketModeRefused(
            f"Slack refused the app-level token (SLACK_APP_TOKEN): {error or 'unknown error'}"
        ) from None
    except (SlackClientError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SocketModeRefused(f"could not reach Slack for Socket Mode: {reason}") from None
    finally:
        client_log.removeFilter(silenced)
    log.info("slack: connected in Socket Mode")
    return handler


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False
