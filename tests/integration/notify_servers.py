"""Real servers on the loopback for notification tests: a JSON webhook receiver that can answer
200 or 500, hang past the sender's timeout, or not be there at all; and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


class Webhook:
    """Records every POST. `mode`: "ok" (200), "error" (500), "hang" (answers after
    `hang_seconds`, past the sender's timeout), or "redirect" (302 to /elsewhere, which answers
    any method 200 and is recorded in `redirected`)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.hang_seconds = 3.0
        self.received: list[dict[str, Any]] = []
        """The bodies of the POSTs answered 200, in order."""
        self.message_ids: list[str] = []
        """X-Reef-Alerts-Message-Id of each POST answered 200."""
        self.authorizations: list[str | None] = []
        """The Authorization header of each POST answered 200."""
        self.attempts = 0
        self.redirected: list[str] = []
        """The methods of the requests that followed a redirect."""
        self._lock = threading.Lock()
        self._release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook._lock:
                    hook.attempts += 1
                    mode = hook.mode
                if mode == "hang":
                    hook._release.wait(hook.hang_seconds)
                    return  # no answer at all
                if mode == "error":
                    self.send_response(500, "Internal Server Error")
                    self.end_headers()
                    return
                if mode == "redirect":
                    self.send_response(302, "Found")
                    self.send_header("Location", "/elsewhere")
                    self.end_headers()
                    return
                with hook._lock:
                    hook.received.append(json.loads(body))
                    hook.message_ids.append(self.headers["X-Reef-Alerts-Message-Id"])
                    hook.authorizations.append(self.headers["Authorization"])
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                hook.redirected.append("GET")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.url = f"json://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Webhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def refused_url() -> str:
    """A webhook URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"json://127.0.0.1:{port}/hook"


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8"))
        )
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[str, _Mailbox]]:
    """An SMTP server on the loopback; the apprise URL that sends to it, and its mailbox."""
    mailbox = _Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            f"mailto://127.0.0.1:{port}?from=reef@example.org&to=keeper@example.org&secure=no",
            mailbox,
        )
    finally:
        controller.stop()
