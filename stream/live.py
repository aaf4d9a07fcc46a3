"""Server-sent events for the dashboard: every published story snapshot and alert, live.

Each browser gets a bounded queue; a client that cannot keep up loses old updates (it reloads the
full list from the API when it reconnects), it never slows the cluster agent down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

MAX_CLIENTS = 100
QUEUE_SIZE = 1000


class LiveFeed:
    def __init__(self) -> None:
        self.clients: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for queue in self.clients:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((kind, data))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if len(self.clients) >= MAX_CLIENTS:
            return web.Response(status=503, text="too many live clients")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self.clients.add(queue)
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), 15)
                    await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.clients.discard(queue)
        return response
