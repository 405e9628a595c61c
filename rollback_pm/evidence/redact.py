"""Redaction of inspect documents and log lines. Fails closed: callers drop what errors.

The rule for keys (env names, label keys, log-driver options, command-line flags):
a key is secret when one of its words (split on ``_ - .`` and camelCase) is a secret word
(password, passwd, pwd, secret, token, credential(s), auth, dsn, passphrase, apikey,
privatekey, accesskey, or the pairs api+key, private+key, access+key, client+secret) and
its LAST word is not a qualifier that says the value is about the secret rather than the
secret itself (ttl, seconds, min, max, length, count, file, path, enabled, ...).
So ``DB_PASSWORD``, ``MyPassword``, ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY`` and
``api_key`` are masked while ``KEY_COUNT=3``, ``TOKEN_TTL_SECONDS=300`` and
``PASSWORD_MIN_LENGTH=12`` stay.

Values are masked wherever they appear: URL userinfo passwords (``postgres://u:***@h``),
PEM private key blocks (also ``\\n``-escaped inside JSON), ``Bearer``/``Basic``/``token``
credentials, and every secret value found in a container's config, in its logs too.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

MASK = "[REDACTED]"
_WORD_SPLIT = re.compile(r"[_\-.\s/]+|(?<=[a-z0-9])(?=[A-Z])")
SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "secrets", "token", "credential", "credentials", "auth",
    "dsn", "passphrase", "apikey", "privatekey", "accesskey", "secretkey", "sessionkey", "signingkey",
    "encryptionkey", "masterkey", "cookie", "jwt",
})
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
                          ("client", "secret"), ("signing", "key"), ("encryption", "key"), ("master", "key"),
                          ("session", "key")})
QUALIFIERS = frozenset({
    "ttl", "seconds", "secs", "sec", "ms", "minutes", "mins", "hours", "days", "min", "max", "length", "len",
    "count", "size", "timeout", "expiry", "expires", "expiration", "lifetime", "age", "file", "path", "dir",
    "enabled", "enable", "disabled", "required", "type", "header", "policy", "rotation", "interval",
    "retries", "limit", "name", "id", "user", "username", "url", "endpoint", "host", "port", "mode", "method",
    "algorithm", "algo", "format", "version", "prefix", "scope", "scopes", "issuer", "audience",
})
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^\s/:@'\"]*)(?::(?P<pw>[^\s/@'\"]*))?@")
_PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----.*?-----END (?P=kind)PRIVATE KEY-----", re.S)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
_BEARER = re.compile(r"(?i)\b(?P<kind>bearer|basic|token)(?P<sep>\s+)(?P<cred>[A-Za-z0-9._~+/\-]{8,}=*)")
_KV = re.compile(r"""(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>["']?\s*[=:]\s*["']?)(?P<value>[^\s"',;&]+)""")
_HINT = re.compile(r"(?i)pass|pwd|secret|token|credential|auth|dsn|key|cookie|jwt|bearer|basic|://|-----BEGIN")


def words(key: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(key) if w]


def is_secret_key(key: str) -> bool:
    parts = words(key.lstrip("-"))
    if not parts:
        return False
    secret = any(w in SECRET_WORDS for w in parts) or any(pair in SECRET_PAIRS for pair in zip(parts, parts[1:]))
    if not secret:
        return False
    return parts[-1] not in QUALIFIERS or parts[-1] in SECRET_WORDS


class Redactor:
    """Counts what it masks per rule; remembers every secret value it finds."""

    def __init__(self, known: set[str] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.secrets: set[str] = set()
        self._known_re: re.Pattern[str] | None = None
        for value in known or ():
            self.add_secret(value)

    def add_secret(self, value: str) -> None:
        value = value.strip()
        # Very short values would mask half the log; their keys are masked in config anyway.
        if len(value) >= 4 and value not in self.secrets and value != MASK:
            self.secrets.add(value)
            ordered = sorted(self.secrets, key=len, reverse=True)
            self._known_re = re.compile("|".join(re.escape(s) for s in ordered))

    # -- text ------------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """Mask secret values anywhere in free text (log lines, strings in documents)."""
        if not text or not _HINT.search(text) and self._known_re is None:
            return text
        if self._known_re is not None:
            text, n = self._known_re.subn(MASK, text)
            self.counts["known-value"] += n
        if "-----BEGIN" in text:
            text, n = _PEM.subn(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----", text)
            self.counts["pem-private-key"] += n
        if "://" in text:
            text = _URL_USERINFO.sub(self._url, text)
        text = _BEARER.sub(self._bearer, text)
        if _HINT.search(text):
            text = _KV.sub(self._kv, text)
        return text

    def _url(self, match: re.Match[str]) -> str:
        user, pw = match.group("user"), match.group("pw")
        if pw is None and not user:
            return match.group(0)
        if pw is None:  # https://TOKEN@host: a lone userinfo is a credential more often than not
            if user == MASK:
                return match.group(0)
            self.counts["url-userinfo"] += 1
            return f"{match.group('scheme')}{MASK}@"
        if pw == MASK or not pw:
            return match.group(0)
        self.counts["url-userinfo"] += 1
        return f"{match.group('scheme')}{user}:{MASK}@"

    def _bearer(self, match: re.Match[str]) -> str:
        if match.group("cred") == MASK:
            return match.group(0)
        self.counts["bearer"] += 1
        return f"{match.group('kind')}{match.group('sep')}{MASK}"

    def _kv(self, match: re.Match[str]) -> str:
        if match.group("value") == MASK or not is_secret_key(match.group("key")):
            return match.group(0)
        self.counts["secret-key-value"] += 1
        return f"{match.group('key')}{match.group('sep')}{MASK}"

    # -- inspect documents -----------------------------------------------------------------

    def learn(self, doc: dict[str, Any]) -> None:
        """Collect the secret values of a container's config (pass 1, before masking logs)."""
        config = doc.get("Config") or {}
        for item in config.get("Env") or []:
            key, _, value = item.partition("=")
            if is_secret_key(key) and value:
                self.add_secret(value)
            self._learn_text(value)
        for key, value in (config.get("Labels") or {}).items():
            if is_secret_key(key) and value:
                self.add_secret(str(value))
            self._learn_text(str(value))
        log_config = ((doc.get("HostConfig") or {}).get("LogConfig") or {}).get("Config") or {}
        for key, value in log_config.items():
            if is_secret_key(key) and value:
                self.add_secret(str(value))
        commands = [*(config.get("Cmd") or []), *(config.get("Entrypoint") or []), *(doc.get("Args") or []),
                    *((config.get("Healthcheck") or {}).get("Test") or [])]
        for i, arg in enumerate(commands):
            if not isinstance(arg, str):
                continue
            flag, eq, value = arg.partition("=")
            if eq and is_secret_key(flag) and value:
                self.add_secret(value)
            elif arg.startswith("-") and is_secret_key(arg) and i + 1 < len(commands):
                self.add_secret(str(commands[i + 1]))
            self._learn_text(arg)

    def _learn_text(self, text: str) -> None:
        for match in _URL_USERINFO.finditer(text):
            if match.group("pw"):
                self.add_secret(match.group("pw"))
            elif match.group("user") and match.group("pw") is None:
                self.add_secret(match.group("user"))
        for match in _BEARER.finditer(text):
            self.add_secret(match.group("cred"))

    def document(self, value: Any, key: str = "") -> Any:
        """A redacted copy of a JSON document (pass 2)."""
        if isinstance(value, dict):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return self._list(value)
        if isinstance(value, str):
            return self.text(value)
        return value

    def _field(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and is_secret_key(key) and value:
            self.counts["secret-key"] += 1
            return MASK
        return self.document(value, key)

    def _list(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        mask_next = False
        for item in items:
            if isinstance(item, str):
                if mask_next:
                    self.counts["secret-flag"] += 1
                    out.append(MASK)
                    mask_next = False
                    continue
                key, eq, value = item.partition("=")
                if eq and value and is_secret_key(key) and " " not in key:
                    self.counts["secret-key"] += 1
                    out.append(f"{key}={MASK}")
                    continue
                mask_next = item.startswith("-") and "=" not in item and is_secret_key(item)
                out.append(self.text(item))
            else:
                mask_next = False
                out.append(self.document(item))
        return out


class LineRedactor:
    """Masks log lines of one stream, remembering an open PEM block across lines."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.in_pem = False

    def line(self, text: str) -> str:
        if self.in_pem:
            if _PEM_END.search(text):
                self.in_pem = False
            return MASK
        begin = _PEM_BEGIN.search(text)
        if begin and not _PEM_END.search(text, begin.end()):
            self.in_pem = True
            self.redactor.counts["pem-private-key"] += 1
            return self.redactor.text(text[: begin.start()]) + MASK
        return self.redactor.text(text)
