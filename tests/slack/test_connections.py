"""The Web API client's kept connections (bot/slack/connections.py) against real sockets: HTTPS as Slack serves
it, answers that end the connection, cut answers, a full pool, and shutdown."""

from __future__ import annotations

import datetime
import ipaddress
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


def answer(body: bytes = OK, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n%sContent-Length: %d\r\n\r\n%s"
            % (extra, len(body), body))  # fmt: skip


class Server:
    """Accepts connections (TLS when given a context) and answers each request with `respond(n)`, the request's
    number: bytes to send, after which the connection stays open unless the answer said otherwise."""

    def __init__(self, respond: Callable[[int], bytes], tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
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
                if b"Connection: close" in reply or not reply.endswith(b"}"):
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


def test_a_cut_answer_may_have_posted_and_the_next_call_opens_a_new_connection(servers):
    server = Server(lambda n: answer()[:-5] if n == 1 else answer())
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5, retry_handlers=[])
    with pytest.raises(ConnectionResetError) as cut:
        post(client)
    assert request_error(cut.value).maybe_posted is True
    assert post(client, 1)["ok"] is True
    assert (server.connections, server.requests) == (2, 2)


def test_a_garbled_status_line_reads_as_a_drop_after_sending(servers):
    server = Server(lambda n: b"NOT HTTP AT ALL\r\n\r\n" if n == 1 else answer())
    servers.append(server)
    client = PooledWebClient(base_url=f"http://127.0.0.1:{server.port}/api/", timeout=5, retry_handlers=[])
    with pytest.raises(ConnectionResetError) as garbled:
        post(client)
    assert request_error(garbled.value).maybe_posted is True
    assert post(client, 1)["ok"] is True


def test_idle_connections_beyond_the_pool_size_are_closed_and_clear_closes_the_rest(servers):
    server = Server(lambda n: answer())
    servers.append(server)
    pool = ConnectionPool(maxsize=2)
    url = f"http://127.0.0.1:{server.port}/api/chat.postMessage"
    headers = {"Content-Type": "application/json"}
    # Three calls at once: three connections; two are kept when they come back, the third closed.
    taken = [pool._take(("http", "127.0.0.1", server.port), 5) for _ in range(3)]
    for conn in taken:
        conn.connect()
        pool._give_back(("http", "127.0.0.1", server.port), conn)
    assert [conn.sock is not None for conn in taken] == [True, True, False]
    assert pool.post(url, b"{}", headers, timeout=5).status == 200
    # The server's accept thread counts a connection after the client's connect() returned: wait for it.
    deadline = time.monotonic() + 5
    while server.connections < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connections == 3  # the call reused a kept one
    pool.clear()
    assert all(conn.sock is None for conn in taken)
    assert pool.post(url, b"{}", headers, timeout=5).status == 200
    assert server.connections == 4  # after clear, a new one
