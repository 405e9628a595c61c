"""The document layer: redact inspect documents (any JSON value) key by key.

A string stored under a secret-looking key is masked whole (``Labels``, log-driver
options, any inspect field); ``Env`` entries are split at ``=`` and judged by their name;
``Cmd``/``Entrypoint``/``Args``/healthcheck ``Test`` lists mask the argument after a
secret flag (``--password VALUE``); every other string goes through the text rules.

Fail closed: when redacting a document raises, the caller drops the document (and that
container's logs, whose secrets are then unknown) and records the error.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rollback_pm.redact.formats import command_values
from rollback_pm.redact.keys import MASK, high_entropy, is_masked, is_secret_key, is_semi_secret_key
from rollback_pm.redact.text import Redactor

_FLAG_ALONE = re.compile(r"^--?([A-Za-z][\w.-]*)$")


class DocumentRedactor(Redactor):
    """The text rules, plus masking by key inside JSON documents."""

    def document(self, doc: Any) -> Any:
        """A redacted deep copy of an inspect document (or any JSON value)."""
        return self._value(doc)

    def learn(self, doc: Any) -> None:
        """Find the secrets in ``doc`` so they are masked wherever they appear later."""
        counts = Counter(self.counts)
        self.document(doc)
        self.counts = counts  # learning is not redacting: count only what is written
        self.set_known(set(self.known) | self.found)

    def _value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._item(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _by_key(self, key: str, value: str) -> str | None:
        """The rule that masks ``value`` whole because of its key, if one does."""
        if not value or is_masked(value):
            return None
        if is_secret_key(key):
            return "secret-key"
        if is_semi_secret_key(key) and high_entropy(value):
            return "high-entropy"
        return None

    def _item(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and (rule := self._by_key(key, value)):
            self._found(rule, value)
            return MASK
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if key == "Env":
                return [self._env(v) for v in value]
            if key in ("Cmd", "Entrypoint", "Args", "Test", "Shell", "OnBuild"):
                return self._args(value)
        return self._value(value)

    def _env(self, entry: str) -> str:
        key, sep, value = entry.partition("=")
        if sep and (rule := self._by_key(key, value)):
            self._found(rule, value)
            return f"{key}={MASK}"
        return f"{key}{sep}{self.text(value)}" if sep else self.text(entry)

    def _args(self, args: list[str]) -> list[str]:
        args = self._command_args(args)
        out: list[str] = []
        mask_next = False
        for arg in args:
            if mask_next and arg and not arg.startswith("-") and arg != MASK:
                self._found("secret-key", arg)
                out.append(MASK)
                mask_next = False
                continue
            flag = _FLAG_ALONE.match(arg)
            mask_next = bool(flag and is_secret_key(flag.group(1)))
            out.append(self.text(arg))
        return out

    def _command_args(self, args: list[str]) -> list[str]:
        """Passwords of command lines split into arguments (``["mysql", "-pPASS"]``, ``["curl", "-u", "u:PASS"]``)."""
        joined = " ".join(args)
        spans = command_values(joined)
        if not spans:
            return args
        out = list(args)
        starts = []
        offset = 0
        for arg in args:
            starts.append(offset)
            offset += len(arg) + 1
        for start, end in sorted(spans, reverse=True):  # right to left: earlier offsets stay valid
            index = bisect_right(starts, start) - 1
            arg, base = out[index], starts[index]
            stop = min(end, base + len(args[index]))
            value = arg[start - base : stop - base]
            if value and not is_masked(value):
                self._found("command-line", value)
                out[index] = arg[: start - base] + MASK + arg[stop - base :]
        return out


def redact_documents(
    docs: list[Any], known: Iterable[str] = ()
) -> tuple[list[Any], DocumentRedactor, list[Exception | None]]:
    """Redact several documents together: a secret found in one is masked in all.

    Returns the redacted documents (None where redaction failed: fail closed), the
    redactor (counts, found values) and the per-document error.
    """
    first = DocumentRedactor(known)
    passes: list[Any] = []
    errors: list[Exception | None] = []
    for doc in docs:
        try:
            passes.append(first.document(doc))
            errors.append(None)
        except Exception as exc:
            passes.append(None)
            errors.append(exc)
    # Second pass: every value found anywhere is masked everywhere (e.g. a password from
    # Env that is also a bare argument in Cmd). Rules already applied find nothing new.
    final = DocumentRedactor(set(known) | first.found)
    final.counts = first.counts
    final.found = first.found
    out: list[Any] = []
    for index, doc in enumerate(passes):
        if doc is None:
            out.append(None)
            continue
        try:
            out.append(_mask_known(doc, final))
        except Exception as exc:
            out.append(None)
            errors[index] = exc
    return out, final, errors


def _mask_known(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {k: _mask_known(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_known(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor.mask_known(value)
    return value
