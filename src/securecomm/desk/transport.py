"""The HTTP protocol `securecomm serve` runs: uvicorn's (httptools), each answer sent in one system call.

uvicorn writes an answer's status line and headers, then its body, each straight to the socket: two
system calls and two TCP segments an answer, and the client woken twice. Here the writes made in one
turn of the event loop are gathered and go out together at the end of it (one `writelines`, one
`writev`), in the order made; nothing waits longer than that turn. Closing sends what is gathered first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheredWrites:
    """A transport whose writes made in one turn of the event loop go out together; the rest is the
    transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(data)

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending and not self.transport.is_closing():  # a connection lost meanwhile takes nothing more
            self.transport.writelines(pending)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through `GatheredWrites` (`uvicorn.run(http=…)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = GatheredWrites(transport, self.loop)  # type: ignore[assignment]
