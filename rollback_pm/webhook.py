"""POST a Slack-compatible message (``{"text": ...}``) to a chat webhook.

A webhook URL is a credential (whoever has it can post), so it never appears in a log
line or an error: errors name only the host. Delivery is bounded: a timeout per attempt,
a few attempts on connection errors, timeouts, 429 and 5xx (honouring Retry-After up to a
cap), and no retry on other answers, which mean the URL or payload needs fixing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from rollback_pm import __version__
from rollback_pm.errors import ConfigError, WebhookError
from rollback_pm.log import get_logger, mask, register_secret
from rollback_pm.trackers.http import parse_retry_after

log = get_logger(__name__)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class Webhook:
    """One webhook endpoint. ``post`` raises WebhookError when the message was not accepted."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Not even the scheme is echoed: a mistyped URL is still a secret.
            raise ConfigError("webhook_url is not an http(s) URL; fix --webhook-url / ROLLBACK_PM_WEBHOOK_URL")
        register_secret(url)
        self._url = url
        self.host = parts.hostname
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._session = session or requests.Session()

    def __repr__(self) -> str:  # never the URL
        return f"Webhook(host={self.host!r})"

    def post(self, text: str) -> None:
        """Deliver ``{"text": text}``; returns once the endpoint answered 2xx."""
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            wait = self.backoff * 2 ** (attempt - 1)
            try:
                response = self._session.post(
                    self._url,
                    json={"text": mask(text)},
                    timeout=self.timeout,
                    allow_redirects=False,
                    headers={"User-Agent": f"rollback-pm/{__version__}"},
                )
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g}s"
            except requests.exceptions.SSLError:
                problem = "TLS handshake failed"
            except requests.ConnectionError:
                problem = "cannot connect"
            except requests.RequestException as exc:
                problem = f"request failed ({type(exc).__name__})"
            else:
                if 200 <= response.status_code < 300:
                    log.info("webhook delivered", host=self.host, attempt=attempt)
                    return
                problem = f"HTTP {response.status_code}{_body_hint(response)}"
                if response.status_code not in RETRY_STATUS:
                    raise WebhookError(
                        f"webhook at {self.host} refused the message: {problem}; check the webhook_url setting"
                    )
                hinted = parse_retry_after(response.headers.get("Retry-After"))
                if hinted is not None:
                    if hinted > self.max_wait:
                        problem += f", Retry-After {hinted:g}s is past the {self.max_wait:g}s cap"
                        break
                    wait = hinted
            log.info("webhook attempt failed", host=self.host, attempt=attempt, problem=problem)
            if attempt < self.attempts:
                self._sleep(wait)
        raise WebhookError(
            f"webhook at {self.host} not reached after {attempt} attempt(s): {problem}; "
            "the next check-deadlines run tries again"
        )


def _body_hint(response: requests.Response) -> str:
    """Slack explains refusals in a short body (invalid_payload, no_service); keep it short."""
    text = " ".join(response.text.split())[:120] if response.text else ""
    return f" ({mask(text)})" if text else ""
