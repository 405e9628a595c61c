"""The one HTTP client every tracker backend (and the Woodpecker reader) uses.

- Every call has a timeout, never longer than what is left of the retry budget, so a hung
  tracker cannot hang the pipeline past ``retry_budget_s``.
- 429/500/502/503/504, connection errors and timeouts are retried, honouring Retry-After
  (seconds or an HTTP date), within the budget and ``max_attempts``. Nested calls (a search
  made while confirming a create) share the outermost call's budget.
- A non-idempotent POST is never retried blindly: unless the failure proves the request
  was not processed (connection refused, 429), the caller's ``confirm`` callback checks
  whether it took effect (e.g. a search by the incident's label) before sending it again.
- 401/403 -> auth error naming the credentials setting; 404 -> not-found error naming the
  project/repository setting; out of budget / refused / timed out -> unavailable.
- Credentials stay with the origin they were given for: a redirect to another scheme, host
  or port drops the Authorization header (only http -> https on the same host keeps it),
  and a redirect from https to http is refused outright.
- The token never reaches an exception message, a log event or a repr: it is registered
  with ``rollback_pm.log.register_secret``, every message is masked, the requests exception
  (which can carry URLs) is never chained, and the Authorization header lives in an auth
  object whose repr says nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from rollback_pm import __version__
from rollback_pm.errors import (
    RollbackPmError,
    TrackerAuthError,
    TrackerError,
    TrackerNotFoundError,
    TrackerUnavailable,
)
from rollback_pm.log import get_logger, mask, register_secret

log = get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
T = TypeVar("T")


@dataclass(frozen=True)
class ErrorKinds:
    """Which domain error each failure becomes (trackers by default; Woodpecker overrides)."""

    auth: type[RollbackPmError] = TrackerAuthError
    not_found: type[RollbackPmError] = TrackerNotFoundError
    unavailable: type[RollbackPmError] = TrackerUnavailable
    other: type[RollbackPmError] = TrackerError


@dataclass(frozen=True)
class Confirmed(Generic[T]):
    """A POST whose answer was lost, found to have taken effect by ``confirm``."""

    value: T


class _HeaderAuth(requests.auth.AuthBase):
    """Sets Authorization per request. Being an AuthBase also stops requests from replacing
    it with ~/.netrc credentials, and its repr shows nothing."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._value
        return r

    def __repr__(self) -> str:
        return "<auth ***>"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class DowngradeRedirect(requests.exceptions.RequestException):
    """A redirect from https to http: refused, whatever it would have carried."""


class _OriginBoundSession(requests.Session):
    """requests.Session whose redirects never carry credentials to another origin."""

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        old, new = _origin(old_url), _origin(new_url)
        upgrade = old == ("http", new[1], 80) and new[0] == "https" and new[2] == 443
        return old != new and not upgrade

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        before = _origin(response.request.url or "")
        after = _origin(prepared_request.url or "")
        if before[0] == "https" and after[0] != "https":
            where = f"{after[1]}:{after[2]}" if after[2] else after[1]
            raise DowngradeRedirect(
                f"redirected from https to {after[0]}://{where}, refused: the request would cross the network unencrypted"
            )
        super().rebuild_auth(prepared_request, response)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def strip_userinfo(url: str) -> str:
    """The URL without user:password@ (whose password is registered as a secret)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    register_secret(parts.password)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def segment(value: str, safe: str = "") -> str:
    """Percent-encode one path segment (``safe='/'`` for the forges' wildcard routes)."""
    return quote(value, safe=safe)


class HttpClient:
    """requests.Session with timeouts, bounded retries and typed, secret-free errors.

    ``auth_hint``: the setting(s) to fix on 401/403, e.g. "ROLLBACK_PM_TRACKER_TOKEN / --token-file".
    ``not_found_hint``: the setting(s) to fix on 404 (a call can pass a more precise one).
    ``confirm_delay_s``: the least wait before checking whether a lost request took effect
    (search indexes, Jira's especially, lag a moment behind a create).
    ``sleep`` and ``clock`` are injectable so tests can honour Retry-After without waiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        authorization: str | None = None,
        secrets: tuple[str | None, ...] = (),
        timeout: float = 10.0,
        retry_budget_s: float = 60.0,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        confirm_delay_s: float = 2.0,
        auth_hint: str = "ROLLBACK_PM_TRACKER_TOKEN / --token-file",
        not_found_hint: str = "ROLLBACK_PM_TRACKER_URL / --tracker-url",
        errors: ErrorKinds = ErrorKinds(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for secret in secrets:
            register_secret(secret)
        if authorization:
            register_secret(authorization)
            register_secret(authorization.partition(" ")[2])
        self.base_url = strip_userinfo(base_url).rstrip("/")
        self.service = service
        self.timeout = float(timeout)
        self.retry_budget_s = float(retry_budget_s)
        self.max_attempts = max(1, int(max_attempts))
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.confirm_delay_s = confirm_delay_s
        self.auth_hint = auth_hint
        self.not_found_hint = not_found_hint
        self.errors = errors
        self.sleep = sleep
        self.clock = clock
        self.session = _OriginBoundSession()
        self.session.headers["User-Agent"] = f"rollback-pm/{__version__}"
        self.session.headers["Accept"] = "application/json"
        self.session.auth = _HeaderAuth(authorization) if authorization else None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpClient({self.service} {self.base_url})"

    def close(self) -> None:
        self.session.close()

    # -- budget

    @contextmanager
    def budget(self) -> Iterator[float]:
        """One retry budget for everything inside (nested calls share the outermost)."""
        outer = getattr(self._local, "deadline", None)
        if outer is not None:
            yield outer
            return
        self._local.deadline = self.clock() + self.retry_budget_s
        self._local.started = self.clock()
        try:
            yield self._local.deadline
        finally:
            self._local.deadline = None

    # -- requests

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.decode(self.request("GET", path, **kwargs), "GET", path)

    def decode(self, resp: requests.Response, method: str, path: str) -> Any:
        """The JSON of an answer; an HTML or other non-JSON page (a login page, a proxy, the
        wrong URL) is an error naming the URL setting, never mistaken for 'no results'."""
        data = json_of(resp)
        if data is None and resp.content.strip():
            kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise self.errors.other(
                mask(f"{self.service} answered {method} {path} with {kind}, not JSON: check {self.not_found_hint}")
            )
        return data

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
        not_found_hint: str | None = None,
        idempotent: bool | None = None,
        confirm: Callable[[], T | None] | None = None,
        allow: Collection[int] = (),
        stream: bool = False,
    ) -> Any:
        """Send with retries. Returns the requests.Response (2xx/3xx, or an error status the
        caller handles itself, listed in ``allow``), or ``Confirmed(value)`` when a lost
        non-idempotent request was found by ``confirm`` to have taken effect. ``files``
        values may be zero-argument callables returning a fresh (name, fileobj,
        content_type) tuple, so each attempt reads the file from the start. With ``stream``
        the body is left unread for the caller to read within its own bound (and close)."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT
        url = self.base_url + path
        with self.budget() as deadline:
            attempt = 0
            while True:
                attempt += 1
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise self._unavailable(method, path, attempt - 1, "no retry budget left")
                call_timeout = min(self.timeout, remaining)
                sent = True  # could the server have acted on it?
                retry_after: float | None = None
                try:
                    resp = self.session.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        headers=headers,
                        files=_fresh(files),
                        timeout=call_timeout,
                        allow_redirects=True,
                        stream=stream,
                    )
                except requests.exceptions.ConnectTimeout:
                    sent, reason = False, f"no connection within {call_timeout:.1f}s"
                except requests.exceptions.Timeout:
                    reason = f"no answer within {call_timeout:.1f}s"
                except requests.exceptions.ConnectionError as exc:
                    sent, reason = _connection_failure(exc)
                except requests.exceptions.RequestException as exc:
                    raise self.errors.other(
                        f"{self.service}: {method} {path} cannot be sent: {_describe(exc)}; check {self.not_found_hint}"
                    ) from None
                else:
                    if resp.status_code < 400 or resp.status_code in allow:
                        return resp
                    if resp.status_code not in RETRY_STATUSES:
                        raise self._error(resp, method, path, not_found_hint)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    sent = resp.status_code != 429
                    reason = f"answered {resp.status_code} {resp.reason or ''}".rstrip()
                    if retry_after is not None:
                        reason += f" (Retry-After {retry_after:g}s)"
                wait = (
                    retry_after
                    if retry_after is not None
                    else min(self.backoff_cap_s, self.backoff_s * 2 ** (attempt - 1))
                )
                lost = not idempotent and sent  # the server may have acted on it
                if lost and confirm is None:
                    raise self._unavailable(
                        method, path, attempt, reason + "; not resent because it may have taken effect"
                    )
                if lost:
                    # Give the tracker's search index time to show what it just did, then look.
                    wait = max(wait, self.confirm_delay_s)
                can_retry = attempt < self.max_attempts and self.clock() + wait < deadline
                if lost and not can_retry:
                    found = confirm()  # type: ignore[misc]
                    if found is not None:
                        return Confirmed(found)
                if attempt >= self.max_attempts:
                    raise self._unavailable(method, path, attempt, reason)
                if not can_retry:
                    raise self._unavailable(
                        method,
                        path,
                        attempt,
                        reason + f"; waiting {wait:g}s more would exceed the {self.retry_budget_s:g}s retry budget",
                    )
                log.warning(
                    "tracker answer lost; checking whether the request took effect"
                    if lost
                    else "tracker request failed; retrying",
                    tracker=self.service,
                    method=method,
                    path=path,
                    reason=reason,
                    attempt=attempt,
                    wait_s=round(wait, 3),
                )
                self.sleep(wait)
                if lost:
                    found = confirm()  # type: ignore[misc]
                    if found is not None:
                        return Confirmed(found)

    # -- errors

    def _unavailable(self, method: str, path: str, attempts: int, reason: str) -> RollbackPmError:
        spent = self.clock() - getattr(self._local, "started", self.clock())
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        return self.errors.unavailable(
            mask(
                f"{self.service} at {self.base_url} is unavailable: {method} {path} {reason} "
                f"({tries} in {spent:.1f}s, retry budget {self.retry_budget_s:g}s)"
            )
        )

    def _error(self, resp: requests.Response, method: str, path: str, not_found_hint: str | None) -> RollbackPmError:
        detail = error_text(resp)
        status = f"{resp.status_code} {resp.reason or ''}".rstrip()
        where = f"{self.service} answered {status} to {method} {path}"
        if detail:
            where += f": {detail}"
        if resp.status_code == 401:
            return self.errors.auth(mask(f"{where}. The credentials were rejected: fix {self.auth_hint}"))
        if resp.status_code == 403:
            return self.errors.auth(
                mask(
                    f"{where}. The credentials lack permission for this: fix {self.auth_hint} "
                    "(or grant the account access)"
                )
            )
        if resp.status_code == 404:
            return self.errors.not_found(mask(f"{where}. Check {not_found_hint or self.not_found_hint}"))
        return self.errors.other(mask(where))


def _fresh(files: Any) -> Any:
    if not files:
        return files
    return {name: (value() if callable(value) else value) for name, value in files.items()}


def json_of(resp: requests.Response | None) -> Any:
    """The JSON body, or None when there is none (or it is not JSON)."""
    if resp is None:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def error_text(resp: requests.Response, limit: int = 300) -> str:
    """The server's own error message (Jira errorMessages/errors, Gitea message), masked."""
    data = json_of(resp)
    parts: list[str] = []
    if isinstance(data, dict):
        for message in data.get("errorMessages") or []:
            parts.append(str(message))
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if data.get("message"):
            parts.append(str(data["message"]))
    elif resp.text and "<html" not in resp.text[:200].lower():
        parts.append(resp.text.strip())
    text = " ".join(" ".join(parts).split())
    return mask(text[:limit] + ("..." if len(text) > limit else ""))


def _connection_failure(exc: requests.exceptions.ConnectionError) -> tuple[bool, str]:
    """(sent?, reason). Refused/DNS failures never reached the server; a reset may have."""
    text = str(exc)
    for marker, why in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
    ):
        if marker in text:
            return False, why
    if "NewConnectionError" in text or "Failed to establish a new connection" in text:
        return False, "cannot connect"
    if "RemoteDisconnected" in text or "closed connection without response" in text:
        return True, "connection closed without an answer"
    if "reset" in text.lower():
        return True, "connection reset"
    return True, f"connection error ({_describe(exc)})"


def _describe(exc: BaseException) -> str:
    # requests' messages embed the URL (and could embed a query-string secret): mask and cut.
    return mask(" ".join(str(exc).split()))[:200]
