"""The server's HTTP protocol (desk.transport): each answer goes out in one write, in order, and nothing
is written to a connection already closing."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.server import ServerState

from securecomm.desk.transport import GatheringHttpToolsProtocol


class RecordingTransport(asyncio.Transport):
    """A socket's transport that records what is written to it, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:  # type: ignore[override]
        self.calls.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def two_part_answer(scope, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


def _serve(requests: bytes, closing: bool = False) -> RecordingTransport:
    async def run() -> RecordingTransport:
        config = uvicorn.Config(two_part_answer, http=GatheringHttpToolsProtocol, lifespan="off", log_level="warning")
        config.load()
        protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(requests)
        transport.closing = closing
        for _ in range(20):
            await asyncio.sleep(0)
        return transport

    return asyncio.run(run())


def test_an_answer_goes_out_in_one_write():
    """Status line, headers and body of an answer in one write (uvicorn alone: two, headers then body);
    two pipelined requests, their two answers in order."""
    request = b"GET / HTTP/1.1\r\nhost: desk\r\n\r\n"
    one = _serve(request).calls
    assert len(one) == 1 and one[0].startswith(b"HTTP/1.1 200 OK\r\n") and one[0].endswith(b"\r\n\r\nhello")
    two = _serve(request * 2).calls
    assert len(two) == 2 and two[0] == two[1] == one[0]


def test_nothing_is_written_to_a_connection_already_closing():
    assert _serve(b"GET / HTTP/1.1\r\nhost: desk\r\n\r\n", closing=True).calls == []
