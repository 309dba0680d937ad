"""Driver-neutral connect options, and what the backends share to translate them per driver.

A node's timeouts, TLS settings, application name and TCP keepalives are given once
(`ConnectOptions`) and each backend module turns them into its drivers' own arguments
(`base.Backend.connect_args`). The defaults bound every call when a server stops answering:
a connect gives up after `DEFAULT_CONNECT_TIMEOUT` seconds, a statement waits at most
`DEFAULT_READ_TIMEOUT` seconds for its reply, and keepalives find a dead idle peer.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

#: Seconds a connect (TCP and the server's handshake) may take by default.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds a statement may wait for the server's reply by default (a half-open link ends here).
DEFAULT_READ_TIMEOUT = 300.0
#: TLS modes, as libpq names them.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class Keepalives:
    """TCP keepalives: the first probe after ``idle`` seconds of silence, then one every
    ``interval`` seconds; the link is dead after ``count`` unanswered probes."""

    idle: int = 30
    interval: int = 10
    count: int = 3

    @property
    def user_timeout_ms(self) -> int:
        """Milliseconds sent data may stay unacknowledged (Linux ``TCP_USER_TIMEOUT``): the
        keepalives' own bound, so that a write into a dead link ends no later than an idle one."""
        return (self.idle + self.interval * self.count) * 1000


@dataclass(frozen=True)
class SSLOptions:
    """TLS: a libpq ``mode`` and the files of the CA, client certificate and client key."""

    mode: str = "prefer"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class ConnectOptions:
    """What every driver is asked for, whatever its own argument names (None: not set)."""

    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float | None = DEFAULT_READ_TIMEOUT
    statement_timeout: float | None = None
    application_name: str | None = None
    ssl: SSLOptions | None = None
    keepalives: Keepalives | None = field(default_factory=Keepalives)


def ssl_context(options: SSLOptions) -> ssl.SSLContext | None:
    """An `ssl.SSLContext` for drivers that take one (asyncpg, PyMySQL, asyncmy); None for no TLS.

    The modes mean what they mean to libpq: ``require`` encrypts without checking the server
    (unless a CA file is given, then it is checked as ``verify-ca``), ``verify-ca`` checks the
    certificate against the CA, ``verify-full`` the host name too. ``allow`` and ``prefer`` need
    a driver that can fall back to plain text; the drivers taking a context cannot, and get none.
    """
    if options.mode in ("disable", "allow", "prefer"):
        return None
    context = ssl.create_default_context(cafile=options.ca)
    verify = options.mode != "require" or options.ca is not None
    context.check_hostname = options.mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    if options.cert is not None:
        context.load_cert_chain(options.cert, options.key)
    return context


def set_keepalives(sock: Any, keepalives: Keepalives | None) -> None:
    """Turn on ``keepalives`` (and the matching ``TCP_USER_TIMEOUT``) on a connected socket.

    Options the platform lacks are skipped (macOS has no ``TCP_USER_TIMEOUT``).
    """
    if keepalives is None or sock is None:
        return
    settings = (
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", keepalives.idle),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", keepalives.interval),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", keepalives.count),
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", keepalives.user_timeout_ms),
    )
    for level, name, value in settings:
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)
