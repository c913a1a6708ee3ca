"""``/healthz``: the process answers. ``/readyz``: it is ready for traffic, each named check
passing within a short timeout; otherwise 503 with the names of the checks that did not. Both
answer with check names and true/false only: no URLs, no error texts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)

Check = Callable[[], bool]


class Readiness:
    """Runs the checks in threads (a database call blocks); a check still running from an
    earlier probe is awaited again rather than started twice, so that a hung database cannot
    pile up threads one probe at a time."""

    def __init__(self, checks: Mapping[str, Check], timeout: float) -> None:
        self.checks, self.timeout = dict(checks), timeout
        self._running: dict[str, asyncio.Future[bool]] = {}

    async def _one(self, name: str, check: Check) -> bool:
        future = self._running.get(name)
        if future is None or future.done():
            future = asyncio.ensure_future(run_in_threadpool(_safely, name, check))
            self._running[name] = future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            log.warning("readyz: %s did not answer within %.1f s", name, self.timeout)
            return False

    async def results(self) -> dict[str, bool]:
        names = list(self.checks)
        answers = await asyncio.gather(*(self._one(name, self.checks[name]) for name in names))
        return dict(zip(names, answers, strict=True))


def _safely(name: str, check: Check) -> bool:
    try:
        return bool(check())
    except Exception as exc:  # not ready; the reason is for the log, not for the caller
        log.warning("readyz: %s failed: %s", name, type(exc).__name__)
        return False


def health_routes(readiness: Readiness) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness.results()
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        if not ready:
            body["not_ready"] = sorted(name for name, ok in checks.items() if not ok)
        return JSONResponse(body, status_code=200 if ready else 503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
