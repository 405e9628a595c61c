"""Key rules: is the value stored under this key a secret?

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
"""

from __future__ import annotations

import math
import re

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
    {
        "public",
        "primary",
        "partition",
        "sort",
        "cache",
        "foreign",
        "routing",
        "hash",
        "range",
        "shard",
        "lookup",
        "idempotency",
        "group",
    }
)
QUALIFIERS = frozenset(
    [
        "count",
        "counts",
        "ttl",
        "seconds",
        "secs",
        "sec",
        "second",
        "ms",
        "millis",
        "milliseconds",
        "minutes",
        "mins",
        "minute",
        "hours",
        "hour",
        "days",
        "day",
        "timeout",
        "expiry",
        "expires",
        "expire",
        "expiration",
        "lifetime",
        "age",
        "duration",
        "interval",
        "period",
        "rotation",
        "refresh",
        "length",
        "len",
        "min",
        "max",
        "minimum",
        "maximum",
        "size",
        "limit",
        "bits",
        "rounds",
        "iterations",
        "cost",
        "strength",
        "complexity",
        "enabled",
        "enable",
        "disabled",
        "disable",
        "required",
        "optional",
        "allowed",
        "policy",
        "mode",
        "method",
        "format",
        "type",
        "kind",
        "algorithm",
        "algo",
        "alg",
        "file",
        "files",
        "path",
        "paths",
        "dir",
        "directory",
        "location",
        "mount",
        "url",
        "uri",
        "urls",
        "endpoint",
        "endpoints",
        "host",
        "hostname",
        "server",
        "service",
        "port",
        "address",
        "addr",
        "realm",
        "domain",
        "issuer",
        "audience",
        "scope",
        "scopes",
        "provider",
        "backend",
        "header",
        "param",
        "field",
        "id",
        "ids",
        "name",
        "names",
        "user",
        "username",
        "users",
        "login",
        "email",
        "owner",
        "version",
        "ver",
        "prefix",
        "suffix",
        "at",
        "on",
        "in",
        # what happened to it, not the secret: KeyError: 'DATABASE_URL', TOKEN_EXPIRED=true
        "error",
        "errors",
        "exception",
        "warning",
        "failed",
        "failure",
        "missing",
        "invalid",
        "expired",
        "mismatch",
        "status",
        "state",
    ]
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
        return not (word.rstrip("s") == "key" and index > 0 and words[index - 1] in _NOT_SECRET_KEY_BEFORE)
    return any(word.endswith((stem, stem + "s")) for stem in _STRONG)


_key_cache: dict[str, bool] = {}
_BARE_KEY = (["key"], ["keys"])


def is_secret_key(key: str) -> bool:
    """True when the value stored under ``key`` is a secret (rule in the module docstring)."""
    cached = _key_cache.get(key)
    if cached is not None:
        return cached
    words = key_words(key)
    result = False
    if words in _BARE_KEY:
        pass  # a map, cache or message key far more often than a secret: see is_semi_secret_key
    elif words and key.lower() not in _NEVER_SECRET and words[0] not in _QUANTITY_FIRST:
        last = max((i for i in range(len(words)) if _is_secret_word(words, i)), default=-1)
        trailing = words[last + 1 :]
        # Secret unless every word after the last secret word only qualifies it (KEY_COUNT).
        result = last >= 0 and (not trailing or not all(w in QUALIFIERS for w in trailing))
    if len(_key_cache) < 10000:
        _key_cache[key] = result
    return result


SUFFIX_VERDICTS: dict[bytes, int] = {}


def suffix_verdict(suffix: bytes) -> int:
    """For the log gate: 2 if a token ending in ``suffix`` may be a secret key, 1 if it may
    be a semi-secret one, 0 if it cannot be either, whatever comes before ``suffix``.

    ``suffix`` runs from a key stem to the end of its token. Every secret (or semi-secret)
    word holds a stem, so the token's last such word has its stem in ``suffix``; what
    comes before can only make the key *not* secret (``PUBLIC_KEY``, ``MAX_TOKENS``,
    ``OLDPWD``), so those exceptions are not applied here: the verdict errs towards a look.
    """
    cached = SUFFIX_VERDICTS.get(suffix)
    if cached is not None:
        return cached
    words = key_words(suffix.decode("utf-8", "surrogateescape"))
    last = max((i for i in range(len(words)) if _is_secret_word(words, i)), default=-1)
    trailing = words[last + 1 :]
    if last >= 0 and (not trailing or not all(w in QUALIFIERS for w in trailing)):
        verdict = 2
    else:
        verdict = 1 if any(w in _SEMI or w.rstrip("s") in _SEMI or w.endswith(_SEMI_ENDINGS) for w in words) else 0
    if len(SUFFIX_VERDICTS) > 20000:
        SUFFIX_VERDICTS.clear()
    SUFFIX_VERDICTS[suffix] = verdict
    return verdict


TOKEN_VERDICTS: dict[bytes, int] = {}
_KEY_STARTS = re.compile(rb"[.\-\[\]]")


def token_verdict(token: bytes) -> int:
    """For the log gate, on a whole token: 2 if it (or a part a keyed rule may take as its
    key, after ``.``, ``-``, ``[`` or ``]``) is a secret key, 1 if only semi-secret, else 0."""
    cached = TOKEN_VERDICTS.get(token)
    if cached is not None:
        return cached
    text = token.decode("utf-8", "surrogateescape")
    keys = [text, *(text[m.end() :] for m in _KEY_STARTS.finditer(token, 0, len(token) - 1))]
    keys = [k.lstrip("-") for k in keys if k.lstrip("-")]
    if any(is_secret_key(k) for k in keys):
        verdict = 2
    else:
        verdict = 1 if any(is_semi_secret_key(k) for k in keys) else 0
    if len(TOKEN_VERDICTS) > 20000:
        TOKEN_VERDICTS.clear()
    TOKEN_VERDICTS[token] = verdict
    return verdict


def searchable(value: str) -> bool:
    """Is this secret value worth masking wherever it appears?"""
    return len(value) >= 4 and value.lower() not in _BORING_VALUES and value != MASK


# --- keys whose values are secrets only when they look random --------------------------
# A session id, a request signature or a CSRF token is a credential, but the same words
# name settings too (SESSION_TTL=3600, signature_algorithm=HS256): under these keys only a
# high-entropy value is masked (rule ``high-entropy``).
_SEMI = frozenset({"session", "sessid", "sessionid", "signature", "sig", "hmac", "csrf", "xsrf"})
_SEMI_ENDINGS = ("session", "sessid", "sessionid", "signature")


def is_semi_secret_key(key: str) -> bool:
    """True when a high-entropy value under ``key`` is a credential (``session_id``, ``X-Amz-Signature``,
    a bare ``key``: ``key=order-83421`` is a message key, ``key=9fQ2…`` an API key)."""
    words = key_words(key)
    return words in _BARE_KEY or any(w in _SEMI or w.rstrip("s") in _SEMI or w.endswith(_SEMI_ENDINGS) for w in words)


def has_strong_word(key: str) -> bool:
    """Does ``key`` name a secret outright (password, token, secret, api key …), not just a key or auth?"""
    joined = "".join(key_words(key))
    return any(stem in joined for stem in _STRONG)


# --- values ----------------------------------------------------------------------------
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]?[\d:.,]*(?:Z|[+-]\d{2}:?\d{2})?")
# A generated secret is one run of characters: no blank, quote or backslash (and the log
# gate, which looks for such a run after a semi-secret key, relies on it).
_NOT_IN_SECRETS = re.compile(r"[\s\"'`\\]")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    length = len(value)
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    return -sum(n / length * math.log2(n / length) for n in counts.values())


def high_entropy(value: str, min_length: int = 16) -> bool:
    """Does ``value`` look random enough to be a generated secret?

    At least ``min_length`` characters in one run (no blank, quote or backslash), letters
    and digits both, no URL, no timestamp, and
    3 bits of entropy per character or more (``hunter2hunter2`` has 2.8, a random hex id 3.7).
    """
    if len(value) < min_length or "://" in value or MASK in value or _NOT_IN_SECRETS.search(value):
        return False
    has_letter = any(c.isalpha() for c in value)
    has_digit = any(c.isdigit() for c in value)
    if not (has_letter and has_digit) or _TIMESTAMP.fullmatch(value):
        return False
    return entropy(value) >= 3.0


def is_masked(value: str) -> bool:
    """Already masked: our mask, or a run of ``*`` (how our own logs and other tools mask)."""
    return value == MASK or (bool(value) and value.strip("*") == "")
