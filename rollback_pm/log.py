"""structlog setup for our own logs, with secret masking on every event.

Known secret values (tracker tokens, secrets found in container config) are registered
with ``register_secret`` and replaced by ``***`` wherever they appear in a log event,
whatever the key, and so is the password of any URL (``https://user:***@host``). Keys
that look secret are masked too. Every text then goes through the redaction rules of
``rollback_pm.redact`` (token formats such as ``ghp_…`` or ``AKIA…``, keyed
values, bearer credentials, passwords on command lines …), so a secret nobody registered
is masked as well, in every command, whatever parts it imports (``rollback_pm.redact``
sits in the foundation beside this module).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from rollback_pm.redact import redact_text

MASK = "***"
_SECRET_KEY = re.compile(r"(?i)(token|password|passwd|secret|api_?key|authorization|credential)")
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Never let this value reach a log line. Short values are ignored (they would mask noise)."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def known_secrets() -> frozenset[str]:
    return frozenset(_secrets)


# scheme://user:password@host: the password, up to the last @ before the path (a raw @ in
# a password is common); quotes and brackets end it, as they end a URL in text or JSON.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:\"'<>]*):[^\s/?#\"'<>]*@")


def mask_url_passwords(text: str) -> str:
    """``https://user:pass@host`` -> ``https://user:***@host``, for every URL in ``text``."""
    return _URL_PASSWORD.sub(rf"\1:{MASK}@", text) if "@" in text else text


def mask(text: str) -> str:
    """Replace every password inside a URL and every registered secret value in ``text``,
    then apply the redaction rules (they leave what is masked already as it is)."""
    if not text:
        return text
    text = mask_url_passwords(text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return redact_text(text)


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return MASK
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    if isinstance(value, BaseException):
        return mask(str(value))
    return value


def _masking_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: _mask_value(k, v) if k != "event" else mask(str(v)) for k, v in event_dict.items()}


def _mask_rendered(_logger: Any, _name: str, rendered: str) -> str:
    # A last pass over the final text, in case a renderer stringified something we did not see.
    return mask(rendered)


def _mask_rendered_json(_logger: Any, _name: str, rendered: str) -> str:
    # The same over a JSON line, value by value: a rule masking a span of the JSON text
    # itself could cut an escape sequence in two and break the line.
    try:
        event = json.loads(rendered)
    except ValueError:
        return mask(rendered)
    return json.dumps(_mask_json(event))


def _mask_json(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


# JSON logs carry an exception as structured stacks (type, message, frames) instead of
# `"exc_info": true`. Without locals: a frame's variables can hold secrets nobody registered.
_dict_tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


def configure(log_format: str = "console", level: str = "warning", stream: Any = None) -> None:
    """Configure structlog. Logs go to stderr so stdout stays for command output."""
    renderer: Any
    last_pass: Any  # the processor after the renderer gets its text, not an event dict
    # The exception is rendered before masking, so its messages are masked like any value.
    # The console renderer formats exc_info itself; _mask_rendered covers that text.
    exceptions: list[Any] = []
    if log_format == "json":
        exceptions = [_dict_tracebacks]
        renderer, last_pass = structlog.processors.JSONRenderer(), _mask_rendered_json
    else:
        renderer, last_pass = structlog.dev.ConsoleRenderer(colors=False), _mask_rendered
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *exceptions,
            _masking_processor,
            renderer,
            last_pass,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()
