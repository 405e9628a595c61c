"""Talking to the Docker Engine: the client, timed single calls, and the raw logs stream.

The SDK's ``logs(stream=True)`` generator does two small urllib3 reads per frame, which
is about half the speed of the ``docker logs`` CLI. ``open_logs`` avoids it:

* on the local unix socket (the usual case) ``SocketLogsBody`` sends one HTTP/1.0
  request itself, so the engine answers with a plain body (no chunked encoding) and
  closes at its end. The engine flushes every log record as its own small write, so
  reading as data arrives means tens of thousands of tiny reads (and wake-ups) for a
  100 MB log, which took CPU from the engine on a small host. Instead, after a read
  that found little, the reader sleeps 0.5 ms and lets the socket buffer fill: 10x
  fewer reads, and less than half the CPU. A reader thread keeps the socket drained while
  the caller parses, so the engine does not wait for the parsing either.
* elsewhere (tcp://, TLS, ssh://) ``LogsBody`` takes the SDK response's socket reader
  after the headers, reads large blocks, and undoes the chunked encoding itself.

``lines.ApiDemux`` then splits the 8-byte multiplexing headers.
"""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import docker
import requests

from rollback_pm.errors import DockerUnavailable

READ_SIZE = 1 << 20
APIClient = docker.APIClient  # for annotations elsewhere: only this module imports the SDK


class ContainerGone(Exception):
    """The container was removed between listing and reading it."""


class EngineError(Exception):
    """A call to the engine failed for this container (message is safe to record)."""


def _display_url(base_url: str) -> str:
    return base_url.replace("http+unix://", "unix://").replace("http+docker://", "")


def _root_reason(exc: BaseException) -> str:
    """The innermost OS-level reason ("No such file or directory"), else the message."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    reason = str(exc)
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            reason = cur.strerror
        elif cur.args and isinstance(cur.args[0], BaseException):
            cur = cur.args[0]
            continue
        cur = cur.__cause__ or cur.__context__
    return reason


def docker_client(base_url: str | None = None, timeout: float = 30.0) -> docker.APIClient:
    """A low-level client with the API version negotiated with the daemon.

    ``base_url`` defaults to DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else the
    local socket. Raises DockerUnavailable with what to do when the engine does not answer.
    """
    kwargs: dict[str, Any] = {}
    try:
        kwargs = docker.utils.kwargs_from_env()
    except docker.errors.DockerException:
        kwargs = {}
    if base_url:
        kwargs["base_url"] = base_url
    where = _display_url(kwargs.get("base_url") or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    try:
        client = docker.APIClient(version="auto", timeout=timeout, **kwargs)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        if "timed out" in str(exc):  # the SDK wraps requests' ReadTimeout in a DockerException's text
            raise DockerUnavailable(
                f"Docker engine at {where} did not answer within {timeout:.0f}s: it accepts connections "
                "but does not respond. Check that dockerd is healthy (docker info), or raise --timeout."
            ) from None
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {_root_reason(exc)}. "
            "Start dockerd or set DOCKER_HOST=unix:///path/docker.sock (or tcp://host:2375)."
        ) from None
    return client


def _unix_socket(client: docker.APIClient) -> str | None:
    if str(client.base_url) != "http+docker://localhost":  # the SDK's name for a unix socket
        return None
    adapter = getattr(client, "adapters", {}).get("http+docker://")
    return getattr(adapter, "socket_path", None) or "/var/run/docker.sock"


def engine_location(client: docker.APIClient) -> str:
    path = _unix_socket(client)
    return f"unix://{path}" if path else _display_url(str(client.base_url))


def is_local_engine(client: docker.APIClient) -> bool:
    """Log files named by the engine are only ours to read when it runs on this host."""
    return _unix_socket(client) is not None


@contextmanager
def _engine_errors(refused: str, silent: str) -> Iterator[None]:
    """The SDK's and requests' exceptions as ContainerGone or an EngineError safe to record."""
    try:
        yield
    except docker.errors.NotFound:
        raise ContainerGone() from None
    except docker.errors.APIError as exc:
        raise EngineError(f"{refused}: {exc.explanation or exc}") from None
    except requests.exceptions.Timeout:
        raise EngineError(silent) from None
    except requests.exceptions.ConnectionError as exc:
        raise EngineError(f"engine connection failed: {_root_reason(exc)}") from None


def _call(client: docker.APIClient, path: str, *args: str, timeout: float, params: dict[str, Any] | None = None) -> Any:
    with _engine_errors("engine error", f"engine did not answer within {timeout:.0f}s"):
        response = client._get(client._url(path, *args), params=params, timeout=max(0.05, timeout))
        return client._result(response, json=True)


def list_containers(
    client: docker.APIClient, *, all_states: bool, label_filters: list[str], timeout: float
) -> list[dict[str, Any]]:
    """One list call; label filters are applied by the engine (ANDed)."""
    params: dict[str, Any] = {"all": 1 if all_states else 0}
    if label_filters:
        params["filters"] = json.dumps({"label": label_filters})
    try:
        return _call(client, "/containers/json", timeout=timeout, params=params)
    except (EngineError, ContainerGone) as exc:
        raise DockerUnavailable(
            f"Docker engine at {engine_location(client)} failed to list containers: {exc}. "
            "Check that dockerd is healthy (docker info) and retry."
        ) from None


def inspect_container(client: docker.APIClient, ident: str, *, timeout: float) -> dict[str, Any]:
    return _call(client, "/containers/{0}/json", ident, timeout=timeout)


def inspect_image(client: docker.APIClient, ident: str, *, timeout: float) -> dict[str, Any]:
    return _call(client, "/images/{0}/json", ident, timeout=timeout)


def since_param(since: datetime) -> str:
    """Docker's seconds.nanoseconds form, exact to the microsecond (no float rounding)."""
    since = since.astimezone(timezone.utc)
    seconds = int((since.replace(microsecond=0) - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())
    return f"{seconds}.{since.microsecond:06d}000"


def _logs_params(since: datetime | None, details: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": "all"}
    if details:
        params["details"] = 1
    if since is not None:
        params["since"] = since_param(since)
    return params


def open_logs(
    client: docker.APIClient,
    ident: str,
    *,
    since: datetime | None,
    timeout: float,
    read_size: int = READ_SIZE,
    endpoint: str = "containers",
    details: bool = False,
) -> SocketLogsBody | LogsBody:
    """The logs body of one container (or, with ``endpoint="tasks"``, one Swarm task), read
    the fastest way the engine's address allows."""
    path = _unix_socket(client)
    if path is not None:
        started = time.monotonic()
        try:
            return SocketLogsBody(
                path,
                client.api_version,
                ident,
                since=since,
                timeout=timeout,
                read_size=read_size,
                endpoint=endpoint,
                details=details,
            )
        except _NotPlainBody:  # an engine that chunks even an HTTP/1.0 answer: let the SDK path undo it
            timeout -= time.monotonic() - started
    return LogsBody(
        client, ident, since=since, timeout=timeout, read_size=read_size, endpoint=endpoint, details=details
    )


class _NotPlainBody(Exception):
    """The engine answered with a transfer encoding SocketLogsBody does not undo."""


SMALL_READ = 64 * 1024  # a read this short means the engine is slower than us: let it fill the buffer
FILL_PAUSE = 0.0005  # the buffer holds ~1.5 ms of output: come back well before it is full
HOLD_MAX = 0.05  # hand over what was read when no more came for this long
READ_AHEAD = 2  # blocks read ahead of the parser (memory: READ_AHEAD x read_size)


class SocketLogsBody:
    """GET /containers/{id}/logs over the engine's unix socket, as HTTP/1.0.

    Same interface as ``LogsBody``: ``read(timeout)`` returns the next block of body
    bytes (up to ``read_size``) or b"" at the end; waiting is bounded by ``timeout``.
    """

    def __init__(
        self,
        socket_path: str,
        api_version: str,
        ident: str,
        *,
        since: datetime | None,
        timeout: float,
        read_size: int = READ_SIZE,
        endpoint: str = "containers",
        details: bool = False,
    ) -> None:
        self.read_size = read_size
        self._buffer = bytearray(read_size)
        self._view = memoryview(self._buffer)
        self._done = False  # the reader saw the end of the body
        self._finished = False  # the caller got the end (or an error)
        self._closed = False
        self._reader: threading.Thread | None = None
        self._blocks: queue.Queue[bytes | EngineError] = queue.Queue(maxsize=READ_AHEAD)
        deadline = time.monotonic() + max(0.05, timeout)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(max(0.05, timeout))
            self._sock.connect(socket_path)
            params = urlencode(_logs_params(since, details))
            target = f"/v{api_version}/{endpoint}/{quote(ident, safe='')}/logs?{params}"
            self._sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: rollback-pm\r\n\r\n".encode())
            status, headers, self._pending = self._read_head(deadline)
        except TimeoutError:
            self.close()
            raise EngineError(f"engine did not start sending logs within {timeout:.0f}s") from None
        except OSError as exc:
            self.close()
            raise EngineError(f"engine connection failed: {exc.strerror or exc}") from None
        if status == 404:
            self.close()
            raise ContainerGone()
        if status != 200:
            message = self._error_message(headers, deadline)
            self.close()
            raise EngineError(f"engine refused the logs: {status} {message}".strip())
        if headers.get("transfer-encoding", "identity").lower() != "identity":
            self.close()
            raise _NotPlainBody()
        self._sock.setblocking(False)

    def _read_head(self, deadline: float) -> tuple[int, dict[str, str], bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            self._sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EngineError("engine closed the connection before answering")
            data += chunk
            if len(data) > 65536:
                raise EngineError("engine sent an oversized response head")
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise EngineError(f"engine sent a malformed status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers, rest

    def _error_message(self, headers: dict[str, str], deadline: float) -> str:
        body = self._pending
        try:
            while len(body) < 65536 and time.monotonic() < deadline:
                self._sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        except OSError:
            pass
        try:
            return str(json.loads(body.decode("utf-8", "replace")).get("message", ""))[:500]
        except (ValueError, AttributeError):
            return body.decode("utf-8", "replace").strip()[:200]

    def read(self, timeout: float) -> bytes:
        """The next block of the body (b"" at its end), waiting at most ``timeout`` seconds."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_ahead, name="logs-reader", daemon=True)
            self._reader.start()
        if self._finished:
            return b""
        try:
            item = self._blocks.get(timeout=max(0.05, timeout))
        except queue.Empty:
            raise EngineError("engine stopped sending logs (read timed out)") from None
        if isinstance(item, EngineError):
            self._finished = True
            raise item
        if not item:
            self._finished = True
        return item

    def _read_ahead(self) -> None:
        """Reader thread: keeps the socket drained while the caller parses the last block.

        Without it the engine fills the socket buffer (a few dozen KB, about a
        millisecond of output) and then waits for as long as the parsing takes.
        """
        try:
            while not self._closed:
                block = self._fill()
                self._put(block)
                if not block:
                    return
        except EngineError as exc:
            self._put(exc)

    def _put(self, item: bytes | EngineError) -> None:
        while not self._closed:
            try:
                self._blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _fill(self) -> bytes:
        if self._pending:  # body bytes that came with the response head
            block, self._pending = self._pending[: self.read_size], self._pending[self.read_size :]
            return block
        if self._done:
            return b""
        last_data = time.monotonic()
        got = 0
        view = self._view
        while got < self.read_size and not self._closed:
            try:
                count = self._sock.recv_into(view[got:])
            except (BlockingIOError, InterruptedError):
                if got and time.monotonic() - last_data >= HOLD_MAX:
                    break
                self._wait_readable(HOLD_MAX)
                continue
            except OSError as exc:
                if self._closed:
                    break
                raise EngineError(f"logs stream broke: {exc.strerror or exc}") from None
            if count == 0:
                self._done = True
                break
            got += count
            last_data = time.monotonic()
            if count < SMALL_READ and got < self.read_size:
                time.sleep(FILL_PAUSE)
        return bytes(view[:got])

    def _wait_readable(self, seconds: float) -> None:
        try:
            select.select([self._sock], [], [], max(0.0, seconds))
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        try:
            self._sock.close()
        except OSError:
            pass


class LogsBody:
    """The body of GET /containers/{id}/logs, read in large blocks.

    ``read()`` returns the next block of body bytes (chunked encoding removed) or b"" at
    the end. Each socket read is bounded by ``deadline`` (time.monotonic seconds) so a
    stalled engine cannot hold the caller past it.
    """

    def __init__(
        self,
        client: docker.APIClient,
        ident: str,
        *,
        since: datetime | None,
        timeout: float,
        read_size: int = READ_SIZE,
        endpoint: str = "containers",
        details: bool = False,
    ) -> None:
        self.read_size = read_size
        params = _logs_params(since, details)
        with _engine_errors("engine refused the logs", f"engine did not start sending logs within {timeout:.0f}s"):
            self._response = client._get(
                client._url(f"/{endpoint}/{{0}}/logs", ident), params=params, stream=True, timeout=max(0.05, timeout)
            )
            client._raise_for_status(self._response)
        self._fp = self._response.raw._fp.fp  # BufferedReader over the socket, positioned after the headers
        self._sock = self._find_socket()
        self._chunked = self._response.headers.get("Transfer-Encoding", "").lower() == "chunked"
        length = self._response.headers.get("Content-Length")
        self._remaining = int(length) if (length is not None and not self._chunked) else None
        self._chunk_left = 0  # bytes of the current chunk still to deliver
        self._skip_crlf = 0  # CRLF after a chunk's data
        self._size_line = b""
        self._done = False

    def _find_socket(self) -> socket.socket | None:
        raw = getattr(self._fp, "raw", None)
        return getattr(raw, "_sock", None)

    def _read_block(self, timeout: float) -> bytes:
        if self._sock is not None:
            self._sock.settimeout(max(0.05, timeout))
        try:
            return self._fp.read1(self.read_size)
        except TimeoutError:
            raise EngineError("engine stopped sending logs (read timed out)") from None
        except OSError as exc:
            raise EngineError(f"logs stream broke: {exc.strerror or exc}") from None

    def read(self, timeout: float) -> bytes:
        while not self._done:
            block = self._read_block(timeout)
            if not block:
                self._done = True
                if self._chunked and (self._chunk_left or self._size_line):
                    raise EngineError("logs stream ended in the middle of a chunk")
                return b""
            if not self._chunked:
                if self._remaining is not None:
                    block = block[: self._remaining]
                    self._remaining -= len(block)
                    if self._remaining <= 0:
                        self._done = True
                return block
            body = self._dechunk(block)
            if body:
                return body
        return b""

    def _dechunk(self, block: bytes) -> bytes:
        out: list[bytes] = []
        pos, end = 0, len(block)
        while pos < end:
            if self._chunk_left:
                take = min(self._chunk_left, end - pos)
                out.append(block[pos : pos + take])
                pos += take
                self._chunk_left -= take
                if not self._chunk_left:
                    self._skip_crlf = 2
            elif self._skip_crlf:
                take = min(self._skip_crlf, end - pos)
                pos += take
                self._skip_crlf -= take
            else:
                nl = block.find(b"\n", pos)
                if nl < 0:
                    self._size_line += block[pos:]
                    if len(self._size_line) > 1024:
                        raise EngineError("malformed chunked logs stream")
                    break
                line = self._size_line + block[pos:nl]
                self._size_line = b""
                pos = nl + 1
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise EngineError("malformed chunked logs stream") from None
                if size == 0:
                    self._done = True  # trailers, if any, are ignored; the connection is closed below
                    break
                self._chunk_left = size
        return b"".join(out)

    def close(self) -> None:
        try:
            self._response.close()
        except Exception:
            pass
