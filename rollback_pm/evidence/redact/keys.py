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
