"""Running the Slack adapter in Socket Mode (an outgoing websocket, no public URL). HTTP mode
(``/slack/events`` behind a public URL) is a route of the web server: adapters/web/slack.py."""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode import SocketModeHandler

from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)


def socket_mode(bot: SlackBot, app_token: str) -> SocketModeHandler:
    """Connect over Socket Mode (returns at once; the handler's threads keep it running)."""
    handler = SocketModeHandler(bot.app, app_token=app_token)
    handler.connect()
    log.info("slack: connected in Socket Mode")
    return handler
