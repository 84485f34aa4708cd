"""The Web API client's kept connections (bot/slack/connections.py) against real sockets: HTTPS as Slack serves
it, answers that end the connection, cut answers, a full pool, and shutdown."""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.slack.client import PooledWebClient, request_error
from bot.slack.connections import ConnectionPool

OK = b'{"ok": true, "channel": "C1", "ts": "1.0"}'


def answer(body: bytes = OK, *, close: bool = False, keep_alive: bytes = b"") -> bytes:
    extra = (b"Connection: close\r\n" if close else b"") + (b"Keep-Alive: %s\r\n" % keep_alive if keep_alive else b"")
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n%sContent-Length: %d\r\n\r\n%s"
            % (extra, len(body), body))  # fmt: skip


class Server:
    """Accepts connections (TLS when given a context) and answers each request with `respond(n)`, the request's
    number: bytes to send, after which the connection stays open unless the answer said otherwise."""

    def __init__(self, respond: Callable[[int], bytes], tls: ssl.SSLContext | None = None, *,
                 hang_up: bool = False) -> None:  # fmt: skip
        self.respond = respond
        self.tls = tls
        self.hang_up = hang_up  # close every connection after one answer, without saying so (a keep-alive ending)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))  # fmt: skip
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                with self._lock:
                    self.requests += 1
                    n = self.requests
                reply = self.respond(n)
                conn.sendall(reply)
                if self.hang_up:
                    conn.shutdown(socket.SHUT_RDWR)
                if self.hang_up or b"Connection: close" in reply or not reply.endswith(b"}"):
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.close()


def post(client: PooledWebClient, n: int = 0):
    return client.chat_postMessage(token="xoxb-T1", channel="C1", text=f"hello {n}")


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cafile=str(cert_file))
    return server_ctx, client_ctx


def test_https_calls_share_one_verified_connection(servers, tmp_path):
    server_ctx, client_ctx = self_signed(tmp_path)
    server = Server(lambda n: answer(), tls=server_ctx)
    servers.append(server)
    client = PooledWebClient(base_url=f"https://127.0.0.1:{server.port}/api/", timeout=5, ssl=client_ctx)
    for n in range(5):
        assert post(client, n)["ok"] is True
    assert (server.connections, server.requests) == (1, 5)

    # A certificate the client does not trust: the TLS handshake fails before anything is sent.
    untrusting = PooledWebClient(base_url=f"https://127.0.0.1:{server.port}/api/", timeout=5, retry_handlers=[],
                                 ssl=ssl.create_default_context())  # fmt: skip
    with pytest.raises(OSError) as refused:
        post(untrusting)
    assert request_error(refused.value).maybe_posted is False
    assert server.requests == 5


def test_an_answer_that_closes_its_connection_is_not_reused(servers):
    server = Server(lambda n: answer(close=n % 2 == 1))
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5)
    for n in range(4):
        assert post(client, n)["ok"] is True
    # Requests 1 and 3 closed theirs: 1 | 2, 3 | 4 -> three connections for four calls.
    assert (server.connections, server.requests) == (3, 4)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(answer()[:-5], id="cut answer"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="garbled status line"),
        pytest.param(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + answer(), id="an early hint first"),
    ],
)
def test_a_bad_answer_reads_as_a_drop_after_sending_and_the_next_call_opens_a_new_connection(servers, bad):
    server = Server(lambda n: bad if n == 1 else answer())
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5, retry_handlers=[])
    with pytest.raises(ConnectionResetError) as failed:
        post(client)
    assert request_error(failed.value).maybe_posted is True  # the request did reach the server
    assert post(client, 1)["ok"] is True
    assert (server.connections, server.requests) == (2, 2)


def idle_sockets(pool: ConnectionPool) -> list[socket.socket]:
    return [kept.conn.sock for kept_ones in pool._idle.values() for kept in kept_ones if kept.conn.sock is not None]


def test_a_kept_connection_the_server_closed_meanwhile_is_replaced_not_sent_on(servers):
    """The server answers one request per connection, then closes it unannounced (as a keep-alive ends). With no
    retry handlers, a request sent on the closed connection would fail: the pool must find the close first."""
    server = Server(lambda n: answer(), hang_up=True)
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5, retry_handlers=[])
    for n in range(3):
        assert post(client, n)["ok"] is True
        # The server's close has reached the kept connection before the next call (waited for, not assumed).
        (sock,) = idle_sockets(client.pool)
        readable, _, _ = select.select([sock], [], [], 5)
        assert readable == [sock]
    assert (server.connections, server.requests) == (3, 3)


@pytest.mark.parametrize(
    ("keep_alive", "still_reused", "then_idle"),
    [
        pytest.param(b"", 9.9, 10.0, id="the pool's own limit of 10 s"),
        pytest.param(b"timeout=3, max=100", 1.9, 2.0, id="a second below the server's announced 3 s"),
    ],
)
def test_a_connection_idle_past_its_limit_is_not_reused(servers, keep_alive, still_reused, then_idle):
    """A server may close an idle connection just as a request is sent on it, and that request is lost in a way
    that reads as "maybe posted": connections idle for longer than the limit are closed, not reused."""
    now = [100.0]
    server = Server(lambda n: answer(keep_alive=keep_alive))
    servers.append(server)
    pool = ConnectionPool(idle_limit=10.0, clock=lambda: now[0])
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5, pool=pool)
    post(client)
    now[0] += still_reused
    post(client)
    assert server.connections == 1
    now[0] += then_idle
    post(client)
    assert (server.connections, server.requests) == (2, 3)


def test_connections_past_their_time_are_closed_when_another_comes_back_not_left_open(servers):
    """Under light traffic the most recently used connection serves every call; the others, idle past their limit,
    are closed as soon as a connection comes back (not left open until a burst reaches them), and a connection the
    server allows no idle time is not kept at all."""
    now = [100.0]
    keep_alive = [b""]
    server = Server(lambda n: answer(keep_alive=keep_alive[0]))
    servers.append(server)
    pool = ConnectionPool(idle_limit=10.0, clock=lambda: now[0])
    key = ("http", "127.0.0.1", server.port)
    older, latest = [pool._take(key, 5) for _ in range(2)]  # two calls at once, back at 100 s and 105 s
    for kept in (older, latest):
        kept.conn.connect()
        pool._give_back(key, kept, 10.0)
        now[0] += 5.0
    now[0] += 1.0  # 111 s: the older one is past its time, the latest is not
    url = f"http://127.0.0.1:{server.port}/api/chat.postMessage"
    assert pool.post(url, b"{}", {"Content-Type": "application/json"}, timeout=5).status == 200
    assert (older.conn.sock, latest.conn.sock is not None) == (None, True)  # the latest served it and came back
    assert idle_sockets(pool) == [latest.conn.sock]
    keep_alive[0] = b"timeout=1"  # a second, less our margin: no idle time at all
    assert pool.post(url, b"{}", {"Content-Type": "application/json"}, timeout=5).status == 200
    assert idle_sockets(pool) == []


def test_a_connection_in_use_during_clear_is_closed_when_it_comes_back(servers):
    answering = threading.Event()
    release = threading.Event()

    def respond(n: int) -> bytes:
        if n == 1:
            answering.set()
            release.wait(5)
        return answer()

    server = Server(respond)
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5)
    results: list[bool] = []
    call = threading.Thread(target=lambda: results.append(post(client)["ok"]))
    call.start()
    assert answering.wait(5)
    client.pool.clear()  # as at shutdown, while the call is in flight
    release.set()
    call.join(5)
    assert results == [True]
    assert idle_sockets(client.pool) == []  # not kept after the clear
    post(client, 1)
    assert (server.connections, server.requests) == (2, 2)


def test_idle_connections_beyond_the_pool_size_are_closed_and_clear_closes_the_rest(servers):
    server = Server(lambda n: answer())
    servers.append(server)
    pool = ConnectionPool(maxsize=2)
    url = f"http://127.0.0.1:{server.port}/api/chat.postMessage"
    headers = {"Content-Type": "application/json"}
    # Three calls at once: three connections; two are kept when they come back, the third closed.
    key = ("http", "127.0.0.1", server.port)
    taken = [pool._take(key, 5) for _ in range(3)]
    for kept in taken:
        kept.conn.connect()
        pool._give_back(key, kept, 60.0)
    assert [kept.conn.sock is not None for kept in taken] == [True, True, False]
    assert pool.post(url, b"{}", headers, timeout=5).status == 200
    # The server's accept thread counts a connection after the client's connect() returned: wait for it.
    deadline = time.monotonic() + 5
    while server.connections < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connections == 3  # the call reused a kept one
    pool.clear()
    assert all(kept.conn.sock is None for kept in taken)
    assert pool.post(url, b"{}", headers, timeout=5).status == 200
    assert server.connections == 4  # after clear, a new one
