"""Redaction: which values are secrets, and masking them in documents and logs.

Everything the bundle writes passes through here; a secret is replaced by ``[REDACTED]``.

Rules (each counted in the manifest under its name, never with the value):

``secret-key``
    The value of a *secret-looking key*, wherever a key names a value: container env
    (``DB_PASSWORD=…``), labels, log-driver options (``splunk-token``), any inspect field,
    command-line flags in Cmd/Args/Entrypoint/Healthcheck (``--password=…``,
    ``--token …``), and ``KEY=VALUE``, ``"key": "value"``, ``key: value`` and
    ``?key=value`` inside any text, log lines included.
``url-userinfo``
    The password in ``scheme://user:PASSWORD@host`` (``redis://:PASSWORD@host`` too), and
    a token-like user part (20+ characters, as in ``https://TOKEN@host``).
``pem-private-key``
    The body of PEM private key blocks (``-----BEGIN … PRIVATE KEY-----``), whether on
    one line with ``\\n`` escapes (JSON) or over several log lines; the markers stay.
``bearer``
    ``Bearer TOKEN`` and the credentials of ``Authorization:`` headers.
``known-value``
    Every secret value found by the rules above in any selected container's config, masked
    wherever else it appears: in every log line and every inspect field. Values shorter
    than 4 characters and boolean-like values (true/false/yes/no/on/off/null/none) are not
    searched for elsewhere, since masking them everywhere would erase ordinary text.

What makes a key secret-looking
    1. Split the key into words on anything not a letter or digit and at camelCase
       humps, lower-cased: ``DB_PASSWORD`` -> db password, ``MyPassword`` -> my password,
       ``splunk-token`` -> splunk token, ``apiKey`` -> api key.
    2. A word is a *secret word* if it is, or ends with, one of password, passwd,
       passphrase, secret, token, apikey, credential, privatekey, accesskey, secretkey,
       authorization (``PGPASSWORD``, ``GITHUB_TOKEN``, ``APIKEY``); or if it is exactly
       one of auth, key, dsn, pwd, pass, cookie, jwt, pat (plurals too). ``key`` does
       not count after public, primary, partition, sort, cache, foreign, routing, hash,
       range, shard, lookup, idempotency, group (``PUBLIC_KEY``, ``PARTITION_KEY``).
    3. The key is secret when it has a secret word and every word after the last one
       is a *qualifier*: a word naming a property of the secret rather than the secret
       (count, ttl, seconds, length, min, max, size, timeout, expiry, enabled, file,
       path, url, host, port, id, name, type, user, … see ``QUALIFIERS``). A key that
       starts with max/min/num/count/total is a setting (``MAX_TOKENS``). ``PWD`` and
       ``OLDPWD`` are the shell's directories.

    So ``DB_PASSWORD``, ``MyPassword``, ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``,
    ``api_key``, ``SECRET_KEY_BASE``, ``SENTRY_DSN`` are masked, while ``KEY_COUNT=3``,
    ``TOKEN_TTL_SECONDS=300``, ``PASSWORD_MIN_LENGTH=12``, ``PASSWORD_FILE=/run/…``,
    ``AUTH_ENABLED=true``, ``AWS_ACCESS_KEY_ID`` (an id, not the key) keep their values.

Fail closed: when redacting a document raises, the caller drops the document (and that
container's logs, whose secrets are then unknown) and records the error. A secret value
that Docker split across two 16 KiB partial records is only caught by the rules above,
not as a known value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
MASK_B = MASK.encode()

_STRONG = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "privatekey",
    "accesskey",
    "secretkey",
    "authorization",
    "requirepass",  # redis
    "masterauth",  # redis
)
_WEAK = frozenset({"auth", "key", "dsn", "pwd", "pass", "cookie", "jwt", "pat"})
_NOT_SECRET_KEY_BEFORE = frozenset(
    {"public", "primary", "partition", "sort", "cache", "foreign", "routing", "hash", "range", "shard", "lookup", "idempotency", "group"}
)
QUALIFIERS = frozenset(
    """count counts ttl seconds secs sec second ms millis milliseconds minutes mins minute hours hour days day
    timeout expiry expires expire expiration lifetime age duration interval period rotation refresh
    length len min max minimum maximum size limit bits rounds iterations cost strength complexity
    enabled enable disabled disable required optional allowed policy mode method format type kind algorithm algo alg
    file files path paths dir directory location mount url uri urls endpoint endpoints host hostname server service
    port address addr realm domain issuer audience scope scopes provider backend header param field
    id ids name names user username users login email owner version ver prefix suffix at on in""".split()
)
_QUANTITY_FIRST = frozenset({"max", "min", "num", "number", "count", "total"})
_NEVER_SECRET = frozenset({"pwd", "oldpwd"})
_BORING_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined"})

_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_HUMPS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def key_words(key: str) -> list[str]:
    words: list[str] = []
    for part in _SPLIT.split(key):
        words.extend(w.lower() for w in _HUMPS.findall(part))
    return words


def _is_secret_word(words: list[str], index: int) -> bool:
    word = words[index]
    if word in _WEAK or (word.endswith("s") and word[:-1] in _WEAK):
        if word.rstrip("s") == "key" and index > 0 and words[index - 1] in _NOT_SECRET_KEY_BEFORE:
            return False
        return True
    return any(word.endswith(stem) or word.endswith(stem + "s") for stem in _STRONG)


_key_cache: dict[str, bool] = {}


def is_secret_key(key: str) -> bool:
    """True when the value stored under ``key`` is a secret (rule in the module docstring)."""
    cached = _key_cache.get(key)
    if cached is not None:
        return cached
    words = key_words(key)
    result = False
    if words and key.lower() not in _NEVER_SECRET and words[0] not in _QUANTITY_FIRST:
        last = max((i for i in range(len(words)) if _is_secret_word(words, i)), default=-1)
        trailing = words[last + 1 :]
        # Secret unless every word after the last secret word only qualifies it (KEY_COUNT).
        result = last >= 0 and (not trailing or not all(w in QUALIFIERS for w in trailing))
    if len(_key_cache) < 10000:
        _key_cache[key] = result
    return result


def searchable(value: str) -> bool:
    """Is this secret value worth masking wherever it appears?"""
    return len(value) >= 4 and value.lower() not in _BORING_VALUES and value != MASK


# --- text rules ------------------------------------------------------------------------

_PEM_BLOCK = re.compile(r"(-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----)(.*?)(-----END \2PRIVATE KEY\3-----)", re.S)
_PEM_OPEN = re.compile(r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)(.+)", re.S)
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"^[A-Za-z0-9+/=\s]*$|^(Proc-Type|DEK-Info|Comment|Version):")
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(basic|bearer|token|digest|negotiate|apikey|api-key|key)\s+)?([^\s\"',;]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]+=*)")
_URL_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/?#@\"'<>]*):([^\s/?#\"'<>]*)@")
_URL_TOKEN_USER = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([A-Za-z0-9_\-.~%]{20,})@")
_ASSIGN = re.compile(r"(?<![\w.?&/-])(-{0,2}[A-Za-z_][\w.-]*)=(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"'`]+)")
_QUERY = re.compile(r"([?&;])([A-Za-z_][\w.\-\[\]]*)=([^&\s#\"']+)")
_JSON_KV = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_KV_ESC = re.compile(r'\\"([A-Za-z_][\w.-]*)\\"\s*:\s*\\"((?:(?!\\").)*)\\"')
_JSON_KV_BARE = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*(-?[\w.+-]+)')
_SINGLE_KV = re.compile(r"'([A-Za-z_][\w.-]*)'\s*:\s*'([^'\n]*)'")
_COLON_KV = re.compile(r"(?<![\w.\"'-])([A-Za-z_][\w.-]*)[ \t]*:[ \t]+([^\s\"',;]+)")
_FLAG_SPACE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w.-]*)[ \t]+('[^'\n]*'|\"[^\"\n]*\"|[^\s\"';&|-][^\s\"';&|]*)")
_FLAG_ALONE = re.compile(r"^--?([A-Za-z][\w.-]*)$")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class Redactor:
    """Applies the rules, counts them, and remembers the secret values it found."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.found: set[str] = set()
        self.known: list[str] = []
        self.set_known(known)

    def set_known(self, values: Iterable[str]) -> None:
        self.known = sorted({v for v in values if searchable(v)}, key=len, reverse=True)

    def _found(self, rule: str, value: str) -> None:
        self.counts[rule] += 1
        value = _unquote(value)
        if value and value != MASK:
            self.found.add(value)
            if "\n" in value or "\\n" in value:  # multi-line values (PEM): their lines are secrets too
                for line in re.split(r"\\n|\n", value):
                    line = line.strip()
                    if len(line) >= 16 and not line.startswith("-----"):  # not the PEM markers
                        self.found.add(line)

    def _keyed(self, key: str, value: str) -> bool:
        return bool(value) and value != MASK and _unquote(value) not in ("", MASK) and is_secret_key(key.lstrip("-"))

    # Each rule is a function of text; text() applies them all in a fixed order.

    def _pem(self, text: str) -> str:
        if "PRIVATE KEY" not in text:
            return text

        def block(m: re.Match[str]) -> str:
            if m.group(4) in ("", MASK):
                return m.group(0)
            self._found("pem-private-key", m.group(4))
            return m.group(1) + MASK + m.group(5)

        text = _PEM_BLOCK.sub(block, text)
        begin = None
        for begin in _PEM_BEGIN.finditer(text):
            pass
        if begin is not None and not _PEM_END.search(text, begin.end()):
            rest = text[begin.end() :]
            tail = "\n" if rest.endswith("\n") else ""
            if rest.strip() and rest.strip() != MASK:
                self._found("pem-private-key", rest.strip())
                text = text[: begin.end()] + MASK + tail
        return text

    def _auth(self, text: str) -> str:
        lowered = text.lower()
        if "authorization" in lowered:

            def header(m: re.Match[str]) -> str:
                if m.group(3) == MASK or m.group(3).startswith(MASK):
                    return m.group(0)
                self._found("bearer", m.group(3))
                scheme = m.group(2) + " " if m.group(2) else ""
                return m.group(1) + scheme + MASK

            text = _AUTH_HEADER.sub(header, text)
        if "bearer" in lowered:

            def bearer(m: re.Match[str]) -> str:
                self._found("bearer", m.group(2))
                return m.group(1) + MASK

            text = _BEARER.sub(bearer, text)
        return text

    def _urls(self, text: str) -> str:
        if "://" not in text or "@" not in text:
            return text

        def password(m: re.Match[str]) -> str:
            if m.group(3) in ("", MASK):
                return m.group(0)
            self._found("url-userinfo", m.group(3))
            return f"{m.group(1)}{m.group(2)}:{MASK}@"

        def token_user(m: re.Match[str]) -> str:
            self._found("url-userinfo", m.group(2))
            return f"{m.group(1)}{MASK}@"

        text = _URL_PASSWORD.sub(password, text)
        return _URL_TOKEN_USER.sub(token_user, text)

    def _assignments(self, text: str) -> str:
        def keep_quotes(value: str) -> str:
            return value[0] + MASK + value[-1] if _unquote(value) != value else MASK

        def assign(m: re.Match[str]) -> str:
            if not self._keyed(m.group(1), m.group(2)):
                return m.group(0)
            self._found("secret-key", m.group(2))
            return f"{m.group(1)}={keep_quotes(m.group(2))}"

        def query(m: re.Match[str]) -> str:
            if not self._keyed(m.group(2), m.group(3)):
                return m.group(0)
            self._found("secret-key", m.group(3))
            return f"{m.group(1)}{m.group(2)}={MASK}"

        def pair(m: re.Match[str]) -> str:
            key, value = m.group(1), m.group(2)
            if key.lower() in ("authorization", "proxy-authorization") or not self._keyed(key, value):
                return m.group(0)
            self._found("secret-key", value)
            start, end = m.span(2)
            base = m.start(0)
            return m.group(0)[: start - base] + MASK + m.group(0)[end - base :]

        if "=" in text:
            text = _ASSIGN.sub(assign, text)
            text = _QUERY.sub(query, text)
        if ":" in text:
            if '"' in text:
                text = _JSON_KV.sub(pair, text)
                text = _JSON_KV_ESC.sub(pair, text)
                text = _JSON_KV_BARE.sub(pair, text)
            if "'" in text:
                text = _SINGLE_KV.sub(pair, text)
            text = _COLON_KV.sub(pair, text)
        if "-" in text:
            text = _FLAG_SPACE.sub(pair, text)
        return text

    def _known(self, text: str) -> str:
        for value in self.known:
            if value in text:
                self.counts["known-value"] += text.count(value)
                text = text.replace(value, MASK)
        return text

    def text(self, text: str) -> str:
        """All rules on free text (a command line, a health check output, a log line)."""
        if not text:
            return text
        text = self._known(text)
        text = self._pem(text)
        text = self._auth(text)
        text = self._urls(text)
        return self._assignments(text)

    # --- documents ----------------------------------------------------------------------

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

    def _item(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and value and is_secret_key(key) and value != MASK:
            self._found("secret-key", value)
            return MASK
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if key == "Env":
                return [self._env(v) for v in value]
            if key in ("Cmd", "Entrypoint", "Args", "Test", "Shell", "OnBuild"):
                return self._args(value)
        return self._value(value)

    def _env(self, entry: str) -> str:
        key, sep, value = entry.partition("=")
        if sep and value and is_secret_key(key) and value != MASK:
            self._found("secret-key", value)
            return f"{key}={MASK}"
        return f"{key}{sep}{self.text(value)}" if sep else self.text(entry)

    def _args(self, args: list[str]) -> list[str]:
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


def redact_documents(docs: list[Any], known: Iterable[str] = ()) -> tuple[list[Any], Redactor, list[Exception | None]]:
    """Redact several documents together: a secret found in one is masked in all.

    Returns the redacted documents (None where redaction failed: fail closed), the
    redactor (counts, found values) and the per-document error.
    """
    first = Redactor(known)
    passes: list[Any] = []
    errors: list[Exception | None] = []
    for doc in docs:
        try:
            passes.append(first.document(doc))
            errors.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure means the document is not written
            passes.append(None)
            errors.append(exc)
    # Second pass: every value found anywhere is masked everywhere (e.g. a password from
    # Env that is also a bare argument in Cmd). Rules already applied find nothing new.
    final = Redactor(set(known) | first.found)
    final.counts = first.counts
    final.found = first.found
    out: list[Any] = []
    for index, doc in enumerate(passes):
        if doc is None:
            out.append(None)
            continue
        try:
            out.append(_mask_known(doc, final))
        except Exception as exc:  # noqa: BLE001
            out.append(None)
            errors[index] = exc
    return out, final, errors


def _mask_known(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {k: _mask_known(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_known(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor._known(value)
    return value


class LineRedactor:
    """Redacts successive lines of one text stream (a CI step log, a log excerpt).

    A PEM block spread over several lines is masked from its BEGIN to its END marker.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.in_pem = False

    def line(self, text: str) -> str:
        if self.in_pem:
            end = _PEM_END.search(text)
            if end:
                self.in_pem = False
                if text[: end.start()].strip():
                    self.redactor._found("pem-private-key", text[: end.start()])
                    text = MASK + text[end.start() :]
            elif _PEM_BODY.match(text.rstrip("\n")):
                if text.strip():
                    self.redactor._found("pem-private-key", text.strip())
                    return MASK + ("\n" if text.endswith("\n") else "")
                return text
            else:
                self.in_pem = False
        text = self.redactor.text(text)
        begin = None
        for begin in _PEM_BEGIN.finditer(text):
            pass
        if begin is not None and not _PEM_END.search(text, begin.end()):
            self.in_pem = True
        return text


# --- log batches ------------------------------------------------------------------------

try:  # a Rust Aho-Corasick scans a 1 MiB batch for every trigger at once in ~0.2 ms
    import ahocorasick_rs as _ac
except ImportError:  # pragma: no cover - the dependency is declared; keep working without it
    _ac = None

_TRIGGERS = (
    "pass", "secret", "token", "key", "auth", "credential", "dsn", "pwd", "cookie", "jwt", "pat",
    "bearer", "://", "private key",
)  # fmt: skip


class LogRedactor:
    """Redacts batches of whole bundle lines (``<name> <stream> <ts> <data>``) for one container.

    A batch is first scanned for every trigger word (spelt lower, UPPER or Capitalized:
    ``password``, ``DB_PASSWORD``, ``dbPassword``) and every known secret in one pass;
    only the lines that contain one go through the rules, on their data part. A PEM
    block spread over several lines is followed per stream until its END marker or a line
    that cannot be part of a key.
    """

    def __init__(self, known: Iterable[str], head_len: int, stream_len: int) -> None:
        self.rules = Redactor(known)
        self.head_len = head_len  # bytes before the data: name, stream, timestamp, spaces
        self.stream_len = stream_len  # bytes identifying the stream: "<name> <stream>"
        self.streams: dict[bytes, LineRedactor] = {}  # per "<name> <stream>": PEM blocks span lines
        known = {v.encode("utf-8", "surrogateescape") for v in self.rules.known}
        # Lower-casing every batch cost more than the scan: match the usual spellings instead.
        triggers = {v.encode() for t in _TRIGGERS for v in (t, t.upper(), t.capitalize())}
        patterns = sorted(known | triggers, key=len, reverse=True)
        self._patterns = patterns
        self._matcher = (
            _ac.BytesAhoCorasick(patterns, matchkind=_ac.MATCHKIND_LEFTMOST_FIRST) if _ac is not None else None
        )

    @property
    def counts(self) -> Counter[str]:
        return self.rules.counts

    def _hits(self, data: bytes) -> list[int]:
        if self._matcher is not None:
            return [start for _, start, _ in self._matcher.find_matches_as_indexes(data)]
        starts = []
        for pattern in self._patterns:
            pos = data.find(pattern)
            while pos >= 0:
                starts.append(pos)
                pos = data.find(pattern, pos + 1)
        return sorted(starts)

    def batch(self, data: bytes) -> bytes:
        if not data:
            return data
        if b"PRIVATE KEY" in data or any(r.in_pem for r in self.streams.values()):
            return self._every_line(data)
        hits = self._hits(data)
        if not hits:
            return data
        out: list[bytes] = []
        done = 0
        for pos in hits:
            if pos < done:
                continue
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            out.append(data[done:start])
            out.append(self.line(data[start:end]))
            done = end
        out.append(data[done:])
        return b"".join(out)

    def _every_line(self, data: bytes) -> bytes:
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the batch ends with a newline
        out = [self.line(line + b"\n") for line in lines]
        if tail:
            out.append(self.line(tail))
        return b"".join(out)

    def line(self, line: bytes) -> bytes:
        head, body = line[: self.head_len], line[self.head_len :]
        stream = line[: self.stream_len]
        redactor = self.streams.get(stream)
        if redactor is None:
            redactor = self.streams[stream] = LineRedactor(self.rules)
        text = redactor.line(body.decode("utf-8", "surrogateescape"))
        return head + text.encode("utf-8", "surrogateescape")
