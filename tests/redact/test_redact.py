"""Redaction rules: what is masked, what is kept, in documents, text and log batches."""

from __future__ import annotations

import pytest

from rollback_pm.redact import (
    MASK,
    DocumentRedactor,
    LineRedactor,
    LogRedactor,
    Redactor,
    finder,
    is_secret_key,
    redact_documents,
    redact_lines,
    redact_text,
)
from rollback_pm.redact import text as text_rules

TS = b"2026-05-13T08:47:21.123456789Z "


@pytest.mark.parametrize(
    "key",
    [
        "DB_PASSWORD",
        "MyPassword",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "api_key",
        "apiKey",
        "APIKEY",
        "PGPASSWORD",
        "splunk-token",
        "--db-password",
        "SENTRY_DSN",
        "BASIC_AUTH",
        "client_secret",
        "PRIVATE_KEY",
        "jwt",
        "SECRET_KEY_BASE",
        "PASSWORD_HASH",
        "com.example.api_token",
        "x-api-key",
        "requirepass",
        "OAuth2Token",
        "ENCRYPTION_KEY",
        "session_cookie",
        "GITEA_PAT",
        "AUTH",
    ],
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "KEY_COUNT",
        "TOKEN_TTL_SECONDS",
        "PASSWORD_MIN_LENGTH",
        "MIN_PASSWORD_LENGTH",
        "MAX_TOKENS",
        "PASSWORD_FILE",
        "AUTH_ENABLED",
        "AWS_ACCESS_KEY_ID",
        "PUBLIC_KEY",
        "PARTITION_KEY",
        "TOKENIZER",
        "MONKEY",
        "AUTHOR",
        "PATH",
        "PWD",
        "HOSTNAME",
        "POOL_SIZE",
        "TOKEN_URL",
        "AUTH_SERVER_URL",
        "SECRET_NAME",
        "com.docker.compose.config-hash",
        "org.opencontainers.image.revision",
    ],
)
def test_not_secret_keys(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:s3cret@h/db", f"postgres://u:{MASK}@h/db"),
        ("redis://:SECRET@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("amqp://u:p@ss@rabbit/", f"amqp://u:{MASK}@rabbit/"),  # an unescaped @ in the password
        ("https://ghp_abcdefghijklmnopqrstuv1234@github.com/o/r", f"https://{MASK}@github.com/o/r"),
        ("ssh://git@github.com/o/r", "ssh://git@github.com/o/r"),
        ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {MASK}"),
        ("curl -H 'Authorization: token gtea123' x", f"curl -H 'Authorization: token {MASK}' x"),
        ("auth with bearer eyJhbGciOi.xyz", f"auth with bearer {MASK}"),
        (
            "DB_PASSWORD=hunter2 KEY_COUNT=3 TOKEN_TTL_SECONDS=300",
            f"DB_PASSWORD={MASK} KEY_COUNT=3 TOKEN_TTL_SECONDS=300",
        ),
        ("export API_KEY='a b c'; run", f"export API_KEY='{MASK}'; run"),
        (
            '{"password": "p1", "token_ttl": 300, "api_key": 12345, "user": "bob"}',
            f'{{"password": "{MASK}", "token_ttl": 300, "api_key": {MASK}, "user": "bob"}}',
        ),
        ('msg {\\"secret\\":\\"abc\\"}', f'msg {{\\"secret\\":\\"{MASK}\\"}}'),
        ("{'client_secret': 'xyz'}", f"{{'client_secret': '{MASK}'}}"),
        ("password: hunter3", f"password: {MASK}"),
        ("redis-server --requirepass foo123 --port 6379", f"redis-server --requirepass {MASK} --port 6379"),
        ("GET /cb?code=1&access_token=zzz&x=1", f"GET /cb?code=1&access_token={MASK}&x=1"),
        ("PASSWORD_MIN_LENGTH=12 pool=4 retries=3", "PASSWORD_MIN_LENGTH=12 pool=4 retries=3"),
        (
            '"-----BEGIN RSA PRIVATE KEY-----\\nMIIEabc\\n-----END RSA PRIVATE KEY-----\\n"',
            f'"-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----\\n"',
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIE\nabc\n-----END PRIVATE KEY-----\n",
            f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----\n",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----",
        ),
        ("nothing to see, pool size 10", "nothing to see, pool size 10"),
        (
            "a " + "x" * 300 + "_password=tok2 b",
            "a " + "x" * 300 + f"_password={MASK} b",
        ),  # a key longer than the look-back
    ],
)
def test_text_rules(text, expected):
    assert Redactor().text(text) == expected


def test_masking_is_idempotent():
    r = Redactor()
    once = r.text("DB_PASSWORD=x1 postgres://u:p@h Authorization: Bearer tok123")
    counts = dict(r.counts)
    assert r.text(once) == once and dict(r.counts) == counts


def test_document_masks_config_and_keeps_the_rest():
    doc = {
        "Args": ["-c", "DB_PASSWORD=sh-Secret-0 ./run --api-key sh-Secret-00"],
        "Config": {
            "Env": [
                "DB_PASSWORD=hunter2hunter2",
                "KEY_COUNT=3",
                "TOKEN_TTL_SECONDS=300",
                "PASSWORD_MIN_LENGTH=12",
                "DATABASE_URL=postgres://app:pg-Secret-1@db/app",
                "REDIS_URL=redis://:redis-Secret-2@cache:6379",
                "TLS_KEY=-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIpem-Secret-9aaaaaaaaaa\n-----END EC PRIVATE KEY-----",
            ],
            "Labels": {"com.example.api_token": "label-Secret-3", "com.docker.compose.service": "api"},
            "Cmd": ["serve", "--password", "cmd-Secret-4", "--token=cmd-Secret-5", "--workers", "4", "hunter2hunter2"],
            "Healthcheck": {"Test": ["CMD", "curl", "-H", "Authorization: Bearer hc-Secret-6abcdef", "localhost"]},
        },
        "HostConfig": {
            "LogConfig": {
                "Type": "splunk",
                "Config": {"splunk-token": "splunk-Secret-7", "splunk-url": "https://splunk:8088"},
            }
        },
        "State": {
            "Health": {
                "Log": [
                    {"Output": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpem-Secret-8\\n-----END RSA PRIVATE KEY-----"}
                ]
            }
        },
    }
    [out], redactor, [error] = redact_documents([doc])
    assert error is None
    text = repr(out)
    for canary in [
        "hunter2hunter2",
        "sh-Secret-0",
        "sh-Secret-00",
        "pg-Secret-1",
        "redis-Secret-2",
        "label-Secret-3",
        "cmd-Secret-4",
        "cmd-Secret-5",
        "hc-Secret-6abcdef",
        "splunk-Secret-7",
        "pem-Secret-8",
        "pem-Secret-9",
    ]:
        assert canary not in text, canary
    assert out["Config"]["Env"][:4] == [
        f"DB_PASSWORD={MASK}",
        "KEY_COUNT=3",
        "TOKEN_TTL_SECONDS=300",
        "PASSWORD_MIN_LENGTH=12",
    ]
    assert out["Config"]["Env"][4] == f"DATABASE_URL=postgres://app:{MASK}@db/app"
    assert out["Config"]["Cmd"] == ["serve", "--password", MASK, f"--token={MASK}", "--workers", "4", MASK]
    assert out["Config"]["Labels"] == {"com.example.api_token": MASK, "com.docker.compose.service": "api"}
    assert out["HostConfig"]["LogConfig"]["Config"] == {"splunk-token": MASK, "splunk-url": "https://splunk:8088"}
    assert doc["Config"]["Env"][0] == "DB_PASSWORD=hunter2hunter2"  # the input is not modified
    assert {"hunter2hunter2", "pg-Secret-1", "cmd-Secret-4", "splunk-Secret-7"} <= redactor.found
    assert "MHcCAQEEIpem-Secret-9aaaaaaaaaa" in redactor.found  # a PEM body line, searchable in logs
    assert redactor.counts["secret-key"] >= 8 and redactor.counts["url-userinfo"] == 2
    assert (
        redactor.counts["known-value"] == 1
        and redactor.counts["bearer"] == 1
        and redactor.counts["pem-private-key"] == 1
    )


def test_a_secret_from_one_document_is_masked_in_another():
    docs = [{"Config": {"Env": ["API_TOKEN=shared-Secret-1"]}}, {"Config": {"Cmd": ["run", "shared-Secret-1"]}}]
    out, _, errors = redact_documents(docs)
    assert errors == [None, None] and out[1]["Config"]["Cmd"] == ["run", MASK]


def test_redaction_failure_drops_the_document_only():
    deep: list = []
    node = deep
    for _ in range(5000):  # deeper than the recursion limit: redacting it raises
        node.append([])
        node = node[0]
    out, _, errors = redact_documents([{"Config": {"Env": ["A=1"]}}, {"Deep": deep}])
    assert out[0] == {"Config": {"Env": ["A=1"]}} and out[1] is None
    assert errors[0] is None and isinstance(errors[1], RecursionError)


def test_short_and_boolean_values_are_not_searched_for_everywhere():
    out, redactor, _ = redact_documents([{"Config": {"Env": ["DB_PASSWORD=abc", "API_KEY=true", "TOKEN=long-enough"]}}])
    assert out[0]["Config"]["Env"] == [f"DB_PASSWORD={MASK}", f"API_KEY={MASK}", f"TOKEN={MASK}"]
    lines = LineRedactor(Redactor(redactor.found))
    assert lines.line("abc is true and long-enough") == f"abc is true and {MASK}"


def test_learn_then_mask_log_lines():
    redactor = DocumentRedactor()
    redactor.learn({"Config": {"Env": ["DB_PASSWORD=hunter2hunter2"]}})
    lines = LineRedactor(redactor)
    assert lines.line("login with hunter2hunter2 failed") == f"login with {MASK} failed"
    assert lines.line("GET / Authorization: Bearer abcdefgh12345") == f"GET / Authorization: Bearer {MASK}"
    assert lines.line("retries=3 password=swordfish") == f"retries=3 password={MASK}"
    assert lines.line("pool size 10, ok") == "pool size 10, ok"


def test_pem_block_across_lines_keeps_the_markers():
    lines = LineRedactor(Redactor())
    out = [
        lines.line(x)
        for x in [
            "key follows: -----BEGIN PRIVATE KEY-----",
            "MIIEvQIBADANBgkq",
            "AbCdEf==",
            "-----END PRIVATE KEY-----",
            "after",
        ]
    ]
    assert out == ["key follows: -----BEGIN PRIVATE KEY-----", MASK, MASK, "-----END PRIVATE KEY-----", "after"]


def test_pem_block_cut_short_stops_at_a_line_that_is_not_base64():
    lines = LineRedactor(Redactor())
    out = [lines.line(x) for x in ["-----BEGIN RSA PRIVATE KEY-----", "MIIEvQIBADANBgkq", "server started on :8080"]]
    assert out == ["-----BEGIN RSA PRIVATE KEY-----", MASK, "server started on :8080"]


def _batch(*lines: tuple[str, str]) -> bytes:
    return b"".join(f"web {stream} ".encode() + TS + text.encode() + b"\n" for stream, text in lines)


@pytest.mark.parametrize("matcher", ["aho-corasick", "fallback"])
def test_log_batches(monkeypatch, matcher):
    if matcher == "fallback":
        monkeypatch.setattr(finder, "_ac", None)
    logs = LogRedactor({"hunter2secret"}, head_len=len("web stdout ") + len(TS), stream_len=len("web stdout"))
    data = _batch(
        ("stdout", "plain line"),
        ("stdout", "pw is hunter2secret"),
        ("stdout", "-----BEGIN RSA PRIVATE KEY-----"),
        ("stderr", "unrelated stderr line MIIEinterleaved"),
        ("stdout", "MIIEpAIBAAKCAQEA"),
        ("stdout", "-----END RSA PRIVATE KEY-----"),
        ("stdout", "KEY_COUNT=3 password=x1y2 Bearer tok.en"),
        ("stderr", "HUNTER2SECRET is not the same value"),
    )
    out = logs.batch(data).decode().splitlines()
    assert [line.split(" ", 3)[3] for line in out] == [
        "plain line",
        f"pw is {MASK}",
        "-----BEGIN RSA PRIVATE KEY-----",
        "unrelated stderr line MIIEinterleaved",
        MASK,
        "-----END RSA PRIVATE KEY-----",
        f"KEY_COUNT=3 password={MASK} Bearer {MASK}",
        "HUNTER2SECRET is not the same value",
    ]
    assert all(line.startswith(("web stdout " + TS.decode(), "web stderr " + TS.decode())) for line in out)
    assert dict(logs.counts) == {"known-value": 1, "pem-private-key": 1, "secret-key": 1, "bearer": 1}
    clean = _batch(("stdout", "nothing here"), ("stderr", "at all"))
    assert logs.batch(clean) is clean  # no trigger: the batch is passed through untouched


def test_log_batch_keeps_bytes_that_are_not_utf8():
    logs = LogRedactor({"hunter2secret"}, head_len=len("web stdout ") + len(TS), stream_len=len("web stdout"))
    data = b"web stdout " + TS + b"\xff\xfe raw hunter2secret \xc3\n"
    assert logs.batch(data) == b"web stdout " + TS + b"\xff\xfe raw " + MASK.encode() + b" \xc3\n"


CORPUS = [
    "plain line with nothing to do",
    "DB_PASSWORD=hunter2 KEY_COUNT=3 TOKEN_TTL_SECONDS=300 path=/v1/keys passed=true",
    'note="password=abc def" and more',  # a secret key inside a value that is not secret
    'msg {\\"secret\\":\\"abc\\"} {"api_key": 12345, "token_ttl": 300}',
    "{'client_secret': 'xyz'} password: hunter3 Authorization: Basic dXNlcjpw",
    "redis-server --requirepass foo123 --port 6379 x.--db-password bar",
    "GET /cb?code=1&access_token=zzz&x=1 a[token]=b c.api_key=d",
    "https://ghp_abcdefghijklmnopqrstuv1234@github.com/o/r and postgres://u:s3cret@h/db",
    "https://catalog.internal/v1/items no userinfo here, key: value",
    "c.e.orders.api.AuthFilter - POST /api/v1/auth/session status=201 author=system",
    "keyboard_layout=de MonkeyTest tokenizer=bpe max_tokens=3 secret_name=x public_key=abc",
    "Tökenä=ümlaut pässword=x дsecret=y",
    "calling with Authorization: Bearer eyJhbGciOi.xyz.sig timeout_ms=3000",
    "known hunter2secret and hunter2secret again, HUNTER2SECRET not",
    "x" * 300 + "_password=longtoken " + "y" * 300,
    "a " + "x" * 300 + "_password=tok2 and a long token before the key",
]


@pytest.mark.parametrize("matcher", ["aho-corasick", "fallback"])
def test_log_batches_mask_exactly_what_the_text_rules_mask(monkeypatch, matcher):
    """The batch path skips lines it judges safe; it must never skip one the rules would change."""
    if matcher == "fallback":
        monkeypatch.setattr(finder, "_ac", None)
        monkeypatch.setattr(text_rules, "_STEM_FINDER", finder.Finder(text_rules.KEY_STEMS))
    # A container whose name holds trigger words and a known secret: its heads stay as they are.
    name = "token-auth-hunter2secret"
    prefix = len(f"{name} stdout ")
    logs = LogRedactor({"hunter2secret"}, head_len=prefix + len(TS), stream_len=prefix - 1)
    data = b"".join(
        f"{name} {stream} ".encode() + TS + text.encode() + b"\n" for text in CORPUS for stream in ("stdout", "stderr")
    )
    rules = Redactor({"hunter2secret"})
    expected = b"".join(
        f"{name} {stream} ".encode() + TS + rules.text(text).encode() + b"\n"
        for text in CORPUS
        for stream in ("stdout", "stderr")
    )
    assert logs.batch(data).decode() == expected.decode()
    assert logs.counts == rules.counts


def test_log_batches_replace_known_secrets_whole_only_where_heads_are_safe():
    name = "svc-2026"
    prefix = len(f"{name} stdout ")
    # "2026" is a (bad) password that also appears in every head; "s3cr3t-value" does not.
    logs = LogRedactor({"2026", "s3cr3t-value"}, head_len=prefix + len(TS), stream_len=prefix - 1)
    data = f"{name} stdout ".encode() + TS + b"pw 2026 and s3cr3t-value\n"
    assert logs.batch(data) == f"{name} stdout ".encode() + TS + f"pw {MASK} and {MASK}\n".encode()
    assert logs.counts["known-value"] == 2


def _random_lines(seed: int, count: int) -> list[str]:
    """Lines that mix every keyed syntax, quote style and glue, with secret and ordinary keys."""
    import random

    rnd = random.Random(seed)
    keys = [
        "password",
        "DB_PASSWORD",
        "api_key",
        "apiKey",
        "token",
        "TOKEN_TTL",
        "key",
        "keyboard",
        "x-api-key",
        "secret_name",
        "auth",
        "Authorization",
        "client.secret",
        "a[token]",
        "public_key",
        "passwd",
        "jwt",
        "pat",
        "path",
        "max_tokens",
        "note",
        "user",
        "MyPassword",
        "requirepass",
        "session_cookie",
        "-p",
        "--password",
    ]
    seps = ["=", ": ", ":", " = ", '": "', '": ', '\\": \\"', "': '", " ", '="', "='"]
    values = [
        "hunter2",
        "abc def",
        "s3cr3t!",
        "12345",
        "true",
        MASK,
        "x=y",
        "a:b",
        '"q"',
        "tok.en-1",
        "http://u:p@h/x",
        "Bearer abc",
    ]
    glue = [" ", ", ", "; ", "&", "?", " - ", '"', "'", "{", "}", " --", "/", "."]
    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rnd.randint(1, 6)):
            parts += [rnd.choice(glue), rnd.choice(keys), rnd.choice(seps), rnd.choice(values)]
            if rnd.random() < 0.3:
                parts.append(rnd.choice(['"', "'", '\\"']))
        lines.append("".join(parts))
    return lines


def test_log_batches_agree_with_the_text_rules_on_random_lines():
    name = "web-token"
    prefix = f"{name} stdout ".encode() + TS
    lines = _random_lines(seed=7, count=3000)
    logs = LogRedactor({"hunter2"}, head_len=len(prefix), stream_len=len(name) + 7)
    rules = Redactor({"hunter2"})
    got = logs.batch(b"".join(prefix + line.encode() + b"\n" for line in lines)).decode().split("\n")[:-1]
    assert got == [prefix.decode() + rules.text(line) for line in lines]


def test_no_keyed_value_hides_another_keys_value():
    # Quoted values that run over the next key, in both orders, and rules of both kinds.
    for text, secret in [
        ("--token x=y{MyPassword: hunter2'", "hunter2"),
        ('client.secret="Bearer abc\\" --pat="q7z"', "q7z"),
        ("DB_PASSWORD='tok.en-1\"Authorization=\"true''note=1", "tok.en-1"),
        ('note="password=abc def" and more', "abc"),
        ('"x.y.token": "abc def\'requirepass=tok.en-1\\"', "abc def"),  # closes once tok.en-1 is masked
    ]:
        masked = Redactor().text(text)
        assert secret not in masked, (text, masked)


def test_public_helpers():
    assert redact_text("DB_PASSWORD=hunter2 ok and s3cr3t-known", known={"s3cr3t-known"}) == (
        f"DB_PASSWORD={MASK} ok and {MASK}"
    )
    assert redact_lines(["-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkq", "-----END PRIVATE KEY-----", "ok"]) == [
        "-----BEGIN PRIVATE KEY-----",
        MASK,
        "-----END PRIVATE KEY-----",
        "ok",
    ]
