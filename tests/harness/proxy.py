"""A loopback TCP proxy for fault drills: pass, refuse, blackhole, cut, or drop a COMMIT's reply.

It runs its own event loop on a thread of its own, so sync tests (threads) and async tests (any
event loop) can use one proxy alike. Every socket is on 127.0.0.1.

- ``pass``: bytes flow both ways.
- ``refuse``: the listening socket is closed, so connecting fails at once.
- ``blackhole``: connections are accepted and then nothing is ever sent back or forwarded (a host
  that stopped answering: a connect handshake or a query waits for ever).
- ``cut()``: every open connection is reset now.
- ``stall()``: open connections stop forwarding in both directions but stay open (a half-open link).
- ``drop_reply_to(b"COMMIT")``: the next client message containing the marker reaches the server,
  and then the link is cut before the server's reply gets back (a commit whose outcome the
  client cannot know).

And it counts round trips: ``flights`` holds what clients sent, one entry per flight (the bytes
sent between two replies of the server), so ``len(proxy.flights)`` after ``proxy.recount()`` is
the number of round trips made since, on a proxy that carries one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from typing import Any


class Proxy:
    """``with Proxy(port) as proxy:`` listens on ``proxy.port`` and forwards to ``127.0.0.1:port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._stalled = asyncio.Event()
        self._marker: re.Pattern[bytes] | None = None
        self.dropped = threading.Event()  # set once a marked message went out and its reply was dropped
        self.flights: list[bytes] = []
        self._replied = True  # the server answered since the client last sent

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._call(self._close_all(listening=True))
        self._call(self._cancel_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # Modes -------------------------------------------------------------------------------------

    def passthrough(self) -> None:
        """Forward again, and listen again if refusing."""
        self.mode = "pass"
        self._loop.call_soon_threadsafe(self._stalled.clear)
        self._call(self._listen())

    def refuse(self) -> None:
        """Close the listening socket: new connections are refused; open ones are reset."""
        self.mode = "refuse"
        self._call(self._close_all(listening=True))

    def blackhole(self) -> None:
        """Accept new connections and never answer them; open ones stall too."""
        self.mode = "blackhole"
        self._loop.call_soon_threadsafe(self._stalled.set)

    def stall(self) -> None:
        """Keep open connections open but forward nothing more (a half-open link)."""
        self._loop.call_soon_threadsafe(self._stalled.set)

    def cut(self) -> None:
        """Reset every open connection now."""
        self._call(self._close_all(listening=False))

    def recount(self) -> None:
        """Forget the flights counted so far."""
        self.flights = []
        self._replied = True

    def drop_reply_to(self, marker: bytes) -> None:
        """Cut the link that sends ``marker`` right after forwarding it, before any reply returns."""
        self.dropped.clear()
        # A word of its own: "SET AUTOCOMMIT = 0" at connect must not match COMMIT.
        self._marker = re.compile(rb"(?<![A-Za-z_])" + re.escape(marker) + rb"(?![A-Za-z_])", re.IGNORECASE)

    # Machinery ---------------------------------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _close_all(self, *, listening: bool) -> None:
        if listening and self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in list(self._links):
            for writer in (client, upstream):
                _reset(writer)
        self._links.clear()

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "blackhole":
            await asyncio.Event().wait()  # hold it open, say nothing
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        link = (writer, up_writer)
        self._links.add(link)
        muted = asyncio.Event()  # set: nothing more reaches the client on this link
        await asyncio.gather(
            self._pump(reader, up_writer, link, muted, upstream=True),
            self._pump(up_reader, writer, link, muted, upstream=False),
            return_exceptions=True,
        )
        self._links.discard(link)

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        muted: asyncio.Event,
        *,
        upstream: bool,
    ) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                dst.close()
                return
            if self._stalled.is_set() or (muted.is_set() and not upstream):
                await asyncio.Event().wait()
            self._count(data, upstream)
            marked = upstream and self._marker is not None and self._marker.search(data) is not None
            if marked:
                self._marker = None
                muted.set()
            dst.write(data)
            await dst.drain()
            if marked:
                # The server has the COMMIT; the client must never hear how it went.
                await asyncio.sleep(0.2)
                for writer in link:
                    _reset(writer)
                self.dropped.set()
                return

    def _count(self, data: bytes, upstream: bool) -> None:
        if not upstream:
            self._replied = True
        elif self._replied or not self.flights:
            self.flights.append(data)
            self._replied = False
        else:
            self.flights[-1] += data


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close with RST, as a dead peer or a cut cable looks to the other side.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
