"""Running the Slack adapter: Socket Mode (an outgoing websocket, no public URL) or HTTP mode
(``/slack/events`` on a port, behind a public URL), plus the outbox drain for Slack."""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug("http: %s", format % args)


def serve_http(app: App, host: str = "0.0.0.0", port: int = 3000) -> tuple[WSGIServer, threading.Thread]:
    """Serve Bolt's WSGI app on a threaded server; returns it running (``shutdown()`` stops it).
    Requests are verified against the signing secret before anything else happens."""
    server = make_server(
        host,
        port,
        SlackRequestHandler(app, path=EVENTS_PATH),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="slack-http", daemon=True)
    thread.start()
    log.info("slack: HTTP mode on %s:%s%s", host, server.server_address[1], EVENTS_PATH)
    return server, thread


def socket_mode(bot: SlackBot, app_token: str) -> SocketModeHandler:
    """Connect over Socket Mode (returns at once; the handler's threads keep it running)."""
    handler = SocketModeHandler(bot.app, app_token=app_token)
    handler.connect()
    log.info("slack: connected in Socket Mode")
    return handler
