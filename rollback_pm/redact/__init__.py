"""Redaction: which values are secrets, and masking them wherever we write text.

Everything the bundle writes passes through here, and so do smoke-step text
(``rollback_pm.facts.redaction``) and our own logs (``rollback_pm.log.mask``); a secret is
replaced by ``[REDACTED]``. What is masked where, and what is not: docs/security.md.
Each rule is counted under its name (never with the value); the manifest carries the
counts. The layers, each in its own module:

``keys``
    Key rules: is the value under this key a secret (``DB_PASSWORD`` yes, ``KEY_COUNT``
    no)? ``is_secret_key``; which keys hold a secret only when the value looks random
    (``session_id``), and what looks random (``high_entropy``).
``text``
    Text rules on free text: known secret values, PEM private keys, token formats,
    passwords on command lines, bearer credentials, URL userinfo, keyed values, and
    high-entropy values next to a secret's name. ``Redactor`` applies them and counts
    them; ``LineRedactor`` follows PEM blocks over successive lines of one stream.
``formats``
    The token formats recognised by their shape (``AKIA…``, ``ghp_…``, JWTs …) and the
    commands whose options carry passwords (``curl -u``, ``mysql -p`` …).
``documents``
    The document layer: inspect JSON key by key (``Env``, labels, ``Cmd``/``Args``).
    ``redact_documents`` redacts several documents together, so that a secret found in
    one is masked in all.
``stream``
    The streaming layer: ``LogRedactor`` redacts batches of bundle log lines, looking
    closely only at the lines where a rule can fire.

For a caller that just needs text cleaned::

    redact_text("DB_PASSWORD=hunter2 ok")            # 'DB_PASSWORD=[REDACTED] ok'
    redact_lines(step_log_lines, known=secrets)       # PEM blocks spanning lines too

A value is searched for everywhere (``known``) only when it is at least 4 characters and
not boolean-like (true/false/yes/no/on/off/null/none), since masking those everywhere
would erase ordinary text. A secret value that Docker split across two 16 KiB partial
records is only caught by the rules, not as a known value.
"""

from __future__ import annotations

from collections.abc import Iterable

from rollback_pm.redact.documents import DocumentRedactor, redact_documents
from rollback_pm.redact.keys import MASK, is_secret_key, searchable
from rollback_pm.redact.stream import LogRedactor
from rollback_pm.redact.text import LineRedactor, Redactor


def redact_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every rule applied and every ``known`` secret value masked."""
    return Redactor(known).text(text)


def redact_lines(lines: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """Successive lines of one stream (a CI step log), PEM blocks followed across lines."""
    redactor = LineRedactor(Redactor(known))
    return [redactor.line(line) for line in lines]


__all__ = [
    "MASK",
    "DocumentRedactor",
    "LineRedactor",
    "LogRedactor",
    "Redactor",
    "is_secret_key",
    "redact_documents",
    "redact_lines",
    "redact_text",
    "searchable",
]
