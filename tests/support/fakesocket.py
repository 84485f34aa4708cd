"""A fake Slack Socket Mode endpoint: a real WebSocket server on 127.0.0.1, in a thread, that records the acks.

Like Slack, it greets each connection with `hello`, then sends the envelopes a test asks for:
`{"envelope_id", "type": "events_api" | "slash_commands" | "interactive", "payload", "accepts_response_payload"}`.
The app answers each with `{"envelope_id", "payload"?}`; `wait_for_ack(envelope_id)` blocks (on a condition, not a
sleep loop) until it came. Point the fake Web API's apps.connections.open at it with `fake_slack.socket_url = url`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

PATH = "/link"


class FakeSocketMode:
    def __init__(self, *, app_id: str = "A1") -> None:
        self.app_id = app_id
        self.acks: list[dict[str, Any]] = []
        self.paths: list[str] = []  # the request path of every connection, in order
        self.unexpected: list[str] = []  # frames that were not JSON acks
        self._connection: ServerConnection | None = None
        self._changed = threading.Condition()
        # No server-side pings: the client pings on its own schedule, and the fake answers those.
        self._server: Server = serve(self._handle, "127.0.0.1", 0, ping_interval=None, close_timeout=2)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}{PATH}"

    # --- the connection ---------------------------------------------------------------------------------

    def _handle(self, connection: ServerConnection) -> None:
        with self._changed:
            self.paths.append(connection.request.path if connection.request else "")
            self._connection = connection
            self._changed.notify_all()
        connection.send(json.dumps(self.hello()))
        try:
            for frame in connection:
                self._received(frame)
        except ConnectionClosed:
            pass  # the app closed the socket without a close frame, as Slack's SDK does on shutdown
        finally:
            with self._changed:
                if self._connection is connection:
                    self._connection = None
                self._changed.notify_all()

    def _received(self, frame: str | bytes) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            message = None
        with self._changed:
            if isinstance(message, dict) and "envelope_id" in message:
                self.acks.append(message)
            else:
                self.unexpected.append(frame if isinstance(frame, str) else frame.decode(errors="replace"))
            self._changed.notify_all()

    def hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake-socket-mode", "build_number": 1, "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }

    def wait_connected(self, timeout: float = 10.0) -> None:
        self._wait(lambda: self._connection is not None, timeout, "no Socket Mode connection")

    def wait_connections(self, n: int, timeout: float = 10.0) -> None:
        """Until the app has opened `n` connections in all (a reconnection is a new one) and one is open."""
        self._wait(lambda: len(self.paths) >= n and self._connection is not None, timeout, f"not {n} connections")

    def refresh(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message, sent every few hours: the app must fetch a new URL and reconnect."""
        self._send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-socket-mode"}})

    def hang_up(self, *, code: int = 1001, timeout: float = 5.0) -> None:
        """Close the open connection from Slack's side (a close frame), and wait until it is gone."""
        with self._changed:
            connection = self._connection
        if connection is not None:
            connection.close(code=code)
            self._wait(lambda: self._connection is not connection, timeout, "the connection did not close")

    @property
    def connected(self) -> bool:
        with self._changed:
            return self._connection is not None

    # --- envelopes --------------------------------------------------------------------------------------

    def send(self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False,
             retry_attempt: int | None = None, retry_reason: str | None = None) -> str:  # fmt: skip
        """Send one envelope over the open connection; returns its envelope_id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            envelope.update(retry_attempt=retry_attempt or 0, retry_reason=retry_reason or "")
        self._send_json(envelope)
        return envelope_id

    def _send_json(self, message: dict[str, Any]) -> None:
        self.wait_connected()
        with self._changed:
            connection = self._connection
        assert connection is not None
        connection.send(json.dumps(message))

    def event(self, payload: dict[str, Any], **kwargs: Any) -> str:
        """An Events API callback (the same body Slack POSTs over HTTP)."""
        return self.send("events_api", payload, **kwargs)

    def command(self, payload: dict[str, Any]) -> str:
        """A slash command (the form fields Slack POSTs over HTTP, as a JSON object)."""
        return self.send("slash_commands", payload, accepts_response_payload=True)

    def interaction(self, payload: dict[str, Any]) -> str:
        """A block action, view submission... (the decoded `payload` form field)."""
        return self.send("interactive", payload, accepts_response_payload=True)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The app's ack of one envelope: `{"envelope_id": ..., "payload": ...}` (payload only with a body)."""
        found: list[dict[str, Any]] = []

        def acked() -> bool:
            found[:] = [a for a in self.acks if a.get("envelope_id") == envelope_id]
            return bool(found)

        self._wait(acked, timeout, f"envelope {envelope_id} not acked")
        return found[0]

    def _wait(self, condition, timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{failure} within {timeout} s")
                self._changed.wait(remaining)
