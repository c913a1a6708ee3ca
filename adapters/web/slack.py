"""Slack's Events API over HTTP: ``POST /slack/events`` through slack-bolt's Starlette adapter.

Bolt's ``SlackRequestHandler`` for Starlette calls the (synchronous) ``App.dispatch`` on the event
loop itself: while one request waits for its listener's ``ack()`` every other request, /healthz
included, would wait too. Here dispatch runs in Starlette's thread pool instead, with Bolt's own
request and response translation. The body was already read and size-checked by the hygiene
middleware; the signature is checked by the app's first middleware, before anything else.
"""

from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import SlackRequestHandler, to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

EVENTS_PATH = "/slack/events"


class ThreadedSlackRequestHandler(SlackRequestHandler):
    async def handle(self, req: Request, addition_context_properties: dict[str, object] | None = None) -> Response:
        if req.method != "POST":  # Bolt's OAuth routes (GET) would come here, through Bolt's handler
            return await super().handle(req, addition_context_properties)
        body = await req.body()
        bolt_request = to_bolt_request(req, body, addition_context_properties)
        return to_starlette_response(await run_in_threadpool(self.app.dispatch, bolt_request))


def slack_routes(app: App) -> list[Route]:
    handler = ThreadedSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return [Route(EVENTS_PATH, events, methods=["POST"])]
